//! Pooled connections with a deadline on every wait, and the retry of idempotent requests.
//!
//! A [`Conn`] goes back to the pool only when the request finished with the connection in step
//! with the server (success, or an error the server answered). A broken connection, a request
//! cut by its client-side deadline, or a future dropped mid-request discards it, so no later
//! request can queue behind an answer that may never come.

use std::future::Future;
use std::time::{Duration, Instant};

use deadpool_postgres::{ClientWrapper, Object};

use super::errors;
use super::metrics::Op;
use super::PostgresStore;
use crate::Error;

/// Why a request failed, before it becomes a crate [`Error`]: the driver error is kept so the
/// connection can be judged.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The driver failed during `what`.
    Pg {
        /// The step, for the message.
        what: &'static str,
        /// The driver error.
        error: tokio_postgres::Error,
    },
    /// A client-side deadline passed with a request in flight: the connection may still owe
    /// an answer, so it is not reused.
    Abandoned(Error),
    /// Anything else (a stored value that does not decode, a bad argument).
    Store(Error),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Store(error)
    }
}

impl Failure {
    /// Whether the connection that produced this failure can be reused.
    fn connection_usable(&self) -> bool {
        match self {
            Failure::Pg { error, .. } => errors::connection_usable(error),
            Failure::Abandoned(_) => false,
            Failure::Store(_) => true,
        }
    }

    /// The crate error.
    pub(crate) fn into_error(self) -> Error {
        match self {
            Failure::Pg { what, error } => errors::to_error(what, &error),
            Failure::Abandoned(error) | Failure::Store(error) => error,
        }
    }
}

/// Maps a driver error during `what` to a [`Failure`].
pub(crate) fn pg(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Failure {
    move |error| Failure::Pg { what, error }
}

/// A checked-out connection; discarded on drop unless [`Conn::finish`] keeps it.
pub(crate) struct Conn(Option<Object>);

impl Conn {
    /// The client. Fails only if the connection was already given back, which `finish`
    /// (taking `self`) rules out.
    pub(crate) fn client(&mut self) -> Result<&mut ClientWrapper, Error> {
        self.0
            .as_deref_mut()
            .ok_or_else(|| Error::Backend("postgres: connection used after release".into()))
    }

    /// Ends the request: keeps the connection if it is in step with the server, discards it
    /// otherwise, and turns the failure into a crate error.
    pub(crate) fn finish<T>(mut self, result: Result<T, Failure>) -> Result<T, Error> {
        let usable = match &result {
            Ok(_) => true,
            Err(failure) => failure.connection_usable(),
        };
        if usable {
            // Dropping the object hands it back to the pool.
            drop(self.0.take());
        }
        result.map_err(Failure::into_error)
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(object) = self.0.take() {
            // Detached from the pool; dropping the wrapper aborts its connection task.
            drop(Object::take(object));
        }
    }
}

impl PostgresStore {
    /// A connection from the pool, within the pool's wait and create timeouts.
    pub(crate) async fn checkout(&self) -> Result<Conn, Error> {
        let object = self.inner.pool.get().await.map_err(errors::pool)?;
        Ok(Conn(Some(object)))
    }

    /// Runs one attempt within the client-side deadline and records it.
    pub(crate) async fn once<T, Fut>(&self, op: Op, what: &str, attempt: Fut) -> Result<T, Error>
    where
        Fut: Future<Output = Result<T, Error>>,
    {
        let started = Instant::now();
        let result = match tokio::time::timeout(self.inner.attempt_deadline, attempt).await {
            Ok(result) => result,
            Err(_elapsed) => Err(errors::timed_out(what)),
        };
        self.inner.metrics.request(op, started, &result);
        result
    }

    /// Runs an idempotent request, retrying transient failures up to `retries` times with a
    /// short exponential backoff. Never used for the conditional append.
    pub(crate) async fn retried<T, F, Fut>(
        &self,
        op: Op,
        what: &str,
        mut attempt: F,
    ) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let mut tries = 0u32;
        loop {
            match self.once(op, what, attempt()).await {
                Err(err) if err.is_retryable() && tries < self.inner.retries => {
                    tracing::debug!(%err, tries, what, "postgres: retrying idempotent request");
                    tokio::time::sleep(backoff(tries)).await;
                    tries += 1;
                }
                other => return other,
            }
        }
    }
}

/// 20 ms, 40 ms, 80 ms, ... capped at 1.28 s.
pub(crate) fn backoff(tries: u32) -> Duration {
    Duration::from_millis(20u64 << tries.min(6))
}

/// A seq as a PostgreSQL bigint; seqs above `i64::MAX` cannot be stored.
pub(crate) fn to_i64(value: u64, what: &str) -> Result<i64, Error> {
    i64::try_from(value)
        .map_err(|_| Error::InvalidArgument(format!("{what} {value} exceeds the bigint range")))
}

/// A stored bigint as a seq; a negative one is corrupt (the schema's checks forbid it).
pub(crate) fn to_u64(value: i64, what: &str) -> Result<u64, Error> {
    u64::try_from(value).map_err(|_| Error::Corrupt(format!("{what} is negative: {value}")))
}

/// Reads column `index` of `row`, reporting a type mismatch as corruption.
pub(crate) fn column<'r, T>(
    row: &'r tokio_postgres::Row,
    index: usize,
    what: &str,
) -> Result<T, Error>
where
    T: tokio_postgres::types::FromSql<'r>,
{
    row.try_get(index)
        .map_err(|e| Error::Corrupt(format!("postgres {what}: column {index}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_and_backoff() {
        assert_eq!(to_i64(7, "seq").ok(), Some(7));
        assert!(matches!(
            to_i64(u64::MAX, "seq"),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(to_u64(-1, "seq"), Err(Error::Corrupt(_))));
        assert_eq!(backoff(0), Duration::from_millis(20));
        assert_eq!(backoff(2), Duration::from_millis(80));
        assert_eq!(backoff(40), Duration::from_millis(1280));
    }
}
