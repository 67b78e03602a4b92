// Ops the user made that the server has not answered yet, kept in memory and in localStorage
// so that nothing typed is lost while disconnected or across a reload. Each op gets its op_id
// once, when it is made; every send and resend uses that op_id, so the server applies it once
// (docs/PROTOCOL.md §4.5).

import { loadJson, saveJson, uuid } from './dom.js';

export class Outbox {
  constructor(storageKey) {
    this.storageKey = storageKey;
    /** @type {{op_id: string, list: string, op: object}[]} in the order made */
    this.entries = loadJson(storageKey, []).filter((entry) => entry?.op_id && entry.list && entry.op);
  }

  /** Queues `op` for `list`; returns the new entry. */
  add(list, op) {
    const entry = { op_id: uuid(), list, op };
    this.entries.push(entry);
    this.save();
    return entry;
  }

  get(opId) {
    return this.entries.find((entry) => entry.op_id === opId);
  }

  /** Drops the entry of `opId` once it has an outcome; returns it (or undefined). */
  settle(opId) {
    const entry = this.get(opId);
    if (entry) {
      this.entries = this.entries.filter((other) => other !== entry);
      this.save();
    }
    return entry;
  }

  forList(list) {
    return this.entries.filter((entry) => entry.list === list);
  }

  save() {
    saveJson(this.storageKey, this.entries.length ? this.entries : undefined);
  }
}
