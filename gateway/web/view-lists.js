// "My lists" and the form that creates a list.

import * as api from './api.js';
import { h, uuid } from './dom.js';

export function listsView(app) {
  const listBox = h('div', { 'aria-live': 'polite' }, h('p', {}, 'Loading your lists…'));
  const title = h('input', { id: 'new-title', required: true, maxlength: 200, placeholder: 'e.g. Saturday groceries' });
  const poll = h('input', { id: 'new-poll', type: 'checkbox' });
  const votes = h('input', { id: 'new-votes', type: 'number', min: 1, max: 1000, value: '1' });
  const allowChange = h('input', { id: 'new-change', type: 'checkbox', checked: true });
  const isPublic = h('input', { id: 'new-public', type: 'checkbox' });
  const pollOptions = h('div', { class: 'poll-options', hidden: true },
    h('div', { class: 'field inline' }, h('label', { for: 'new-votes' }, 'Votes per person'), votes),
    h('div', { class: 'check' }, allowChange, h('label', { for: 'new-change' }, 'People may change their votes')));
  poll.addEventListener('change', () => { pollOptions.hidden = !poll.checked; });
  // One op_id per form fill: a retried create answers the same list (PROTOCOL.md §3).
  let createOpId = uuid();

  async function create(event) {
    event.preventDefault();
    if (!form.reportValidity()) return;
    const body = { title: title.value, visibility: isPublic.checked ? 'public' : 'private', op_id: createOpId };
    if (poll.checked) body.poll = { max_votes_per_user: Number(votes.value), allow_change: allowChange.checked, open: true };
    submitButton.disabled = true;
    try {
      const { list_id: listId } = await api.createList(app.session.token, body);
      createOpId = uuid();
      app.navigate(`#/list/${listId}`);
    } catch (error) {
      app.error(error.code, error.message);
      submitButton.disabled = false;
    }
  }

  const submitButton = h('button', { type: 'submit', class: 'primary' }, 'Create list');
  const form = h('form', { class: 'card', onsubmit: create, 'aria-labelledby': 'create-heading' },
    h('h2', { id: 'create-heading' }, 'New list'),
    h('div', { class: 'field' }, h('label', { for: 'new-title' }, 'Title'), title),
    h('div', { class: 'check' }, poll, h('label', { for: 'new-poll' }, 'Poll: people vote on the items')),
    pollOptions,
    h('div', { class: 'check' }, isPublic, h('label', { for: 'new-public' }, 'Public: anyone signed in with the link can see it and vote')),
    h('div', { class: 'actions' }, submitButton));

  api.myLists(app.session.token).then((lists) => {
    if (!lists.length) {
      listBox.replaceChildren(h('p', {}, 'No lists yet. Create one below, or open a link someone shared with you.'));
      return;
    }
    listBox.replaceChildren(h('ul', { class: 'lists' }, lists.map((list) => h('li', {},
      h('a', { href: `#/list/${list.list_id}` }, list.title),
      h('span', { class: `badge role-${list.role}` }, list.role)))));
  }, (error) => {
    listBox.replaceChildren(h('p', {}, 'Your lists could not be loaded.'));
    app.error(error.code, error.message);
  });

  const element = h('section', { class: 'page' }, h('h1', { tabindex: -1 }, 'My lists'), listBox, form);
  return { element };
}
