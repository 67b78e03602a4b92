//! How a node enters the cluster: its id, its gossip generation, and when it may announce
//! `serving`.
//!
//! * The node id defaults to the client address; an unspecified one (`0.0.0.0:8080`) would be
//!   the same on every machine, so it is refused. Two nodes with one id are a
//!   misconfiguration the cluster cannot detect (gossip sees one node whose generation
//!   flips), so each node needs its own `--node-id` or a distinct address.
//! * The generation tells gossip a restarted node from its previous life. It is kept in the
//!   data directory and always grows, even if the wall clock stepped back across the restart.
//! * A node given seeds announces `serving` only once it sees another live member, a majority
//!   of its seeds, and a majority of the hosts it knew when it last served (kept in the data
//!   directory, `cluster-hosts`), and the member set has held still for a few gossip rounds.
//!   Otherwise a restart cut off from the cluster — alone, or with a few others on the same
//!   side — would count a majority of what it can see and host every list while the real
//!   cluster goes on writing them. A node without seeds (other than itself) bootstraps a new
//!   cluster alone.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use listwire_cluster::membership::View;
use listwire_cluster::NodeId;
use tokio::time::Instant;

use super::config::ClusterArgs;
use super::state::ClusterState;

/// Gossip rounds the member set must hold still before a seeded node announces `serving`.
const STABLE_ROUNDS: u32 = 3;
/// How often a node waiting for its cluster says so in the log.
const WAITING_LOG_EVERY: Duration = Duration::from_secs(10);
/// The file in the data directory that keeps the last gossip generation.
const GENERATION_FILE: &str = "cluster-generation";
/// The file in the data directory that keeps the hosts this node knew while it served.
const HOSTS_FILE: &str = "cluster-hosts";

/// The node id: `--node-id`, else the client address the node advertises.
pub fn node_id(args: &ClusterArgs, client_addr: SocketAddr) -> anyhow::Result<NodeId> {
    if let Some(id) = &args.node_id {
        return Ok(NodeId::new(id.clone())?);
    }
    if let Some(advertised) = &args.client_advertise {
        return Ok(NodeId::new(advertised.clone())?);
    }
    if client_addr.ip().is_unspecified() {
        anyhow::bail!(
            "cannot name this node after {client_addr}, which every machine shares: set --node-id \
             (or --client-advertise) to something unique in the cluster"
        );
    }
    Ok(NodeId::new(client_addr.to_string())?)
}

/// The next gossip generation: the wall clock in ms, but always past the one this data
/// directory used last. Written back before it is used.
pub fn next_generation(data_dir: &Path, now_ms: u64) -> anyhow::Result<u64> {
    let path = data_dir.join(GENERATION_FILE);
    let last = match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .with_context(|| format!("{} does not hold a number", path.display()))?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    let next = now_ms.max(last + 1);
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    write_atomically(data_dir, GENERATION_FILE, &next.to_string())?;
    Ok(next)
}

/// Replaces `data_dir/name` with `text` (a temporary file, synced, then renamed over it).
fn write_atomically(data_dir: &Path, name: &str, text: &str) -> anyhow::Result<()> {
    let path = data_dir.join(name);
    let temporary = data_dir.join(format!("{name}.tmp"));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, &path)
    };
    write().with_context(|| format!("writing {}", path.display()))
}

/// The hosts this node knew when it last served (none for a fresh data directory).
pub fn known_hosts(data_dir: &Path) -> anyhow::Result<BTreeSet<NodeId>> {
    let path = data_dir.join(HOSTS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| {
            NodeId::new(line.to_owned())
                .with_context(|| format!("{} holds {line:?}", path.display()))
        })
        .collect()
}

/// Records the hosts a serving node knows, for its next start.
pub fn remember_hosts(data_dir: &Path, hosts: &BTreeSet<NodeId>) -> anyhow::Result<()> {
    let text: String = hosts.iter().map(|id| format!("{id}\n")).collect();
    write_atomically(data_dir, HOSTS_FILE, &text)
}

/// What a seeded node must see before it serves (see the module doc).
pub struct Quorum {
    /// Each seed's addresses (a name may resolve to several); an unresolved seed has none.
    seeds: Vec<Vec<SocketAddr>>,
    /// The hosts this node knew when it last served.
    known: BTreeSet<NodeId>,
}

impl Quorum {
    /// The quorum of `seeds` (resolved now) and of the hosts known in `data_dir`.
    pub async fn new(seeds: &[String], data_dir: &Path) -> anyhow::Result<Quorum> {
        let mut resolved = Vec::new();
        for seed in seeds
            .iter()
            .map(|seed| seed.trim())
            .filter(|seed| !seed.is_empty())
        {
            let addrs = match seed.parse::<SocketAddr>() {
                Ok(addr) => vec![addr],
                Err(_) => match tokio::net::lookup_host(seed).await {
                    Ok(addrs) => addrs.collect(),
                    Err(error) => {
                        tracing::warn!(%seed, %error, "seed does not resolve; it counts as out of reach");
                        Vec::new()
                    }
                },
            };
            resolved.push(addrs);
        }
        Ok(Quorum {
            seeds: resolved,
            known: known_hosts(data_dir)?,
        })
    }

    /// Whether `view` shows a majority of the seeds and of the known hosts live (this node
    /// counts as live, at its gossip address `own`).
    pub fn is_met(&self, view: &View, own: SocketAddr) -> bool {
        let live: Vec<_> = view.live_members().collect();
        let live_addrs: BTreeSet<SocketAddr> = live
            .iter()
            .filter_map(|member| member.gossip_addr())
            .chain([own])
            .collect();
        let seeds_seen = self
            .seeds
            .iter()
            .filter(|addrs| addrs.iter().any(|addr| live_addrs.contains(addr)))
            .count();
        let live_ids: BTreeSet<&NodeId> = live.iter().map(|member| member.node_id()).collect();
        let mut known: BTreeSet<&NodeId> = self.known.iter().collect();
        known.insert(view.self_id());
        let known_seen = known.iter().filter(|id| live_ids.contains(*id)).count();
        2 * seeds_seen > self.seeds.len() && 2 * known_seen > known.len()
    }
}

/// Whether any seed is another node (a seed naming this node's own gossip address does not
/// count: such a node bootstraps the cluster).
pub fn has_other_seeds(seeds: &[String], own_gossip: SocketAddr) -> bool {
    seeds.iter().any(|seed| {
        let seed = seed.trim();
        !seed.is_empty() && seed.parse::<SocketAddr>().ok() != Some(own_gossip)
    })
}

/// The live members other than this node.
fn live_peers(view: &View) -> BTreeSet<NodeId> {
    view.live_members()
        .map(|member| member.node_id().clone())
        .filter(|id| id != view.self_id())
        .collect()
}

/// Waits until this node sees another live member and `quorum`, and the set of live members
/// held still for [`STABLE_ROUNDS`] gossip rounds. Waits as long as it takes (the node stays
/// `joining` and not ready); the caller cancels it on shutdown.
pub async fn wait_for_peers(
    state: &ClusterState,
    round: Duration,
    quorum: &Quorum,
    own: SocketAddr,
) {
    let mut last_seen: Option<BTreeSet<NodeId>> = None;
    let mut stable = 0;
    let mut next_log = Instant::now() + WAITING_LOG_EVERY;
    let mut ticker = tokio::time::interval(round);
    loop {
        ticker.tick().await;
        let picture = state.picture();
        let peers = live_peers(&picture.view);
        let met = !peers.is_empty() && quorum.is_met(&picture.view, own);
        if met && last_seen.as_ref() == Some(&peers) {
            stable += 1;
            if stable >= STABLE_ROUNDS {
                return;
            }
        } else {
            stable = 0;
        }
        let in_sight = peers.len();
        last_seen = Some(peers);
        if Instant::now() >= next_log {
            tracing::warn!(peers = in_sight, "not enough of the cluster in sight (a majority of the seeds and of the hosts known before); staying joining (not serving). To start a new cluster on this node alone, start it without --seed");
            next_log = Instant::now() + WAITING_LOG_EVERY;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        cluster: ClusterArgs,
    }

    fn args(extra: &[&str]) -> ClusterArgs {
        let mut argv = vec![
            "test",
            "--cluster-secret",
            "0123456789abcdef0123456789abcdef",
        ];
        argv.extend_from_slice(extra);
        Flags::parse_from(argv).cluster
    }

    /// Goal: the node id comes from the flag, else the advertised or actual client address,
    /// and an unspecified address (the same on every machine) is refused.
    #[test]
    fn node_ids_are_explicit_or_a_specific_address() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let specific: SocketAddr = "10.0.0.7:8080".parse().unwrap();
        assert_eq!(
            node_id(&args(&["--node-id", "n1"]), any).unwrap().as_str(),
            "n1"
        );
        let advertised = args(&["--client-advertise", "web-3:8080"]);
        assert_eq!(node_id(&advertised, any).unwrap().as_str(), "web-3:8080");
        assert_eq!(
            node_id(&args(&[]), specific).unwrap().as_str(),
            "10.0.0.7:8080"
        );
        let refused = node_id(&args(&[]), any).unwrap_err().to_string();
        assert!(refused.contains("--node-id"), "{refused}");
    }

    /// Goal: generations grow across restarts even when the clock went back, and survive in
    /// the data directory.
    #[test]
    fn generations_always_grow() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(next_generation(dir.path(), 1_000).unwrap(), 1_000);
        assert_eq!(
            next_generation(dir.path(), 500).unwrap(),
            1_001,
            "clock stepped back"
        );
        assert_eq!(next_generation(dir.path(), 5_000).unwrap(), 5_000);
        std::fs::write(dir.path().join(GENERATION_FILE), "garbage").unwrap();
        assert!(
            next_generation(dir.path(), 6_000).is_err(),
            "a corrupt file is reported"
        );
    }

    /// Goal: only seeds naming another node make a node wait for peers.
    #[test]
    fn own_address_is_not_a_seed() {
        let own: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        assert!(!has_other_seeds(&[], own));
        assert!(!has_other_seeds(&["127.0.0.1:7000".into()], own));
        assert!(!has_other_seeds(&[" ".into()], own));
        assert!(has_other_seeds(&["127.0.0.1:7001".into()], own));
        assert!(has_other_seeds(&["seed.internal:7000".into()], own));
    }

    fn member(name: &str, port: u16, live: bool) -> listwire_cluster::membership::Member {
        use listwire_cluster::membership::{Member, NodeState, Roles};
        Member::new(NodeId::new(name).unwrap(), 1)
            .with_roles(Roles::HOST)
            .with_state(NodeState::Serving)
            .with_gossip_addr(format!("127.0.0.1:{port}").parse().unwrap())
            .with_liveness(live)
    }

    /// Goal: a seeded node serves only with a majority of its seeds and of the hosts it knew
    /// live: two nodes that see only each other do not make a cluster of five.
    #[tokio::test]
    async fn the_quorum_needs_most_seeds_and_most_known_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let own: SocketAddr = "127.0.0.1:7008".parse().unwrap();
        let five: Vec<String> = (7005..=7009)
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        let quorum = Quorum::new(&five, dir.path()).await.unwrap();
        let pair = View::new(
            NodeId::new("n8").unwrap(),
            [member("n8", 7008, true), member("n9", 7009, true)],
        );
        assert!(!quorum.is_met(&pair, own), "2 of 5 seeds");
        let three = View::new(
            NodeId::new("n8").unwrap(),
            [
                member("n7", 7007, true),
                member("n8", 7008, true),
                member("n9", 7009, true),
            ],
        );
        assert!(
            quorum.is_met(&three, own),
            "3 of 5 seeds, no hosts known before"
        );

        let hosts: BTreeSet<NodeId> = ["n5", "n6", "n7", "n8", "n9"]
            .into_iter()
            .map(|name| NodeId::new(name).unwrap())
            .collect();
        remember_hosts(dir.path(), &hosts).unwrap();
        assert_eq!(
            known_hosts(dir.path()).unwrap(),
            hosts,
            "kept across restarts"
        );
        let one_seed = ["127.0.0.1:7009".to_owned()];
        let quorum = Quorum::new(&one_seed, dir.path()).await.unwrap();
        assert!(
            !quorum.is_met(&pair, own),
            "its seed is there, but 2 of the 5 hosts it knew"
        );
        assert!(quorum.is_met(&three, own), "3 of the 5 hosts it knew");
        let with_dead = View::new(
            NodeId::new("n8").unwrap(),
            [
                member("n6", 7006, false),
                member("n7", 7007, false),
                member("n8", 7008, true),
                member("n9", 7009, true),
            ],
        );
        assert!(!quorum.is_met(&with_dead, own), "dead members do not count");
    }
}
