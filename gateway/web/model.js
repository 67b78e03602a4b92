// Pure list state: applying events to a snapshot (docs/PROTOCOL.md §7), the optimistic view of
// ops not yet acknowledged, roles, and words for "who changed what". No DOM, no network.

const clone = (value) => structuredClone(value);

function insertAfter(items, item, after) {
  const index = after ? items.findIndex((other) => other.id === after) : -1;
  items.splice(index + 1, 0, item);
}

/** Applies one event to `state` in place. Unknown kinds change nothing. */
export function applyEvent(state, event) {
  const items = state.items;
  const item = items.find((candidate) => candidate.id === event.item);
  const touch = (target) => {
    if (target) target.updated_at_ms = event.at_ms;
  };
  switch (event.kind) {
    case 'rename':
      state.title = event.title;
      break;
    case 'add_item':
      if (!item) {
        insertAfter(items, {
          id: event.item, text: event.text, done: false, media: null, votes: 0,
          created_by: event.by, updated_at_ms: event.at_ms,
        }, event.after);
      }
      break;
    case 'edit_item':
      if (item) item.text = event.text;
      touch(item);
      break;
    case 'set_done':
      if (item) item.done = event.done;
      touch(item);
      break;
    case 'move_item':
      if (item) {
        items.splice(items.indexOf(item), 1);
        insertAfter(items, item, event.after);
      }
      touch(item);
      break;
    case 'remove_item':
      if (item) items.splice(items.indexOf(item), 1);
      break;
    case 'attach_media':
      if (item) item.media = { url: event.url, media_type: event.media_type };
      touch(item);
      break;
    case 'share': {
      const member = state.members.find((candidate) => candidate.user === event.user);
      if (member) member.role = event.role;
      else state.members.push({ user: event.user, username: event.username, role: event.role });
      break;
    }
    case 'unshare':
      state.members = state.members.filter((member) => member.user !== event.user);
      break;
    case 'set_poll': {
      const { max_votes_per_user, allow_change, open, close_at_ms } = event;
      state.poll = { max_votes_per_user, allow_change, open };
      if (close_at_ms !== undefined) state.poll.close_at_ms = close_at_ms;
      break;
    }
    case 'set_visibility':
      state.visibility = event.visibility;
      break;
    case 'vote':
    case 'unvote':
      if (item) item.votes = event.votes;
      break;
    default:
      break;
  }
  state.seq = Math.max(state.seq ?? 0, event.seq ?? 0);
}

/** Sets every item's vote count from a tally's `counts`. */
export function applyTally(state, counts) {
  for (const item of state.items) {
    if (Object.hasOwn(counts, item.id)) item.votes = counts[item.id];
  }
}

const OPTIMISTIC = new Set(['rename', 'add_item', 'edit_item', 'set_done', 'move_item', 'remove_item', 'attach_media', 'set_poll', 'set_visibility']);

/**
 * The state as the user expects it: `state` with `pending` ops (not yet acknowledged) applied
 * on a copy. Items those ops touch are marked `pending`; votes and sharing are shown once
 * acknowledged (their result depends on the server).
 */
export function withPending(state, pending, me) {
  if (!pending.length) return state;
  const view = clone(state);
  for (const { op } of pending) {
    if (!OPTIMISTIC.has(op.kind)) continue;
    applyEvent(view, { ...op, by: me, at_ms: Date.now(), seq: view.seq });
    const item = view.items.find((candidate) => candidate.id === op.item);
    if (item) item.pending = true;
  }
  return view;
}

/** The caller's role: a member's role, `public` for a non-member of a public list, or null. */
export function roleOf(state, me) {
  const member = state.members.find((candidate) => candidate.user === me);
  if (member) return member.role;
  return state.visibility === 'public' ? 'public' : null;
}

export const canEdit = (role) => role === 'owner' || role === 'editor';
export const canVote = (state, role) => Boolean(state.poll) && role !== 'viewer' && role !== null;

/** Whether the poll takes votes now (PROTOCOL.md §5). */
export function pollAccepting(poll, nowMs = Date.now()) {
  return Boolean(poll?.open) && (poll.close_at_ms === undefined || nowMs < poll.close_at_ms);
}

/** The name of `user` as far as this list knows it. */
export function nameOf(state, user, me) {
  if (user === me) return 'you';
  return state.members.find((member) => member.user === user)?.username ?? 'someone';
}

/** One line of "who changed what" for an event, or null for events not worth a line. */
export function describeEvent(state, event, me) {
  const who = nameOf(state, event.by, me);
  const itemText = (id) => {
    const item = state.items.find((candidate) => candidate.id === id);
    return item ? `“${item.text}”` : 'an item';
  };
  switch (event.kind) {
    case 'create': return `${who} created the list`;
    case 'rename': return `${who} renamed the list to “${event.title}”`;
    case 'add_item': return `${who} added “${event.text}”`;
    case 'edit_item': return `${who} changed ${itemText(event.item)} to “${event.text}”`;
    case 'set_done': return `${who} marked ${itemText(event.item)} ${event.done ? 'done' : 'not done'}`;
    case 'move_item': return `${who} moved ${itemText(event.item)}`;
    case 'remove_item': return `${who} removed ${itemText(event.item)}`;
    case 'attach_media': return `${who} attached a link to ${itemText(event.item)}`;
    case 'share': return `${who} gave ${event.username} the role ${event.role}`;
    case 'unshare': return `${who} removed ${event.username} from the list`;
    case 'set_poll': return `${who} ${event.open ? 'opened' : 'closed'} the poll`;
    case 'set_visibility': return `${who} made the list ${event.visibility}`;
    case 'vote': return `${who} voted for ${itemText(event.item)}`;
    case 'unvote': return `${who} took back a vote for ${itemText(event.item)}`;
    default: return null;
  }
}
