//! The fault menu and the named scenarios: a plan of timed faults decided from the seed before
//! the run starts, applied by the driver between simulation steps.

use std::time::Duration;

use super::rng::SimRng;

/// One fault, applied at its start and undone at its end.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Both directions between two nodes drop everything (UDP and new or established TCP).
    Partition(usize, usize),
    /// One direction drops everything.
    OneWay(usize, usize),
    /// A group of nodes cut off from the others.
    Split(Vec<usize>),
    /// A paused node: every link to it holds its messages, released at the end (a stale
    /// owner that wakes up).
    Pause(usize),
    /// The node crashes; it restarts (bounce) at the end.
    Crash(usize),
    /// The node drains and stops (SIGTERM); it restarts at the end.
    Drain(usize),
    /// Links fail at random with this probability per message (and repair at random).
    Loss(f64),
    /// Message latency varies up to this many ms (reorders datagrams).
    Latency(u64),
    /// The shared store is slow and fails, some appends with an unknown outcome.
    Store,
    /// The node's wall clock steps by this many ms (and is corrected at the end).
    ClockStep(usize, i64),
    /// The node owning the poll (as the cluster sees it when the fault starts) crashes.
    CrashPollOwner,
    /// The node hosting the most lists when the fault starts is paused.
    PauseBusiest,
}

impl Fault {
    /// Whether the fault takes a node away (at most a minority may be away at once).
    pub fn downs(&self) -> Option<usize> {
        match self {
            Fault::Crash(node) | Fault::Drain(node) | Fault::Pause(node) => Some(*node),
            Fault::Split(group) => group.first().copied(),
            _ => None,
        }
    }
}

/// A fault with its window.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// When it starts (simulated time).
    pub start: Duration,
    /// When it is undone.
    pub end: Duration,
    /// What.
    pub fault: Fault,
}

/// The named scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Faults drawn from the whole menu.
    Random,
    /// A paused owner wakes up while its lists were moved: two owners race for a list.
    TwoOwners,
    /// A node joins (restarts) while another drains, under a partition.
    JoinDuringDrain,
    /// A partition heals while clients keep retrying.
    PartitionHeal,
    /// The hot poll's owner crashes under voters.
    HotPoll,
}

impl Scenario {
    /// Every scenario, in the order seeds cycle through them.
    pub const ALL: [Scenario; 5] = [
        Scenario::Random,
        Scenario::TwoOwners,
        Scenario::JoinDuringDrain,
        Scenario::PartitionHeal,
        Scenario::HotPoll,
    ];

    /// The scenario a seed runs by default.
    pub fn of_seed(seed: u64) -> Scenario {
        Scenario::ALL[(seed % Scenario::ALL.len() as u64) as usize]
    }

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Random => "random",
            Scenario::TwoOwners => "two-owners",
            Scenario::JoinDuringDrain => "join-during-drain",
            Scenario::PartitionHeal => "partition-heal",
            Scenario::HotPoll => "hot-poll",
        }
    }

    /// The scenario called `name`.
    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }
}

fn secs(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// Draws a plan of faults for `nodes` nodes between `from` and `to` (ms).
pub fn plan(
    scenario: Scenario,
    rng: &mut SimRng,
    nodes: usize,
    (from, to): (u64, u64),
) -> Vec<Planned> {
    let mut plan = match scenario {
        Scenario::Random => Vec::new(),
        Scenario::TwoOwners => {
            let at = rng.between(from + 2_000, from + 6_000);
            // The store turns slow first, so the busiest node is paused with appends in
            // flight; they land when it wakes, after its lists moved and were written elsewhere.
            vec![
                window(at - 2_000, 11_000, Fault::Store),
                window(at, 7_000, Fault::PauseBusiest),
            ]
        }
        Scenario::JoinDuringDrain => {
            let draining = rng.below(nodes as u64) as usize;
            let joining = (draining + 1) % nodes;
            let at = rng.between(from + 2_000, from + 6_000);
            let other = (draining + 2) % nodes;
            vec![
                window(from, at - from + 500, Fault::Crash(joining)),
                window(at, 12_000, Fault::Drain(draining)),
                window(at + 200, 4_000, Fault::Partition(draining, other)),
            ]
        }
        Scenario::PartitionHeal => {
            let mut minority: Vec<usize> = (0..nodes).collect();
            minority.truncate(nodes / 2);
            let at = rng.between(from, from + 5_000);
            vec![window(
                at,
                rng.between(5_000, 10_000),
                Fault::Split(minority),
            )]
        }
        Scenario::HotPoll => {
            let at = rng.between(from + 2_000, from + 5_000);
            vec![window(at, 6_000, Fault::CrashPollOwner)]
        }
    };
    plan.extend(menu(rng, nodes, (from, to)));
    plan.sort_by_key(|planned| planned.start);
    plan
}

fn window(start: u64, length: u64, fault: Fault) -> Planned {
    Planned {
        start: secs(start),
        end: secs(start + length),
        fault,
    }
}

/// Random faults from the whole menu, each kind with its own probability per window.
fn menu(rng: &mut SimRng, nodes: usize, (from, to): (u64, u64)) -> Vec<Planned> {
    let mut plan = Vec::new();
    let mut at = from + rng.between(0, 3_000);
    while at < to {
        let length = rng.between(1_000, 8_000).min(to - at);
        let node = rng.below(nodes as u64) as usize;
        let other = (node + 1 + rng.below(nodes as u64 - 1) as usize) % nodes;
        let draw = rng.below(100);
        let fault = match draw {
            0..=14 => Fault::Partition(node, other),
            15..=24 => Fault::OneWay(node, other),
            25..=36 => Fault::Pause(node),
            37..=51 => Fault::Crash(node),
            52..=58 => Fault::Drain(node),
            59..=63 => Fault::Loss(0.02),
            64..=73 => Fault::Latency(rng.between(20, 400)),
            74..=88 => Fault::Store,
            _ => {
                let step = rng.between(1_000, 900_000) as i64;
                Fault::ClockStep(node, if rng.chance(0.5) { step } else { -step })
            }
        };
        plan.push(window(at, length, fault));
        at += length + rng.between(500, 6_000);
    }
    plan
}
