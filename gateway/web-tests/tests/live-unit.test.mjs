// The page's connection logic (live.js, sender.js) against a fake WebSocket, with no browser:
// resume with `since`, gap detection, tallies, resends with the same op_id until answered, no
// resend once answered, ops of a list in order (a retry holds back the later ones), bounded
// retries and growing backoffs, and ops too large to send.

import assert from 'node:assert/strict';
import { beforeEach, mock, test } from 'node:test';

import {
  FakeSocket, list, list2, ops, reset, snapshotState, start, storedOps,
} from './fakes.mjs';

beforeEach(() => reset());

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
  assert.deepEqual(storedOps(), [first.op_id, second.op_id]);
  socket().accept();
  // One op of a list at a time: the second waits for the first's outcome.
  assert.deepEqual(ops(socket().sent), [first.op_id]);

  // The connection drops before any answer: the first is sent again, with the same op id.
  socket().drop();
  mock.timers.tick(5000);
  socket().accept();
  assert.deepEqual(ops(socket().sent), [first.op_id]);

  // `busy`: resent after a backoff, same op_id; the ack then settles it and sends the next.
  socket().deliver({ type: 'error', op_id: first.op_id, list, code: 'busy', message: 'list is overloaded; retry' });
  mock.timers.tick(5000);
  assert.deepEqual(ops(socket().sent), [first.op_id, first.op_id]);
  socket().deliver({ type: 'ack', op_id: first.op_id, list, seq: 4 });
  assert.deepEqual(ops(socket().sent), [first.op_id, first.op_id, second.op_id]);
  socket().deliver({ type: 'ack', op_id: first.op_id, list, seq: 4 }); // a duplicate answer: ignored
  // A refusal that retrying cannot fix settles the op too.
  socket().deliver({ type: 'error', op_id: second.op_id, list, code: 'too_large', message: 'm' });
  assert.deepEqual(seen.outcomes, [[first.op_id, 'busy', true], [first.op_id, 'ack', false], [second.op_id, 'too_large', false]]);
  assert.deepEqual(storedOps(), []);

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

test('a tally resets the resubscribe backoff, as a delta does (a hot poll sends mostly tallies)', () => {
  const { live, socket } = start();
  live.subscribe(list);
  socket().accept();
  socket().deliver({ type: 'snapshot', list, seq: 2, state: snapshotState(2) });
  socket().deliver({ type: 'error', list, code: 'unavailable', message: 'list restarted; resubscribe with since' });
  assert.equal(live.resubscribes.get(list), 1);
  mock.timers.tick(5000);
  socket().deliver({ type: 'tally', list, seq: 3, counts: {} });
  assert.equal(live.resubscribes.has(list), false, 'the next incident starts from the first backoff');
});
