//! Every combination of keyspace shape, consistency, serial consistency and pin, against the
//! rule of `storage/SCHEMA.md` ("Consistency"), written out per shape rather than recomputed.

use super::*;
use crate::scylla::ScyllaConfig;

const CONSISTENCIES: [Consistency; 6] = [
    Consistency::One,
    Consistency::LocalOne,
    Consistency::Quorum,
    Consistency::LocalQuorum,
    Consistency::EachQuorum,
    Consistency::All,
];
const SERIALS: [SerialConsistency; 2] = [SerialConsistency::Serial, SerialConsistency::LocalSerial];

fn replication(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn datacenters(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

fn shape(pairs: &[(&str, &str)], cluster: &[&str]) -> KeyspaceShape {
    match keyspace_shape("lw", &replication(pairs), &datacenters(cluster)) {
        Ok(shape) => shape,
        Err(err) => panic!("shape of {pairs:?}: {err}"),
    }
}

const SIMPLE: &str = "org.apache.cassandra.locator.SimpleStrategy";
const NTS: &str = "org.apache.cassandra.locator.NetworkTopologyStrategy";

fn is_quorum(consistency: Consistency) -> bool {
    matches!(
        consistency,
        Consistency::Quorum | Consistency::LocalQuorum | Consistency::All
    )
}

/// Runs the check for every consistency and serial consistency and compares with `expected`.
fn assert_verdicts(
    what: &str,
    shape: &KeyspaceShape,
    datacenter: Option<&str>,
    expected: impl Fn(Consistency, SerialConsistency) -> bool,
) {
    for consistency in CONSISTENCIES {
        for serial in SERIALS {
            let levels = Levels {
                consistency,
                serial,
                datacenter,
            };
            let verdict = check_keyspace("lw", &levels, shape);
            assert_eq!(
                verdict.is_ok(),
                expected(consistency, serial),
                "{what}: {consistency:?} + {serial:?} pinned to {datacenter:?}: {verdict:?}"
            );
            if let Err(err) = verdict {
                assert!(
                    matches!(err, Error::InvalidArgument(_)),
                    "{what}: a refusal is a configuration error: {err:?}"
                );
            }
        }
    }
}

#[test]
fn shapes_are_read_from_the_replication_map() {
    let one = KeyspaceShape::OneDatacenter {
        datacenter: "dc1".into(),
    };
    let simple = [("class", SIMPLE), ("replication_factor", "3")];
    let unaware = |cluster_datacenters| KeyspaceShape::DatacenterUnaware {
        strategy: "SimpleStrategy".into(),
        cluster_datacenters,
    };
    assert_eq!(shape(&simple, &["dc1"]), unaware(1));
    assert_eq!(shape(&simple, &[]), unaware(0));
    assert_eq!(shape(&simple, &["dc1", "dc2"]), unaware(2));
    assert_eq!(shape(&[("class", NTS), ("dc1", "3")], &["dc1", "dc2"]), one);
    let zero_elsewhere = [("class", NTS), ("dc1", "3"), ("dc2", "0")];
    assert_eq!(shape(&zero_elsewhere, &["dc1", "dc2"]), one);
    let two = KeyspaceShape::Datacenters {
        datacenters: vec!["dc1".into(), "dc2".into()],
    };
    assert_eq!(
        shape(&[("class", NTS), ("dc2", "3"), ("dc1", "3")], &["dc1"]),
        two
    );
    let short_names = [
        ("class", "NetworkTopologyStrategy"),
        ("dc1", "1"),
        ("dc2", "1"),
    ];
    assert_eq!(shape(&short_names, &[]), two);
    let shorthand = [("class", NTS), ("replication_factor", "3")];
    assert_eq!(shape(&shorthand, &["dc1", "dc2"]), two);
    let everywhere = [("class", "org.apache.cassandra.locator.EverywhereStrategy")];
    assert!(matches!(
        shape(&everywhere, &["dc1", "dc2"]),
        KeyspaceShape::DatacenterUnaware { .. }
    ));
    let nowhere = replication(&[("class", NTS), ("dc1", "0")]);
    let refused = keyspace_shape("lw", &nowhere, &datacenters(&["dc1"]));
    assert!(matches!(refused, Err(Error::Backend(_))), "{refused:?}");
}

#[test]
fn one_datacenter_allows_every_quorum_level_and_either_serial() {
    let nts = shape(&[("class", NTS), ("dc1", "3")], &["dc1", "dc2"]);
    assert_verdicts("NTS with one datacenter", &nts, None, |c, _| is_quorum(c));
    assert_verdicts("NTS pinned to it", &nts, Some("dc1"), |c, _| is_quorum(c));
    assert_verdicts("NTS pinned elsewhere", &nts, Some("dc2"), |_, _| false);
    for cluster in [&["dc1"][..], &[]] {
        let simple = shape(&[("class", SIMPLE)], cluster);
        assert_verdicts("SimpleStrategy, one datacenter", &simple, None, |c, _| {
            is_quorum(c)
        });
        // A pin needs NetworkTopologyStrategy, even where it would be harmless.
        assert_verdicts("SimpleStrategy pinned", &simple, Some("dc1"), |_, _| false);
    }
}

#[test]
fn several_datacenters_need_serial_and_quorum_unless_pinned() {
    let shape = shape(
        &[("class", NTS), ("dc1", "3"), ("dc2", "3")],
        &["dc1", "dc2"],
    );
    assert_verdicts("NTS dc1+dc2, unpinned", &shape, None, |c, s| {
        matches!(c, Consistency::Quorum | Consistency::All) && s == SerialConsistency::Serial
    });
    for pinned in ["dc1", "dc2"] {
        assert_verdicts("NTS dc1+dc2, pinned", &shape, Some(pinned), |c, _| {
            is_quorum(c)
        });
    }
    assert_verdicts(
        "NTS dc1+dc2, pinned elsewhere",
        &shape,
        Some("dc3"),
        |_, _| false,
    );
}

#[test]
fn datacenter_unaware_placement_across_datacenters_needs_serial_and_quorum() {
    let shape = shape(&[("class", SIMPLE)], &["dc1", "dc2"]);
    assert_verdicts("SimpleStrategy across dc1+dc2", &shape, None, |c, s| {
        matches!(c, Consistency::Quorum | Consistency::All) && s == SerialConsistency::Serial
    });
    assert_verdicts("SimpleStrategy pinned", &shape, Some("dc1"), |_, _| false);
}

#[test]
fn the_defaults_are_safe_for_every_shape() {
    let defaults = ScyllaConfig::default();
    let levels = Levels {
        consistency: defaults.consistency,
        serial: defaults.serial_consistency,
        datacenter: None,
    };
    let shapes = [
        shape(&[("class", SIMPLE)], &["dc1"]),
        shape(&[("class", SIMPLE)], &["dc1", "dc2"]),
        shape(&[("class", NTS), ("dc1", "3")], &["dc1"]),
        shape(
            &[("class", NTS), ("dc1", "3"), ("dc2", "3")],
            &["dc1", "dc2"],
        ),
    ];
    for shape in &shapes {
        let verdict = check_keyspace("lw", &levels, shape);
        assert!(verdict.is_ok(), "defaults on {shape:?}: {verdict:?}");
    }
}

#[test]
fn refusals_say_what_to_set_instead() {
    let message = |result: Result<(), Error>| match result {
        Err(err) => err.to_string(),
        Ok(()) => panic!("expected a refusal"),
    };
    for weak in [Consistency::One, Consistency::LocalOne] {
        let text = message(check_levels(weak));
        assert!(
            text.contains("below a quorum") && text.contains("set QUORUM"),
            "{text}"
        );
    }
    let text = message(check_levels(Consistency::EachQuorum));
    assert!(
        text.contains("refuses it for reads") && text.contains("set QUORUM"),
        "{text}"
    );
    let multi = shape(&[("class", NTS), ("dc1", "3"), ("dc2", "3")], &[]);
    let local = Levels {
        consistency: Consistency::LocalQuorum,
        serial: SerialConsistency::LocalSerial,
        datacenter: None,
    };
    let text = message(check_keyspace("lw", &local, &multi));
    for needle in [
        "dc1, dc2",
        "SERIAL",
        "QUORUM",
        "pin every listwire node",
        "same datacenter",
    ] {
        assert!(text.contains(needle), "{needle:?} in {text}");
    }
    let pinned_elsewhere = Levels {
        datacenter: Some("dc3"),
        ..local
    };
    let text = message(check_keyspace("lw", &pinned_elsewhere, &multi));
    assert!(text.contains("dc3") && text.contains("dc1, dc2"), "{text}");
    let unaware = shape(&[("class", SIMPLE)], &["dc1", "dc2"]);
    let text = message(check_keyspace("lw", &local, &unaware));
    assert!(
        text.contains("NetworkTopologyStrategy") && text.contains("SERIAL"),
        "{text}"
    );
    let one_dc_simple = shape(&[("class", SIMPLE)], &["dc1"]);
    let pinned = Levels {
        datacenter: Some("dc1"),
        ..local
    };
    let text = message(check_keyspace("lw", &pinned, &one_dc_simple));
    assert!(text.contains("needs no pin"), "{text}");
}
