//! Unit tests of the settings.

use super::*;

/// Defaults parse and validate; inconsistent limits are refused with a message naming them.
#[test]
fn defaults_are_valid_and_relationships_are_checked() {
    let defaults = ServeArgs::from_flags(Vec::<String>::new()).unwrap();
    assert_eq!(defaults.validate(), Ok(()));
    assert_eq!(defaults.listen.to_string(), "127.0.0.1:7070");
    let too_big = ServeArgs::from_flags(["--ws-message-bytes-max", "2000000"]).unwrap();
    assert!(too_big.validate().unwrap_err().contains("hard-max"));
    let zero = ServeArgs::from_flags(["--items-max", "0"]).unwrap();
    assert!(zero.validate().unwrap_err().contains("items-max"));
    let short = ServeArgs::from_flags(["--jwt-secret", "short"]).unwrap();
    assert!(short.validate().unwrap_err().contains("32 bytes"));
    for weak in ["fifteen-bytes!!", "sixteen bytes, spaced"] {
        let admin = ServeArgs::from_flags(["--admin-token", weak]).unwrap();
        assert!(
            admin.validate().unwrap_err().contains("--admin-token"),
            "{weak}"
        );
    }
    let admin = ServeArgs::from_flags(["--admin-token", "sixteen-bytes-ok"]).unwrap();
    assert_eq!(admin.validate(), Ok(()));
    let scylla = ServeArgs::from_flags([
        "--store",
        "scylla",
        "--scylla-nodes",
        "a:9042,b:9042",
        "--scylla-replication",
        "NetworkTopologyStrategy:dc1=3",
    ])
    .unwrap();
    let config = scylla.scylla_config().unwrap();
    assert_eq!(
        config.nodes,
        vec!["a:9042".to_string(), "b:9042".to_string()]
    );
    assert_eq!(scylla.validate(), Ok(()));
    let bad =
        ServeArgs::from_flags(["--store", "scylla", "--scylla-replication", "Nonsense"]).unwrap();
    assert!(bad.validate().is_err());
}

/// The ScyllaDB defaults are QUORUM and SERIAL with no pin (safe for every keyspace shape);
/// levels below a quorum are refused when the flags are read, naming the flag and the fix;
/// `--scylla-datacenter` pins the node.
#[test]
fn scylla_consistency_flags() {
    use listwire_storage::scylla::{Consistency, SerialConsistency};
    let scylla = |extra: &[&str]| {
        let mut flags = vec!["--store", "scylla"];
        flags.extend_from_slice(extra);
        ServeArgs::from_flags(flags).unwrap()
    };
    let defaults = scylla(&[]).scylla_config().unwrap();
    assert_eq!(defaults.consistency, Consistency::Quorum);
    assert_eq!(defaults.serial_consistency, SerialConsistency::Serial);
    assert_eq!(defaults.datacenter, None);
    for weak in ["one", "local_one", "each_quorum", "any", "two"] {
        let refused = scylla(&["--scylla-consistency", weak])
            .validate()
            .unwrap_err();
        assert!(refused.contains("QUORUM"), "{weak}: {refused}");
    }
    let refused = scylla(&["--scylla-datacenter", "dc 1"])
        .validate()
        .unwrap_err();
    assert!(refused.starts_with("--scylla-datacenter"), "{refused}");
    let pinned = scylla(&[
        "--scylla-datacenter",
        "dc1",
        "--scylla-consistency",
        "local_quorum",
        "--scylla-serial-consistency",
        "local_serial",
    ]);
    assert_eq!(pinned.validate(), Ok(()));
    let config = pinned.scylla_config().unwrap();
    assert_eq!(config.datacenter.as_deref(), Some("dc1"));
    assert_eq!(config.consistency, Consistency::LocalQuorum);
}

/// `--store postgres` needs a URL that parses and sane pool and timeout settings; the
/// messages name the flag to fix.
#[test]
fn postgres_settings_are_validated() {
    let url = "postgres://lw:pw@127.0.0.1:5432/lw";
    let good = ServeArgs::from_flags([
        "--store",
        "postgres",
        "--postgres-url",
        url,
        "--postgres-pool-size",
        "4",
        "--postgres-statement-timeout-ms",
        "750",
    ])
    .unwrap();
    assert_eq!(good.validate(), Ok(()));
    let config = good.postgres_config().unwrap();
    assert_eq!(config.pool_size, 4);
    assert_eq!(config.statement_timeout, Duration::from_millis(750));
    assert_eq!(config.schema, "listwire");
    let missing = ServeArgs::from_flags(["--store", "postgres"]).unwrap();
    if std::env::var_os("LISTWIRE_POSTGRES_URL").is_none() {
        assert!(missing.validate().unwrap_err().contains("--postgres-url"));
    }
    for (flag, value, named) in [
        ("--postgres-pool-size", "0", "pool size"),
        ("--postgres-statement-timeout-ms", "0", "statement timeout"),
        (
            "--postgres-connect-timeout-ms",
            "9999999",
            "connect timeout",
        ),
        ("--postgres-schema", "Bad-Name", "schema"),
        ("--postgres-url", "postgres://h:port/db", "url"),
    ] {
        let mut flags = vec!["--store", "postgres", flag, value];
        if flag != "--postgres-url" {
            flags.extend(["--postgres-url", url]);
        }
        let bad = ServeArgs::from_flags(flags).unwrap();
        let error = bad.validate().unwrap_err();
        assert!(error.contains(named), "{flag} {value}: {error}");
    }
    // Other stores ignore the PostgreSQL settings.
    let embedded = ServeArgs::from_flags(["--postgres-pool-size", "0"]).unwrap();
    assert_eq!(embedded.validate(), Ok(()));
}
