// Members and roles; the owner shares by username, changes roles, removes members and sets
// the visibility and the poll.

import { h } from './dom.js';

const ROLES = ['editor', 'voter', 'viewer'];

function roleSelect(id, value, label) {
  const select = h('select', { id, 'aria-label': label }, ROLES.map((role) => h('option', { value: role }, role)));
  select.value = value;
  return select;
}

/** `submit(op)` sends an op for this list. */
export function shareView(submit) {
  const members = h('ul', { class: 'members' });
  const username = h('input', { id: 'share-user', required: true, maxlength: 32, autocapitalize: 'none', spellcheck: 'false' });
  const role = roleSelect('share-role', 'editor', null);
  const form = h('form', { class: 'share-form', onsubmit: (event) => {
    event.preventDefault();
    if (!form.reportValidity()) return;
    submit({ kind: 'share', user: username.value.trim(), role: role.value });
    username.value = '';
  } },
  h('div', { class: 'field' }, h('label', { for: 'share-user' }, 'Share with (username)'), username),
  h('div', { class: 'field' }, h('label', { for: 'share-role' }, 'Role'), role),
  h('button', { type: 'submit' }, 'Share'));
  const visibility = h('p', {});
  const poll = h('div', { class: 'poll-settings' });
  const ownerTools = h('div', {}, form, visibility, poll);
  const element = h('section', { class: 'card', 'aria-labelledby': 'share-heading' },
    h('h2', { id: 'share-heading' }, 'People'), members, ownerTools);
  let pollSignature = null;

  function renderPoll(state) {
    const signature = JSON.stringify(state.poll);
    if (signature === pollSignature) return;
    pollSignature = signature;
    if (!state.poll) {
      poll.replaceChildren(h('button', { type: 'button', onclick: () => submit({ kind: 'set_poll', max_votes_per_user: 1, allow_change: true, open: true }) }, 'Turn on poll mode'));
      return;
    }
    const votes = h('input', { id: 'poll-votes', type: 'number', min: 1, max: 1000, value: String(state.poll.max_votes_per_user) });
    const change = h('input', { id: 'poll-change', type: 'checkbox', checked: state.poll.allow_change });
    const send = (open) => submit({ kind: 'set_poll', max_votes_per_user: Number(votes.value), allow_change: change.checked, open });
    poll.replaceChildren(h('form', { class: 'poll-form', onsubmit: (event) => { event.preventDefault(); send(state.poll.open); } },
      h('div', { class: 'field inline' }, h('label', { for: 'poll-votes' }, 'Votes per person'), votes),
      h('div', { class: 'check' }, change, h('label', { for: 'poll-change' }, 'People may change their votes')),
      h('div', { class: 'actions' },
        h('button', { type: 'submit' }, 'Save poll settings'),
        h('button', { type: 'button', onclick: () => send(!state.poll.open) }, state.poll.open ? 'Close the poll' : 'Reopen the poll'))));
  }

  function update(state, isOwner, me) {
    members.replaceChildren(...state.members.map((member) => {
      const name = member.user === me ? `${member.username} (you)` : member.username;
      if (!isOwner || member.role === 'owner') {
        return h('li', {}, h('span', {}, name), h('span', { class: `badge role-${member.role}` }, member.role));
      }
      const select = roleSelect(`role-${member.user}`, member.role, `Role of ${member.username}`);
      select.addEventListener('change', () => submit({ kind: 'share', user: member.username, role: select.value }));
      return h('li', {}, h('span', {}, name), select,
        h('button', { type: 'button', class: 'small danger', 'aria-label': `Remove ${member.username} from the list`, onclick: () => submit({ kind: 'unshare', user: member.username }) }, 'Remove'));
    }));
    ownerTools.hidden = !isOwner;
    if (!isOwner) return;
    const isPublic = state.visibility === 'public';
    visibility.replaceChildren(
      h('span', {}, isPublic ? 'Public: anyone signed in with the link can see it and vote. ' : 'Private: only the people above can see it. '),
      h('button', { type: 'button', onclick: () => submit({ kind: 'set_visibility', visibility: isPublic ? 'private' : 'public' }) }, isPublic ? 'Make private' : 'Make public'));
    renderPoll(state);
  }

  return { element, update };
}
