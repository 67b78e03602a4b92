// What the page keeps in localStorage, per user: the outbox (ops not yet answered, which must
// not be lost), a copy of each list seen (so a reload resumes with `since`; at most CACHE_MAX,
// the least recently saved evicted first) and the user's own votes per list. When storage is
// full, copies of lists make room for the outbox.

export const CACHE_MAX = 20;

/** Reads JSON from localStorage, or `fallback` when absent or unreadable. */
export function loadJson(key, fallback) {
  try {
    const text = localStorage.getItem(key);
    return text === null ? fallback : JSON.parse(text);
  } catch {
    return fallback;
  }
}

/** Writes JSON to localStorage (undefined removes the key); false if storage refused it. */
export function saveJson(key, value) {
  try {
    if (value === undefined) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(value));
    return true;
  } catch {
    return false;
  }
}

function keysWithPrefix(prefix) {
  const keys = [];
  try {
    for (let index = 0; index < localStorage.length; index += 1) {
      const key = localStorage.key(index);
      if (key?.startsWith(prefix)) keys.push(key);
    }
  } catch {
    // Storage disabled: nothing kept.
  }
  return keys;
}

const cachePrefix = (user) => `listwire.${user}.list.`;
const indexKey = (user) => `listwire.${user}.lists-saved`;
export const cacheKey = (user, list) => cachePrefix(user) + list;
export const votesKey = (user, list) => `listwire.${user}.votes.${list}`;

/** The lists with a kept copy, least recently saved first. */
function cachedLists(user) {
  const savedAt = loadJson(indexKey(user), {});
  return keysWithPrefix(cachePrefix(user))
    .map((key) => key.slice(cachePrefix(user).length))
    .sort((a, b) => (savedAt[a] ?? 0) - (savedAt[b] ?? 0));
}

function forgetCache(user, list) {
  saveJson(cacheKey(user, list), undefined);
  const savedAt = loadJson(indexKey(user), {});
  delete savedAt[list];
  saveJson(indexKey(user), Object.keys(savedAt).length ? savedAt : undefined);
}

/** Evicts the least recently saved copy of a list other than `except`; false if there is none. */
export function evictOldestCache(user, except = null) {
  const oldest = cachedLists(user).find((list) => list !== except);
  if (oldest === undefined) return false;
  forgetCache(user, oldest);
  return true;
}

/** Saves `value` under `key`, evicting copies of lists (oldest first) while storage is full. */
export function saveEvicting(user, key, value, except = null) {
  for (;;) {
    if (saveJson(key, value)) return true;
    if (!evictOldestCache(user, except)) return false;
  }
}

export function loadCache(user, list) {
  return loadJson(cacheKey(user, list), null);
}

/** Keeps a copy of `list`; at most CACHE_MAX copies are kept. False if storage refused it. */
export function saveCache(user, list, value) {
  const savedAt = loadJson(indexKey(user), {});
  savedAt[list] = Date.now();
  saveJson(indexKey(user), savedAt);
  while (cachedLists(user).filter((other) => other !== list).length >= CACHE_MAX) {
    if (!evictOldestCache(user, list)) break;
  }
  const saved = saveEvicting(user, cacheKey(user, list), value, list);
  if (!saved) forgetCache(user, list);
  return saved;
}

export function dropCache(user, list) {
  forgetCache(user, list);
}

/** Forgets every list copy and vote memory of `user` (on sign-out); the outbox stays. */
export function clearUserLists(user) {
  for (const key of keysWithPrefix(`listwire.${user}.`)) {
    if (key.startsWith(cachePrefix(user)) || key.startsWith(`listwire.${user}.votes.`) || key === indexKey(user)) {
      saveJson(key, undefined);
    }
  }
}
