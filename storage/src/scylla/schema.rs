//! Schema: CQL DDL as pure functions, and the startup migration.
//!
//! Migration runs on every start and is idempotent: `CREATE … IF NOT EXISTS` for the keyspace
//! (tablets disabled, because LWT does not work on tablet keyspaces) and every table, a check that
//! an existing keyspace does not use tablets, an explicit wait for schema agreement, then the
//! recorded schema version is read and written. The layout is documented in `storage/SCHEMA.md`.

use scylla::client::session::Session;
use scylla::value::CqlValue;

use super::config::Replication;
use super::errors;
use crate::Error;

/// The schema version this release creates and understands.
pub const SCHEMA_VERSION: i32 = 1;

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

/// The table definitions, in creation order.
pub fn create_tables(ks: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.schema_version \
             (component text PRIMARY KEY, version int)"
        ),
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

/// Creates or checks the whole schema. Run once at startup, before preparing statements.
pub async fn migrate(session: &Session, ks: &str, replication: &Replication) -> Result<(), Error> {
    create_ks(session, ks, replication).await?;
    check_no_tablets(session, ks).await?;
    for ddl in create_tables(ks) {
        session
            .query_unpaged(ddl, ())
            .await
            .map_err(errors::exec("create table"))?;
    }
    session
        .await_schema_agreement()
        .await
        .map_err(errors::agreement)?;
    check_version(session, ks).await
}

async fn create_ks(session: &Session, ks: &str, replication: &Replication) -> Result<(), Error> {
    match session
        .query_unpaged(create_keyspace(ks, replication, true), ())
        .await
    {
        Ok(_) => Ok(()),
        // ScyllaDB before tablets (and Cassandra) rejects the unknown `tablets` option; there
        // tablets cannot be on, so create the keyspace without it.
        Err(err) if err.to_string().to_ascii_lowercase().contains("tablets") => session
            .query_unpaged(create_keyspace(ks, replication, false), ())
            .await
            .map(|_| ())
            .map_err(errors::exec("create keyspace")),
        Err(err) => Err(errors::exec("create keyspace")(err)),
    }
}

/// Fails with a fix-it message if `ks` uses tablets. A missing `system_schema.scylla_keyspaces`
/// (older ScyllaDB, Cassandra) means no tablets.
async fn check_no_tablets(session: &Session, ks: &str) -> Result<(), Error> {
    let query =
        "SELECT initial_tablets FROM system_schema.scylla_keyspaces WHERE keyspace_name = ?";
    let result = match session.query_unpaged(query, (ks,)).await {
        Ok(result) => result,
        Err(err) if errors::is_missing_table(&err) => return Ok(()),
        Err(err) => return Err(errors::exec("check tablets")(err)),
    };
    let rows = result
        .into_rows_result()
        .map_err(errors::rows_shape("check tablets"))?;
    let row = rows
        .maybe_first_row::<scylla::value::Row>()
        .map_err(|e| Error::Corrupt(format!("check tablets: {e}")))?;
    let uses_tablets = row.is_some_and(|r| matches!(r.columns.first(), Some(Some(_))));
    if uses_tablets {
        return Err(tablets_error(ks));
    }
    Ok(())
}

async fn check_version(session: &Session, ks: &str) -> Result<(), Error> {
    let select = format!("SELECT version FROM {ks}.schema_version WHERE component = 'storage'");
    let result = session
        .query_unpaged(select, ())
        .await
        .map_err(errors::exec("read schema version"))?;
    let rows = result
        .into_rows_result()
        .map_err(errors::rows_shape("read schema version"))?;
    let stored = rows
        .maybe_first_row::<scylla::value::Row>()
        .map_err(|e| Error::Corrupt(format!("schema version: {e}")))?
        .and_then(|r| match r.columns.first() {
            Some(Some(CqlValue::Int(v))) => Some(*v),
            _ => None,
        });
    match stored {
        Some(v) if v > SCHEMA_VERSION => Err(Error::Backend(format!(
            "keyspace {ks} has schema version {v}, newer than this release's {SCHEMA_VERSION}; \
             upgrade listwire"
        ))),
        Some(v) if v == SCHEMA_VERSION => Ok(()),
        // Absent (fresh keyspace) or older: the DDL above brought it to this version.
        _ => {
            let insert = format!(
                "INSERT INTO {ks}.schema_version (component, version) VALUES ('storage', ?)"
            );
            session
                .query_unpaged(insert, (SCHEMA_VERSION,))
                .await
                .map(|_| ())
                .map_err(errors::exec("write schema version"))
        }
    }
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
        assert_eq!(tables.len(), 8);
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

    #[test]
    fn tablets_message_has_the_fix() {
        let msg = tablets_error("lw").to_string();
        assert!(msg.contains("tablets = {'enabled': false}"), "{msg}");
        assert!(msg.contains("lw"));
    }
}
