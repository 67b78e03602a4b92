//! The startup migration and the reading of the keyspace's actual replication.
//!
//! Runs on every start: `CREATE KEYSPACE IF NOT EXISTS` (tablets disabled), a check that an
//! existing keyspace does not use tablets, the `schema_version` table, then every pending
//! numbered migration of `schema.rs`, each followed by a wait for schema agreement and the
//! recording of its version. Concurrent starts are harmless: every statement is idempotent.

use std::collections::{BTreeMap, BTreeSet};

use scylla::client::session::Session;
use scylla::value::CqlValue;

use super::config::Replication;
use super::errors;
use super::safety::{self, KeyspaceShape};
use super::schema::{self, create_keyspace, tablets_error};
use crate::Error;

/// Creates or upgrades the whole schema. Run once at startup, before preparing statements.
pub async fn migrate(session: &Session, ks: &str, replication: &Replication) -> Result<(), Error> {
    create_ks(session, ks, replication).await?;
    check_no_tablets(session, ks).await?;
    run_ddl(session, &schema::create_version_table(ks), "create table").await?;
    await_agreement(session).await?;
    let stored = stored_version(session, ks).await?;
    for migration in schema::pending(ks, stored)? {
        tracing::info!(
            keyspace = ks,
            version = migration.version,
            what = migration.what,
            "scylla: migrating schema"
        );
        for ddl in &migration.ddl {
            run_ddl(session, ddl, "migrate schema").await?;
        }
        await_agreement(session).await?;
        write_version(session, ks, migration.version).await?;
    }
    Ok(())
}

/// The keyspace's replication as it is (not as configured: an existing keyspace is kept), with
/// the datacenters of the cluster's nodes, for the safety check.
pub async fn keyspace_shape(session: &Session, ks: &str) -> Result<KeyspaceShape, Error> {
    let query = "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?";
    let result = session
        .query_unpaged(query, (ks,))
        .await
        .map_err(errors::exec("read keyspace replication"))?;
    let rows = result
        .into_rows_result()
        .map_err(errors::rows_shape("read keyspace replication"))?;
    let Some((replication,)) = rows
        .maybe_first_row::<(BTreeMap<String, String>,)>()
        .map_err(|e| Error::Corrupt(format!("keyspace replication: {e}")))?
    else {
        return Err(Error::Backend(format!(
            "keyspace {ks} is missing from system_schema.keyspaces after the migration"
        )));
    };
    let cluster = session.get_cluster_state();
    let datacenters: BTreeSet<String> = cluster
        .get_nodes_info()
        .iter()
        .filter_map(|node| node.datacenter.clone())
        .collect();
    safety::keyspace_shape(ks, &replication, &datacenters)
}

async fn run_ddl(session: &Session, ddl: &str, what: &'static str) -> Result<(), Error> {
    session
        .query_unpaged(ddl, ())
        .await
        .map(|_| ())
        .map_err(errors::exec(what))
}

async fn await_agreement(session: &Session) -> Result<(), Error> {
    session
        .await_schema_agreement()
        .await
        .map(|_| ())
        .map_err(errors::agreement)
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

/// The recorded schema version; `None` for a fresh keyspace.
async fn stored_version(session: &Session, ks: &str) -> Result<Option<i32>, Error> {
    let select = format!("SELECT version FROM {ks}.schema_version WHERE component = 'storage'");
    let result = session
        .query_unpaged(select, ())
        .await
        .map_err(errors::exec("read schema version"))?;
    let rows = result
        .into_rows_result()
        .map_err(errors::rows_shape("read schema version"))?;
    Ok(rows
        .maybe_first_row::<scylla::value::Row>()
        .map_err(|e| Error::Corrupt(format!("schema version: {e}")))?
        .and_then(|r| match r.columns.first() {
            Some(Some(CqlValue::Int(v))) => Some(*v),
            _ => None,
        }))
}

async fn write_version(session: &Session, ks: &str, version: i32) -> Result<(), Error> {
    let insert =
        format!("INSERT INTO {ks}.schema_version (component, version) VALUES ('storage', ?)");
    session
        .query_unpaged(insert, (version,))
        .await
        .map(|_| ())
        .map_err(errors::exec("write schema version"))
}
