// Test support: real `listwire serve` and `listwire dev-cluster` processes, headless Chromium,
// an HTTP client of the API, polling with deadlines, and screenshots.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '../../..');
export const BIN = process.env.LISTWIRE_BIN ?? path.join(REPO, 'target/debug/listwire');
export const ARTIFACTS = process.env.LISTWIRE_WEB_ARTIFACTS ?? path.join(REPO, 'target/web-artifacts');
export const CHROMIUM = process.env.LISTWIRE_CHROMIUM ?? '/usr/bin/chromium';
export const DEADLINE_MS = 15_000;

/** Uncaught errors of every page opened by signIn; each test file checks it stays empty. */
export const pageErrors = [];

/** Polls `check` until it returns a truthy value, or fails after `timeoutMs` (`what`: text, or a function giving it). */
export async function waitFor(check, what, timeoutMs = DEADLINE_MS) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'function' ? what() : what}${lastError ? `: ${lastError.message}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export function tempDir(name) {
  return mkdtempSync(path.join(tmpdir(), `listwire-web-${name}-`));
}

// Every process a test started, killed if the test process exits without stopping it.
const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** Spawns `args` of the listwire binary and resolves once stdout has shown every `patterns` match. */
function spawnListwire(args, patterns) {
  const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LISTWIRE_LOG: 'warn' } });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr = (stderr + chunk).slice(-8000); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`listwire ${args[0]} did not start in time; stdout: ${stdout}; stderr: ${stderr}`));
    }, 60_000);
    const early = (code) => {
      clearTimeout(timer);
      reject(new Error(`listwire ${args[0]} exited (${code}) before it was ready; stderr: ${stderr}`));
    };
    child.on('exit', early);
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const found = patterns.map((pattern) => stdout.match(pattern));
      if (found.every(Boolean)) {
        clearTimeout(timer);
        child.off('exit', early);
        resolve({ child, found });
      }
    });
  });
}

async function waitReady(url) {
  await waitFor(async () => (await fetch(`${url}/readyz`)).ok, `${url}/readyz`, 60_000);
}

async function stopChild(child, signal) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
}

/** A `listwire serve` on 127.0.0.1 with the embedded store in `dataDir` (port 0: the OS picks). */
export async function startServe(dataDir, port = 0) {
  const { child, found } = await spawnListwire(
    ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--store', 'embedded'],
    [/listwire listening on (http:\/\/[\d.]+:(\d+))/],
  );
  const [, url, boundPort] = found[0];
  await waitReady(url);
  return {
    url,
    port: Number(boundPort),
    child,
    /** SIGKILL: a crash, nothing flushed beyond what was acknowledged. */
    kill: () => stopChild(child, 'SIGKILL'),
    stop: () => stopChild(child, 'SIGTERM'),
  };
}

/**
 * `listwire serve` again on `port` (a restart: the port an earlier run was given by the OS).
 * The port can be briefly in use after the old process died, so the bind is retried until a
 * deadline.
 */
export async function restartServe(dataDir, port, timeoutMs = DEADLINE_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await startServe(dataDir, port);
    } catch (error) {
      if (!/in use|AddrInUse/i.test(error.message) || Date.now() > deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** `listwire dev-cluster` with `nodes` nodes on OS-chosen ports; resolves with every node's URL. */
export async function startDevCluster(dataDir, nodes) {
  const patterns = Array.from({ length: nodes }, (_, index) => new RegExp(`node-${index}\\s+(http://[\\d.]+:\\d+)`));
  patterns.push(/Ctrl-C stops every node/);
  const { child, found } = await spawnListwire(
    ['dev-cluster', '--nodes', String(nodes), '--data-dir', dataDir, '--client-port', '0', '--gossip-port', '0', '--internode-port', '0', '--', '--no-fsync'],
    patterns,
  );
  const urls = found.slice(0, nodes).map((match) => match[1]);
  for (const url of urls) await waitReady(url);
  return { urls, child, stop: () => stopChild(child, 'SIGTERM') };
}

/** The protocol's HTTP API, for setting up and checking what the pages did. */
export class Api {
  constructor(url) {
    this.url = url;
  }

  async call(method, route, token, body) {
    const headers = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const response = await fetch(`${this.url}${route}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const json = await response.json();
    if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${JSON.stringify(json)}`);
    return json;
  }

  async register(username, password = 'correct horse battery') {
    const session = await this.call('POST', '/v1/auth/register', null, { username, password });
    return { ...session, username, password };
  }

  createList(session, body) {
    return this.call('POST', '/v1/lists', session.token, body).then((answer) => answer.list_id);
  }

  snapshot(session, list) {
    return this.call('GET', `/v1/lists/${list}`, session.token);
  }

  op(session, list, op) {
    return this.call('POST', `/v1/lists/${list}/ops`, session.token, { op_id: crypto.randomUUID(), op });
  }
}

/** Headless Chromium from Debian's package; Playwright gives each launch a fresh profile directory. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Opens `url` in a new context and signs in as `session` through the sign-in form. */
export async function signIn(browser, url, session, { hash = '#/', phone = false } = {}) {
  const context = await browser.newContext(phone
    ? { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }
    : { viewport: { width: 1000, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(`${session.username}: ${error.message}`));
  await page.goto(`${url}/${hash}`);
  await page.getByLabel('Username').fill(session.username);
  await page.getByLabel('Password').fill(session.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#connection', { hasText: /^Connected/ }).waitFor();
  return page;
}

export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

export function removeDir(dir) {
  rmSync(dir, { recursive: true, force: true });
}

/** The item rows of a list page. */
export const itemRows = (page) => page.locator('ol.items > li.item');

/** The texts of a list page's items, in display order (editable or not). */
export function itemTexts(page) {
  return page.$$eval('ol.items > li.item', (rows) => rows.map((row) => {
    const input = row.querySelector('input.text');
    return input ? input.value : row.querySelector('.text')?.textContent;
  }));
}

/**
 * Waits until a list page shows exactly `expected` (texts, in order — or in any order with
 * `sorted`, `expected` then sorted), none of them pending; returns the texts.
 */
export async function waitForItems(page, expected, what = 'items', { sorted = false } = {}) {
  let seen;
  await waitFor(async () => {
    seen = await itemTexts(page);
    const pending = await page.locator('ol.items > li.is-pending').count();
    const shown = sorted ? [...seen].sort() : seen;
    return pending === 0 && JSON.stringify(shown) === JSON.stringify(expected);
  }, () => `${what} to be ${JSON.stringify(expected)} (last seen ${JSON.stringify(seen)})`);
  return seen;
}

/** Adds an item through a list page's form. */
export async function addItem(page, text) {
  await page.getByLabel('New item').fill(text);
  await page.getByLabel('New item').press('Enter');
}

/** Visible form controls, buttons and links with no accessible name (label, aria-label, text or an image's alt). */
export function unnamedControls(page) {
  return page.$$eval('input, select, textarea, button, a', (elements) => elements
    .filter((element) => element.getClientRects().length > 0)
    .filter((element) => {
      const labelled = element.labels && [...element.labels].some((label) => label.textContent.trim());
      const named = element.getAttribute('aria-label')?.trim() || element.textContent.trim() || element.querySelector('img[alt]')?.alt.trim();
      return !(labelled || named);
    })
    .map((element) => element.outerHTML));
}

// After a file's tests: closes its browser, then its server (or dev-cluster), removes its data
// directory, and fails if a page had an uncaught error. `resources` is read then, so the
// file's variables may be set later.
export function cleanUpAfter(resources) {
  after(async () => {
    const { dir, browser, server } = resources();
    await browser?.close();
    await (server?.kill ?? server?.stop)?.call(server);
    if (dir) removeDir(dir);
    assert.deepEqual(pageErrors, [], 'uncaught errors in the pages');
  });
}
