// One list, live: title, items, poll tallies, people and "who changed what".

import { h, uuid } from './dom.js';
import { describe } from './errors.js';
import { canEdit, canVote, nameOf, pollAccepting, roleOf, withPending } from './model.js';
import { itemsView } from './view-items.js';
import { shareView } from './view-share.js';

const ACTIVITY_MAX = 30;

export function listView(app, listId) {
  const me = app.session.user_id;
  const live = app.live;
  const submit = (op) => live.submit(listId, op);
  const announcer = h('p', { class: 'sr-only', role: 'status', 'aria-live': 'polite' });

  const title = h('h1', { tabindex: -1, id: 'list-title' }, 'Loading…');
  const renameButton = h('button', { type: 'button', class: 'small', hidden: true }, 'Rename');
  const meta = h('p', { class: 'meta' });
  const newText = h('input', { id: 'new-item', maxlength: 4096, autocomplete: 'off', placeholder: 'Add an item', required: true });
  let view = null;
  const addForm = h('form', { class: 'add', hidden: true, onsubmit: (event) => {
    event.preventDefault();
    const text = newText.value.trim();
    if (!text) return;
    const last = view?.items.at(-1)?.id ?? null;
    // Cleared only when queued: a refused add (too large, outbox full) keeps what was typed.
    if (submit({ kind: 'add_item', text, after: last, item: uuid() })) newText.value = '';
    newText.focus();
  } }, h('label', { for: 'new-item', class: 'sr-only' }, 'New item'), newText, h('button', { type: 'submit', class: 'primary' }, 'Add'));
  const hint = h('p', { class: 'hint', hidden: true }, 'Reorder by dragging an item, or focus its ⇅ handle and press the up and down arrow keys.');
  const items = itemsView({
    edit: (item, text) => submit({ kind: 'edit_item', item, text }),
    done: (item, done) => submit({ kind: 'set_done', item, done }),
    move: (item, after) => submit({ kind: 'move_item', item, after }),
    remove: (item) => {
      const removing = live.pending(listId).some(({ op }) => op.kind === 'remove_item' && op.item === item);
      if (!removing) submit({ kind: 'remove_item', item });
    },
    attach: (item, url, mediaType) => submit({ kind: 'attach_media', item, url, media_type: mediaType }),
    vote: (item) => submit({ kind: 'vote', item }),
    unvote: (item) => submit({ kind: 'unvote', item }),
    announce: (text) => { announcer.textContent = text; },
    rerender: () => render(),
    focusAdd: () => newText.focus(),
  });
  const empty = h('p', { class: 'empty', hidden: true }, 'No items yet.');
  const share = shareView(submit);
  const activity = h('ol', { class: 'activity', 'aria-live': 'polite', 'aria-relevant': 'additions' });
  const pollLink = h('a', { href: `#/poll/${listId}`, hidden: true }, 'Open the poll page');

  renameButton.addEventListener('click', () => {
    const input = h('input', { id: 'rename', value: view.title, maxlength: 200, 'aria-label': 'List title' });
    const done = (save) => {
      if (save && input.value.trim() && input.value.trim() !== view.title) submit({ kind: 'rename', title: input.value.trim() });
      form.replaceWith(title);
      renameButton.hidden = false;
      render();
      title.focus();
    };
    const form = h('form', { class: 'rename', onsubmit: (event) => { event.preventDefault(); done(true); } },
      input, h('button', { type: 'submit' }, 'Save'), h('button', { type: 'button', onclick: () => done(false) }, 'Cancel'));
    title.replaceWith(form);
    renameButton.hidden = true;
    input.focus();
    input.select();
  });

  function render() {
    const entry = live.lists.get(listId);
    if (!entry?.state) return;
    view = withPending(entry.state, live.pending(listId), me);
    const role = roleOf(view, me);
    const editable = canEdit(role);
    title.textContent = view.title;
    document.title = `${view.title} · listwire`;
    renameButton.hidden = role !== 'owner' || !title.isConnected;
    const roleText = role === 'public' ? 'public list (you can vote)' : `your role: ${role ?? 'none'}`;
    const pollText = view.poll ? ` · poll ${pollAccepting(view.poll) ? 'open' : 'closed'}, ${view.poll.max_votes_per_user} ${view.poll.max_votes_per_user === 1 ? 'vote' : 'votes'} per person` : '';
    meta.textContent = `${view.visibility} · ${roleText}${pollText} · ${view.items.length} ${view.items.length === 1 ? 'item' : 'items'}`;
    addForm.hidden = !editable;
    hint.hidden = !editable || view.items.length < 2;
    pollLink.hidden = !view.poll;
    empty.hidden = view.items.length > 0;
    items.update(view.items, {
      editable,
      poll: Boolean(view.poll),
      canVote: canVote(view, role),
      accepting: pollAccepting(view.poll),
      allowChange: Boolean(view.poll?.allow_change),
      voted: live.votes(listId),
      nameOf: (user) => nameOf(view, user, me),
    });
    share.update(view, role === 'owner', me);
  }

  function addActivity(lines) {
    for (const line of lines) {
      const time = new Date(line.at_ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
      activity.prepend(h('li', { class: line.by === me ? 'mine' : '' }, h('time', {}, time), ' ', line.text));
    }
    while (activity.children.length > ACTIVITY_MAX) activity.lastChild.remove();
  }

  live.subscribe(listId);
  render();

  const element = h('section', { class: 'page list-page' },
    h('div', { class: 'title-row' }, title, renameButton),
    meta, pollLink, addForm, hint, empty, items.element, announcer,
    share.element,
    h('section', { class: 'card', 'aria-labelledby': 'activity-heading' },
      h('h2', { id: 'activity-heading' }, 'Recent changes'), activity));

  return {
    element,
    onChange(list, lines) {
      if (list !== listId) return;
      addActivity(lines);
      render();
    },
    onOutcome(entry, error) {
      if (entry.list !== listId || !error) return false;
      if (error.retrying) {
        announcer.textContent = describe(error.code, error.message);
        return true;
      }
      return false;
    },
    onListError(list, error) {
      if (list !== listId) return false;
      title.textContent = error.code === 'forbidden' ? 'No access to this list' : 'List unavailable';
      app.error(error.code, error.message);
      return true;
    },
    destroy() {
      live.unsubscribe(listId);
    },
  };
}
