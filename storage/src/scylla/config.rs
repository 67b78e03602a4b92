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

/// Consistency of ordinary reads and writes. Only `Quorum`, `LocalQuorum` (one datacenter, or
/// a pinned one) and `All` pass the start-up check ([`super::safety`]); the weaker levels are
/// kept so that a setting naming them is refused with an explanation rather than "unknown".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// One replica (refused: below a quorum).
    One,
    /// One replica in the local datacenter (refused: below a quorum).
    LocalOne,
    /// A majority of all replicas (the default).
    Quorum,
    /// A majority of the replicas in the local datacenter.
    LocalQuorum,
    /// A majority in every datacenter (refused: ScyllaDB does not serve reads at it).
    EachQuorum,
    /// Every replica: safe, but a single replica down stops every request.
    All,
}

/// Consistency of the Paxos phase of conditional statements (and of the reads that resolve them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialConsistency {
    /// Linearizable across all datacenters (the default).
    Serial,
    /// Linearizable within the coordinator's datacenter only: allowed when the keyspace has one
    /// datacenter, or every node is pinned to the same one.
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
    /// The one datacenter this node sends requests to, with failover to other datacenters
    /// disabled. Needed for `LOCAL_*` levels on a keyspace that replicates to several
    /// datacenters, and then every listwire node of the cluster must pin the same one.
    pub datacenter: Option<String>,
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
            // QUORUM and SERIAL are safe for every keyspace shape, and in a keyspace with one
            // datacenter they cost the same as LOCAL_QUORUM and LOCAL_SERIAL (same replicas).
            consistency: Consistency::Quorum,
            serial_consistency: SerialConsistency::Serial,
            datacenter: None,
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            retries: 2,
        }
    }
}

fn invalid(msg: String) -> Error {
    Error::InvalidArgument(msg)
}

/// Checks everything in `config` that needs no server: contact points, keyspace name,
/// datacenter name and the consistency levels. [`super::ScyllaStore::connect`] runs it first,
/// then checks the levels against the keyspace's actual replication.
pub fn check(config: &ScyllaConfig) -> Result<(), Error> {
    if config.nodes.is_empty() {
        return Err(invalid("scylla: no contact nodes".into()));
    }
    check_keyspace(&config.keyspace)?;
    if let Some(datacenter) = &config.datacenter {
        parse_datacenter(datacenter)?;
    }
    super::safety::check_levels(config.consistency)
}

fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// Parses a datacenter name (the pin): letters, digits, `_`, `-` and `.`. An empty text means
/// no pin.
pub fn parse_datacenter(text: &str) -> Result<Option<String>, Error> {
    let name = text.trim();
    if name.is_empty() {
        return Ok(None);
    }
    if !is_name(name) {
        return Err(invalid(format!(
            "datacenter {text:?}: use letters, digits, _, - or ."
        )));
    }
    Ok(Some(name.to_owned()))
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
                let valid_name = is_name(dc) && !dc.contains('.');
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
/// case-insensitive, `-` accepted for `_`). Parsing is not approval: the levels below a quorum
/// parse so that [`check`] can refuse them with the reason.
pub fn parse_consistency(text: &str) -> Result<Consistency, Error> {
    match normalize(text).as_str() {
        "ONE" => Ok(Consistency::One),
        "LOCAL_ONE" => Ok(Consistency::LocalOne),
        "QUORUM" => Ok(Consistency::Quorum),
        "LOCAL_QUORUM" => Ok(Consistency::LocalQuorum),
        "EACH_QUORUM" => Ok(Consistency::EachQuorum),
        "ALL" => Ok(Consistency::All),
        level @ ("ANY" | "TWO" | "THREE") => Err(invalid(format!(
            "consistency {level} is a fixed replica count, not a quorum, so an acknowledged batch \
             can be lost with fewer disks than a quorum; set QUORUM, LOCAL_QUORUM or ALL"
        ))),
        _ => Err(invalid(format!(
            "unknown consistency {text:?}: expected QUORUM, LOCAL_QUORUM or ALL"
        ))),
    }
}

/// Parses a serial consistency name (`SERIAL` or `LOCAL_SERIAL`).
pub fn parse_serial_consistency(text: &str) -> Result<SerialConsistency, Error> {
    match normalize(text).as_str() {
        "SERIAL" => Ok(SerialConsistency::Serial),
        "LOCAL_SERIAL" => Ok(SerialConsistency::LocalSerial),
        _ => Err(invalid(format!(
            "unknown serial consistency {text:?}: expected SERIAL or LOCAL_SERIAL"
        ))),
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
        for fixed in ["ANY", "two", "THREE"] {
            let refused = parse_consistency(fixed);
            assert!(
                matches!(&refused, Err(Error::InvalidArgument(m)) if m.contains("set QUORUM")),
                "{fixed}: {refused:?}"
            );
        }
        assert!(parse_consistency("quorm").is_err());
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

    #[test]
    fn datacenters() {
        assert_eq!(parse_datacenter(" dc1 ").ok(), Some(Some("dc1".into())));
        assert_eq!(
            parse_datacenter("us-east.1").ok(),
            Some(Some("us-east.1".into()))
        );
        assert_eq!(parse_datacenter("").ok(), Some(None));
        for bad in ["dc 1", "dc'1", "dc;1"] {
            assert!(parse_datacenter(bad).is_err(), "{bad:?}");
        }
    }

    /// The static check refuses what no keyspace could make safe, before any connection.
    #[test]
    fn static_check() {
        assert!(check(&ScyllaConfig::default()).is_ok());
        let weak = ScyllaConfig {
            consistency: Consistency::LocalOne,
            ..ScyllaConfig::default()
        };
        assert!(matches!(check(&weak), Err(Error::InvalidArgument(_))));
        let no_nodes = ScyllaConfig {
            nodes: Vec::new(),
            ..ScyllaConfig::default()
        };
        assert!(check(&no_nodes).is_err());
        let bad_pin = ScyllaConfig {
            datacenter: Some("dc 1".into()),
            ..ScyllaConfig::default()
        };
        assert!(check(&bad_pin).is_err());
        let pinned = ScyllaConfig {
            datacenter: Some("dc1".into()),
            consistency: Consistency::LocalQuorum,
            serial_consistency: SerialConsistency::LocalSerial,
            ..ScyllaConfig::default()
        };
        assert!(check(&pinned).is_ok());
    }
}
