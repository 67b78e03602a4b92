//! Schema: CQL DDL as pure functions, and the numbered migrations (run by `migrate.rs`).
//!
//! The keyspace is created with tablets disabled, because LWT does not work on tablet keyspaces.
//! Every migration is a list of `CREATE … IF NOT EXISTS`, so re-running one after a crash is
//! harmless; the version recorded in `schema_version` says which have run. The layout is
//! documented in `storage/SCHEMA.md`.

use super::config::Replication;
use crate::Error;

/// The schema version this release creates and understands.
pub const SCHEMA_VERSION: i32 = 2;

/// One step of the schema: the DDL that brings a keyspace from `version - 1` to `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// The schema version after this step.
    pub version: i32,
    /// What the step is for, for logs.
    pub what: &'static str,
    /// The statements, in order. Each is idempotent.
    pub ddl: Vec<String>,
}

/// The table recording the schema version; created before anything else is read.
pub fn create_version_table(ks: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {ks}.schema_version \
         (component text PRIMARY KEY, version int)"
    )
}

/// Every migration, in version order: 1 is the initial schema, 2 adds `snapshot_chunks`
/// (snapshots larger than a row may be: see `chunks.rs`).
pub fn migrations(ks: &str) -> Vec<Migration> {
    vec![
        Migration {
            version: 1,
            what: "initial tables",
            ddl: create_tables(ks),
        },
        Migration {
            version: 2,
            what: "chunked snapshots",
            ddl: vec![create_snapshot_chunks(ks)],
        },
    ]
}

/// The migrations a keyspace at `stored` (none recorded: a fresh keyspace) still needs. A
/// keyspace newer than this release is refused: this release would misread it.
pub fn pending(ks: &str, stored: Option<i32>) -> Result<Vec<Migration>, Error> {
    let stored = stored.unwrap_or(0);
    if stored > SCHEMA_VERSION {
        return Err(Error::Backend(format!(
            "keyspace {ks} has schema version {stored}, newer than this release's \
             {SCHEMA_VERSION}; upgrade listwire"
        )));
    }
    Ok(migrations(ks)
        .into_iter()
        .filter(|m| m.version > stored)
        .collect())
}

/// Chunks of snapshots too large for one row, written before the pointer row in `snapshots`
/// that makes them visible. One partition per list; `seq < ?` range deletes drop older
/// snapshots' chunks (and orphans of interrupted writes) in one tombstone.
pub fn create_snapshot_chunks(ks: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {ks}.snapshot_chunks \
         (list_id uuid, seq bigint, write_id uuid, chunk int, body blob, \
         PRIMARY KEY (list_id, seq, write_id, chunk))"
    )
}

/// `CREATE KEYSPACE IF NOT EXISTS` with the given replication, optionally disabling tablets.
pub fn create_keyspace(keyspace: &str, replication: &Replication, tablets_clause: bool) -> String {
    let replication = match replication {
        Replication::Simple { factor } => {
            format!("{{'class': 'SimpleStrategy', 'replication_factor': {factor}}}")
        }
        Replication::NetworkTopology { datacenters } => {
            let dcs: Vec<String> = datacenters
                .iter()
                .map(|(dc, rf)| format!("'{dc}': {rf}"))
                .collect();
            format!("{{'class': 'NetworkTopologyStrategy', {}}}", dcs.join(", "))
        }
    };
    let tablets = if tablets_clause {
        " AND tablets = {'enabled': false}"
    } else {
        ""
    };
    format!("CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {replication}{tablets}")
}

/// The tables of schema version 1, in creation order (`schema_version` is created first, by
/// [`create_version_table`]).
pub fn create_tables(ks: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.heads \
             (list_id uuid PRIMARY KEY, head bigint, tail_first bigint, tail blob)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.batches \
             (list_id uuid, bucket bigint, first_seq bigint, record blob, \
             PRIMARY KEY ((list_id, bucket), first_seq)) \
             WITH CLUSTERING ORDER BY (first_seq ASC)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.prune_marks \
             (list_id uuid, pruned_below bigint, PRIMARY KEY (list_id, pruned_below)) \
             WITH CLUSTERING ORDER BY (pruned_below DESC)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.snapshots \
             (list_id uuid, seq bigint, record blob, PRIMARY KEY (list_id, seq)) \
             WITH CLUSTERING ORDER BY (seq DESC)"
        ),
        format!("CREATE TABLE IF NOT EXISTS {ks}.users (user_id uuid PRIMARY KEY, record blob)"),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.usernames (username text PRIMARY KEY, user_id uuid)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.memberships \
             (user_id uuid, list_key blob, record blob, PRIMARY KEY (user_id, list_key)) \
             WITH CLUSTERING ORDER BY (list_key ASC)"
        ),
    ]
}

/// The error for a keyspace that uses tablets, with the fix.
pub fn tablets_error(keyspace: &str) -> Error {
    Error::Backend(format!(
        "keyspace {keyspace} uses tablets, and ScyllaDB does not support lightweight transactions \
         (needed for the conditional append) on tablet keyspaces. Fix: create the keyspace with \
         `AND tablets = {{'enabled': false}}` (drop and recreate it, or point listwire at a new \
         keyspace name); listwire creates it that way itself when it does not exist"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyspace_ddl() {
        let simple = create_keyspace("lw", &Replication::Simple { factor: 1 }, true);
        assert_eq!(
            simple,
            "CREATE KEYSPACE IF NOT EXISTS lw WITH replication = \
             {'class': 'SimpleStrategy', 'replication_factor': 1} AND tablets = {'enabled': false}"
        );
        let nts = Replication::NetworkTopology {
            datacenters: vec![("dc1".into(), 3), ("dc2".into(), 2)],
        };
        assert_eq!(
            create_keyspace("lw", &nts, true),
            "CREATE KEYSPACE IF NOT EXISTS lw WITH replication = \
             {'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 2} \
             AND tablets = {'enabled': false}"
        );
        assert!(!create_keyspace("lw", &nts, false).contains("tablets"));
    }

    #[test]
    fn table_ddl() {
        let tables = create_tables("lw");
        assert_eq!(tables.len(), 7);
        assert!(tables
            .iter()
            .all(|t| t.starts_with("CREATE TABLE IF NOT EXISTS lw.")));
        let batches = tables.iter().find(|t| t.contains("lw.batches"));
        assert!(batches.is_some_and(|t| t.contains("PRIMARY KEY ((list_id, bucket), first_seq))")));
        let heads = tables.iter().find(|t| t.contains("lw.heads"));
        assert!(heads.is_some_and(|t| t.contains("list_id uuid PRIMARY KEY, head bigint")));
        let snaps = tables.iter().find(|t| t.contains("lw.snapshots"));
        assert!(snaps.is_some_and(|t| t.contains("CLUSTERING ORDER BY (seq DESC)")));
        assert!(tables.iter().all(|t| !t.contains("ALLOW FILTERING")));
    }

    /// Migration 2 adds the chunk table keyed by (list, snapshot seq, write, chunk index), with
    /// the list alone as partition key so one range delete drops every older chunk.
    #[test]
    fn chunk_table_ddl() {
        let ddl = create_snapshot_chunks("lw");
        assert_eq!(
            ddl,
            "CREATE TABLE IF NOT EXISTS lw.snapshot_chunks \
             (list_id uuid, seq bigint, write_id uuid, chunk int, body blob, \
             PRIMARY KEY (list_id, seq, write_id, chunk))"
        );
        assert!(
            create_version_table("lw").starts_with("CREATE TABLE IF NOT EXISTS lw.schema_version")
        );
    }

    /// Migrations are numbered 1..=SCHEMA_VERSION without gaps; a fresh keyspace runs them all,
    /// a version-1 keyspace only the chunk table, a current one nothing, a newer one is refused.
    #[test]
    fn migrations_are_numbered_and_pending_ones_run() {
        let all = migrations("lw");
        let versions: Vec<i32> = all.iter().map(|m| m.version).collect();
        assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
        for migration in &all {
            assert!(!migration.ddl.is_empty(), "{}", migration.what);
            assert!(migration
                .ddl
                .iter()
                .all(|ddl| ddl.starts_with("CREATE TABLE IF NOT EXISTS lw.")));
        }
        let fresh = pending("lw", None).ok().unwrap_or_default();
        assert_eq!(fresh, all);
        let from_v1 = pending("lw", Some(1)).ok().unwrap_or_default();
        assert_eq!(from_v1.len(), 1);
        assert!(from_v1
            .first()
            .is_some_and(|m| m.version == 2 && m.ddl == vec![create_snapshot_chunks("lw")]));
        assert_eq!(pending("lw", Some(SCHEMA_VERSION)).ok(), Some(Vec::new()));
        let newer = pending("lw", Some(SCHEMA_VERSION + 1));
        assert!(
            matches!(&newer, Err(Error::Backend(m)) if m.contains("upgrade listwire")),
            "{newer:?}"
        );
    }

    #[test]
    fn tablets_message_has_the_fix() {
        let msg = tablets_error("lw").to_string();
        assert!(msg.contains("tablets = {'enabled': false}"), "{msg}");
        assert!(msg.contains("lw"));
    }
}
