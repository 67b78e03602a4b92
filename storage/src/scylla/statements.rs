//! Every statement the store runs, prepared once at startup.
//!
//! Each binds the full partition key, so the driver routes it token- and shard-aware.
//! Idempotent statements are marked so (the driver may retry them); conditional ones are not,
//! and their reads of record run at serial consistency.

use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency, SerialConsistency};

use super::errors;
use crate::Error;

/// The prepared statements of the store.
pub(crate) struct Statements {
    /// `INSERT INTO heads … IF NOT EXISTS`: the first batch of a list.
    pub head_insert: PreparedStatement,
    /// `UPDATE heads … IF head = ?`: every later batch.
    pub head_update: PreparedStatement,
    /// The head row at the normal consistency, with the tail's write time.
    pub head_select: PreparedStatement,
    /// The head row at serial consistency (resolves uncertain conditional writes).
    pub head_select_serial: PreparedStatement,
    /// Writes one batch row at a given write timestamp (idempotent: only identical content is
    /// ever written to a key).
    pub batch_insert: PreparedStatement,
    /// The newest batch of a bucket starting at or before a seq.
    pub batch_floor: PreparedStatement,
    /// Batches of a bucket from a seq on, with a limit.
    pub batch_from: PreparedStatement,
    /// Deletes the rows of a bucket below a seq.
    pub batch_delete_below: PreparedStatement,
    /// Deletes a whole bucket.
    pub batch_delete_bucket: PreparedStatement,
    /// The highest prune mark.
    pub mark_select: PreparedStatement,
    /// The lowest prune mark (where the last completed prune's deletions started).
    pub mark_lowest: PreparedStatement,
    /// Records a prune mark.
    pub mark_insert: PreparedStatement,
    /// Drops prune marks below the newest.
    pub mark_delete_below: PreparedStatement,
    /// `INSERT INTO snapshots … IF NOT EXISTS` (an equal seq never replaces the stored one).
    pub snapshot_insert: PreparedStatement,
    /// The newest snapshot row (inline snapshot or chunk pointer).
    pub snapshot_latest: PreparedStatement,
    /// The seq of the newest snapshot.
    pub snapshot_latest_seq: PreparedStatement,
    /// Drops snapshot rows older than a seq.
    pub snapshot_delete_below: PreparedStatement,
    /// Writes one chunk of a large snapshot (idempotent: a write id never changes content).
    pub chunk_insert: PreparedStatement,
    /// Reads one chunk.
    pub chunk_select: PreparedStatement,
    /// Drops the chunks of snapshots older than a seq (and orphans of interrupted writes).
    pub chunk_delete_below: PreparedStatement,
    /// Drops the chunks of one write (a writer whose pointer lost to an equal seq).
    pub chunk_delete_write: PreparedStatement,
    /// Writes a user row.
    pub user_insert: PreparedStatement,
    /// Deletes a user row (a signup that lost its username).
    pub user_delete: PreparedStatement,
    /// Reads a user row.
    pub user_select: PreparedStatement,
    /// `INSERT INTO usernames … IF NOT EXISTS`.
    pub username_insert: PreparedStatement,
    /// Reads a username's user id.
    pub username_select: PreparedStatement,
    /// Writes a membership, with its version as the write timestamp.
    pub membership_put: PreparedStatement,
    /// Deletes a membership, with its version as the write timestamp.
    pub membership_delete: PreparedStatement,
    /// A user's memberships, with a limit.
    pub memberships_select: PreparedStatement,
}

/// How a statement is executed.
#[derive(Clone, Copy)]
enum Kind {
    /// Safe to retry: reads and blind writes of fixed content.
    Idempotent,
    /// A conditional write: never retried by the driver, Paxos at the serial consistency.
    Conditional,
    /// A read at serial consistency.
    SerialRead,
}

pub(crate) struct Preparer<'a> {
    pub session: &'a Session,
    pub keyspace: &'a str,
    pub serial: SerialConsistency,
}

impl Preparer<'_> {
    async fn prep(&self, cql: &str, kind: Kind) -> Result<PreparedStatement, Error> {
        let cql = cql.replace("{ks}", self.keyspace);
        let mut st = self
            .session
            .prepare(cql.as_str())
            .await
            .map_err(errors::prepare("prepare statement"))?;
        match kind {
            Kind::Idempotent => st.set_is_idempotent(true),
            Kind::Conditional => {
                st.set_is_idempotent(false);
                st.set_serial_consistency(Some(self.serial));
            }
            Kind::SerialRead => {
                st.set_is_idempotent(true);
                st.set_consistency(match self.serial {
                    SerialConsistency::Serial => Consistency::Serial,
                    SerialConsistency::LocalSerial => Consistency::LocalSerial,
                });
            }
        }
        Ok(st)
    }

    /// Prepares every statement.
    pub async fn all(&self) -> Result<Statements, Error> {
        use Kind::{Conditional as C, Idempotent as I, SerialRead as S};
        let head_cols = "SELECT head, tail_first, tail FROM {ks}.heads WHERE list_id = ?";
        let head_cols_written =
            "SELECT head, tail_first, tail, WRITETIME(tail) FROM {ks}.heads WHERE list_id = ?";
        Ok(Statements {
            head_insert: self.prep("INSERT INTO {ks}.heads (list_id, head, tail_first, tail) VALUES (?, ?, ?, ?) IF NOT EXISTS", C).await?,
            head_update: self.prep("UPDATE {ks}.heads SET head = ?, tail_first = ?, tail = ? WHERE list_id = ? IF head = ?", C).await?,
            head_select: self.prep(head_cols_written, I).await?,
            head_select_serial: self.prep(head_cols, S).await?,
            batch_insert: self.prep("INSERT INTO {ks}.batches (list_id, bucket, first_seq, record) VALUES (?, ?, ?, ?) USING TIMESTAMP ?", I).await?,
            batch_floor: self.prep("SELECT first_seq, record FROM {ks}.batches WHERE list_id = ? AND bucket = ? AND first_seq <= ? ORDER BY first_seq DESC LIMIT 1", I).await?,
            batch_from: self.prep("SELECT first_seq, record FROM {ks}.batches WHERE list_id = ? AND bucket = ? AND first_seq >= ? AND first_seq <= ? LIMIT ?", I).await?,
            batch_delete_below: self.prep("DELETE FROM {ks}.batches WHERE list_id = ? AND bucket = ? AND first_seq < ?", I).await?,
            batch_delete_bucket: self.prep("DELETE FROM {ks}.batches WHERE list_id = ? AND bucket = ?", I).await?,
            mark_select: self.prep("SELECT pruned_below FROM {ks}.prune_marks WHERE list_id = ? LIMIT 1", I).await?,
            mark_lowest: self.prep("SELECT pruned_below FROM {ks}.prune_marks WHERE list_id = ? ORDER BY pruned_below ASC LIMIT 1", I).await?,
            mark_insert: self.prep("INSERT INTO {ks}.prune_marks (list_id, pruned_below) VALUES (?, ?)", I).await?,
            mark_delete_below: self.prep("DELETE FROM {ks}.prune_marks WHERE list_id = ? AND pruned_below < ?", I).await?,
            snapshot_insert: self.prep("INSERT INTO {ks}.snapshots (list_id, seq, record) VALUES (?, ?, ?) IF NOT EXISTS", C).await?,
            snapshot_latest: self.prep("SELECT seq, record FROM {ks}.snapshots WHERE list_id = ? LIMIT 1", I).await?,
            snapshot_latest_seq: self.prep("SELECT seq FROM {ks}.snapshots WHERE list_id = ? LIMIT 1", I).await?,
            snapshot_delete_below: self.prep("DELETE FROM {ks}.snapshots WHERE list_id = ? AND seq < ?", I).await?,
            chunk_insert: self.prep("INSERT INTO {ks}.snapshot_chunks (list_id, seq, write_id, chunk, body) VALUES (?, ?, ?, ?, ?)", I).await?,
            chunk_select: self.prep("SELECT body FROM {ks}.snapshot_chunks WHERE list_id = ? AND seq = ? AND write_id = ? AND chunk = ?", I).await?,
            chunk_delete_below: self.prep("DELETE FROM {ks}.snapshot_chunks WHERE list_id = ? AND seq < ?", I).await?,
            chunk_delete_write: self.prep("DELETE FROM {ks}.snapshot_chunks WHERE list_id = ? AND seq = ? AND write_id = ?", I).await?,
            user_insert: self.prep("INSERT INTO {ks}.users (user_id, record) VALUES (?, ?)", I).await?,
            user_delete: self.prep("DELETE FROM {ks}.users WHERE user_id = ?", I).await?,
            user_select: self.prep("SELECT record FROM {ks}.users WHERE user_id = ?", I).await?,
            username_insert: self.prep("INSERT INTO {ks}.usernames (username, user_id) VALUES (?, ?) IF NOT EXISTS", C).await?,
            username_select: self.prep("SELECT user_id FROM {ks}.usernames WHERE username = ?", I).await?,
            membership_put: self.prep("INSERT INTO {ks}.memberships (user_id, list_key, record) VALUES (?, ?, ?) USING TIMESTAMP ?", I).await?,
            membership_delete: self.prep("DELETE FROM {ks}.memberships USING TIMESTAMP ? WHERE user_id = ? AND list_key = ?", I).await?,
            memberships_select: self.prep("SELECT list_key, record FROM {ks}.memberships WHERE user_id = ? LIMIT ?", I).await?,
        })
    }
}
