// A clear message for every error code of the protocol (docs/PROTOCOL.md §9).

const TEXT = {
  unauthorized: 'You are not signed in, or your session has expired. Please sign in again',
  forbidden: 'You are not allowed to do that on this list',
  not_found: 'Not found: the list, item or person does not exist (any more)',
  invalid: 'That was not accepted; please check what you entered',
  too_large: 'That is too large',
  rate_limited: 'Too many changes at once; it will be sent again in a moment',
  conflict: 'That conflicts with the list as it is now',
  busy: 'The server is busy; it will be sent again in a moment',
  moved: 'The list is moving to another server; it will be sent again in a moment',
  unavailable: 'The server is unavailable right now; it will be sent again in a moment',
  internal: 'Something went wrong on the server',
  network: 'Cannot reach the server; check your connection',
};

/** Codes whose op is sent again, with the same op_id (PROTOCOL.md §10.6). */
export const RETRYABLE = new Set(['busy', 'moved', 'unavailable', 'internal', 'rate_limited']);

/** Every code the page knows (a test checks it covers the protocol's). */
export const CODES = Object.keys(TEXT);

/** The text shown for an error `code` with the server's `message`. */
export function describe(code, message) {
  const text = TEXT[code] ?? `Unexpected error (${code})`;
  return message ? `${text} (${message}).` : `${text}.`;
}
