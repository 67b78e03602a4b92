// Against a dev-cluster: a page on one node shows edits made through another, and its own
// edits reach the list wherever it lives.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  addItem, Api, cleanUpAfter, launchBrowser, signIn, startDevCluster, tempDir, waitFor, waitForItems,
} from './support.mjs';

const dir = tempDir('cluster');
let cluster;
let browser;

cleanUpAfter(() => ({ dir, browser, server: cluster }));

test('a page on one node shows edits made through another', async () => {
  cluster = await startDevCluster(dir, 2);
  const [first, second] = cluster.urls.map((url) => new Api(url));
  const ann = await first.register('ann');
  const bob = await first.register('bob');
  const list = await first.createList(ann, { title: 'Across nodes' });
  await first.op(ann, list, { kind: 'share', user: 'bob', role: 'editor' });
  browser = await launchBrowser();
  const page = await signIn(browser, cluster.urls[1], bob, { hash: `#/list/${list}` });
  await page.locator('#list-title', { hasText: 'Across nodes' }).waitFor();

  await first.op(ann, list, { kind: 'add_item', text: 'made through node 0', after: null });
  await waitForItems(page, ['made through node 0'], 'the page on node 1');
  await page.locator('.activity li', { hasText: 'ann added “made through node 0”' }).waitFor();

  await addItem(page, 'made on the page at node 1');
  let stored;
  await waitFor(async () => {
    stored = await first.snapshot(ann, list);
    return stored.items.length === 2;
  }, 'node 0 to serve the page’s item');
  assert.deepEqual(stored.items.map((item) => item.text), ['made through node 0', 'made on the page at node 1']);
});
