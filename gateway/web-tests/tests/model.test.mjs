// Unit tests of the page's pure modules (no browser): applying events, the optimistic view,
// and a message for every error code of the protocol.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { CODES, describe, RETRYABLE } from '../../web/errors.js';
import { applyEvent, applyTally, describeEvent, pollAccepting, roleOf, withPending } from '../../web/model.js';
import { REPO } from './support.mjs';

const ann = 'a0000000-0000-0000-0000-000000000001';
const bob = 'b0000000-0000-0000-0000-000000000002';

function state() {
  return {
    list: 'l', seq: 1, title: 'groceries', owner: ann, visibility: 'private', poll: null, items: [],
    members: [{ user: ann, username: 'ann', role: 'owner' }],
  };
}

const event = (seq, kind, fields) => ({ seq, by: ann, at_ms: 1000 + seq, kind, ...fields });

test('events apply to a snapshot as the protocol says', () => {
  const list = state();
  applyEvent(list, event(2, 'add_item', { item: 'm', text: 'milk', after: null }));
  applyEvent(list, event(3, 'add_item', { item: 'e', text: 'eggs', after: 'm' }));
  applyEvent(list, event(4, 'add_item', { item: 'b', text: 'bread', after: null }));
  assert.deepEqual(list.items.map((item) => item.id), ['b', 'm', 'e']);
  applyEvent(list, event(5, 'move_item', { item: 'b', after: 'e' }));
  applyEvent(list, event(6, 'set_done', { item: 'm', done: true }));
  applyEvent(list, event(7, 'edit_item', { item: 'e', text: 'brown eggs' }));
  applyEvent(list, event(8, 'attach_media', { item: 'e', url: 'https://x/e.jpg', media_type: 'image' }));
  applyEvent(list, event(9, 'share', { user: bob, username: 'bob', role: 'editor' }));
  applyEvent(list, event(10, 'set_poll', { max_votes_per_user: 2, allow_change: true, open: true }));
  applyEvent(list, event(11, 'vote', { item: 'm', votes: 1 }));
  applyEvent(list, event(12, 'remove_item', { item: 'b' }));
  applyEvent(list, event(13, 'something_new', { item: 'm' }));
  assert.equal(list.seq, 13);
  assert.deepEqual(list.items.map((item) => [item.id, item.text, item.done, item.votes]), [['m', 'milk', true, 1], ['e', 'brown eggs', false, 0]]);
  assert.deepEqual(list.items[1].media, { url: 'https://x/e.jpg', media_type: 'image' });
  assert.equal(list.items[1].updated_at_ms, 1008);
  assert.equal(roleOf(list, bob), 'editor');
  applyTally(list, { m: 5, e: 2 });
  assert.deepEqual(list.items.map((item) => item.votes), [5, 2]);
  applyEvent(list, event(14, 'unshare', { user: bob, username: 'bob' }));
  assert.equal(roleOf(list, bob), null);
  applyEvent(list, event(15, 'set_visibility', { visibility: 'public' }));
  assert.equal(roleOf(list, bob), 'public');
});

test('pending ops show on a copy, marked, and leave the state alone', () => {
  const list = state();
  applyEvent(list, event(2, 'add_item', { item: 'm', text: 'milk', after: null }));
  const pending = [
    { op_id: '1', list: 'l', op: { kind: 'add_item', item: 'n', text: 'new', after: 'm' } },
    { op_id: '2', list: 'l', op: { kind: 'vote', item: 'm' } },
  ];
  const view = withPending(list, pending, ann);
  assert.deepEqual(view.items.map((item) => [item.id, Boolean(item.pending), item.votes]), [['m', false, 0], ['n', true, 0]]);
  assert.equal(list.items.length, 1);
});

test('who changed what reads well', () => {
  const list = state();
  applyEvent(list, event(2, 'add_item', { item: 'm', text: 'milk', after: null }));
  applyEvent(list, event(3, 'share', { user: bob, username: 'bob', role: 'editor' }));
  assert.equal(describeEvent(list, { ...event(4, 'set_done', { item: 'm', done: true }), by: bob }, ann), 'bob marked “milk” done');
  assert.equal(describeEvent(list, event(4, 'remove_item', { item: 'm' }), ann), 'you removed “milk”');
  assert.equal(describeEvent(list, { ...event(4, 'vote', { item: 'm' }), by: 'c' }, ann), 'someone voted for “milk”');
});

test('a poll takes votes while open and before its close time', () => {
  assert.equal(pollAccepting(null), false);
  assert.equal(pollAccepting({ open: true }), true);
  assert.equal(pollAccepting({ open: false }), false);
  assert.equal(pollAccepting({ open: true, close_at_ms: 10 }, 9), true);
  assert.equal(pollAccepting({ open: true, close_at_ms: 10 }, 10), false);
});

test('every error code of the protocol has its own message', () => {
  const protocol = readFileSync(path.join(REPO, 'docs/PROTOCOL.md'), 'utf8');
  const table = protocol.slice(protocol.indexOf('## 9. Error codes'), protocol.indexOf('## 10.'));
  const codes = [...table.matchAll(/^\| `([a-z_]+)` \|/gm)].map((match) => match[1]);
  assert.ok(codes.length >= 11, `found the codes ${codes}`);
  for (const code of codes) {
    assert.ok(CODES.includes(code), `no message for ${code}`);
    assert.doesNotMatch(describe(code, 'm'), /Unexpected/);
  }
  for (const code of ['busy', 'moved', 'unavailable', 'internal', 'rate_limited']) assert.ok(RETRYABLE.has(code));
  for (const code of ['invalid', 'forbidden', 'not_found', 'too_large', 'conflict']) assert.ok(!RETRYABLE.has(code));
});

test('the poll page words the vote limit once, without doubled parentheses', async () => {
  const { outcomeText } = await import('../../web/view-poll.js');
  const text = outcomeText('vote', { code: 'conflict', message: 'vote limit reached (1 per user)' });
  assert.equal(text, 'You have used all your votes (1 per person).');
  assert.equal(outcomeText('vote', null), 'Your vote counted.');
  assert.equal(outcomeText('vote', { code: 'conflict', message: 'already voted for this item' }), 'Your vote was already counted.');
});
