// The items of a list: done, inline edit, drag and keyboard reorder, remove, media links and
// vote bars. Rendering is keyed by item id: an unchanged item keeps its element, and an item
// whose text is being typed into is left alone until the field loses focus.

import { h } from './dom.js';

const MEDIA_LABEL = { image: 'Image', video: 'Video', file: 'Link' };

/**
 * `actions`: edit(item, text), done(item, done), move(item, after), remove(item),
 * attach(item, url, media_type), vote(item), unvote(item), announce(text), focusAdd().
 */
export function itemsView(actions) {
  const list = h('ol', { class: 'items', 'aria-label': 'Items' });
  const rows = new Map(); // item id → {signature, element}
  let order = [];
  let dragged = null;

  function moveBy(id, delta) {
    const index = order.indexOf(id);
    const target = index + delta;
    if (index < 0 || target < 0 || target >= order.length) return;
    // `after` is the item the moved one should follow once moved (null = top).
    const remaining = order.filter((other) => other !== id);
    const after = target === 0 ? null : remaining[target - 1];
    actions.move(id, after);
    actions.announce(`Moved to position ${target + 1} of ${order.length}.`);
  }

  /** Removes `id`, then focuses the next row's handle (or the previous one's, or the add field). */
  function remove(id, event) {
    // The second click of a double click would land on the row that moved up into its place.
    if (event.detail > 1) return;
    const index = order.indexOf(id);
    const neighbour = order[index + 1] ?? order[index - 1];
    actions.remove(id);
    const handle = rows.get(neighbour)?.element.querySelector('[data-focus="handle"]');
    if (handle?.isConnected) handle.focus();
    else actions.focusAdd();
  }

  function dropOn(targetId) {
    if (!dragged || dragged === targetId) return;
    const from = order.indexOf(dragged);
    const to = order.indexOf(targetId);
    moveBy(dragged, to - from);
  }

  function mediaOf(item) {
    if (!item.media) return null;
    const { url, media_type: type } = item.media;
    if (type === 'image') {
      return h('a', { href: url, class: 'media', target: '_blank', rel: 'noopener noreferrer' },
        h('img', { src: url, alt: `Image attached to “${item.text}”`, loading: 'lazy' }));
    }
    return h('a', { href: url, class: 'media', target: '_blank', rel: 'noopener noreferrer' }, `${MEDIA_LABEL[type] ?? 'Link'}: ${url}`);
  }

  function mediaForm(item, toggle) {
    // 2 048: the server's limit for a media url (docs/PROTOCOL.md §8).
    const url = h('input', { id: `media-url-${item.id}`, type: 'url', required: true, maxlength: 2048, placeholder: 'https://…', value: item.media?.url ?? '' });
    const type = h('select', { id: `media-type-${item.id}` },
      Object.entries(MEDIA_LABEL).map(([value, label]) => h('option', { value }, label)));
    type.value = item.media?.media_type ?? 'image';
    const form = h('form', { class: 'media-form', hidden: true, onsubmit: (event) => {
      event.preventDefault();
      if (!form.reportValidity()) return;
      // Focus goes back to the Link button first, so it follows the row when it is redrawn.
      form.hidden = true;
      toggle.setAttribute('aria-expanded', 'false');
      toggle.focus();
      actions.attach(item.id, url.value.trim(), type.value);
    } },
    h('label', { for: url.id }, 'Link (an image, a video or any page)'), url,
    h('label', { for: type.id }, 'Show as'), type,
    h('button', { type: 'submit' }, 'Attach'));
    return form;
  }

  function voteBlock(item, context) {
    const { total, voted, accepting, canVote, allowChange } = context;
    const share = total ? Math.round((item.votes / total) * 100) : 0;
    const count = `${item.votes} ${item.votes === 1 ? 'vote' : 'votes'}`;
    let button = null;
    if (canVote) {
      const mine = voted.has(item.id);
      if (mine && allowChange) {
        button = h('button', { type: 'button', class: 'vote voted', disabled: !accepting, 'aria-label': `Take back my vote for “${item.text}”`, onclick: () => actions.unvote(item.id) }, 'Unvote');
      } else {
        button = h('button', { type: 'button', class: mine ? 'vote voted' : 'vote', disabled: mine || !accepting, 'aria-label': `Vote for “${item.text}”`, onclick: () => actions.vote(item.id) }, mine ? 'Voted' : 'Vote');
      }
    }
    return h('div', { class: 'tally' },
      button,
      h('div', { class: 'votebar', 'aria-hidden': 'true' }, h('span', { style: { width: `${share}%` } })),
      h('span', { class: 'count' }, `${count} (${share}%)`));
  }

  function build(item, context) {
    const { editable, poll } = context;
    const children = [];
    if (editable) {
      children.push(h('button', {
        type: 'button', class: 'handle', 'data-focus': 'handle', title: 'Drag, or press the arrow keys, to reorder',
        'aria-label': `Reorder “${item.text}” (up and down arrow keys)`,
        onkeydown: (event) => {
          if (event.key === 'ArrowUp' || event.key === 'ArrowDown') {
            event.preventDefault();
            moveBy(item.id, event.key === 'ArrowUp' ? -1 : 1);
          }
        },
      }, '⇅'));
      children.push(h('input', {
        type: 'checkbox', class: 'done', 'data-focus': 'done', checked: item.done,
        'aria-label': `Done: “${item.text}”`, onchange: (event) => actions.done(item.id, event.target.checked),
      }));
      const text = h('input', {
        class: 'text', 'data-focus': 'text', value: item.text, maxlength: 4096, 'aria-label': `Text of “${item.text}”`,
        onkeydown: (event) => {
          if (event.key === 'Enter') text.blur();
          if (event.key === 'Escape') {
            text.value = item.text;
            text.blur();
          }
        },
        onblur: () => {
          const value = text.value.trim();
          if (value && value !== item.text) actions.edit(item.id, value);
          else text.value = item.text;
          actions.rerender();
        },
      });
      children.push(text);
    } else {
      children.push(h('span', { class: 'done-mark', 'aria-label': item.done ? 'done' : 'not done' }, item.done ? '✓' : '•'));
      children.push(h('span', { class: 'text' }, item.text));
    }
    if (editable) {
      const toggle = h('button', { type: 'button', class: 'small', 'data-focus': 'media', 'aria-expanded': 'false', 'aria-label': `Attach a link to “${item.text}”` }, 'Link');
      const form = mediaForm(item, toggle);
      toggle.addEventListener('click', () => {
        form.hidden = !form.hidden;
        toggle.setAttribute('aria-expanded', String(!form.hidden));
        if (!form.hidden) form.querySelector('input').focus();
      });
      children.push(toggle, h('button', { type: 'button', class: 'small danger', 'data-focus': 'remove', 'aria-label': `Remove “${item.text}”`, onclick: (event) => remove(item.id, event) }, '✕'), form);
    }
    children.push(h('div', { class: 'details' },
      mediaOf(item),
      poll ? voteBlock(item, context) : null,
      h('small', { class: 'by' }, item.pending ? 'sending…' : `added by ${context.nameOf(item.created_by)}`)));
    const row = h('li', { class: `item${item.done ? ' is-done' : ''}${item.pending ? ' is-pending' : ''}`, 'data-id': item.id, draggable: editable ? 'true' : null }, children);
    if (editable) {
      row.addEventListener('dragstart', (event) => {
        if (event.target.closest('input, select')) return;
        dragged = item.id;
        event.dataTransfer.effectAllowed = 'move';
        event.dataTransfer.setData('text/plain', item.id);
        row.classList.add('dragging');
      });
      row.addEventListener('dragend', () => { dragged = null; row.classList.remove('dragging'); });
      row.addEventListener('dragover', (event) => { if (dragged) { event.preventDefault(); row.classList.add('drop'); } });
      row.addEventListener('dragleave', () => row.classList.remove('drop'));
      row.addEventListener('drop', (event) => { event.preventDefault(); row.classList.remove('drop'); dropOn(item.id); });
    }
    return row;
  }

  /** Shows `items` (display order) under `context`: editable, poll, canVote, voted, … */
  function update(items, context) {
    const active = document.activeElement;
    const focusRow = active?.closest?.('li.item');
    const focus = focusRow && list.contains(focusRow) ? { id: focusRow.dataset.id, key: active.dataset.focus } : null;
    const total = items.reduce((sum, item) => sum + item.votes, 0);
    const full = { ...context, total };
    const seen = new Set();
    order = items.map((item) => item.id);
    items.forEach((item, index) => {
      seen.add(item.id);
      const signature = JSON.stringify([item, full.editable, full.poll, full.canVote, full.accepting, full.allowChange, full.voted.has(item.id), total, full.nameOf(item.created_by)]);
      const old = rows.get(item.id);
      let row = old?.element;
      const typing = old && focus?.id === item.id && focus.key === 'text';
      if (!old || (old.signature !== signature && !typing)) {
        row = build(item, full);
        rows.set(item.id, { signature, element: row });
        if (old) old.element.replaceWith(row);
      }
      if (list.children[index] !== row) list.insertBefore(row, list.children[index] ?? null);
    });
    for (const [id, row] of rows) {
      if (!seen.has(id)) {
        row.element.remove();
        rows.delete(id);
      }
    }
    if (focus && document.activeElement !== active) {
      const row = rows.get(focus.id)?.element;
      const target = row?.querySelector(`[data-focus="${focus.key}"]`) ?? row?.querySelector('[data-focus]');
      target?.focus();
    }
  }

  return { element: list, update };
}
