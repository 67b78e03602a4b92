// The WebSocket half of the protocol (docs/PROTOCOL.md §4): one connection per page that
// subscribes to the lists on screen, keeps each list's state and seq, resumes with `since`
// after any drop, and sends the outbox's ops — each with its op_id — until they are answered
// (sender.js: in order per list, retries, ops too large).

import * as api from './api.js';
import { backoffMs, RECONNECT, RESUBSCRIBE } from './backoff.js';
import { RETRYABLE } from './errors.js';
import { applyEvent, applyTally, describeEvent } from './model.js';
import { HEARTBEAT_MS, Outbox, OUTBOX_MAX } from './outbox.js';
import { FRAME_BYTES_MAX, frameBytes, opFrame, Sender, TOO_LARGE } from './sender.js';
import { dropCache, loadCache, loadJson, saveCache, saveJson, votesKey } from './store.js';

/** The server's limits on an op's fields (PROTOCOL.md §8): item text and media url in UTF-8 bytes. */
export const ITEM_TEXT_BYTES_MAX = 4096;
export const URL_BYTES_MAX = 2048;
export const TITLE_CHARS_MAX = 200;
const utf8Bytes = (text) => new TextEncoder().encode(text).length;

/** Whether the server would refuse `op` for a field over its limit (so it is not queued). */
function overLimit(op) {
  if (typeof op.text === 'string' && utf8Bytes(op.text) > ITEM_TEXT_BYTES_MAX) return true;
  if (typeof op.url === 'string' && utf8Bytes(op.url) > URL_BYTES_MAX) return true;
  // The title's limit is in characters (Unicode scalar values), not bytes.
  return typeof op.title === 'string' && [...op.title].length > TITLE_CHARS_MAX;
}

export class Live {
  /**
   * `handlers`: onStatus(status, waiting), onChange(list, lines), onOutcome(entry, error),
   * onListError(list, error), onAuthLost(), onStorage(saved) (false: storage is full, and the
   * changes waiting are not saved on this device).
   */
  constructor(session, handlers) {
    this.session = session;
    this.handlers = handlers;
    this.outbox = new Outbox(session.user_id, (saved) => this.handlers.onStorage?.(saved));
    this.sender = new Sender(this.outbox, {
      send: (frame) => this.send(frame),
      settle: (entry, error, frame) => this.settle(entry, error, frame),
      retrying: (entry, error) => this.handlers.onOutcome(entry, error, error),
      stalled: () => this.stall(),
    });
    /** list id → {seq, state}; state null until the first snapshot. */
    this.lists = new Map();
    this.subscribed = new Set();
    this.resubscribes = new Map(); // list → retryable list errors since its last snapshot, delta or tally
    this.socket = null;
    this.open = false;
    this.stopped = false;
    this.attempt = 0;
    this.status = 'connecting';
    this.saveTimers = new Map();
    this.heartbeat = null;
    this.onStorageEvent = (event) => {
      // Another tab's outbox changed, or a heartbeat went away (that tab closed). A heartbeat
      // merely renewed is not worth a look: a late one is found by this tab's own heartbeat.
      if (event.key !== null && !this.outbox.concerns(event.key)) return;
      if (event.key?.startsWith(this.outbox.alivePrefix) && event.newValue !== null) return;
      this.outboxChanged();
    };
    this.onPageHide = () => this.outbox.leave();
    this.onPageShow = () => this.outbox.beat();
  }

  start() {
    globalThis.addEventListener?.('storage', this.onStorageEvent);
    globalThis.addEventListener?.('pagehide', this.onPageHide);
    globalThis.addEventListener?.('pageshow', this.onPageShow);
    this.beat();
    this.connect();
  }

  stop() {
    this.stopped = true;
    globalThis.removeEventListener?.('storage', this.onStorageEvent);
    globalThis.removeEventListener?.('pagehide', this.onPageHide);
    globalThis.removeEventListener?.('pageshow', this.onPageShow);
    clearTimeout(this.heartbeat);
    this.outbox.leave(); // another tab (or the next sign-in) sends what is still waiting
    this.socket?.close(1000);
  }

  /** Every HEARTBEAT_MS: says this tab is alive, and adopts the outboxes of tabs that are not. */
  beat() {
    this.heartbeat = setTimeout(() => {
      this.outbox.beat();
      const ids = () => `${this.outbox.entries.map((entry) => entry.op_id)}|${this.outbox.others.map((entry) => entry.op_id)}`;
      const before = ids();
      this.outbox.refresh();
      if (ids() !== before) this.outboxChanged();
      this.beat();
    }, HEARTBEAT_MS);
  }

  /** The outboxes changed (another tab's, or this one's by adoption): show them, send this tab's. */
  outboxChanged() {
    const lists = new Set(this.outbox.all().map((entry) => entry.list));
    this.outbox.refresh();
    for (const entry of this.outbox.all()) lists.add(entry.list);
    this.sender.reconcile();
    this.sender.pumpAll();
    this.handlers.onStatus(this.status, this.outbox.waiting);
    for (const list of lists) this.handlers.onChange(list, []);
  }

  /** An op got no answer in time: the connection is taken as dead and made again. */
  stall() {
    const socket = this.socket;
    if (!socket) return;
    this.closed(socket, 4000); // not waiting for a closing handshake a half-open socket never ends
    socket.close(4000, 'no answer in time');
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
      this.sender.connected();
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
    socket.onclose = (event) => this.closed(socket, event?.code);
  }

  closed(socket, code) {
    if (this.socket !== socket) return;
    this.open = false;
    this.socket = null;
    this.sender.disconnected(code);
    if (this.stopped) return;
    this.setStatus('reconnecting');
    this.attempt += 1;
    if (this.attempt >= 2) this.checkSession();
    setTimeout(() => this.connect(), backoffMs(this.attempt, RECONNECT));
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
    this.handlers.onStatus(status, this.outbox.waiting);
  }

  send(frame) {
    if (!this.open) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  /** Follows `list`, starting from the copy kept from an earlier visit when there is one. */
  subscribe(list) {
    if (!this.lists.has(list)) {
      const cached = loadCache(this.session.user_id, list);
      this.lists.set(list, cached?.state ? { seq: cached.seq, state: cached.state } : { seq: null, state: null });
    }
    this.subscribed.add(list);
    this.sendSubscribe(list);
    return this.lists.get(list);
  }

  unsubscribe(list) {
    this.subscribed.delete(list);
    this.resubscribes.delete(list);
    this.send({ type: 'unsubscribe', list });
  }

  sendSubscribe(list) {
    const entry = this.lists.get(list);
    this.send({ type: 'subscribe', list, since: entry?.state ? entry.seq : null });
  }

  /**
   * Queues an op and sends it when its list's earlier ops are answered; it is resent on every
   * reconnect until answered. Returns the entry, or null when it was refused here (a field
   * over the server's limit, too large to send, or the outbox is full) — with an outcome saying why.
   */
  submit(list, op) {
    const refuse = (message) => {
      this.handlers.onOutcome({ op_id: null, list, op }, { code: 'too_large', message }, null);
      return null;
    };
    if (overLimit(op) || frameBytes(opFrame({ list, op_id: '00000000-0000-0000-0000-000000000000', op })) > FRAME_BYTES_MAX) {
      return refuse(TOO_LARGE.message);
    }
    const entry = this.outbox.add(list, op);
    if (!entry) return refuse(`${OUTBOX_MAX} changes are already waiting to be sent; try again once connected`);
    this.sender.pump(list);
    this.handlers.onStatus(this.status, this.outbox.waiting);
    this.handlers.onChange(list, []);
    return entry;
  }

  /** The ops of `list` waiting, in this tab or another (shown as sending). */
  pending(list) {
    return this.outbox.pendingFor(list);
  }

  handle(frame) {
    const entry = this.lists.get(frame.list);
    switch (frame.type) {
      case 'snapshot':
        if (!entry) return;
        this.resubscribes.delete(frame.list);
        entry.state = frame.state;
        entry.seq = frame.seq;
        this.changed(frame.list, []);
        break;
      case 'delta':
        if (entry?.state) this.applyDelta(frame, entry);
        break;
      case 'tally':
        if (!entry?.state || frame.seq < entry.seq) return;
        this.resubscribes.delete(frame.list); // A tally is progress too (a hot poll sends mostly tallies).
        applyTally(entry.state, frame.counts);
        entry.seq = frame.seq;
        entry.state.seq = frame.seq;
        this.changed(frame.list, []);
        break;
      case 'ack':
        if (frame.op_id) this.sender.answered(frame, false);
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
    this.resubscribes.delete(frame.list);
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

  /** An op has its outcome (from the server, or given up here): out of the outbox. */
  settle(settled, error, frame) {
    const entry = this.outbox.settle(settled.op_id);
    if (!entry) return;
    const settledVote = !error || (error.code === 'conflict' && /already voted|not voted/.test(error.message));
    this.noteVote(entry.list, entry.op.kind, entry.op.item, settledVote);
    this.handlers.onOutcome(entry, error, frame);
    this.handlers.onStatus(this.status, this.outbox.waiting);
    this.handlers.onChange(entry.list, []);
  }

  handleError(frame) {
    if (frame.op_id) {
      this.sender.answered(frame, true);
      return;
    }
    if (frame.list) {
      if (!this.subscribed.has(frame.list)) return; // A list no longer on screen.
      if (RETRYABLE.has(frame.code)) {
        const tries = (this.resubscribes.get(frame.list) ?? 0) + 1;
        this.resubscribes.set(frame.list, tries);
        setTimeout(() => this.subscribed.has(frame.list) && this.sendSubscribe(frame.list), backoffMs(tries, RESUBSCRIBE));
        return;
      }
      this.subscribed.delete(frame.list);
      this.lists.delete(frame.list);
      dropCache(this.session.user_id, frame.list);
    }
    this.handlers.onListError(frame.list ?? null, frame);
  }

  /**
   * The items the user has voted for on `list`. The snapshot carries only counts, so the page
   * remembers the user's own votes from acks and from the vote events it sees.
   */
  votes(list) {
    if (!this.voteSets) this.voteSets = new Map();
    if (!this.voteSets.has(list)) this.voteSets.set(list, new Set(loadJson(votesKey(this.session.user_id, list), [])));
    return this.voteSets.get(list);
  }

  noteVote(list, kind, item, settled) {
    if (!settled || (kind !== 'vote' && kind !== 'unvote')) return;
    const votes = this.votes(list);
    if (kind === 'vote') votes.add(item);
    else votes.delete(item);
    saveJson(votesKey(this.session.user_id, list), [...votes]);
  }

  changed(list, lines, events = []) {
    this.scheduleSave(list);
    this.handlers.onChange(list, lines, events);
  }

  /**
   * Keeps a copy of the list so a reload resumes with `since` instead of a snapshot (when
   * storage is full it is not kept: a reload then starts from a snapshot).
   */
  scheduleSave(list) {
    if (this.saveTimers.has(list)) return;
    this.saveTimers.set(list, setTimeout(() => {
      this.saveTimers.delete(list);
      const entry = this.lists.get(list);
      if (!entry?.state) return;
      saveCache(this.session.user_id, list, { seq: entry.seq, state: entry.state });
    }, 150));
  }
}
