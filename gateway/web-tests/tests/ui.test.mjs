// The list page's details: long links wrap on a phone, focus after removing and attaching,
// row fields named, a double-clicked ✕ removes one item, an op too large for the server does
// not block the outbox, an item text over the byte limit is refused and kept in the field, a
// full storage shows a warning, and sign-out forgets the lists.

import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import {
  addItem, Api, cleanUpAfter, itemRows, launchBrowser, signIn, startServe, tempDir, waitFor, waitForItems,
} from './support.mjs';

let dir;
let server;
let api;
let browser;

before(async () => {
  dir = tempDir('ui');
  server = await startServe(dir);
  api = new Api(server.url);
  browser = await launchBrowser();
});

cleanUpAfter(() => ({ dir, browser, server }));

let users = 0;
/** A new user with a list of `texts`; returns the user, the list and the item ids. */
async function listWith(texts, body = {}) {
  users += 1;
  const user = await api.register(`user${users}`);
  const list = await api.createList(user, { title: 'Details', ...body });
  const ids = [];
  for (const text of texts) {
    const item = crypto.randomUUID();
    await api.op(user, list, { kind: 'add_item', text, after: ids.at(-1) ?? null, item });
    ids.push(item);
  }
  return { user, list, ids };
}

const focused = (page) => page.evaluate(() => {
  const active = document.activeElement;
  return `${active?.tagName} ${active?.getAttribute('aria-label') ?? active?.id ?? ''}`;
});

test('a long link wraps on a phone instead of widening the page', async () => {
  const { user, list, ids } = await listWith(['one', 'two']);
  await api.op(user, list, { kind: 'attach_media', item: ids[1], url: `https://example.com/${'x'.repeat(120)}`, media_type: 'file' });
  const page = await signIn(browser, server.url, user, { hash: `#/list/${list}`, phone: true });
  await itemRows(page).nth(1).locator('.media').waitFor();
  // Against the phone's 390 px: on a mobile viewport innerWidth grows with the content.
  const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(scrollWidth <= 390, `page ${scrollWidth} px wide on a 390 px phone`);
  await page.context().close();
});

test('focus after removing goes to the next row, the previous one, then the add field; rows are named', async () => {
  const { user, list } = await listWith(['apples', 'bread', 'cheese']);
  const page = await signIn(browser, server.url, user, { hash: `#/list/${list}` });
  await waitForItems(page, ['apples', 'bread', 'cheese']);
  await page.getByLabel('Text of “bread”').waitFor();
  await page.getByRole('button', { name: 'Remove “bread”' }).focus();
  await page.keyboard.press('Enter');
  await waitForItems(page, ['apples', 'cheese']);
  assert.equal(await focused(page), 'BUTTON Reorder “cheese” (up and down arrow keys)');
  await page.getByRole('button', { name: 'Remove “cheese”' }).focus();
  await page.keyboard.press('Enter');
  await waitForItems(page, ['apples']);
  assert.equal(await focused(page), 'BUTTON Reorder “apples” (up and down arrow keys)');
  await page.getByRole('button', { name: 'Remove “apples”' }).focus();
  await page.keyboard.press('Enter');
  await waitForItems(page, []);
  assert.equal(await focused(page), 'INPUT new-item');
  await page.context().close();
});

test('focus stays on the Link button after attaching a link; the link field has the server’s limit', async () => {
  const { user, list } = await listWith(['poster']);
  const page = await signIn(browser, server.url, user, { hash: `#/list/${list}` });
  const row = itemRows(page).nth(0);
  await row.getByRole('button', { name: 'Attach a link to “poster”' }).click();
  const url = row.getByLabel('Link (an image, a video or any page)');
  assert.equal(await url.getAttribute('maxlength'), '2048');
  await url.fill('https://example.com/poster.pdf');
  await row.getByLabel('Show as').selectOption('file');
  await row.getByRole('button', { name: 'Attach', exact: true }).press('Enter');
  await page.getByRole('link', { name: 'Link: https://example.com/poster.pdf' }).waitFor();
  await waitForItems(page, ['poster']);
  assert.equal(await focused(page), 'BUTTON Attach a link to “poster”');
  await page.context().close();
});

test('a double-clicked ✕ removes one item', async () => {
  const { user, list } = await listWith(['one', 'two', 'three']);
  const page = await signIn(browser, server.url, user, { hash: `#/list/${list}` });
  const removes = [];
  page.on('websocket', (socket) => socket.on('framesent', (frame) => {
    const message = JSON.parse(frame.payload);
    if (message.type === 'op' && message.op.kind === 'remove_item') removes.push(message.op.item);
  }));
  await page.reload();
  await waitForItems(page, ['one', 'two', 'three']);
  await page.getByRole('button', { name: 'Remove “one”' }).dblclick();
  await waitForItems(page, ['two', 'three']);
  await waitFor(async () => (await api.snapshot(user, list)).items.length === 2, 'the removal to be stored');
  assert.equal(removes.length, 1);
  assert.deepEqual((await api.snapshot(user, list)).items.map((item) => item.text), ['two', 'three']);
  await page.context().close();
});

test('an op too large for the server is dropped with a message and the next op goes through', async () => {
  const { user, list, ids } = await listWith(['kept']);
  const page = await signIn(browser, server.url, user, { hash: `#/list/${list}` });
  await waitForItems(page, ['kept']);
  // What an older page queued: a 2 MB link (the server closes 1009 for it), then an edit.
  const huge = { op_id: crypto.randomUUID(), list, op: { kind: 'attach_media', item: ids[0], url: `https://example.com/${'x'.repeat(2_000_000)}`, media_type: 'file' } };
  const edit = { op_id: crypto.randomUUID(), list, op: { kind: 'edit_item', item: ids[0], text: 'kept and edited' } };
  await page.evaluate(([key, entries]) => localStorage.setItem(key, JSON.stringify(entries)), [`listwire.${user.user_id}.outbox`, [huge, edit]]);
  await page.reload();
  await page.getByRole('alert').filter({ hasText: 'That is too large (this change is larger than the server accepts, so it was not sent).' }).waitFor();
  await waitForItems(page, ['kept and edited']);
  await page.locator('#connection', { hasText: /^Connected$/ }).waitFor();
  await page.context().close();
});

test('an item text over the server’s byte limit is refused with a message and stays in the field', async () => {
  const { user, list } = await listWith(['kept']);
  const page = await signIn(browser, server.url, user, { hash: `#/list/${list}` });
  await waitForItems(page, ['kept']);
  const text = 'é'.repeat(2049); // under the field's 4 096 characters, over the server's 4 096 bytes
  await addItem(page, text);
  await page.getByRole('alert').filter({ hasText: 'this change is larger than the server accepts, so it was not sent' }).waitFor();
  assert.equal(await page.getByLabel('New item').inputValue(), text);
  await waitForItems(page, ['kept']);
  await page.context().close();
});

test('a full storage shows that changes are not saved on this device; sign-out forgets the lists', async () => {
  const { user, list } = await listWith(['first']);
  const page = await signIn(browser, server.url, user, { hash: `#/list/${list}` });
  await waitForItems(page, ['first']);
  const listKey = `listwire.${user.user_id}.list.${list}`;
  await waitFor(() => page.evaluate((key) => localStorage.getItem(key) !== null, listKey), 'the list copy to be saved');
  const warning = page.locator('#storage-warning');
  assert.equal(await warning.isVisible(), false);
  // Fill the origin's storage to the brim.
  await page.evaluate(() => {
    let size = 1 << 22;
    let index = 0;
    while (size >= 16) {
      try {
        localStorage.setItem(`filler${index}`, 'x'.repeat(size));
        index += 1;
      } catch {
        size >>= 1;
      }
    }
  });
  await page.locator('#connection', { hasText: /^Connected$/ }).waitFor();
  await page.evaluate(() => { window.WebSocket.prototype.send = () => {}; }); // keep the op waiting
  await addItem(page, `second ${'y'.repeat(3000)}`); // more than the list copy frees
  await warning.filter({ hasText: 'Not saved on this device' }).waitFor();
  assert.equal(await page.evaluate((key) => localStorage.getItem(key), listKey), null, 'the list copy made room first');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Username').waitFor();
  assert.equal(await warning.isVisible(), false);
  // What stays is the outbox (the op still waiting; another sign-in sends it), nothing else.
  const left = await page.evaluate((prefix) => Object.keys(localStorage).filter((key) => key.startsWith(prefix) && !key.startsWith(`${prefix}outbox.`)), `listwire.${user.user_id}.`);
  assert.deepEqual(left, []);
  await page.context().close();
});
