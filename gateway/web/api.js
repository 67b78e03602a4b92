// The HTTP half of the protocol: sign-up, sign-in, lists, snapshots (docs/PROTOCOL.md §3).

/** An error answer: the protocol's `code` and `message`. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfterMs) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

async function call(method, path, { token, body } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, 'network', '');
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) {
    const code = json?.code ?? (response.status >= 500 ? 'unavailable' : 'invalid');
    throw new ApiError(response.status, code, json?.message ?? text, json?.retry_after_ms);
  }
  return json;
}

export const register = (username, password) => call('POST', '/v1/auth/register', { body: { username, password } });
export const login = (username, password) => call('POST', '/v1/auth/login', { body: { username, password } });
export const myLists = (token) => call('GET', '/v1/lists', { token });
export const createList = (token, body) => call('POST', '/v1/lists', { token, body });
export const snapshot = (token, list) => call('GET', `/v1/lists/${encodeURIComponent(list)}`, { token });
