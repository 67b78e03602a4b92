//! Settings of the ScyllaDB backend, with parsers for the textual forms used in flags and env.
//!
//! These are our own types: no driver type leaks into the public configuration.

use std::time::Duration;

use crate::Error;

/// Keyspace replication, used when the store creates the keyspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replication {
    /// `SimpleStrategy` with one replication factor (development, single datacenter).
    Simple {
        /// Copies of each row.
        factor: u32,
    },
    /// `NetworkTopologyStrategy` with a replication factor per datacenter (production).
    NetworkTopology {
        /// `(datacenter, factor)` pairs, in the order given.
        datacenters: Vec<(String, u32)>,
    },
}

/// Consistency of ordinary reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// One replica.
    One,
    /// One replica in the local datacenter.
    LocalOne,
    /// A majority of all replicas.
    Quorum,
    /// A majority of the replicas in the local datacenter (the default).
    LocalQuorum,
    /// A majority in every datacenter.
    EachQuorum,
    /// Every replica.
    All,
}

/// Consistency of the Paxos phase of conditional statements (and of the reads that resolve them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialConsistency {
    /// Linearizable across all datacenters.
    Serial,
    /// Linearizable within the local datacenter (the default).
    LocalSerial,
}

/// Settings of [`super::ScyllaStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScyllaConfig {
    /// Contact points, `host:port` each.
    pub nodes: Vec<String>,
    /// Keyspace holding every table; created if missing.
    pub keyspace: String,
    /// Replication used when creating the keyspace (an existing keyspace is left as is).
    pub replication: Replication,
    /// Consistency of ordinary reads and writes.
    pub consistency: Consistency,
    /// Consistency of conditions (the conditional append, username reservation).
    pub serial_consistency: SerialConsistency,
    /// Client-side timeout of one request.
    pub request_timeout: Duration,
    /// Timeout of establishing one connection.
    pub connect_timeout: Duration,
    /// How many times an idempotent request is retried after a transient failure.
    pub retries: u32,
}

impl Default for ScyllaConfig {
    fn default() -> Self {
        Self {
            nodes: vec!["127.0.0.1:9042".to_owned()],
            keyspace: "listwire".to_owned(),
            replication: Replication::Simple { factor: 1 },
            consistency: Consistency::LocalQuorum,
            serial_consistency: SerialConsistency::LocalSerial,
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            retries: 2,
        }
    }
}

fn invalid(msg: String) -> Error {
    Error::InvalidArgument(msg)
}

/// Parses `"host:port,host:port"` into contact points. Every entry needs a host and a numeric port.
pub fn parse_nodes(text: &str) -> Result<Vec<String>, Error> {
    let mut nodes = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((host, port)) = entry.rsplit_once(':') else {
            return Err(invalid(format!(
                "scylla node {entry:?}: expected host:port"
            )));
        };
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(invalid(format!(
                "scylla node {entry:?}: expected host:port"
            )));
        }
        nodes.push(entry.to_owned());
    }
    if nodes.is_empty() {
        return Err(invalid(
            "scylla nodes: at least one host:port is needed".into(),
        ));
    }
    Ok(nodes)
}

/// Parses `"SimpleStrategy:1"` or `"NetworkTopologyStrategy:dc1=3,dc2=3"`.
pub fn parse_replication(text: &str) -> Result<Replication, Error> {
    let bad = || {
        invalid(format!(
            "replication {text:?}: expected SimpleStrategy:<rf> or NetworkTopologyStrategy:<dc>=<rf>,..."
        ))
    };
    let (strategy, rest) = text.trim().split_once(':').ok_or_else(bad)?;
    match strategy {
        "SimpleStrategy" => Ok(Replication::Simple {
            factor: parse_factor(rest).ok_or_else(bad)?,
        }),
        "NetworkTopologyStrategy" => {
            let mut datacenters = Vec::new();
            for pair in rest.split(',').map(str::trim) {
                let (dc, rf) = pair.split_once('=').ok_or_else(bad)?;
                let dc = dc.trim();
                let valid_name = !dc.is_empty()
                    && dc
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !valid_name || datacenters.iter().any(|(d, _)| d == dc) {
                    return Err(bad());
                }
                datacenters.push((dc.to_owned(), parse_factor(rf).ok_or_else(bad)?));
            }
            Ok(Replication::NetworkTopology { datacenters })
        }
        _ => Err(bad()),
    }
}

fn parse_factor(text: &str) -> Option<u32> {
    text.trim().parse::<u32>().ok().filter(|rf| *rf > 0)
}

/// Parses a consistency name (`ONE`, `LOCAL_ONE`, `QUORUM`, `LOCAL_QUORUM`, `EACH_QUORUM`, `ALL`;
/// case-insensitive, `-` accepted for `_`).
pub fn parse_consistency(text: &str) -> Result<Consistency, Error> {
    match normalize(text).as_str() {
        "ONE" => Ok(Consistency::One),
        "LOCAL_ONE" => Ok(Consistency::LocalOne),
        "QUORUM" => Ok(Consistency::Quorum),
        "LOCAL_QUORUM" => Ok(Consistency::LocalQuorum),
        "EACH_QUORUM" => Ok(Consistency::EachQuorum),
        "ALL" => Ok(Consistency::All),
        _ => Err(invalid(format!("unknown consistency {text:?}"))),
    }
}

/// Parses a serial consistency name (`SERIAL` or `LOCAL_SERIAL`).
pub fn parse_serial_consistency(text: &str) -> Result<SerialConsistency, Error> {
    match normalize(text).as_str() {
        "SERIAL" => Ok(SerialConsistency::Serial),
        "LOCAL_SERIAL" => Ok(SerialConsistency::LocalSerial),
        _ => Err(invalid(format!("unknown serial consistency {text:?}"))),
    }
}

fn normalize(text: &str) -> String {
    text.trim().to_ascii_uppercase().replace('-', "_")
}

/// Checks a keyspace name: CQL unquoted identifiers are `[A-Za-z][A-Za-z0-9_]{0,47}`.
pub fn check_keyspace(name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if first_ok && name.len() <= 48 && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(invalid(format!(
            "keyspace {name:?}: use 1-48 letters, digits or _, starting with a letter"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes() {
        let parsed = parse_nodes("a:9042, 10.0.0.2:19042,").ok();
        assert_eq!(parsed, Some(vec!["a:9042".into(), "10.0.0.2:19042".into()]));
        for bad in ["", " , ", "a", "a:", ":9042", "a:port", "a:70000"] {
            assert!(parse_nodes(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn replication() {
        assert_eq!(
            parse_replication("SimpleStrategy:1").ok(),
            Some(Replication::Simple { factor: 1 })
        );
        let nts = parse_replication("NetworkTopologyStrategy:dc1=3, dc-2=2").ok();
        let expected = vec![("dc1".to_owned(), 3), ("dc-2".to_owned(), 2)];
        assert_eq!(
            nts,
            Some(Replication::NetworkTopology {
                datacenters: expected
            })
        );
        for bad in [
            "SimpleStrategy",
            "SimpleStrategy:0",
            "SimpleStrategy:x",
            "NetworkTopologyStrategy:",
            "NetworkTopologyStrategy:dc1",
            "NetworkTopologyStrategy:dc1=3,dc1=3",
            "NetworkTopologyStrategy:d'c=3",
            "LocalStrategy:1",
        ] {
            assert!(parse_replication(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn consistencies() {
        assert_eq!(
            parse_consistency("local_quorum").ok(),
            Some(Consistency::LocalQuorum)
        );
        assert_eq!(
            parse_consistency("LOCAL-ONE").ok(),
            Some(Consistency::LocalOne)
        );
        assert_eq!(
            parse_consistency("EACH_QUORUM").ok(),
            Some(Consistency::EachQuorum)
        );
        assert!(parse_consistency("ANY").is_err());
        assert_eq!(
            parse_serial_consistency("serial").ok(),
            Some(SerialConsistency::Serial)
        );
        assert_eq!(
            parse_serial_consistency("LOCAL_SERIAL").ok(),
            Some(SerialConsistency::LocalSerial)
        );
        assert!(parse_serial_consistency("QUORUM").is_err());
    }

    #[test]
    fn keyspace_names() {
        assert!(check_keyspace("listwire_test_1f").is_ok());
        for bad in ["", "1ks", "ks-x", "ks;drop", &"k".repeat(49)] {
            assert!(check_keyspace(bad).is_err(), "{bad:?}");
        }
    }
}
