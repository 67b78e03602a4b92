// Sending the outbox's ops on the connection (docs/PROTOCOL.md §4.5, §4.4): the ops of one list
// go one at a time, in the order made — the next is sent once the previous has its outcome, so
// an op waiting for its retry (busy, moved, rate_limited, unavailable, internal) holds back the
// later ops of its list and none overtakes it. Ops of different lists do not wait for each other.
// An op is never sent when its frame is over the server's message limit; one the server closes
// the connection for with 1009 (message too big) right after it is sent is dropped with a
// message. Any other close (1006, 1001, 1013: flaps, rolling restarts) only means a resend with
// the same op_id after the reconnect. `internal` is retried at most INTERNAL_TRIES_MAX times.
// An op with no answer ANSWER_TIMEOUT_MS after it is sent (a half-open connection) closes the
// connection, so the reconnect resends it with the same op_id.

import { backoffMs, OP_RETRY } from './backoff.js';
import { RETRYABLE } from './errors.js';

/** The server's WebSocket message limit (PROTOCOL.md §8, `--ws-message-bytes-max` default). */
export const FRAME_BYTES_MAX = 64 * 1024;
export const INTERNAL_TRIES_MAX = 5;
/** How soon after an op is sent a 1009 close is taken as the server refusing that op. */
const TOO_LARGE_WITHIN_MS = 2000;
/** The server's op timeout (`--op-timeout-ms`, 10 s) plus a margin: past it, no answer is coming. */
export const ANSWER_TIMEOUT_MS = 15_000;

export const opFrame = (entry) => ({ type: 'op', list: entry.list, op_id: entry.op_id, op: entry.op });
export const frameBytes = (frame) => new TextEncoder().encode(JSON.stringify(frame)).length;

export const TOO_LARGE = {
  code: 'too_large',
  message: 'this change is larger than the server accepts, so it was not sent',
};

export class Sender {
  /**
   * `send(frame)` → sent?; `settle(entry, error)` ends an op with its outcome; `retrying(entry,
   * error)`; `stalled()` closes the connection (an op got no answer in time).
   */
  constructor(outbox, { send, settle, retrying, stalled = () => {} }) {
    this.outbox = outbox;
    this.sendFrame = send;
    this.settleEntry = settle;
    this.retrying = retrying;
    this.stalled = stalled;
    this.inflight = new Map(); // list → op id sent and not yet answered
    this.timers = new Map(); // op id → retry timer
    this.tries = new Map(); // op id → retryable answers so far
    this.waits = new Map(); // op id → timer of its answer timeout
    this.lastSent = null; // {opId, atMs}
    this.open = false;
  }

  connected() {
    this.open = true;
    this.pumpAll();
  }

  /** The connection closed with `code`: nothing is in flight any more. */
  disconnected(code) {
    this.open = false;
    const last = this.lastSent;
    this.lastSent = null;
    this.inflight.clear();
    for (const timer of [...this.timers.values(), ...this.waits.values()]) clearTimeout(timer);
    this.timers.clear();
    this.waits.clear();
    const entry = last && this.outbox.get(last.opId);
    if (entry && code === 1009 && Date.now() - last.atMs <= TOO_LARGE_WITHIN_MS) this.finish(entry, TOO_LARGE);
  }

  pumpAll() {
    for (const list of new Set(this.outbox.entries.map((entry) => entry.list))) this.pump(list);
  }

  /** Sends the first op of `list` unless one of the list's is already out. */
  pump(list) {
    if (!this.open || this.inflight.has(list)) return;
    const entry = this.outbox.forList(list)[0];
    if (!entry) return;
    const frame = opFrame(entry);
    if (frameBytes(frame) > FRAME_BYTES_MAX) {
      this.finish(entry, TOO_LARGE);
      return;
    }
    this.inflight.set(list, entry.op_id);
    this.transmit(entry);
  }

  transmit(entry) {
    if (!this.sendFrame(opFrame(entry))) return;
    this.lastSent = { opId: entry.op_id, atMs: Date.now() };
    clearTimeout(this.waits.get(entry.op_id));
    this.waits.set(entry.op_id, setTimeout(() => {
      this.waits.delete(entry.op_id);
      if (this.open && this.outbox.get(entry.op_id)) this.stalled();
    }, ANSWER_TIMEOUT_MS));
  }

  /** Ops in flight or waiting for a retry that are no longer in the outbox are let go. */
  reconcile() {
    for (const [list, opId] of [...this.inflight]) {
      if (this.outbox.get(opId)) continue;
      clearTimeout(this.timers.get(opId));
      this.timers.delete(opId);
      this.release(list, opId);
    }
  }

  /** An ack or error frame with an op_id arrived. */
  answered(frame, retryable) {
    const entry = this.outbox.get(frame.op_id);
    const list = frame.list ?? entry?.list;
    if (this.lastSent?.opId === frame.op_id) this.lastSent = null;
    clearTimeout(this.waits.get(frame.op_id));
    this.waits.delete(frame.op_id);
    if (!entry) {
      // Answered already (a resend's second answer, or settled in another tab).
      this.release(list, frame.op_id);
      return;
    }
    if (retryable && RETRYABLE.has(frame.code)) {
      const tries = (this.tries.get(entry.op_id) ?? 0) + 1;
      this.tries.set(entry.op_id, tries);
      if (frame.code === 'internal' && tries >= INTERNAL_TRIES_MAX) {
        this.finish(entry, { ...frame, message: `${frame.message || 'internal error'}; gave up after ${tries} tries` });
        return;
      }
      this.inflight.set(entry.list, entry.op_id); // holds back the list's later ops
      clearTimeout(this.timers.get(entry.op_id));
      this.timers.set(entry.op_id, setTimeout(() => {
        this.timers.delete(entry.op_id);
        if (!this.outbox.get(entry.op_id)) this.release(entry.list, entry.op_id); // settled meanwhile
        else if (this.open && this.inflight.get(entry.list) === entry.op_id) this.transmit(entry);
      }, frame.retry_after_ms ?? backoffMs(tries, OP_RETRY)));
      this.retrying(entry, { ...frame, retrying: true });
      return;
    }
    this.finish(entry, frame.type === 'ack' ? null : frame, frame);
  }

  /** Ends `entry` with its outcome and sends the next op of its list. */
  finish(entry, error, frame = { op_id: entry.op_id, list: entry.list }) {
    clearTimeout(this.timers.get(entry.op_id));
    this.timers.delete(entry.op_id);
    this.tries.delete(entry.op_id);
    clearTimeout(this.waits.get(entry.op_id));
    this.waits.delete(entry.op_id);
    this.settleEntry(entry, error, frame);
    if (this.inflight.get(entry.list) === entry.op_id) this.inflight.delete(entry.list);
    this.pump(entry.list);
  }

  release(list, opId) {
    if (list === undefined || this.inflight.get(list) !== opId) return;
    this.inflight.delete(list);
    this.pump(list);
  }
}
