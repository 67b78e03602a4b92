use uuid::Uuid;

/// Errors of the storage crate. Each says what the caller can do next.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The conditional append lost: the list's stored head is not `first_seq - 1`.
    /// The writer is stale (another owner appended first) and must stop writing this list.
    #[error("append conflict on list {list}: stored head is {head}, batch starts at {first_seq}")]
    AppendConflict {
        /// The list.
        list: Uuid,
        /// The stored head (last seq) at the time of the attempt.
        head: u64,
        /// The first seq of the rejected batch.
        first_seq: u64,
    },
    /// A unique key already exists (for example a username that is taken).
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// A transient failure (timeout, overload, unreachable replica). Retrying may succeed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Stored bytes could not be decoded or violate an invariant. Not retryable.
    #[error("integrity error: {0}")]
    Corrupt(String),
    /// A sync to disk failed earlier; durability is unknown, so the store refuses all writes.
    #[error("store is poisoned after a failed sync; restart the node")]
    Poisoned,
    /// The store is shutting down and accepts no more work.
    #[error("store is shutting down")]
    ShuttingDown,
    /// The caller passed an argument that breaks the API contract (for example `last_seq < first_seq`).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Any other backend failure (an IO error from the embedded engine, say).
    #[error("storage backend error: {0}")]
    Backend(String),
}

impl Error {
    /// Whether the same request may succeed if retried later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable(_))
    }
}
