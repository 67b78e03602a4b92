// The server restarted mid-session: the page shows "reconnecting", keeps what is typed
// meanwhile, and once the server is back sends it with its op_id — applied exactly once.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  addItem, Api, cleanUpAfter, itemRows, launchBrowser, restartServe, screenshot, signIn, startServe, tempDir, waitFor, waitForItems,
} from './support.mjs';

const dir = tempDir('restart');
let server;
let browser;

cleanUpAfter(() => ({ dir, browser, server }));

const count = (snapshot, text) => snapshot.items.filter((item) => item.text === text).length;

test('a restart shows reconnecting, then sends what was typed meanwhile exactly once', async () => {
  server = await startServe(dir);
  const port = server.port;
  let api = new Api(server.url);
  const ann = await api.register('ann');
  const list = await api.createList(ann, { title: 'Moving day' });
  await api.op(ann, list, { kind: 'add_item', text: 'boxes', after: null });
  browser = await launchBrowser();
  const page = await signIn(browser, server.url, ann, { hash: `#/list/${list}` });
  await waitForItems(page, ['boxes']);

  await server.kill(); // SIGKILL: a crash.
  await page.locator('#connection', { hasText: 'Reconnecting' }).waitFor();
  await addItem(page, 'tape');
  await addItem(page, 'marker');
  const boxes = itemRows(page).nth(0).locator('input.text');
  await boxes.fill('big boxes');
  await boxes.press('Enter');
  await page.locator('#connection', { hasText: 'Reconnecting… · 3 changes waiting' }).waitFor();
  assert.equal(await page.locator('ol.items > li.is-pending').count(), 3);
  await screenshot(page, 'reconnecting');

  server = await restartServe(dir, port);
  api = new Api(server.url);
  await page.locator('#connection', { hasText: /^Connected$/ }).waitFor({ timeout: 20_000 });
  await waitForItems(page, ['big boxes', 'tape', 'marker'], 'the page after the restart');
  const stored = await api.snapshot(ann, list);
  assert.deepEqual(stored.items.map((item) => item.text), ['big boxes', 'tape', 'marker']);
  assert.equal(count(stored, 'tape'), 1);

  // An op whose answer was lost (applied, but the page never heard): the page still holds it
  // and resends it with the same op_id after a reload; the server answers the original seq.
  const opId = crypto.randomUUID();
  const op = { kind: 'add_item', text: 'sent twice', after: null, item: crypto.randomUUID() };
  await api.call('POST', `/v1/lists/${list}/ops`, ann.token, { op_id: opId, op });
  const outboxKey = `listwire.${ann.user_id}.outbox`;
  await page.evaluate(([key, entry]) => localStorage.setItem(key, JSON.stringify([entry])), [outboxKey, { op_id: opId, list, op }]);
  await page.reload();
  await page.locator('#connection', { hasText: /^Connected$/ }).waitFor();
  await waitFor(() => page.evaluate((key) => localStorage.getItem(key) === null, outboxKey), 'the outbox to empty');
  await waitForItems(page, ['sent twice', 'big boxes', 'tape', 'marker'], 'the page after the resend');
  const again = await api.snapshot(ann, list);
  assert.equal(count(again, 'sent twice'), 1);
  assert.equal(again.items.length, 4);
});
