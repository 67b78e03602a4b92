// Waits before trying again: exponential with jitter (half to all of the ceiling), capped.

export const RECONNECT = { minMs: 200, maxMs: 5000 };
export const RESUBSCRIBE = { minMs: 100, maxMs: 10_000 };
export const OP_RETRY = { minMs: 200, maxMs: 10_000 };

/** The wait before try number `attempt` (1 = the first retry). */
export function backoffMs(attempt, { minMs, maxMs }) {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling * (0.5 + Math.random() / 2));
}
