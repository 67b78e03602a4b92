// The WebSocket half of the protocol (docs/PROTOCOL.md §4): one connection per page that
// subscribes to the lists on screen, keeps each list's state and seq, resumes with `since`
// after any drop, and sends the outbox's ops — each with its op_id — until they are answered.

import * as api from './api.js';
import { loadJson, saveJson } from './dom.js';
import { RETRYABLE } from './errors.js';
import { applyEvent, applyTally, describeEvent } from './model.js';
import { Outbox } from './outbox.js';

const BACKOFF_MS_MIN = 200;
const BACKOFF_MS_MAX = 3000;

function backoffMs(attempt) {
  const ceiling = Math.min(BACKOFF_MS_MAX, BACKOFF_MS_MIN * 2 ** attempt);
  return Math.round(ceiling * (0.5 + Math.random() / 2));
}

export class Live {
  /**
   * `handlers`: onStatus(status, waiting), onChange(list, lines), onOutcome(entry, error),
   * onListError(list, error), onAuthLost().
   */
  constructor(session, handlers) {
    this.session = session;
    this.handlers = handlers;
    this.outbox = new Outbox(`listwire.${session.user_id}.outbox`);
    /** list id → {seq, state}; state null until the first snapshot. */
    this.lists = new Map();
    this.subscribed = new Set();
    this.socket = null;
    this.open = false;
    this.stopped = false;
    this.attempt = 0;
    this.status = 'connecting';
    this.saveTimers = new Map();
  }

  start() {
    this.connect();
  }

  stop() {
    this.stopped = true;
    this.socket?.close(1000);
  }

  connect() {
    if (this.stopped) return;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    // Tokens are URL-safe and the server reads `token=` verbatim (PROTOCOL.md §2).
    const socket = new WebSocket(`${scheme}://${location.host}/v1/ws?token=${this.session.token}`);
    this.socket = socket;
    socket.onopen = () => {
      this.open = true;
      this.attempt = 0;
      this.setStatus('connected');
      for (const list of this.subscribed) this.sendSubscribe(list);
      for (const entry of this.outbox.entries) this.sendOp(entry);
    };
    socket.onmessage = (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      this.handle(frame);
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.open = false;
      this.socket = null;
      if (this.stopped) return;
      this.setStatus('reconnecting');
      this.attempt += 1;
      if (this.attempt >= 2) this.checkSession();
      setTimeout(() => this.connect(), backoffMs(this.attempt));
    };
  }

  /** A refused upgrade looks like any drop in a browser; ask over HTTP whether it was the token. */
  async checkSession() {
    try {
      await api.myLists(this.session.token);
    } catch (error) {
      if (error.code === 'unauthorized') {
        this.stop();
        this.handlers.onAuthLost();
      }
    }
  }

  setStatus(status) {
    this.status = status;
    this.handlers.onStatus(status, this.outbox.entries.length);
  }

  send(frame) {
    if (!this.open) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  /** Follows `list`, starting from the copy kept from an earlier visit when there is one. */
  subscribe(list) {
    if (!this.lists.has(list)) {
      const cached = loadJson(this.cacheKey(list), null);
      this.lists.set(list, cached?.state ? cached : { seq: null, state: null });
    }
    this.subscribed.add(list);
    this.sendSubscribe(list);
    return this.lists.get(list);
  }

  unsubscribe(list) {
    this.subscribed.delete(list);
    this.send({ type: 'unsubscribe', list });
  }

  sendSubscribe(list) {
    const entry = this.lists.get(list);
    this.send({ type: 'subscribe', list, since: entry?.state ? entry.seq : null });
  }

  /** Queues an op and sends it now if connected; it is resent on every reconnect until answered. */
  submit(list, op) {
    const entry = this.outbox.add(list, op);
    this.sendOp(entry);
    this.handlers.onStatus(this.status, this.outbox.entries.length);
    this.handlers.onChange(list, []);
    return entry;
  }

  sendOp(entry) {
    this.send({ type: 'op', list: entry.list, op_id: entry.op_id, op: entry.op });
  }

  pending(list) {
    return this.outbox.forList(list);
  }

  handle(frame) {
    const entry = this.lists.get(frame.list);
    switch (frame.type) {
      case 'snapshot':
        if (!entry) return;
        entry.state = frame.state;
        entry.seq = frame.seq;
        this.changed(frame.list, []);
        break;
      case 'delta':
        if (entry?.state) this.applyDelta(frame, entry);
        break;
      case 'tally':
        if (!entry?.state || frame.seq < entry.seq) return;
        applyTally(entry.state, frame.counts);
        entry.seq = frame.seq;
        entry.state.seq = frame.seq;
        this.changed(frame.list, []);
        break;
      case 'ack':
        this.settle(frame, null);
        break;
      case 'error':
        this.handleError(frame);
        break;
      default:
        break; // Unknown frame types are ignored (PROTOCOL.md §10.10).
    }
  }

  applyDelta(frame, entry) {
    if (frame.to <= entry.seq) return; // Already held (after a re-subscribe).
    if (frame.from > entry.seq + 1) {
      this.sendSubscribe(frame.list); // A gap: resume from what we hold.
      return;
    }
    const lines = [];
    for (const event of frame.events) {
      if (event.seq <= entry.seq) continue;
      const line = describeEvent(entry.state, event, this.session.user_id);
      if (line) lines.push({ text: line, at_ms: event.at_ms, by: event.by });
      applyEvent(entry.state, event);
      entry.seq = event.seq;
      if (event.by === this.session.user_id) this.noteVote(frame.list, event.kind, event.item, true);
    }
    entry.seq = frame.to;
    entry.state.seq = frame.to;
    this.changed(frame.list, lines, frame.events);
  }

  settle(frame, error) {
    const entry = this.outbox.settle(frame.op_id);
    if (!entry) return; // An answer to a resend we already had.
    const settledVote = !error || (error.code === 'conflict' && /already voted|not voted/.test(error.message));
    this.noteVote(entry.list, entry.op.kind, entry.op.item, settledVote);
    this.handlers.onOutcome(entry, error, frame);
    this.handlers.onStatus(this.status, this.outbox.entries.length);
    this.handlers.onChange(entry.list, []);
  }

  handleError(frame) {
    if (frame.op_id) {
      const entry = this.outbox.get(frame.op_id);
      if (!entry) return;
      if (RETRYABLE.has(frame.code)) {
        entry.tries = (entry.tries ?? 0) + 1;
        const delay = frame.retry_after_ms ?? backoffMs(entry.tries);
        setTimeout(() => this.outbox.get(entry.op_id) && this.sendOp(entry), delay);
        this.handlers.onOutcome(entry, { ...frame, retrying: true }, frame);
        return;
      }
      this.settle(frame, frame);
      return;
    }
    if (frame.list) {
      if (!this.subscribed.has(frame.list)) return; // A list no longer on screen.
      if (RETRYABLE.has(frame.code)) {
        setTimeout(() => this.subscribed.has(frame.list) && this.sendSubscribe(frame.list), backoffMs(1));
        return;
      }
      this.subscribed.delete(frame.list);
      this.lists.delete(frame.list);
      saveJson(this.cacheKey(frame.list), undefined);
    }
    this.handlers.onListError(frame.list ?? null, frame);
  }

  /**
   * The items the user has voted for on `list`. The snapshot carries only counts, so the page
   * remembers the user's own votes from acks and from the vote events it sees.
   */
  votes(list) {
    if (!this.voteSets) this.voteSets = new Map();
    if (!this.voteSets.has(list)) this.voteSets.set(list, new Set(loadJson(this.votesKey(list), [])));
    return this.voteSets.get(list);
  }

  noteVote(list, kind, item, settled) {
    if (!settled || (kind !== 'vote' && kind !== 'unvote')) return;
    const votes = this.votes(list);
    if (kind === 'vote') votes.add(item);
    else votes.delete(item);
    saveJson(this.votesKey(list), [...votes]);
  }

  votesKey(list) {
    return `listwire.${this.session.user_id}.votes.${list}`;
  }

  changed(list, lines, events = []) {
    this.scheduleSave(list);
    this.handlers.onChange(list, lines, events);
  }

  cacheKey(list) {
    return `listwire.${this.session.user_id}.list.${list}`;
  }

  /** Keeps a copy of the list so a reload resumes with `since` instead of a snapshot. */
  scheduleSave(list) {
    if (this.saveTimers.has(list)) return;
    this.saveTimers.set(list, setTimeout(() => {
      this.saveTimers.delete(list);
      const entry = this.lists.get(list);
      if (entry?.state) saveJson(this.cacheKey(list), { seq: entry.seq, state: entry.state });
    }, 150));
  }
}
