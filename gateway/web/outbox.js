// Ops the user made that the server has not answered yet, kept in memory and in localStorage
// so that nothing typed is lost while disconnected or across a reload. Each op gets its op_id
// once, when it is made; every send and resend uses that op_id, so the server applies it once
// (docs/PROTOCOL.md §4.5).
//
// Each tab owns one outbox key, `listwire.<user>.outbox.<tab id>`, that only it writes, so no
// two tabs ever read-merge-write one key (localStorage has no lock across tabs, and such a write
// can silently lose the other tab's op). An entry leaves a tab's outbox only when this tab has
// its outcome; it is never inferred to be answered because it is missing somewhere. A tab sends
// the ops of its own outbox; the others' it only shows (and counts as waiting).
//
// A tab says it is alive with a heartbeat, `listwire.<user>.outbox-alive.<tab id>` = the time,
// every HEARTBEAT_MS, removed on `pagehide`. A tab that finds an outbox whose heartbeat is gone
// or older than STALE_MS (the tab was closed, reloaded or crashed; or the older single shared
// key `listwire.<user>.outbox` of an earlier page) adopts it: it copies the entries into its own
// key first, and only once that is stored removes the orphan's key. So an op typed in a tab that
// is then closed is sent by another. Two tabs adopting the same orphan at once both send the same
// op_ids — as does a live tab whose heartbeat was only late (a throttled background tab) and the
// tab that adopted its ops; the server applies each op_id once and answers every resend with the
// original outcome (PROTOCOL.md §4.5), so that is harmless.

import { uuid } from './dom.js';
import { loadJson, saveEvicting, saveJson } from './store.js';

/** The most ops waiting at once (all tabs); past it new ops are refused until some are answered. */
export const OUTBOX_MAX = 1000;
export const HEARTBEAT_MS = 2000;
export const STALE_MS = 10_000;

const valid = (entry) => entry?.op_id && entry.list && entry.op;
/** In the order made, across tabs (`made_ms`; an older page's entries have none: first). */
const byMade = (entries) => entries.sort((a, b) => (a.made_ms ?? 0) - (b.made_ms ?? 0));

function storedKeys() {
  const keys = [];
  try {
    for (let index = 0; index < localStorage.length; index += 1) keys.push(localStorage.key(index));
  } catch {
    // Storage disabled: nothing stored.
  }
  return keys.filter(Boolean);
}

export class Outbox {
  /** `onSaved(saved)`: after every write of this tab's outbox, whether storage took it. */
  constructor(user, onSaved = () => {}, tabId = uuid()) {
    this.user = user;
    this.tabId = tabId;
    this.legacyKey = `listwire.${user}.outbox`;
    this.prefix = `${this.legacyKey}.`;
    this.alivePrefix = `listwire.${user}.outbox-alive.`;
    this.storageKey = this.prefix + tabId;
    this.aliveKey = this.alivePrefix + tabId;
    this.onSaved = onSaved;
    this.saved = true;
    /** @type {{op_id: string, list: string, op: object, made_ms: number}[]} this tab's own ops, in the order made */
    this.entries = [];
    /** The ops in other tabs' outboxes (shown and counted, not sent by this tab). */
    this.others = [];
    this.beat();
    this.refresh();
  }

  /** Whether `key` is one of this user's outbox keys or heartbeats (a `storage` event worth a look). */
  concerns(key) {
    return key === this.legacyKey || key?.startsWith(this.prefix) || key?.startsWith(this.alivePrefix);
  }

  /** Says this tab is alive; writes its outbox again if another tab took its key meanwhile. */
  beat() {
    saveJson(this.aliveKey, Date.now());
    if (this.entries.length && localStorage.getItem(this.storageKey) === null) this.write();
  }

  /** This tab goes away (pagehide, sign-out): the others may adopt its outbox at once. */
  leave() {
    saveJson(this.aliveKey, undefined);
  }

  orphaned(key) {
    if (key === this.legacyKey) return true;
    const beat = loadJson(this.alivePrefix + key.slice(this.prefix.length), null);
    return typeof beat !== 'number' || Date.now() - beat > STALE_MS;
  }

  static read(key) {
    const stored = loadJson(key, []);
    return Array.isArray(stored) ? stored.filter(valid) : [];
  }

  write() {
    this.saved = saveEvicting(this.user, this.storageKey, this.entries.length ? this.entries : undefined);
    this.onSaved(this.saved);
    return this.saved;
  }

  /**
   * Reads the other tabs' outboxes again and adopts the orphaned ones; returns whether this
   * tab's own outbox gained entries.
   */
  refresh() {
    const own = new Set(this.entries.map((entry) => entry.op_id));
    const others = [];
    let adopted = false;
    for (const key of storedKeys()) {
      if (key === this.storageKey || !(key === this.legacyKey || key.startsWith(this.prefix))) continue;
      const entries = Outbox.read(key);
      if (!this.orphaned(key)) {
        others.push(...entries);
        continue;
      }
      const fresh = entries.filter((entry) => !own.has(entry.op_id));
      for (const entry of fresh) own.add(entry.op_id);
      // In the order made: an op typed in one tab may depend on (come `after`) one typed earlier
      // in another, so the adopted ops go before the later ones of this tab.
      if (fresh.length) this.entries = byMade([...this.entries, ...fresh]);
      adopted ||= fresh.length > 0;
      // Copied into this tab's key first; the orphan goes only once that is stored.
      if (this.write()) {
        saveJson(key, undefined);
        const alive = this.alivePrefix + key.slice(this.prefix.length);
        if (key !== this.legacyKey) saveJson(alive, undefined);
      }
    }
    this.others = others.filter((entry) => !own.has(entry.op_id) && own.add(entry.op_id));
    if (!this.saved) this.write();
    return adopted;
  }

  /** Every op waiting, this tab's and the other tabs' (each once), in the order made. */
  all() {
    return byMade([...this.entries, ...this.others]);
  }

  get waiting() {
    return this.entries.length + this.others.length;
  }

  /** Queues `op` for `list`; returns the new entry, or null when the outbox is full. */
  add(list, op) {
    if (this.waiting >= OUTBOX_MAX) return null;
    const entry = { op_id: uuid(), list, op, made_ms: Date.now() };
    this.entries.push(entry);
    this.write();
    return entry;
  }

  get(opId) {
    return this.entries.find((entry) => entry.op_id === opId);
  }

  /** Drops the entry of `opId` once this tab has its outcome; returns it (or undefined). */
  settle(opId) {
    const entry = this.get(opId);
    if (!entry) return undefined;
    this.entries = this.entries.filter((other) => other.op_id !== opId);
    this.write();
    return entry;
  }

  /** This tab's own ops of `list` (the ones it sends), in the order made. */
  forList(list) {
    return this.entries.filter((entry) => entry.list === list);
  }

  /** Every op of `list` waiting, in any tab (what the page shows as sending). */
  pendingFor(list) {
    return this.all().filter((entry) => entry.list === list);
  }
}
