// The web client's entry: session, routes (#/, #/list/<id>, #/poll/<id>), the live connection
// and the page chrome (connection indicator, alerts). Views live in view-*.js.

import { h } from './dom.js';
import { clearUserLists, loadJson, saveJson } from './store.js';
import { describe } from './errors.js';
import { Live } from './live.js';
import { authView } from './view-auth.js';
import { listView } from './view-list.js';
import { listsView } from './view-lists.js';
import { pollView } from './view-poll.js';

const SESSION_KEY = 'listwire.session';
const main = document.getElementById('main');
const connection = document.getElementById('connection');
const who = document.getElementById('who');
const alertBox = document.getElementById('alert');
const storageWarning = document.getElementById('storage-warning');

let session = loadJson(SESSION_KEY, null);
if (session && !(session.expires_at_ms > Date.now())) session = null;
let live = null;
let current = null;

const STATUS_TEXT = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
};

function showStatus(status, waiting) {
  connection.dataset.status = status;
  const changes = waiting === 1 ? '1 change waiting' : `${waiting} changes waiting`;
  connection.textContent = STATUS_TEXT[status] + (waiting ? ` · ${changes}` : '');
}

const app = {
  get session() {
    return session;
  },
  get live() {
    return live;
  },
  alert(text) {
    alertBox.textContent = text;
    alertBox.classList.toggle('shown', Boolean(text));
  },
  error(code, message) {
    app.alert(describe(code, message));
  },
  navigate(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
  signedIn(newSession) {
    session = newSession;
    saveJson(SESSION_KEY, session);
    startLive();
    route();
  },
  signOut() {
    live?.stop();
    // The copies of lists are this user's data: not left on a shared device.
    if (session) clearUserLists(session.user_id);
    storageWarning.hidden = true;
    live = null;
    session = null;
    saveJson(SESSION_KEY, undefined);
    showStatus('connecting', 0);
    connection.textContent = 'Not connected';
    connection.dataset.status = 'idle';
    app.navigate('#/');
  },
};

function startLive() {
  live?.stop();
  live = new Live(session, {
    onStatus: showStatus,
    onChange: (list, lines, events) => current?.onChange?.(list, lines, events),
    onOutcome: (entry, error, frame) => {
      if (current?.onOutcome?.(entry, error, frame)) return;
      if (error && !error.retrying) app.error(error.code, error.message);
    },
    onListError: (list, error) => {
      if (current?.onListError?.(list, error)) return;
      app.error(error.code, error.message);
    },
    onStorage: (saved) => {
      storageWarning.hidden = saved;
    },
    onAuthLost: () => {
      app.signOut();
      app.error('unauthorized', '');
    },
  });
  live.start();
}

function renderWho() {
  if (!session) {
    who.replaceChildren();
    return;
  }
  who.replaceChildren(
    h('span', {}, `Signed in as ${session.username}`),
    h('button', { type: 'button', class: 'link', onclick: () => app.signOut() }, 'Sign out'),
  );
}

function route() {
  const hash = location.hash || '#/';
  if (!hash.startsWith('#/')) return; // In-page anchors (the skip link) are not routes.
  const [page, id] = hash.slice(2).split('/');
  current?.destroy?.();
  current = null;
  app.alert('');
  renderWho();
  let view;
  if (!session) view = authView(app);
  else if (page === 'list' && id) view = listView(app, id);
  else if (page === 'poll' && id) view = pollView(app, id);
  else view = listsView(app);
  current = view;
  main.replaceChildren(view.element);
  // Move focus to the new page's heading, so keyboard and screen-reader users start there.
  view.element.querySelector('h1')?.focus({ preventScroll: true });
}

document.getElementById('skip').addEventListener('click', (event) => {
  event.preventDefault();
  main.focus();
});
window.addEventListener('hashchange', route);
if (session) startLive();
route();
