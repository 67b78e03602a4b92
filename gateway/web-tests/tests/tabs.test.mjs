// Two tabs of one user, each with its own outbox: what each types while the server is down is
// sent exactly once when it is back, even when the tab it was typed in has been closed (the
// other tab adopts the closed tab's outbox).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  addItem, Api, cleanUpAfter, launchBrowser, restartServe, signIn, startServe, tempDir, waitForItems,
} from './support.mjs';

const dir = tempDir('tabs');
let server;
let browser;

cleanUpAfter(() => ({ dir, browser, server }));

test('two tabs offline: both tabs’ items arrive exactly once after one tab is closed', async () => {
  server = await startServe(dir);
  const port = server.port;
  let api = new Api(server.url);
  const ann = await api.register('ann');
  const list = await api.createList(ann, { title: 'Two tabs' });
  await api.op(ann, list, { kind: 'add_item', text: 'boxes', after: null });
  browser = await launchBrowser();
  const first = await signIn(browser, server.url, ann, { hash: `#/list/${list}` });
  const second = await first.context().newPage();
  await second.goto(`${server.url}/#/list/${list}`);
  await second.locator('#connection', { hasText: /^Connected/ }).waitFor();
  await waitForItems(second, ['boxes']);

  await server.kill();
  for (const page of [first, second]) await page.locator('#connection', { hasText: 'Reconnecting' }).waitFor();
  await addItem(first, 'typed in the first tab');
  await addItem(second, 'typed in the second tab');
  // The second tab hears of the first tab's op too, so it holds both.
  await second.locator('#connection', { hasText: 'Reconnecting… · 2 changes waiting' }).waitFor();
  await first.close();

  server = await restartServe(dir, port);
  api = new Api(server.url);
  await second.locator('#connection', { hasText: /^Connected$/ }).waitFor({ timeout: 20_000 });
  await waitForItems(second, ['boxes', 'typed in the first tab', 'typed in the second tab'].sort(), 'the second tab', { sorted: true });
  const stored = await api.snapshot(ann, list);
  assert.deepEqual(stored.items.map((item) => item.text).sort(), ['boxes', 'typed in the first tab', 'typed in the second tab'].sort());
  await second.reload();
  await second.locator('#connection', { hasText: /^Connected$/ }).waitFor();
  // Nothing waits in any tab's outbox, nor in the closed tab's (adopted, then removed).
  const outboxes = await second.evaluate((prefix) => Object.keys(localStorage).filter((key) => key.startsWith(prefix) && !key.startsWith(`${prefix}-alive.`)), `listwire.${ann.user_id}.outbox`);
  assert.deepEqual(outboxes, []);
});
