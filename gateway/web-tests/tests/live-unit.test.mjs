// The page's connection logic (live.js) against a fake WebSocket, with no browser: resume with
// `since`, gap detection, tallies, resends with the same op_id until answered, and no resend
// once answered.

import assert from 'node:assert/strict';
import { beforeEach, mock, test } from 'node:test';

class MemoryStorage {
  constructor() { this.map = new Map(); }
  getItem(key) { return this.map.has(key) ? this.map.get(key) : null; }
  setItem(key, value) { this.map.set(key, String(value)); }
  removeItem(key) { this.map.delete(key); }
}

class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    FakeSocket.all.push(this);
  }
  send(text) { this.sent.push(JSON.parse(text)); }
  close() { this.onclose?.(); }
  // Test side:
  accept() { this.onopen(); }
  drop() { this.onclose(); }
  deliver(frame) { this.onmessage({ data: JSON.stringify(frame) }); }
}

globalThis.location = { protocol: 'http:', host: 'node.test' };
globalThis.WebSocket = FakeSocket;
globalThis.localStorage = new MemoryStorage();
globalThis.fetch = async () => ({ ok: true, status: 200, text: async () => '[]' });
const { Live } = await import('../../web/live.js');

const session = { user_id: 'u1', token: 't.o.k', username: 'ann' };
const list = '11111111-1111-1111-1111-111111111111';
const snapshotState = (seq, items = []) => ({ list, seq, title: 't', owner: 'u1', visibility: 'private', poll: null, members: [{ user: 'u1', username: 'ann', role: 'owner' }], items });

function start() {
  const seen = { statuses: [], outcomes: [], listErrors: [] };
  const live = new Live(session, {
    onStatus: (status, waiting) => seen.statuses.push([status, waiting]),
    onChange: () => {},
    onOutcome: (entry, error) => seen.outcomes.push([entry.op_id, error?.code ?? 'ack', Boolean(error?.retrying)]),
    onListError: (id, error) => seen.listErrors.push([id, error.code]),
    onAuthLost: () => {},
  });
  live.start();
  return { live, seen, socket: () => FakeSocket.all.at(-1) };
}

beforeEach(() => {
  FakeSocket.all = [];
  globalThis.localStorage = new MemoryStorage();
  mock.timers.reset();
  mock.timers.enable({ apis: ['setTimeout'] });
});

test('subscribes, applies deltas and tallies, and resumes with since after a drop', () => {
  const { live, socket } = start();
  live.subscribe(list);
  socket().accept();
  assert.deepEqual(socket().sent, [{ type: 'subscribe', list, since: null }]);
  socket().deliver({ type: 'snapshot', list, seq: 1, state: snapshotState(1) });
  socket().deliver({ type: 'delta', list, from: 2, to: 3, events: [
    { seq: 2, by: 'u1', at_ms: 1, kind: 'add_item', item: 'a', text: 'milk', after: null },
    { seq: 3, by: 'u1', at_ms: 2, kind: 'set_poll', max_votes_per_user: 1, allow_change: true, open: true },
  ] });
  socket().deliver({ type: 'delta', list, from: 2, to: 3, events: [] }); // old: ignored
  socket().deliver({ type: 'tally', list, seq: 5, counts: { a: 2 } });
  const entry = live.lists.get(list);
  assert.equal(entry.seq, 5);
  assert.deepEqual(entry.state.items.map((item) => [item.text, item.votes]), [['milk', 2]]);

  // A gap: resubscribe from what is held, and apply nothing of the gapped delta.
  socket().deliver({ type: 'delta', list, from: 9, to: 9, events: [{ seq: 9, by: 'u1', at_ms: 3, kind: 'remove_item', item: 'a' }] });
  assert.deepEqual(socket().sent.at(-1), { type: 'subscribe', list, since: 5 });
  assert.equal(entry.state.items.length, 1);

  socket().drop();
  mock.timers.tick(5000);
  assert.equal(FakeSocket.all.length, 2);
  socket().accept();
  assert.deepEqual(socket().sent, [{ type: 'subscribe', list, since: 5 }]);

  // The kept copy lets a reload (a new Live) resume with since too.
  mock.timers.tick(1000);
  const reloaded = start();
  reloaded.live.subscribe(list);
  reloaded.socket().accept();
  assert.deepEqual(reloaded.socket().sent, [{ type: 'subscribe', list, since: 5 }]);
});

test('ops made offline are sent once connected, resent with the same op_id until answered, then never again', () => {
  const { live, seen, socket } = start();
  live.subscribe(list);
  const first = live.submit(list, { kind: 'add_item', text: 'tape', after: null, item: 'x' });
  const second = live.submit(list, { kind: 'add_item', text: 'marker', after: 'x', item: 'y' });
  assert.deepEqual(socket().sent, []); // not connected yet
  assert.equal(JSON.parse(localStorage.getItem('listwire.u1.outbox')).length, 2);
  socket().accept();
  const ops = (sent) => sent.filter((frame) => frame.type === 'op').map((frame) => frame.op_id);
  assert.deepEqual(ops(socket().sent), [first.op_id, second.op_id]);

  // The connection drops before any answer: both are sent again, with the same op ids.
  socket().drop();
  mock.timers.tick(5000);
  socket().accept();
  assert.deepEqual(ops(socket().sent), [first.op_id, second.op_id]);

  // `busy`: resent after a backoff, same op_id; the ack then settles it.
  socket().deliver({ type: 'error', op_id: first.op_id, list, code: 'busy', message: 'list is overloaded; retry' });
  mock.timers.tick(5000);
  assert.deepEqual(ops(socket().sent), [first.op_id, second.op_id, first.op_id]);
  socket().deliver({ type: 'ack', op_id: first.op_id, list, seq: 4 });
  socket().deliver({ type: 'ack', op_id: first.op_id, list, seq: 4 }); // a duplicate answer: ignored
  // A refusal that retrying cannot fix settles the op too.
  socket().deliver({ type: 'error', op_id: second.op_id, list, code: 'too_large', message: 'm' });
  assert.deepEqual(seen.outcomes, [[first.op_id, 'busy', true], [first.op_id, 'ack', false], [second.op_id, 'too_large', false]]);
  assert.equal(localStorage.getItem('listwire.u1.outbox'), null);

  // Nothing is resent after a later reconnect.
  socket().drop();
  mock.timers.tick(5000);
  socket().accept();
  assert.deepEqual(ops(socket().sent), []);
});

test('a revoked subscription ends; a restarted list is resubscribed', () => {
  const { live, seen, socket } = start();
  live.subscribe(list);
  socket().accept();
  socket().deliver({ type: 'snapshot', list, seq: 2, state: snapshotState(2) });
  socket().deliver({ type: 'error', list, code: 'unavailable', message: 'list restarted; resubscribe with since' });
  mock.timers.tick(5000);
  assert.deepEqual(socket().sent.at(-1), { type: 'subscribe', list, since: 2 });
  socket().deliver({ type: 'error', list, code: 'forbidden', message: 'access to this list was revoked' });
  assert.deepEqual(seen.listErrors, [[list, 'forbidden']]);
  assert.equal(live.lists.has(list), false);
});
