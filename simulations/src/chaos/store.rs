//! The database side of a run: an audit of every batch ever committed, and reading it back.
//!
//! A node prunes a list's batches after it writes a snapshot (on handoff, for one), so the
//! `batches` table alone cannot show a whole history. Before any list exists, the runner adds
//! a trigger to the run's schema that copies every row inserted into `batches` into
//! `chaos_batch_log`, in the inserting transaction: a batch is in the log exactly when it was
//! committed, and nothing ever deletes from the log. A forked history (two committed batches
//! covering one seq) or a gap is then visible however the history was pruned since. The node
//! code is untouched; the trigger only adds a write to each append's transaction.

use std::collections::BTreeMap;

use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

use super::Error;

/// One committed batch, from the audit log, in commit order.
#[derive(Debug, Clone)]
pub(crate) struct LoggedBatch {
    pub(crate) first_seq: u64,
    pub(crate) last_seq: u64,
    pub(crate) body: Vec<u8>,
}

/// What the database holds of one list.
#[derive(Debug, Clone, Default)]
pub(crate) struct StoredList {
    /// Every committed batch, in commit order.
    pub(crate) batches: Vec<LoggedBatch>,
    /// The head row.
    pub(crate) head: Option<u64>,
}

/// A connection to the run's schema.
pub(crate) struct Database {
    client: Client,
    schema: String,
    driver: tokio::task::JoinHandle<()>,
}

impl Database {
    /// Connects with `search_path` set to `schema` (a `chaos_` identifier the runner made).
    pub(crate) async fn connect(url: &str, schema: &str) -> Result<Database, Error> {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        client
            .batch_execute(&format!("SET search_path TO {schema}"))
            .await?;
        Ok(Database {
            client,
            schema: schema.to_owned(),
            driver,
        })
    }

    /// Installs the audit trigger (the nodes must have created their tables).
    pub(crate) async fn install_audit(&self) -> Result<(), Error> {
        let schema = &self.schema;
        self.client
            .batch_execute(&format!(
                "CREATE TABLE {schema}.chaos_batch_log (
                     id bigserial PRIMARY KEY, list_id uuid NOT NULL, first_seq bigint NOT NULL,
                     last_seq bigint NOT NULL, body bytea NOT NULL);
                 CREATE FUNCTION {schema}.chaos_log_batch() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                     INSERT INTO {schema}.chaos_batch_log (list_id, first_seq, last_seq, body)
                     VALUES (NEW.list_id, NEW.first_seq, NEW.last_seq, NEW.body);
                     RETURN NEW;
                 END $$;
                 CREATE TRIGGER chaos_log_batch AFTER INSERT ON {schema}.batches
                     FOR EACH ROW EXECUTE FUNCTION {schema}.chaos_log_batch();"
            ))
            .await?;
        Ok(())
    }

    /// Whether the nodes have created the `batches` table yet.
    pub(crate) async fn has_batches_table(&self) -> Result<bool, Error> {
        let row = self
            .client
            .query_one(
                "SELECT count(*) FROM information_schema.tables
                 WHERE table_schema = $1 AND table_name = 'batches'",
                &[&self.schema],
            )
            .await?;
        Ok(row.get::<_, i64>(0) > 0)
    }

    /// Every list's committed batches and head.
    pub(crate) async fn read_all(&self) -> Result<BTreeMap<Uuid, StoredList>, Error> {
        let mut lists: BTreeMap<Uuid, StoredList> = BTreeMap::new();
        let rows = self
            .client
            .query(
                "SELECT list_id, first_seq, last_seq, body FROM chaos_batch_log ORDER BY id",
                &[],
            )
            .await?;
        for row in rows {
            let list: Uuid = row.get(0);
            lists.entry(list).or_default().batches.push(LoggedBatch {
                first_seq: row.get::<_, i64>(1) as u64,
                last_seq: row.get::<_, i64>(2) as u64,
                body: row.get(3),
            });
        }
        for row in self
            .client
            .query("SELECT list_id, head FROM heads", &[])
            .await?
        {
            let list: Uuid = row.get(0);
            lists.entry(list).or_default().head = Some(row.get::<_, i64>(1) as u64);
        }
        Ok(lists)
    }

    /// Each list's head, in the order of `lists` (0 for a list without a head row).
    pub(crate) async fn heads(&self, lists: &[Uuid]) -> Result<Vec<u64>, Error> {
        let mut heads = Vec::with_capacity(lists.len());
        for list in lists {
            let row = self
                .client
                .query_opt("SELECT head FROM heads WHERE list_id = $1", &[list])
                .await?;
            heads.push(row.map_or(0, |row| row.get::<_, i64>(0) as u64));
        }
        Ok(heads)
    }

    /// Drops the run's schema.
    pub(crate) async fn drop_schema(self) -> Result<(), Error> {
        let dropped = self
            .client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
            .await;
        drop(self.client);
        let _ = self.driver.await;
        Ok(dropped?)
    }
}
