// Ops the user made that the server has not answered yet, kept in memory and in localStorage
// so that nothing typed is lost while disconnected or across a reload. Each op gets its op_id
// once, when it is made; every send and resend uses that op_id, so the server applies it once
// (docs/PROTOCOL.md §4.5).
//
// Every tab of one user shares the stored outbox: each change reads the stored entries, merges
// this tab's own by op_id and writes the result, and a `storage` event (another tab's write)
// makes the tab read it again. So an op typed in a tab that is then closed is still sent by the
// others, and two tabs never overwrite each other's ops. An op sent by two tabs is applied once
// (same op_id).

import { uuid } from './dom.js';
import { loadJson, saveEvicting } from './store.js';

/** The most ops waiting at once; past it new ops are refused until some are answered. */
export const OUTBOX_MAX = 1000;

const valid = (entry) => entry?.op_id && entry.list && entry.op;

export class Outbox {
  /** `onSaved(saved)`: after every write, whether storage took it. */
  constructor(user, onSaved = () => {}) {
    this.user = user;
    this.storageKey = `listwire.${user}.outbox`;
    this.onSaved = onSaved;
    /** This tab's own unanswered ops: op id → {entry, stored: written to storage at least once}. */
    this.own = new Map();
    this.saved = true;
    /** @type {{op_id: string, list: string, op: object}[]} in the order made */
    this.entries = this.merge(this.read());
  }

  read() {
    const stored = loadJson(this.storageKey, []);
    return Array.isArray(stored) ? stored.filter(valid) : [];
  }

  /**
   * The stored entries plus this tab's own that storage lacks: an own op that was stored once
   * and is gone was answered in another tab; one never stored (storage full) is kept.
   */
  merge(stored) {
    const ids = new Set(stored.map((entry) => entry.op_id));
    for (const [opId, own] of this.own) {
      if (ids.has(opId)) continue;
      if (own.stored) this.own.delete(opId);
      else stored.push(own.entry);
    }
    return stored;
  }

  write(entries) {
    this.saved = saveEvicting(this.user, this.storageKey, entries.length ? entries : undefined);
    if (this.saved) for (const own of this.own.values()) own.stored = true;
    this.entries = entries;
    this.onSaved(this.saved);
  }

  /** Queues `op` for `list`; returns the new entry, or null when the outbox is full. */
  add(list, op) {
    if (this.entries.length >= OUTBOX_MAX) return null;
    const entry = { op_id: uuid(), list, op };
    this.own.set(entry.op_id, { entry, stored: false });
    this.write(this.merge(this.read()));
    return entry;
  }

  get(opId) {
    return this.entries.find((entry) => entry.op_id === opId);
  }

  /** Drops the entry of `opId` once it has an outcome; returns it (or undefined). */
  settle(opId) {
    const entry = this.get(opId);
    this.own.delete(opId);
    if (entry) this.write(this.merge(this.read()).filter((other) => other.op_id !== opId));
    return entry;
  }

  /** Reads the stored outbox again (another tab changed it). */
  refresh() {
    this.entries = this.merge(this.read());
    if (!this.saved) this.write(this.entries);
  }

  forList(list) {
    return this.entries.filter((entry) => entry.list === list);
  }
}
