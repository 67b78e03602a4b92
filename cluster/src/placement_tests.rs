//! Placement tests: pinned owners (a change of hash must break them) and properties of
//! rendezvous hashing checked with proptest.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

fn ids(names: &[&str]) -> Vec<NodeId> {
    names
        .iter()
        .map(|name| NodeId::new(*name).unwrap())
        .collect()
}

fn key(n: u8) -> Key {
    let mut key = [0u8; 16];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = n.wrapping_mul(31).wrapping_add(i as u8);
    }
    key
}

/// Fixed hosts and keys map to fixed owners. If this fails, the placement hash or the bytes
/// it is fed changed, and a mixed-version cluster would disagree on owners: do not update the
/// expectations without a migration plan.
#[test]
fn owners_of_fixed_inputs_are_pinned() {
    let placement = Placement::new(ids(&["node-a", "node-b", "node-c"]));
    let owners: Vec<&str> = (0..8)
        .map(|n| placement.owner(&key(n)).unwrap().as_str())
        .collect();
    assert_eq!(owners, PINNED_OWNERS);
    let node_a = NodeId::new("node-a").unwrap();
    let mut bytes = b"node-a".to_vec();
    bytes.push(0xFF);
    bytes.extend_from_slice(&[0u8; 16]);
    assert_eq!(
        score(&node_a, &[0u8; 16]),
        xxhash_rust::xxh3::xxh3_64(&bytes)
    );
    assert_eq!(
        score(&node_a, &[0u8; 16]),
        PINNED_SCORE,
        "{:#x}",
        score(&node_a, &[0u8; 16])
    );
}

const PINNED_OWNERS: [&str; 8] = [
    "node-b", "node-c", "node-c", "node-c", "node-c", "node-a", "node-a", "node-a",
];
const PINNED_SCORE: u64 = 0xfbc1_9f6a_88f1_565a;

/// With no serving host nothing is owned; with one, it owns everything.
#[test]
fn empty_and_single_host() {
    let empty = Placement::new(Vec::new());
    assert_eq!(empty.owner(&key(1)), None);
    assert_eq!(empty.candidates(&key(1)).count(), 0);
    let single = Placement::new(ids(&["solo"]));
    assert_eq!(single.owner(&key(1)).unwrap().as_str(), "solo");
}

/// `moved_keys` lists exactly the keys whose owner differs, with both owners.
#[test]
fn moved_keys_lists_changed_owners() {
    let before = Placement::new(ids(&["a", "b"]));
    let after = Placement::new(ids(&["a", "b", "c"]));
    let keys: Vec<Key> = (0..=255).map(key).collect();
    let moves = moved_keys(&before, &after, &keys);
    assert!(!moves.is_empty());
    for key in &keys {
        let moved = moves.iter().find(|m| m.key == *key);
        assert_eq!(moved.is_some(), before.owner(key) != after.owner(key));
    }
    for moved in moves {
        assert_eq!(moved.to.as_ref().map(NodeId::as_str), Some("c"));
        assert_eq!(moved.from.as_ref(), before.owner(&moved.key));
    }
    let to_nothing = moved_keys(&before, &Placement::new(Vec::new()), &keys);
    assert_eq!(to_nothing.len(), keys.len());
}

fn host_set() -> impl Strategy<Value = BTreeSet<String>> {
    proptest::collection::btree_set("[a-z]{1,8}", 1..12)
}

fn keys() -> impl Strategy<Value = Vec<Key>> {
    proptest::collection::vec(any::<Key>(), 200..400)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, rng_seed: proptest::test_runner::RngSeed::Fixed(7), ..ProptestConfig::default() })]

    /// Every key has an owner, the owner is a host and the first candidate, and the candidates
    /// are every host exactly once.
    #[test]
    fn every_key_is_owned(hosts in host_set(), keys in keys()) {
        let placement = Placement::new(hosts.iter().map(|h| NodeId::new(h.clone()).unwrap()));
        for key in &keys {
            let owner = placement.owner(key).unwrap();
            prop_assert!(placement.hosts().contains(owner));
            let candidates: Vec<&NodeId> = placement.candidates(key).collect();
            prop_assert_eq!(candidates.first().copied(), Some(owner));
            let distinct: BTreeSet<&NodeId> = candidates.iter().copied().collect();
            prop_assert_eq!(distinct.len(), hosts.len());
            prop_assert_eq!(candidates.len(), hosts.len());
        }
    }

    /// Adding a host moves only keys that now map to it, and about 1/N of them.
    #[test]
    fn adding_a_host_moves_only_its_keys(hosts in host_set(), keys in keys()) {
        let newcomer = NodeId::new("newcomer-0").unwrap();
        let before = Placement::new(hosts.iter().map(|h| NodeId::new(h.clone()).unwrap()));
        let mut grown: BTreeSet<NodeId> = before.hosts().clone();
        grown.insert(newcomer.clone());
        let after = Placement::new(grown.clone());
        let moves = moved_keys(&before, &after, &keys);
        for moved in &moves {
            prop_assert_eq!(moved.to.as_ref(), Some(&newcomer));
        }
        // Expect keys / N moves; allow a generous binomial margin so the test is stable.
        let expected = keys.len() as f64 / grown.len() as f64;
        let margin = 5.0 * expected.sqrt() + 5.0;
        prop_assert!((moves.len() as f64 - expected).abs() <= margin,
            "{} moved, expected about {expected:.0}", moves.len());
    }

    /// Removing a host moves only the keys it owned, each to its next candidate.
    #[test]
    fn removing_a_host_moves_only_its_keys(hosts in host_set(), keys in keys()) {
        prop_assume!(hosts.len() >= 2);
        let before = Placement::new(hosts.iter().map(|h| NodeId::new(h.clone()).unwrap()));
        let leaver = before.hosts().iter().next().unwrap().clone();
        let after = Placement::new(before.hosts().iter().filter(|h| **h != leaver).cloned());
        for moved in moved_keys(&before, &after, &keys) {
            prop_assert_eq!(moved.from.as_ref(), Some(&leaver));
            let second = before.candidates(&moved.key).nth(1);
            prop_assert_eq!(moved.to.as_ref(), second);
        }
    }

    /// Placement does not depend on the order hosts are given in (ties, if a hash ever
    /// collided, are broken by node id).
    #[test]
    fn order_of_hosts_does_not_matter(hosts in host_set(), keys in keys()) {
        let forward = Placement::new(hosts.iter().map(|h| NodeId::new(h.clone()).unwrap()));
        let backward = Placement::new(hosts.iter().rev().map(|h| NodeId::new(h.clone()).unwrap()));
        for key in &keys {
            prop_assert_eq!(forward.owner(key), backward.owner(key));
            prop_assert!(forward.candidates(key).eq(backward.candidates(key)));
        }
    }
}
