//! The conditional append, and the resolution of a commit whose answer was lost.
//!
//! An append is one READ COMMITTED transaction: `BEGIN`; for `first_seq == 1` make the head row
//! exist at 0; one statement advances the head from `first_seq - 1` and inserts the batch row
//! with a fresh `batch_id` only if it did (zero rows: the writer lost, read the head for the
//! error and roll back); `COMMIT`. Three round trips for an append to an existing list.
//!
//! Only the `COMMIT` can leave the outcome unknown. Everything before it ran in a transaction
//! the server will roll back if this connection goes away, so a failure there is a definite
//! "not applied". Any error or missed deadline on `COMMIT` (connection lost, timeout, even a
//! server error) is in doubt, and is resolved on another connection by
//! [`PostgresStore::read_outcome`]: it waits for the row lock the lost transaction may still
//! hold (our `UPDATE` was answered, so the lock was taken before the `COMMIT` was sent), then
//! reads the head and the batch row at `first_seq`. Ours → applied; head still
//! `first_seq - 1` → not applied (retryable); someone else's row → conflict; anything else, or no
//! answer within the deadline → [`Error::Unavailable`] saying the outcome is unknown.

use std::time::{Duration, Instant};

use deadpool_postgres::ClientWrapper;
use tokio_postgres::IsolationLevel;
use uuid::Uuid;

use super::conn::{self, pg, to_i64, to_u64, Failure};
use super::metrics::{InDoubt, Op};
use super::{errors, sql, PostgresStore};
use crate::mutants::{self, Mutant};
use crate::{Batch, Error, EventStore};

/// How the transaction ended, as far as this connection knows.
enum Written {
    /// `COMMIT` was answered with success.
    Committed,
    /// The head condition failed; the stored head, for the error.
    Conflict(u64),
}

/// Where the transaction failed.
enum Broke {
    /// Before `COMMIT` was sent: the server rolls the transaction back.
    BeforeCommit(Failure),
    /// On `COMMIT`: the outcome is unknown until read back.
    OnCommit(String),
}

/// How one attempt of an append failed.
enum Attempt {
    /// Definitely not applied (the transaction never committed): safe to try again.
    NotApplied(Error),
    /// Anything else: a conflict, a fatal error, or an in-doubt commit's verdict.
    Failed(Error),
}

/// What reading an in-doubt append back found.
enum Outcome {
    Applied,
    NotApplied,
    Conflict(u64),
    /// The head moved past the batch but its row is gone (pruned since): cannot tell.
    Undecidable(u64),
}

fn conflict(list: Uuid, head: u64, first_seq: u64) -> Error {
    Error::AppendConflict {
        list,
        head,
        first_seq,
    }
}

/// Bounds one step of the transaction with the client-side deadline.
async fn step<T>(
    deadline: Duration,
    what: &'static str,
    future: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(deadline, future).await {
        Ok(result) => result.map_err(pg(what)),
        Err(_) => Err(Failure::Abandoned(errors::timed_out(what))),
    }
}

impl PostgresStore {
    /// The conditional append. See the module docs.
    pub(super) async fn append_batch(&self, list: Uuid, batch: Batch) -> Result<(), Error> {
        if batch.last_seq < batch.first_seq {
            return Err(Error::InvalidArgument(format!(
                "batch last_seq {} is below first_seq {}",
                batch.last_seq, batch.first_seq
            )));
        }
        if batch.first_seq == 0 {
            let head = self.head(list).await?;
            return Err(conflict(list, head, 0));
        }
        let started = Instant::now();
        let mut tries = 0u32;
        let result = loop {
            match self.append_checked(list, &batch).await {
                // Never committed, so a new attempt is safe (a stale pooled connection after a
                // database restart fails this way).
                Err(Attempt::NotApplied(error)) if tries < self.inner.retries => {
                    tracing::debug!(%list, %error, tries, "postgres: retrying an append that did not apply");
                    tokio::time::sleep(conn::backoff(tries)).await;
                    tries += 1;
                }
                Err(Attempt::NotApplied(error) | Attempt::Failed(error)) => break Err(error),
                Ok(()) => break Ok(()),
            }
        };
        if matches!(result, Err(Error::AppendConflict { .. })) {
            self.inner.metrics.append_conflicts.increment(1);
        }
        self.inner.metrics.request(Op::Append, started, &result);
        result
    }

    /// One attempt of the append transaction, and the resolution of its commit if in doubt.
    async fn append_checked(&self, list: Uuid, batch: &Batch) -> Result<(), Attempt> {
        let failed = Attempt::Failed;
        let first = to_i64(batch.first_seq, "first_seq").map_err(failed)?;
        let last = to_i64(batch.last_seq, "last_seq").map_err(failed)?;
        let batch_id = Uuid::new_v4();
        let checkout = tokio::time::timeout(self.inner.attempt_deadline, self.checkout()).await;
        let mut conn = match checkout {
            Ok(Ok(conn)) => conn,
            Ok(Err(error)) if error.is_retryable() => return Err(Attempt::NotApplied(error)),
            Ok(Err(error)) => return Err(Attempt::Failed(error)),
            Err(_) => {
                return Err(Attempt::NotApplied(errors::timed_out(
                    "append: get a connection",
                )))
            }
        };
        let client = conn.client().map_err(failed)?;
        let written = self
            .write_batch(client, list, first, last, batch_id, batch)
            .await;
        match written {
            Ok(Written::Committed) => conn.finish(Ok(())).map_err(failed),
            Ok(Written::Conflict(head)) => {
                conn.finish(Ok(())).map_err(failed)?;
                Err(failed(conflict(list, head, batch.first_seq)))
            }
            Err(Broke::BeforeCommit(failure)) => match conn.finish::<()>(Err(failure)) {
                // The transaction never committed: definitely not applied.
                Err(Error::Unavailable(cause)) => Err(Attempt::NotApplied(Error::Unavailable(
                    format!("append to list {list} at {first} did not apply: {cause}"),
                ))),
                Err(Error::AlreadyExists(cause)) => Err(failed(Error::Corrupt(format!(
                    "append to list {list}: a batch row at {first} exists above the head: {cause}"
                )))),
                Err(error) => Err(failed(error)),
                Ok(()) => Ok(()),
            },
            Err(Broke::OnCommit(cause)) => {
                drop(conn); // Discarded: its answer is lost.
                self.resolve_in_doubt(list, batch, batch_id, &cause)
                    .await
                    .map_err(failed)
            }
        }
    }

    /// Runs the append transaction on `client`.
    async fn write_batch(
        &self,
        client: &mut ClientWrapper,
        list: Uuid,
        first: i64,
        last: i64,
        batch_id: Uuid,
        batch: &Batch,
    ) -> Result<Written, Broke> {
        let deadline = self.inner.statement_timeout + Duration::from_secs(1);
        let before = Broke::BeforeCommit;
        let begin = client
            .build_transaction()
            .isolation_level(IsolationLevel::ReadCommitted)
            .start();
        let tx = step(deadline, "append: begin", begin)
            .await
            .map_err(before)?;
        if first == 1 {
            let insert = step(
                deadline,
                "append: prepare",
                tx.prepare_cached(sql::HEAD_INSERT_ZERO),
            )
            .await
            .map_err(before)?;
            step(
                deadline,
                "append: create head",
                tx.execute(&insert, &[&list]),
            )
            .await
            .map_err(before)?;
        }
        let statement = if mutants::active(Mutant::SkipConditionalAppend) {
            sql::APPEND_UNFENCED
        } else {
            sql::APPEND
        };
        let append = step(deadline, "append: prepare", tx.prepare_cached(statement))
            .await
            .map_err(before)?;
        let body: &[u8] = &batch.body;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
            [&list, &first, &last, &batch_id, &body];
        let inserted = step(
            deadline,
            "append: advance head",
            tx.execute(&append, &params),
        )
        .await
        .map_err(before)?;
        if inserted == 0 {
            let select = step(
                deadline,
                "append: prepare",
                tx.prepare_cached(sql::HEAD_SELECT),
            )
            .await
            .map_err(before)?;
            let row = step(
                deadline,
                "append: read head",
                tx.query_opt(&select, &[&list]),
            )
            .await
            .map_err(before)?;
            let head = head_of(row.as_ref()).map_err(|e| before(e.into()))?;
            step(deadline, "append: roll back", tx.rollback())
                .await
                .map_err(before)?;
            return Ok(Written::Conflict(head));
        }
        match tokio::time::timeout(deadline, tx.commit()).await {
            Ok(Ok(())) => Ok(Written::Committed),
            Ok(Err(error)) => Err(Broke::OnCommit(errors::describe(&error))),
            Err(_) => Err(Broke::OnCommit("no answer before the deadline".into())),
        }
    }

    /// Decides an append whose commit answer was lost, within the attempt deadline, retrying
    /// transient failures of the read-back itself. Never guesses.
    async fn resolve_in_doubt(
        &self,
        list: Uuid,
        batch: &Batch,
        batch_id: Uuid,
        cause: &str,
    ) -> Result<(), Error> {
        tracing::warn!(%list, first_seq = batch.first_seq, cause, "postgres: commit outcome unknown; reading it back");
        let deadline = tokio::time::Instant::now() + self.inner.attempt_deadline;
        let mut tries = 0u32;
        let last_error = loop {
            let attempt = self.read_outcome(list, batch, batch_id);
            let error = match tokio::time::timeout_at(deadline, attempt).await {
                Ok(Ok(outcome)) => return self.decided(list, batch, outcome),
                Ok(Err(error)) => error,
                Err(_) => errors::timed_out("read back an in-doubt commit"),
            };
            let retry_at = tokio::time::Instant::now() + conn::backoff(tries);
            if !error.is_retryable() || retry_at >= deadline {
                break error;
            }
            tokio::time::sleep_until(retry_at).await;
            tries += 1;
        };
        self.inner.metrics.in_doubt(InDoubt::Unknown);
        Err(Error::Unavailable(format!(
            "append to list {list} at {}: commit outcome unknown ({cause}) and could not be read \
             back ({last_error}); reload the list before writing again",
            batch.first_seq
        )))
    }

    fn decided(&self, list: Uuid, batch: &Batch, outcome: Outcome) -> Result<(), Error> {
        let first_seq = batch.first_seq;
        match outcome {
            Outcome::Applied => {
                self.inner.metrics.in_doubt(InDoubt::Applied);
                tracing::info!(%list, first_seq, "postgres: in-doubt commit had applied");
                Ok(())
            }
            Outcome::NotApplied => {
                self.inner.metrics.in_doubt(InDoubt::NotApplied);
                Err(Error::Unavailable(format!(
                    "append to list {list} at {first_seq} did not apply (the connection was lost \
                     during commit); retry"
                )))
            }
            Outcome::Conflict(head) => {
                self.inner.metrics.in_doubt(InDoubt::Conflict);
                Err(conflict(list, head, first_seq))
            }
            Outcome::Undecidable(head) => {
                self.inner.metrics.in_doubt(InDoubt::Unknown);
                Err(Error::Unavailable(format!(
                    "append to list {list} at {first_seq}: commit outcome unknown (the head is \
                     {head} and the batch row was pruned); reload the list before writing again"
                )))
            }
        }
    }

    /// One read-back, in its own transaction: wait for the head row (and for an uncommitted
    /// insert of it, which `FOR SHARE` cannot see but a conflicting insert waits for), then
    /// compare. Rolled back: it changes nothing.
    async fn read_outcome(
        &self,
        list: Uuid,
        batch: &Batch,
        batch_id: Uuid,
    ) -> Result<Outcome, Error> {
        let mut conn = self.checkout().await?;
        let result = read_outcome_on(
            conn.client()?,
            list,
            batch,
            batch_id,
            self.inner.statement_timeout,
        )
        .await;
        conn.finish(result)
    }
}

async fn read_outcome_on(
    client: &mut ClientWrapper,
    list: Uuid,
    batch: &Batch,
    batch_id: Uuid,
    lock_timeout: Duration,
) -> Result<Outcome, Failure> {
    let first = to_i64(batch.first_seq, "first_seq")?;
    let tx = client.transaction().await.map_err(pg("in-doubt: begin"))?;
    let timeout_ms = lock_timeout.as_millis().to_string();
    let set = tx
        .prepare_cached(sql::SET_LOCAL_LOCK_TIMEOUT)
        .await
        .map_err(pg("in-doubt: prepare"))?;
    tx.execute(&set, &[&timeout_ms])
        .await
        .map_err(pg("in-doubt: lock timeout"))?;
    let insert = tx
        .prepare_cached(sql::HEAD_INSERT_ZERO)
        .await
        .map_err(pg("in-doubt: prepare"))?;
    tx.execute(&insert, &[&list])
        .await
        .map_err(pg("in-doubt: wait for head"))?;
    let select = tx
        .prepare_cached(sql::HEAD_SELECT_FOR_SHARE)
        .await
        .map_err(pg("in-doubt: prepare"))?;
    let row = tx
        .query_opt(&select, &[&list])
        .await
        .map_err(pg("in-doubt: read head"))?;
    let head = head_of(row.as_ref())?;
    let by_key = tx
        .prepare_cached(sql::BATCH_ID_SELECT)
        .await
        .map_err(pg("in-doubt: prepare"))?;
    let stored: Option<Uuid> = match tx
        .query_opt(&by_key, &[&list, &first])
        .await
        .map_err(pg("in-doubt: read batch"))?
    {
        Some(row) => Some(conn::column(&row, 0, "batch id")?),
        None => None,
    };
    tx.rollback().await.map_err(pg("in-doubt: roll back"))?;
    Ok(match stored {
        Some(id) if id == batch_id => Outcome::Applied,
        _ if head.checked_add(1) == Some(batch.first_seq) => Outcome::NotApplied,
        Some(_) => Outcome::Conflict(head),
        None if head < batch.first_seq => Outcome::Conflict(head),
        None => Outcome::Undecidable(head),
    })
}

/// The head in a `heads` row, 0 when the list has none.
pub(super) fn head_of(row: Option<&tokio_postgres::Row>) -> Result<u64, Error> {
    match row {
        Some(row) => to_u64(conn::column(row, 0, "head")?, "head"),
        None => Ok(0),
    }
}
