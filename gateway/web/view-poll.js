// The public poll page, made for a phone: big vote buttons, the live result, and "your vote
// counted" once the server has acknowledged it.

import { h } from './dom.js';
import { describe } from './errors.js';
import { canVote, pollAccepting, roleOf } from './model.js';

/** What a voter reads once the server has answered a vote or unvote. */
export function outcomeText(kind, error) {
  if (!error) return kind === 'vote' ? 'Your vote counted.' : 'Your vote was taken back.';
  const message = error.message ?? '';
  if (error.code === 'conflict') {
    if (/already voted/.test(message)) return 'Your vote was already counted.';
    const limit = /vote limit reached \((\d+) per user\)/.exec(message);
    if (limit) return `You have used all your votes (${limit[1]} per person).`;
    if (/vote limit/.test(message)) return 'You have used all your votes.';
    if (/closed/.test(message)) return 'The poll is closed; your vote was not counted.';
  }
  return describe(error.code, message);
}

export function pollView(app, listId) {
  const me = app.session.user_id;
  const live = app.live;
  const title = h('h1', { tabindex: -1 }, 'Loading poll…');
  const meta = h('p', { class: 'meta' });
  const choices = h('ul', { class: 'choices' });
  const status = h('p', { class: 'vote-status', role: 'status', 'aria-live': 'polite' });
  const sending = new Set(); // op ids of votes not yet answered

  function render() {
    const state = live.lists.get(listId)?.state;
    if (!state) return;
    title.textContent = state.title;
    document.title = `${state.title} · poll · listwire`;
    const role = roleOf(state, me);
    if (!state.poll) {
      meta.textContent = 'This list has no poll.';
      choices.replaceChildren();
      return;
    }
    const accepting = pollAccepting(state.poll);
    const voting = canVote(state, role) && accepting;
    const voted = live.votes(listId);
    const per = state.poll.max_votes_per_user;
    meta.textContent = `${accepting ? 'Open' : 'Closed'} · ${per} ${per === 1 ? 'vote' : 'votes'} per person${state.poll.allow_change ? ', changes allowed' : ''}`;
    const total = state.items.reduce((sum, item) => sum + item.votes, 0);
    choices.replaceChildren(...state.items.map((item) => {
      const share = total ? Math.round((item.votes / total) * 100) : 0;
      const mine = voted.has(item.id);
      const undo = mine && state.poll.allow_change;
      const count = `${item.votes} ${item.votes === 1 ? 'vote' : 'votes'}, ${share}%`;
      const button = h('button', {
        type: 'button', class: `choice${mine ? ' mine' : ''}`, 'aria-pressed': String(mine),
        disabled: !voting || (mine && !undo),
        'aria-label': `${item.text}: ${count}.${mine ? ' Your vote.' : ''}${undo ? ' Press to take it back.' : ''}`,
        onclick: () => {
          const entry = live.submit(listId, { kind: undo ? 'unvote' : 'vote', item: item.id });
          if (!entry) return; // refused before sending; the page says why
          sending.add(entry.op_id);
          status.classList.remove('bad');
          status.textContent = undo ? 'Taking back your vote…' : 'Sending your vote…';
        },
      },
      h('span', { class: 'fill', style: { width: `${share}%` }, 'aria-hidden': 'true' }),
      h('span', { class: 'label' }, item.text),
      h('span', { class: 'count', 'aria-hidden': 'true' }, mine ? `✓ ${count}` : count));
      return h('li', {}, button);
    }));
    if (!voting && !status.textContent) {
      status.textContent = accepting ? 'You can see the result, but not vote.' : 'This poll is closed.';
    }
  }

  live.subscribe(listId);
  render();
  const element = h('section', { class: 'page poll-page' }, title, meta, choices, status,
    h('p', {}, h('a', { href: `#/list/${listId}` }, 'Open the whole list')));
  return {
    element,
    onChange(list) {
      if (list === listId) render();
    },
    onOutcome(entry, error) {
      if (!sending.has(entry.op_id)) return false;
      if (error?.retrying) {
        status.textContent = describe(error.code, error.message);
        return true;
      }
      sending.delete(entry.op_id);
      status.classList.toggle('bad', Boolean(error) && !/already voted/.test(error.message));
      status.textContent = outcomeText(entry.op.kind, error);
      render();
      return true;
    },
    onListError(list, error) {
      if (list !== listId) return false;
      title.textContent = error.code === 'forbidden' ? 'You cannot see this poll' : 'Poll unavailable';
      status.textContent = describe(error.code, error.message);
      return true;
    },
    destroy() {
      live.unsubscribe(listId);
    },
  };
}
