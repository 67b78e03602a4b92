//! Placement: which serving host owns a key. A pure function of (serving hosts, key).
//!
//! The owner of a key is the rendezvous-hash (highest random weight) winner over the serving
//! hosts: every host gets a score `hash(node id, key)` and the highest score wins, ties broken
//! by the larger node id. Adding a host moves only the keys it now wins (about 1/N of them);
//! removing one moves only the keys it owned. Every node computes the same owners from the
//! same set of hosts, whatever its build.
//!
//! The hash is **xxh3-64 (seed 0) over exactly these bytes**: the node id's UTF-8 bytes, one
//! `0xFF` separator (a byte that never occurs in UTF-8, so ids and keys cannot run into each
//! other), then the key's 16 bytes. xxh3 has a published, frozen specification, unlike std's
//! `DefaultHasher`, whose algorithm may change between Rust releases and would then split a
//! cluster built with two compilers during a rolling upgrade. A test pins fixed owners so a
//! change of hash cannot go unnoticed.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};

use rendezvous_hash::{IdNode, NodeHasher, RendezvousNodes};
use xxhash_rust::xxh3::Xxh3Default;

use crate::membership::View;
use crate::NodeId;

/// A key to place: 16 bytes, for listwire a list's UUID bytes.
pub type Key = [u8; 16];

/// The separator between node id and key bytes (never part of a UTF-8 string).
const SEPARATOR: u8 = 0xFF;

/// The key as rendezvous_hash sees it: its `Hash` impl writes exactly the 16 bytes, once, so
/// the bytes fed to xxh3 are defined by this crate and not by std's `Hash` for arrays.
struct HashedKey(Key);

impl Hash for HashedKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(&self.0);
    }
}

/// The specified node hasher described in the module doc.
#[derive(Debug, Clone, Copy, Default)]
struct Xxh3NodeHasher;

impl NodeHasher<NodeId> for Xxh3NodeHasher {
    fn hash<T: Hash>(&self, node: &NodeId, item: &T) -> u64 {
        let mut hasher = Xxh3Default::new();
        hasher.update(node.as_bytes());
        hasher.update(&[SEPARATOR]);
        // Only `HashedKey` is ever hashed here; its `Hash` writes the key bytes verbatim, and
        // `Hasher::write` feeds them to the same stream.
        item.hash(&mut hasher);
        hasher.digest()
    }
}

/// The score of `node_id` for `key`; the highest score owns the key.
fn score(node_id: &NodeId, key: &Key) -> u64 {
    Xxh3NodeHasher.hash(node_id, &HashedKey(*key))
}

/// The placement over one set of serving hosts. Cheap to build for tens of hosts; build a
/// new one whenever the view's serving hosts change.
pub struct Placement {
    hosts: BTreeSet<NodeId>,
    nodes: RendezvousNodes<IdNode<NodeId>, Xxh3NodeHasher>,
}

impl Placement {
    /// The placement over `serving_hosts` (duplicates are ignored).
    pub fn new(serving_hosts: impl IntoIterator<Item = NodeId>) -> Placement {
        let hosts: BTreeSet<NodeId> = serving_hosts.into_iter().collect();
        let mut nodes = RendezvousNodes::new(Xxh3NodeHasher);
        for host in &hosts {
            nodes.insert(IdNode::new(host.clone()));
        }
        Placement { hosts, nodes }
    }

    /// The placement over the view's [`View::serving_hosts`].
    pub fn from_view(view: &View) -> Placement {
        Placement::new(view.serving_hosts())
    }

    /// The hosts this placement spreads keys over.
    pub fn hosts(&self) -> &BTreeSet<NodeId> {
        &self.hosts
    }

    /// The owner of `key`: `None` only when there is no serving host. O(hosts), no
    /// allocation; always equal to the first of [`Placement::candidates`].
    pub fn owner(&self, key: &Key) -> Option<&NodeId> {
        self.hosts
            .iter()
            .max_by(|a, b| (score(a, key), *a).cmp(&(score(b, key), *b)))
    }

    /// Every host in order of preference for `key`: the owner first, then who would own it
    /// if the owner went away, and so on. O(hosts × log hosts) with one allocation.
    pub fn candidates(&self, key: &Key) -> impl Iterator<Item = &NodeId> {
        self.nodes
            .calc_candidates(&HashedKey(*key))
            .map(|node| &**node)
    }
}

/// A key whose owner differs between two placements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    /// The key.
    pub key: Key,
    /// Its owner before (`None`: there was no serving host).
    pub from: Option<NodeId>,
    /// Its owner after (`None`: there is no serving host any more).
    pub to: Option<NodeId>,
}

/// The keys among `keys` whose owner changed from `before` to `after`, in the order given.
pub fn moved_keys<'a>(
    before: &Placement,
    after: &Placement,
    keys: impl IntoIterator<Item = &'a Key>,
) -> Vec<Move> {
    let mut moves = Vec::new();
    for key in keys {
        let from = before.owner(key);
        let to = after.owner(key);
        if from != to {
            moves.push(Move {
                key: *key,
                from: from.cloned(),
                to: to.cloned(),
            });
        }
    }
    moves
}

#[cfg(test)]
#[path = "placement_tests.rs"]
mod tests;
