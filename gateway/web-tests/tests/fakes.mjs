// Fakes for the no-browser tests of the page's connection logic: localStorage (with an optional
// quota), a WebSocket the test drives, and a Live started against them.

import { mock } from 'node:test';

export class MemoryStorage {
  /** `quota`: the most characters (keys and values) it holds; past it setItem throws, as browsers do. */
  constructor(quota = Infinity) {
    this.map = new Map();
    this.quota = quota;
  }
  get length() { return this.map.size; }
  key(index) { return [...this.map.keys()][index] ?? null; }
  getItem(key) { return this.map.has(key) ? this.map.get(key) : null; }
  setItem(key, value) {
    const text = String(value);
    let used = key.length + text.length;
    for (const [other, stored] of this.map) if (other !== key) used += other.length + stored.length;
    if (used > this.quota) throw new Error('QuotaExceededError');
    this.map.set(key, text);
  }
  removeItem(key) { this.map.delete(key); }
}

export class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    FakeSocket.all.push(this);
  }
  send(text) { this.sent.push(JSON.parse(text)); }
  close(code = 1000) { this.onclose?.({ code }); }
  // Test side:
  accept() { this.onopen(); }
  drop(code = 1006) { this.onclose({ code }); }
  deliver(frame) { this.onmessage({ data: JSON.stringify(frame) }); }
}

globalThis.location = { protocol: 'http:', host: 'node.test' };
globalThis.WebSocket = FakeSocket;
globalThis.localStorage = new MemoryStorage();
globalThis.fetch = async () => ({ ok: true, status: 200, text: async () => '[]' });
export const { Live } = await import('../../web/live.js');

export const session = { user_id: 'u1', token: 't.o.k', username: 'ann' };
export const list = '11111111-1111-1111-1111-111111111111';
export const list2 = '22222222-2222-2222-2222-222222222222';
export const snapshotState = (seq, items = [], id = list) => ({ list: id, seq, title: 't', owner: 'u1', visibility: 'private', poll: null, members: [{ user: 'u1', username: 'ann', role: 'owner' }], items });

/** A Live for `session`, recording what it tells the page; `socket()` is its latest socket. */
export function start() {
  const seen = { statuses: [], outcomes: [], listErrors: [], storage: [] };
  const live = new Live(session, {
    onStatus: (status, waiting) => seen.statuses.push([status, waiting]),
    onChange: () => {},
    onOutcome: (entry, error) => seen.outcomes.push([entry.op_id, error?.code ?? 'ack', Boolean(error?.retrying)]),
    onListError: (id, error) => seen.listErrors.push([id, error.code]),
    onAuthLost: () => {},
    onStorage: (saved) => seen.storage.push(saved),
  });
  live.start();
  return { live, seen, socket: () => live.socket };
}

/** The op ids in every stored outbox of user u1 (each tab's, and an older page's shared one). */
export function storedOps() {
  const keys = [...localStorage.map.keys()].filter((key) => key === 'listwire.u1.outbox' || key.startsWith('listwire.u1.outbox.'));
  return keys.flatMap((key) => JSON.parse(localStorage.getItem(key)).map((entry) => entry.op_id));
}

/** The op ids of the op frames in `sent`. */
export const ops = (sent) => sent.filter((frame) => frame.type === 'op').map((frame) => frame.op_id);

/** Fresh fakes and mocked timers (and Math.random, so backoffs are their ceilings). */
export function reset(quota = Infinity) {
  FakeSocket.all = [];
  globalThis.localStorage = new MemoryStorage(quota);
  mock.restoreAll();
  mock.timers.reset();
  mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  mock.method(Math, 'random', () => 1);
}
