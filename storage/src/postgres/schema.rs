//! The schema: numbered migrations and the startup step that applies them.
//!
//! Every start runs [`migrate`] before serving: one transaction takes a transaction-scoped
//! advisory lock (so nodes starting at once apply migrations one after the other, and the
//! losers find nothing left to do), creates the schema and the `schema_migrations` table if
//! missing, refuses a database whose recorded version is newer than this build's, and applies
//! the missing migrations in order, recording each. PostgreSQL DDL is transactional, so a failed
//! start leaves the database as it was. A change to the schema is a new entry at the end of
//! [`MIGRATIONS`], never an edit of an applied one. The layout is documented in
//! `storage/SCHEMA.md`.

use tokio_postgres::Client;

use crate::Error;

/// One schema change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Its number: migrations apply in this order, each exactly once.
    pub version: i32,
    /// What it does, recorded beside its number.
    pub description: &'static str,
    /// The statements, run as one batch inside the migration transaction.
    pub sql: &'static str,
}

/// Every migration of this release, in order. Numbers start at 1 and have no gaps.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "event store and account tables",
    sql: "
CREATE TABLE heads (
    list_id uuid PRIMARY KEY,
    head bigint NOT NULL CHECK (head >= 0)
);
CREATE TABLE batches (
    list_id uuid NOT NULL,
    first_seq bigint NOT NULL CHECK (first_seq >= 1),
    last_seq bigint NOT NULL,
    batch_id uuid NOT NULL,
    body bytea NOT NULL,
    CONSTRAINT batches_pkey PRIMARY KEY (list_id, first_seq),
    CONSTRAINT batches_seqs CHECK (last_seq >= first_seq)
);
CREATE TABLE snapshots (
    list_id uuid PRIMARY KEY,
    seq bigint NOT NULL CHECK (seq >= 0),
    body bytea NOT NULL
);
CREATE TABLE users (
    user_id uuid PRIMARY KEY,
    username text NOT NULL CONSTRAINT users_username_key UNIQUE CHECK (username <> ''),
    password_hash text NOT NULL,
    created_at_ms bigint NOT NULL
);
CREATE TABLE memberships (
    user_id uuid NOT NULL,
    list_id uuid NOT NULL,
    version bigint NOT NULL CHECK (version >= 0),
    live boolean NOT NULL,
    role text NOT NULL,
    title text NOT NULL,
    PRIMARY KEY (user_id, list_id)
);
",
}];

/// The schema version this build creates and understands: the last migration's number.
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The key of the advisory lock that serializes migrations in a database ("listwire" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x6c69_7374_7769_7265;

/// Creates the configured schema (the session's `search_path`) if it is missing. The name was
/// validated at configuration and is quoted by the server (`%I`), so the text stays static.
const CREATE_SCHEMA: &str = "DO $$ BEGIN \
     IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = current_setting('search_path')) THEN \
       EXECUTE format('CREATE SCHEMA %I', current_setting('search_path')); \
     END IF; END $$";

const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (\
     version integer PRIMARY KEY, description text NOT NULL, \
     applied_at timestamptz NOT NULL DEFAULT now())";

const STORED_VERSION: &str = "SELECT COALESCE(max(version), 0) FROM schema_migrations";

const RECORD_MIGRATION: &str =
    "INSERT INTO schema_migrations (version, description) VALUES ($1, $2)";

/// The migrations to apply to a database at `stored`, or the refusal of a database that a newer
/// release has already migrated.
pub fn pending(stored: i32, schema: &str) -> Result<&'static [Migration], Error> {
    let latest = latest_version();
    if stored > latest {
        return Err(Error::Backend(format!(
            "postgres schema {schema} is at version {stored}, newer than this build's \
             {latest}; refusing to start (upgrade listwire, or point it at another schema)"
        )));
    }
    let start = MIGRATIONS
        .iter()
        .position(|m| m.version > stored)
        .unwrap_or(MIGRATIONS.len());
    Ok(MIGRATIONS.get(start..).unwrap_or_default())
}

/// Brings the schema to [`latest_version`]; returns the version found before. See the module
/// docs. Runs on a dedicated connection, before any statement is prepared.
pub async fn migrate(client: &mut Client, schema: &str) -> Result<i32, Error> {
    let db = |what: &'static str| move |e: tokio_postgres::Error| super::errors::to_error(what, &e);
    let tx = client.transaction().await.map_err(db("begin migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .map_err(db("take the migration lock"))?;
    tx.batch_execute(CREATE_SCHEMA)
        .await
        .map_err(db("create schema"))?;
    tx.batch_execute(CREATE_MIGRATIONS_TABLE)
        .await
        .map_err(db("create schema_migrations"))?;
    let row = tx
        .query_one(STORED_VERSION, &[])
        .await
        .map_err(db("read schema version"))?;
    let stored: i32 = row
        .try_get(0)
        .map_err(|e| Error::Corrupt(format!("schema version: {e}")))?;
    for migration in pending(stored, schema)? {
        tx.batch_execute(migration.sql)
            .await
            .map_err(db("apply migration"))?;
        tx.execute(
            RECORD_MIGRATION,
            &[&migration.version, &migration.description],
        )
        .await
        .map_err(db("record migration"))?;
        tracing::info!(
            schema,
            version = migration.version,
            description = migration.description,
            "postgres: applied migration"
        );
    }
    tx.commit().await.map_err(db("commit migration"))?;
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_without_gaps() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(usize::try_from(migration.version).ok(), Some(index + 1));
            assert!(!migration.description.is_empty());
        }
        assert_eq!(latest_version(), 1);
    }

    #[test]
    fn pending_migrations() {
        assert_eq!(pending(0, "lw").ok(), Some(MIGRATIONS));
        assert_eq!(
            pending(latest_version(), "lw").ok().map(<[_]>::len),
            Some(0)
        );
        let newer = pending(latest_version() + 1, "lw");
        let message = newer.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("newer than this build"), "{message}");
        assert!(message.contains("schema lw is at version 2"), "{message}");
    }

    #[test]
    fn migration_sql_is_static_and_unqualified() {
        // Tables land in the session's search_path schema; a qualified name would escape it.
        for migration in MIGRATIONS {
            assert!(
                !migration.sql.contains("listwire."),
                "{}",
                migration.version
            );
            assert!(
                !migration.sql.contains("IF NOT EXISTS"),
                "{}",
                migration.version
            );
        }
    }
}
