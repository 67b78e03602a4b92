//! Every statement the backend runs after startup, as static text.
//!
//! Only these constants reach `prepare_cached` (deadpool's per-connection cache is an unbounded
//! map keyed by the text), and every value travels as a bind parameter. Tables are unqualified:
//! each session's `search_path` is the configured schema (see `config.rs`).

/// Makes the head row of a new list exist at 0, the canonical empty state. A second inserter of
/// the same key waits for the first transaction, so this also orders racing first appends.
pub const HEAD_INSERT_ZERO: &str =
    "INSERT INTO heads (list_id, head) VALUES ($1, 0) ON CONFLICT (list_id) DO NOTHING";

/// The conditional append, in one statement: advance the head only from `first_seq - 1` and,
/// only if that row matched, insert the batch row. Under READ COMMITTED a racing update of the
/// same head row waits, then re-checks the condition on the new row version, so of two racers
/// exactly one matches; the loser inserts nothing (zero rows). The answered statement holds the
/// head row's lock until `COMMIT`, which is what the in-doubt read-back waits on. `batch_id` is
/// unique per append attempt, so a writer can tell its own row from another's.
/// Parameters: list, first_seq, last_seq, batch_id, body.
pub const APPEND: &str = "WITH advanced AS (\
       UPDATE heads SET head = $3::bigint WHERE list_id = $1 AND head = $2::bigint - 1 RETURNING list_id) \
     INSERT INTO batches (list_id, first_seq, last_seq, batch_id, body) \
     SELECT list_id, $2::bigint, $3::bigint, $4::uuid, $5::bytea FROM advanced";

/// [`APPEND`] without its condition, for the `skip-conditional-append` mutant only (see
/// `crate::mutants`): any writer moves the head and overwrites the batch at its key.
pub const APPEND_UNFENCED: &str = "WITH advanced AS (\
       UPDATE heads SET head = $3::bigint WHERE list_id = $1 RETURNING list_id) \
     INSERT INTO batches (list_id, first_seq, last_seq, batch_id, body) \
     SELECT list_id, $2::bigint, $3::bigint, $4::uuid, $5::bytea FROM advanced \
     ON CONFLICT (list_id, first_seq) DO UPDATE SET last_seq = EXCLUDED.last_seq, \
     batch_id = EXCLUDED.batch_id, body = EXCLUDED.body";

/// The stored head of a list.
pub const HEAD_SELECT: &str = "SELECT head FROM heads WHERE list_id = $1";

/// The head, waiting for any transaction that holds the row (in-doubt resolution).
pub const HEAD_SELECT_FOR_SHARE: &str = "SELECT head FROM heads WHERE list_id = $1 FOR SHARE";

/// Bounds the lock waits of the resolving transaction only.
pub const SET_LOCAL_LOCK_TIMEOUT: &str = "SELECT set_config('lock_timeout', $1, true)";

/// The batch id stored at a key (in-doubt resolution).
pub const BATCH_ID_SELECT: &str =
    "SELECT batch_id FROM batches WHERE list_id = $1 AND first_seq = $2";

/// Batches ending after `$2` (which is `after_seq`), starting at the one that holds `$3`
/// (`after_seq + 1`): batches are contiguous, so that is the newest starting at or before it,
/// found with one backward probe of the primary key instead of a scan from seq 1. One statement
/// reads one snapshot, so a racing prune cannot make the page non-contiguous.
pub const BATCHES_FROM: &str = "SELECT first_seq, last_seq, body FROM batches \
     WHERE list_id = $1 AND last_seq > $2 AND first_seq >= COALESCE(\
       (SELECT max(first_seq) FROM batches WHERE list_id = $1 AND first_seq <= $3), 0) \
     ORDER BY first_seq LIMIT $4";

/// Prune: every batch covered by a snapshot at `$2`. The head row is untouched.
pub const BATCHES_PRUNE: &str = "DELETE FROM batches WHERE list_id = $1 AND last_seq <= $2";

/// Newest wins: an older or equal seq leaves the stored snapshot as it is.
pub const SNAPSHOT_UPSERT: &str = "INSERT INTO snapshots (list_id, seq, body) VALUES ($1, $2, $3) \
     ON CONFLICT (list_id) DO UPDATE SET seq = EXCLUDED.seq, body = EXCLUDED.body \
     WHERE snapshots.seq < EXCLUDED.seq";

/// The latest snapshot of a list.
pub const SNAPSHOT_SELECT: &str = "SELECT seq, body FROM snapshots WHERE list_id = $1";

/// A new user; a taken id or username inserts nothing (the caller then looks at who holds it).
pub const USER_INSERT: &str =
    "INSERT INTO users (user_id, username, password_hash, created_at_ms) \
     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";

/// A user by name.
pub const USER_BY_NAME: &str =
    "SELECT user_id, username, password_hash, created_at_ms FROM users WHERE username = $1";

/// A user by id.
pub const USER_BY_ID: &str =
    "SELECT user_id, username, password_hash, created_at_ms FROM users WHERE user_id = $1";

/// An index entry (`$4` live or not), written unless a newer version is stored: the same
/// ordering rule as every backend (`Membership::version`). Removals are rows with `live` false.
pub const MEMBERSHIP_UPSERT: &str =
    "INSERT INTO memberships (user_id, list_id, version, live, role, title) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (user_id, list_id) DO UPDATE SET version = EXCLUDED.version, \
       live = EXCLUDED.live, role = EXCLUDED.role, title = EXCLUDED.title \
     WHERE memberships.version <= EXCLUDED.version";

/// A user's live entries in list-id order (uuid compares bytewise, like `Uuid`'s `Ord`).
pub const MEMBERSHIPS_SELECT: &str = "SELECT list_id, role, title, version FROM memberships \
     WHERE user_id = $1 AND live ORDER BY list_id LIMIT $2";

/// Settings that decide whether an acknowledged write survives a database crash.
pub const DURABILITY_SETTINGS: &str = "SELECT current_setting('fsync'), \
     current_setting('synchronous_commit'), current_setting('server_version_num')::int";
