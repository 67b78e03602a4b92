//! The consistency safety check: refuses, at start, settings under which two owners of a list
//! could both win the conditional append, or an acknowledged batch could be lost with one disk.
//!
//! Pure, so every combination is unit-tested: [`check_levels`] needs only the settings (the node
//! runs it when it parses its flags); [`check_keyspace`] also needs the keyspace's actual
//! replication, read from `system_schema.keyspaces` after the migration, because an existing
//! keyspace may differ from the configured one. The reasoning is in `storage/SCHEMA.md`,
//! "Consistency".

use std::collections::{BTreeMap, BTreeSet};

use super::config::{Consistency, SerialConsistency};
use crate::Error;

/// Where a keyspace keeps its replicas, as far as linearizability is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyspaceShape {
    /// `NetworkTopologyStrategy` with replicas in one datacenter.
    OneDatacenter {
        /// The datacenter.
        datacenter: String,
    },
    /// `NetworkTopologyStrategy` with replicas in several datacenters.
    Datacenters {
        /// The datacenters holding replicas, sorted.
        datacenters: Vec<String>,
    },
    /// A placement that ignores datacenters (`SimpleStrategy`, or a strategy listwire does not
    /// know). In a cluster of one datacenter that is one datacenter; in a cluster of several,
    /// no datacenter holds a well-defined quorum.
    DatacenterUnaware {
        /// The strategy's class name.
        strategy: String,
        /// How many datacenters the cluster's nodes report.
        cluster_datacenters: usize,
    },
}

/// The settings that decide whether conditions are linearizable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Levels<'a> {
    /// Consistency of ordinary reads and writes.
    pub consistency: Consistency,
    /// Consistency of the Paxos phase of conditional statements.
    pub serial: SerialConsistency,
    /// The one datacenter the node is pinned to (failover disabled), if any.
    pub datacenter: Option<&'a str>,
}

/// Reads a keyspace's `replication` map (`system_schema.keyspaces`) into its shape.
/// `cluster_datacenters` are the datacenters of the cluster's nodes: they decide whether a
/// datacenter-unaware strategy is confined to one datacenter.
pub fn keyspace_shape(
    keyspace: &str,
    replication: &BTreeMap<String, String>,
    cluster_datacenters: &BTreeSet<String>,
) -> Result<KeyspaceShape, Error> {
    let class = replication.get("class").map(String::as_str).unwrap_or("");
    let strategy = class.rsplit('.').next().unwrap_or(class);
    if strategy != "NetworkTopologyStrategy" {
        return Ok(KeyspaceShape::DatacenterUnaware {
            strategy: strategy.to_owned(),
            cluster_datacenters: cluster_datacenters.len(),
        });
    }
    let mut datacenters = BTreeSet::new();
    for (key, factor) in replication {
        // A factor that is not a plain "0" counts as replicas, whatever its form (ScyllaDB also
        // accepts rack lists): counting a datacenter too many only makes the check stricter.
        if key == "class" || factor.trim() == "0" {
            continue;
        }
        if key == "replication_factor" {
            // The shorthand for "this factor in every datacenter".
            datacenters.extend(cluster_datacenters.iter().cloned());
        } else {
            datacenters.insert(key.clone());
        }
    }
    let mut datacenters: Vec<String> = datacenters.into_iter().collect();
    match (datacenters.pop(), datacenters.is_empty()) {
        (None, _) => Err(Error::Backend(format!(
            "keyspace {keyspace} has no replicas in any datacenter: {replication:?}"
        ))),
        (Some(datacenter), true) => Ok(KeyspaceShape::OneDatacenter { datacenter }),
        (Some(last), false) => {
            datacenters.push(last);
            Ok(KeyspaceShape::Datacenters { datacenters })
        }
    }
}

/// Refuses an ordinary consistency weaker than a quorum, or one ScyllaDB cannot serve for both
/// reads and writes. Needs no server, so the node also runs it when it parses its flags.
pub fn check_levels(consistency: Consistency) -> Result<(), Error> {
    let name =
        match consistency {
            Consistency::Quorum | Consistency::LocalQuorum | Consistency::All => return Ok(()),
            Consistency::One => "ONE",
            Consistency::LocalOne => "LOCAL_ONE",
            Consistency::EachQuorum => return Err(Error::InvalidArgument(
                "consistency EACH_QUORUM cannot be used: ScyllaDB refuses it for reads, and one \
                 consistency serves listwire's reads and writes; set QUORUM (the default), or \
                 LOCAL_QUORUM with a single datacenter or a pinned one"
                    .into(),
            )),
        };
    Err(Error::InvalidArgument(format!(
        "consistency {name} is below a quorum: a batch acknowledged by one replica is lost with \
         that replica's disk, and its list can never load again; set QUORUM (the default), or \
         LOCAL_QUORUM with a single datacenter or a pinned one"
    )))
}

/// Refuses settings that are unsafe for the keyspace's replication. `LOCAL_SERIAL` and
/// `LOCAL_QUORUM` are linearizable, and see every acknowledged batch, only when every request
/// is coordinated in one datacenter that holds the replicas: the keyspace replicates to one
/// datacenter, or every listwire node is pinned to the same datacenter with failover disabled.
pub fn check_keyspace(keyspace: &str, levels: &Levels, shape: &KeyspaceShape) -> Result<(), Error> {
    check_levels(levels.consistency)?;
    if let Some(datacenter) = levels.datacenter {
        check_pin(keyspace, datacenter, shape)?;
    }
    let local_consistency = levels.consistency == Consistency::LocalQuorum;
    let local_serial = levels.serial == SerialConsistency::LocalSerial;
    if !local_consistency && !local_serial {
        return Ok(());
    }
    let local = match (local_consistency, local_serial) {
        (true, true) => "LOCAL_QUORUM and LOCAL_SERIAL",
        (true, false) => "LOCAL_QUORUM",
        _ => "LOCAL_SERIAL",
    };
    match shape {
        KeyspaceShape::OneDatacenter { .. } => Ok(()),
        KeyspaceShape::DatacenterUnaware {
            cluster_datacenters: 0 | 1,
            ..
        } => Ok(()),
        KeyspaceShape::Datacenters { .. } if levels.datacenter.is_some() => Ok(()),
        KeyspaceShape::Datacenters { datacenters } => Err(Error::InvalidArgument(format!(
            "keyspace {keyspace} replicates to datacenters {} and this node is not pinned to one: \
             with {local}, an append coordinated in a datacenter that has not caught up can \
             reload an old head and win a second batch with the same seq under that \
             datacenter's own Paxos, and one of two acknowledged batches is lost when the \
             datacenters converge; set consistency QUORUM and serial consistency SERIAL (the \
             defaults), or pin every listwire node of the cluster to the same datacenter (the \
             datacenter setting, which disables failover)",
            datacenters.join(", ")
        ))),
        KeyspaceShape::DatacenterUnaware { strategy, .. } => Err(Error::InvalidArgument(format!(
            "keyspace {keyspace} uses {strategy}, which places replicas without regard to \
             datacenters, in a cluster of several datacenters: {local} has no well-defined \
             local quorum there; set consistency QUORUM and serial consistency SERIAL (the \
             defaults), or use NetworkTopologyStrategy"
        ))),
    }
}

/// A pinned node coordinates every request in its datacenter, which must hold replicas, and
/// the pin needs `NetworkTopologyStrategy`: only then are a datacenter's replicas defined (and
/// the driver warns on every request that combines a pin with `SimpleStrategy`).
fn check_pin(keyspace: &str, datacenter: &str, shape: &KeyspaceShape) -> Result<(), Error> {
    let replicas = match shape {
        KeyspaceShape::OneDatacenter { datacenter: only } => std::slice::from_ref(only),
        KeyspaceShape::Datacenters { datacenters } => datacenters.as_slice(),
        KeyspaceShape::DatacenterUnaware { strategy, .. } => {
            return Err(Error::InvalidArgument(format!(
                "keyspace {keyspace} uses {strategy}, which places replicas without regard to \
                 datacenters, so pinning this node to datacenter {datacenter} cannot confine its \
                 requests to one set of replicas; use NetworkTopologyStrategy, or drop the \
                 datacenter setting (a single datacenter needs no pin)"
            )))
        }
    };
    if replicas.iter().any(|dc| dc == datacenter) {
        return Ok(());
    }
    Err(Error::InvalidArgument(format!(
        "this node is pinned to datacenter {datacenter}, which holds no replicas of keyspace \
         {keyspace} (they are in {}); pin every listwire node to one of those",
        replicas.join(", ")
    )))
}

#[cfg(test)]
#[path = "safety_tests.rs"]
mod tests;
