// The outbox's sending rules (sender.js, outbox.js, store.js) against a fake WebSocket and a
// fake localStorage, with no browser: ops of a list in order while one waits for a retry,
// `internal` retried a bounded number of times, growing backoffs, ops too large to send (and
// drops that are not), an answer that never comes, two tabs each with its own outbox (adopting
// a closed or crashed tab's), and a full storage.

import assert from 'node:assert/strict';
import { beforeEach, mock, test } from 'node:test';
import { FakeSocket, list, list2, ops, reset, snapshotState, start, storedOps } from './fakes.mjs';

const { ANSWER_TIMEOUT_MS, INTERNAL_TRIES_MAX, Sender } = await import('../../web/sender.js');
const { Outbox, STALE_MS } = await import('../../web/outbox.js');
const { CACHE_MAX } = await import('../../web/store.js');

beforeEach(() => reset());

const outboxKey = 'listwire.u1.outbox'; // the one shared outbox of an older page
const stored = storedOps;
const allOps = () => FakeSocket.all.flatMap((socket) => ops(socket.sent));

test('an op waiting for its retry holds back the later ops of its list, not those of others', () => {
  const { live, socket } = start();
  socket().accept();
  const add = live.submit(list, { kind: 'add_item', text: 'x', after: null, item: 'x' });
  const edit = live.submit(list, { kind: 'edit_item', item: 'x', text: 'y' });
  const other = live.submit(list2, { kind: 'add_item', text: 'z', after: null, item: 'z' });
  assert.deepEqual(ops(socket().sent), [add.op_id, other.op_id]);
  for (const code of ['busy', 'moved', 'rate_limited', 'unavailable']) {
    socket().sent = [];
    socket().deliver({ type: 'error', op_id: add.op_id, list, code, message: 'retry', retry_after_ms: code === 'rate_limited' ? 50 : undefined });
    mock.timers.tick(3000); // (all four within the answer timeout of the other list's op)
    // Only the add is resent: the edit of the item it adds waits.
    assert.deepEqual(ops(socket().sent), [add.op_id], code);
  }
  socket().deliver({ type: 'ack', op_id: other.op_id, list: list2, seq: 2 });
  assert.deepEqual(ops(socket().sent), [add.op_id]);
  socket().deliver({ type: 'ack', op_id: add.op_id, list, seq: 2 });
  assert.deepEqual(ops(socket().sent), [add.op_id, edit.op_id]);
  // A drop while waiting for a retry: after the reconnect the same op goes first again.
  socket().deliver({ type: 'error', op_id: edit.op_id, list, code: 'busy', message: 'retry' });
  socket().drop();
  mock.timers.tick(20_000);
  socket().accept();
  assert.deepEqual(ops(socket().sent), [edit.op_id]);
});

test('internal is retried a bounded number of times, then dropped with a message', () => {
  const { live, seen, socket } = start();
  socket().accept();
  const failing = live.submit(list, { kind: 'edit_item', item: 'x', text: 'y' });
  const next = live.submit(list, { kind: 'edit_item', item: 'x', text: 'z' });
  for (let tries = 1; tries < INTERNAL_TRIES_MAX; tries += 1) {
    socket().deliver({ type: 'error', op_id: failing.op_id, list, code: 'internal', message: 'internal error' });
    mock.timers.tick(10_000);
  }
  assert.equal(ops(socket().sent).filter((id) => id === failing.op_id).length, INTERNAL_TRIES_MAX);
  socket().deliver({ type: 'error', op_id: failing.op_id, list, code: 'internal', message: 'internal error' });
  assert.deepEqual(seen.outcomes.at(-1), [failing.op_id, 'internal', false]);
  assert.deepEqual(stored(), [next.op_id]);
  assert.equal(ops(socket().sent).at(-1), next.op_id);
  mock.timers.tick(60_000);
  assert.equal(allOps().filter((id) => id === failing.op_id).length, INTERNAL_TRIES_MAX);
});

/** The delays after which `act` is seen again, for each of `rounds` rounds of `trigger`. */
function delays(rounds, trigger, seenAgain) {
  const found = [];
  for (let round = 0; round < rounds; round += 1) {
    trigger();
    let waited = 0;
    while (!seenAgain() && waited < 60_000) {
      mock.timers.tick(50);
      waited += 50;
    }
    found.push(waited);
  }
  return found;
}

test('resubscribes and reconnects back off exponentially, with a cap', () => {
  const { live, socket } = start();
  live.subscribe(list);
  socket().accept();
  socket().deliver({ type: 'snapshot', list, seq: 1, state: snapshotState(1) });
  const subscribes = () => socket().sent.filter((frame) => frame.type === 'subscribe').length;
  let before = subscribes();
  const resubscribed = () => subscribes() > before;
  const waits = delays(9, () => {
    before = subscribes();
    socket().deliver({ type: 'error', list, code: 'unavailable', message: 'list restarted; resubscribe with since' });
  }, resubscribed);
  assert.deepEqual(waits, [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
  // A snapshot starts the backoff over.
  socket().deliver({ type: 'snapshot', list, seq: 1, state: snapshotState(1) });
  assert.deepEqual(delays(1, () => {
    before = subscribes();
    socket().deliver({ type: 'error', list, code: 'busy', message: 'retry' });
  }, resubscribed), [100]);

  let sockets = FakeSocket.all.length;
  const reconnects = delays(7, () => {
    sockets = FakeSocket.all.length;
    FakeSocket.all.at(-1).drop();
  }, () => FakeSocket.all.length > sockets);
  assert.deepEqual(reconnects, [200, 400, 800, 1600, 3200, 5000, 5000]);
});

test('an op too large to send is refused before it is queued', () => {
  const { live, seen, socket } = start();
  socket().accept();
  const entry = live.submit(list, { kind: 'attach_media', item: 'x', url: `https://example.com/${'x'.repeat(70_000)}`, media_type: 'file' });
  assert.equal(entry, null);
  assert.deepEqual(seen.outcomes, [[null, 'too_large', false]]);
  assert.deepEqual(ops(socket().sent), []);
  assert.equal(localStorage.getItem(outboxKey), null);
});

test('a field over the server’s byte limit (UTF-8, not characters) is refused before it is queued', () => {
  const { live, seen, socket } = start();
  socket().accept();
  // 2 049 characters of 2 bytes: under the input's maxlength of 4 096, over 4 096 bytes.
  assert.equal(live.submit(list, { kind: 'add_item', text: 'é'.repeat(2049), after: null, item: 'a' }), null);
  assert.equal(live.submit(list, { kind: 'edit_item', item: 'a', text: '€'.repeat(1366) }), null);
  assert.equal(live.submit(list, { kind: 'attach_media', item: 'a', url: `https://e.com/${'ü'.repeat(1020)}`, media_type: 'file' }), null);
  assert.equal(live.submit(list, { kind: 'rename', title: 'x'.repeat(201) }), null);
  assert.deepEqual(seen.outcomes, Array(4).fill([null, 'too_large', false]));
  assert.deepEqual(stored(), []);
  // At the limits they are queued and sent.
  const ok = [
    live.submit(list, { kind: 'add_item', text: 'é'.repeat(2048), after: null, item: 'a' }),
    live.submit(list, { kind: 'attach_media', item: 'a', url: `https://e.com/${'ü'.repeat(1017)}`, media_type: 'file' }),
    live.submit(list, { kind: 'rename', title: '😀'.repeat(200) }),
  ];
  assert.ok(ok.every(Boolean));
  assert.deepEqual(stored(), ok.map((entry) => entry.op_id));
});

test('an entry the server closes the connection with 1009 for is dropped; the next one goes', () => {
  // Entries from an older page (its one shared outbox key): one huge (over the limit), one the
  // server closes 1009 for, one after which the connection drops each time, and a good one.
  const entry = (id, op) => ({ op_id: id, list, op });
  localStorage.setItem(outboxKey, JSON.stringify([
    entry('huge', { kind: 'attach_media', item: 'x', url: `https://e.com/${'x'.repeat(2_000_000)}`, media_type: 'file' }),
    entry('closes', { kind: 'edit_item', item: 'x', text: 'a' }),
    entry('drops', { kind: 'edit_item', item: 'x', text: 'b' }),
    entry('good', { kind: 'edit_item', item: 'x', text: 'c' }),
  ]));
  const { seen, socket } = start();
  assert.equal(localStorage.getItem(outboxKey), null); // adopted into the tab's own outbox
  socket().accept();
  assert.deepEqual(seen.outcomes, [['huge', 'too_large', false]]);
  assert.deepEqual(ops(socket().sent), ['closes']);
  socket().drop(1009);
  assert.deepEqual(seen.outcomes.at(-1), ['closes', 'too_large', false]);
  // Drops right after the send (a flapping network, a rolling restart) are not held against it.
  for (const code of [1006, 1001, 1013, 1006, 1001]) {
    mock.timers.tick(20_000);
    socket().accept();
    assert.deepEqual(ops(socket().sent), ['drops']);
    mock.timers.tick(100);
    socket().drop(code);
  }
  assert.deepEqual(seen.outcomes.at(-1), ['closes', 'too_large', false]);
  mock.timers.tick(20_000);
  socket().accept();
  socket().deliver({ type: 'ack', op_id: 'drops', list, seq: 2 });
  assert.deepEqual(ops(socket().sent), ['drops', 'good']);
  // A 1009 long after the send is not held against the op either.
  mock.timers.tick(10_000);
  socket().drop(1009);
  mock.timers.tick(20_000);
  socket().accept();
  assert.deepEqual(stored(), ['good']);
  assert.deepEqual(ops(socket().sent), ['good']);
});

test('closes during a rolling restart never drop an op typed offline (suspect.mjs)', () => {
  const { live, seen, socket } = start();
  const milk = live.submit(list, { kind: 'add_item', text: 'milk', after: null, item: 'm' });
  for (let round = 0; round < 3; round += 1) {
    socket().accept(); // the op is sent …
    socket().drop(1001); // … and the node going away closes at once
    mock.timers.tick(6000);
  }
  assert.deepEqual(seen.outcomes, []);
  assert.deepEqual(stored(), [milk.op_id]);
  socket().accept();
  assert.deepEqual(ops(socket().sent), [milk.op_id]);
});

test('an op with no answer in time closes the connection; the reconnect resends it with its op_id', () => {
  const { live, seen, socket } = start();
  live.subscribe(list);
  socket().accept();
  const first = socket();
  const add = live.submit(list, { kind: 'add_item', text: 'x', after: null, item: 'x' });
  // A retryable answer is an answer: the wait starts again with the resend.
  first.deliver({ type: 'error', op_id: add.op_id, list, code: 'busy', message: 'retry' });
  mock.timers.tick(10_000);
  assert.deepEqual(ops(first.sent), [add.op_id, add.op_id]);
  mock.timers.tick(ANSWER_TIMEOUT_MS - 1000);
  assert.equal(socket(), first, 'still waiting');
  mock.timers.tick(1000);
  assert.notEqual(socket(), first, 'the silent connection was given up');
  mock.timers.tick(5000);
  socket().accept();
  assert.deepEqual(socket().sent, [{ type: 'subscribe', list, since: null }, { type: 'op', list, op_id: add.op_id, op: add.op }]);
  socket().deliver({ type: 'ack', op_id: add.op_id, list, seq: 2 });
  mock.timers.tick(60_000);
  assert.equal(FakeSocket.all.length, 2, 'an answered op sets off nothing');
  assert.deepEqual(seen.outcomes.map(([, code]) => code), ['busy', 'ack']);
});

test('a retry timer for an op no longer in the outbox lets its list go on (stuck.mjs)', () => {
  // Two tabs, as the reviewer's reproduction: tab B hears of tab A's op, A gets its ack.
  const a = start();
  a.socket().accept();
  const b = start();
  b.socket().accept();
  const x1 = a.live.submit(list, { kind: 'add_item', text: 'one', after: null, item: '1' });
  b.live.outboxChanged();
  b.socket().deliver({ type: 'error', op_id: x1.op_id, list, code: 'busy', message: 'busy' });
  a.socket().deliver({ type: 'ack', op_id: x1.op_id, list, seq: 2 });
  b.live.outboxChanged();
  a.live.stop();
  mock.timers.tick(300);
  const x2 = b.live.submit(list, { kind: 'add_item', text: 'two', after: '1', item: '2' });
  mock.timers.tick(30_000);
  assert.ok(allOps().includes(x2.op_id), 'tab B sent its own op');

  // The sender alone, with an outbox an op leaves behind its back: the retry timer releases it.
  const entries = [{ op_id: 'p', list, op: {} }, { op_id: 'q', list, op: {} }];
  const outbox = { get entries() { return entries; }, get: (id) => entries.find((e) => e.op_id === id), forList: () => entries };
  const sent = [];
  const sender = new Sender(outbox, { send: (frame) => sent.push(frame.op_id), settle: () => {}, retrying: () => {} });
  sender.connected();
  sender.answered({ type: 'error', op_id: 'p', list, code: 'busy' }, true);
  entries.shift(); // p settled elsewhere
  mock.timers.tick(10_000);
  assert.deepEqual(sent, ['p', 'q']);
  // … and so does reconcile (what an outbox change calls) for an op in flight that is gone.
  entries.shift();
  entries.push({ op_id: 'r', list, op: {} });
  sender.reconcile();
  assert.deepEqual(sent, ['p', 'q', 'r']);
});

test('two tabs writing at once lose no op (race.mjs: no read-merge-write of a shared key)', () => {
  const A = new Outbox('u1');
  const B = new Outbox('u1');
  // Tab B reads the stored outboxes before tab A's write reaches it.
  const snapshot = new Map(localStorage.map);
  const x = A.add(list, { kind: 'add_item', text: 'typed in A' });
  const real = localStorage.getItem.bind(localStorage);
  localStorage.getItem = (key) => (key.includes('.outbox') ? snapshot.get(key) ?? null : real(key));
  const y = B.add(list, { kind: 'add_item', text: 'typed in B' });
  localStorage.getItem = real;
  A.refresh();
  B.refresh();
  assert.deepEqual(stored().sort(), [x.op_id, y.op_id].sort());
  assert.ok(A.get(x.op_id), 'A still sends its op');
  assert.deepEqual(A.all().map((e) => e.op_id), [x.op_id, y.op_id]);
});

test('each tab sends its own ops and shows the others’; a closed tab’s are adopted and sent', () => {
  const tab1 = start();
  const tab2 = start();
  const a = tab1.live.submit(list, { kind: 'add_item', text: 'a', after: null, item: 'a' });
  const b = tab2.live.submit(list, { kind: 'add_item', text: 'b', after: null, item: 'b' });
  assert.deepEqual(stored(), [a.op_id, b.op_id]);
  // Tab 1 hears of tab 2's op (a storage event): it shows it, and sends only its own.
  tab1.live.outboxChanged();
  assert.deepEqual(tab1.live.pending(list).map((e) => e.op_id), [a.op_id, b.op_id]);
  assert.deepEqual(tab1.seen.statuses.at(-1), ['connecting', 2]);
  tab1.socket().accept();
  tab1.socket().deliver({ type: 'ack', op_id: a.op_id, list, seq: 2 });
  assert.deepEqual(ops(tab1.socket().sent), [a.op_id]);
  assert.deepEqual(stored(), [b.op_id]);
  // Tab 2 makes another op without having heard: nothing of tab 1's comes back, none is lost.
  const c = tab2.live.submit(list, { kind: 'add_item', text: 'c', after: 'b', item: 'c' });
  assert.deepEqual(stored(), [b.op_id, c.op_id]);
  // Tab 2 is closed (pagehide removes its heartbeat): tab 1 adopts its ops and sends them.
  tab2.live.outbox.leave();
  tab1.live.outboxChanged();
  assert.deepEqual(ops(tab1.socket().sent), [a.op_id, b.op_id]);
  tab1.socket().deliver({ type: 'ack', op_id: b.op_id, list, seq: 3 });
  tab1.socket().deliver({ type: 'ack', op_id: c.op_id, list, seq: 4 });
  assert.deepEqual(ops(tab1.socket().sent), [a.op_id, b.op_id, c.op_id]);
  assert.deepEqual(stored(), []);
});

test('adopted ops are sent in the order made: one typed in another tab may come after them', () => {
  const tab1 = start();
  const tab2 = start();
  const a = tab1.live.submit(list, { kind: 'add_item', text: 'a', after: null, item: 'a' });
  mock.timers.tick(10);
  tab2.live.outboxChanged(); // tab 2 shows tab 1's item, and adds after it
  const b = tab2.live.submit(list, { kind: 'add_item', text: 'b', after: 'a', item: 'b' });
  assert.deepEqual(tab2.live.pending(list).map((e) => e.op_id), [a.op_id, b.op_id]);
  tab1.live.outbox.leave(); // tab 1 is closed
  tab2.live.outboxChanged();
  tab2.socket().accept();
  assert.deepEqual(ops(tab2.socket().sent), [a.op_id]);
  tab2.socket().deliver({ type: 'ack', op_id: a.op_id, list, seq: 2 });
  assert.deepEqual(ops(tab2.socket().sent), [a.op_id, b.op_id]);
});

test('a crashed tab’s outbox (its heartbeat stale) is adopted by a live tab', () => {
  const tab1 = start();
  const tab2 = start();
  tab1.socket().accept();
  const b = tab2.live.submit(list, { kind: 'add_item', text: 'b', after: null, item: 'b' });
  clearTimeout(tab2.live.heartbeat); // tab 2 crashes: no pagehide, no more heartbeats
  tab2.live.stopped = true;
  mock.timers.tick(STALE_MS - 2000);
  assert.deepEqual(ops(tab1.socket().sent), [], 'a late heartbeat is not yet a dead tab');
  mock.timers.tick(4000);
  assert.deepEqual(ops(tab1.socket().sent), [b.op_id]);
  assert.deepEqual(Object.keys(Object.fromEntries(localStorage.map)).filter((key) => key.includes(tab2.live.outbox.tabId)), []);
});

test('a tab whose ops another tab adopted (its heartbeat was late) still hears its own outcome', () => {
  const tab1 = start();
  const tab2 = start();
  tab1.socket().accept();
  tab2.socket().accept();
  const vote = tab1.live.submit(list, { kind: 'vote', item: 'x' });
  assert.deepEqual(ops(tab1.socket().sent), [vote.op_id]);
  // Tab 1's heartbeat looks stale to tab 2 (a throttled background tab): tab 2 adopts and sends.
  localStorage.setItem(tab1.live.outbox.aliveKey, String(Date.now() - STALE_MS - 1));
  tab2.live.outboxChanged();
  assert.deepEqual(ops(tab2.socket().sent), [vote.op_id]);
  tab2.socket().deliver({ type: 'ack', op_id: vote.op_id, list, seq: 2 });
  // Tab 1 never takes an op for answered because it is gone from storage: it waits for its own
  // answer (the server answers the same op_id with the original ack), so its page learns it.
  assert.deepEqual(tab1.live.pending(list).map((e) => e.op_id), [vote.op_id]);
  tab1.socket().deliver({ type: 'ack', op_id: vote.op_id, list, seq: 2 });
  assert.deepEqual(tab1.seen.outcomes, [[vote.op_id, 'ack', false]]);
  assert.deepEqual(tab2.seen.outcomes, [[vote.op_id, 'ack', false]]);
  assert.deepEqual(stored(), []);
});

test('a full storage evicts copies of lists for the outbox, and says when even that fails', () => {
  reset(40_000);
  const { live, seen, socket } = start();
  socket().accept();
  const items = (n) => Array.from({ length: n }, (_, index) => ({ id: `i${index}`, text: 'x'.repeat(100), done: false, media: null, votes: 0, created_by: 'u1', updated_at_ms: 0 }));
  const lists = ['a', 'b', 'c'].map((letter) => `${letter.repeat(8)}-0000-0000-0000-000000000000`);
  for (const id of lists) {
    live.subscribe(id);
    socket().deliver({ type: 'snapshot', list: id, seq: 1, state: snapshotState(1, items(100), id) });
    mock.timers.tick(1000);
  }
  const cached = () => lists.filter((id) => localStorage.getItem(`listwire.u1.list.${id}`) !== null);
  assert.deepEqual(cached(), lists.slice(1)); // saving the third evicted the first
  // Ops of the largest item text the server takes (4096 bytes), ~4 KB each in storage.
  const add = (letter, index) => live.submit(list, { kind: 'add_item', text: letter.repeat(4000), after: null, item: `${letter}${index}` });
  const small = [0, 1, 2, 3].map((index) => add('y', index));
  assert.deepEqual(stored(), small.map((entry) => entry.op_id));
  assert.deepEqual(cached(), lists.slice(2)); // the oldest copy made room
  assert.equal(seen.storage.at(-1), true);
  const big = [0, 1, 2, 3, 4, 5, 6, 7].map((index) => add('z', index));
  assert.deepEqual(cached(), []);
  assert.equal(seen.storage.at(-1), false); // the page warns: not saved on this device
  assert.deepEqual(live.pending(list).map((pending) => pending.op_id), [...small, ...big].map((entry) => entry.op_id));
  for (const entry of big) socket().deliver({ type: 'ack', op_id: entry.op_id, list, seq: 3 });
  assert.equal(seen.storage.at(-1), true);
  assert.deepEqual(stored(), small.map((entry) => entry.op_id));
});

test('at most CACHE_MAX copies of lists are kept, the least recently saved evicted', () => {
  const { live, socket } = start();
  socket().accept();
  const ids = Array.from({ length: CACHE_MAX + 5 }, (_, index) => `${String(index).padStart(8, '0')}-0000-0000-0000-000000000000`);
  for (const id of ids) {
    live.subscribe(id);
    socket().deliver({ type: 'snapshot', list: id, seq: 1, state: snapshotState(1, [], id) });
    mock.timers.tick(1000);
  }
  const kept = ids.filter((id) => localStorage.getItem(`listwire.u1.list.${id}`) !== null);
  assert.deepEqual(kept, ids.slice(5));
});
