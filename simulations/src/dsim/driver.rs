//! One seed from start to end: builds the simulation (nodes, store, clients), applies the
//! fault plan between steps, heals everything, lets clients finish, then runs the checkers.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use uuid::Uuid;

use super::check::{self, Bounds, Checked};
use super::clients::{Clients, ListSpec, OP_DEADLINE};
use super::faults::{self, Fault, Planned, Scenario};
use super::gateway::snapshot_once;
use super::net::TicketDesk;
use super::node::{host_name, run_node, wall_ms, Gateways, Request, World, RUNNING};
use super::records::{FinalRead, Records};
use super::rng::SimRng;
use super::store::{FaultyStore, StoreFaults};
use super::trace::{fnv1a, Trace};

/// The simulated wall clock's start: 2026-01-01T00:00:00Z.
const SIM_EPOCH: Duration = Duration::from_secs(1_767_225_600);
/// When clients start their load (the cluster has formed by then).
const LOAD_START_MS: u64 = 5_000;
/// The default message latency range.
const LATENCY_MS: (u64, u64) = (1, 10);

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Nodes in the cluster.
    pub nodes: usize,
    /// Ordinary lists (plus one poll).
    pub lists: usize,
    /// Writers adding items.
    pub writers: usize,
    /// Subscribers.
    pub subscribers: usize,
    /// Poll voters.
    pub voters: usize,
    /// How long the faulty load lasts, in simulated seconds.
    pub load_secs: u64,
    /// The scenario (default: by seed).
    pub scenario: Option<Scenario>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            nodes: 5,
            lists: 4,
            writers: 6,
            subscribers: 6,
            voters: 6,
            load_secs: 30,
            scenario: None,
        }
    }
}

/// What one seed did and whether it held.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// The scenario it ran.
    pub scenario: Scenario,
    /// Simulated time.
    pub simulated: Duration,
    /// Faults injected (planned windows applied, plus store faults).
    pub faults: u64,
    /// What the checkers looked at.
    pub checked: Checked,
    /// Failed invariants (empty: the run held).
    pub failures: Vec<String>,
    /// The trace.
    pub trace: Vec<String>,
    /// Its hash.
    pub trace_hash: u64,
    /// The hash of the simulation's own decisions (the fault plan drawn from the seed).
    pub plan_hash: u64,
}

/// Runs `seed`.
pub fn run_seed(seed: u64, options: &Options) -> RunReport {
    let scenario = options.scenario.unwrap_or_else(|| Scenario::of_seed(seed));
    let mut rng = SimRng::new(seed);
    let trace = Trace::default();
    let dirs = tempfile::tempdir().expect("a temporary directory");
    let store_faults = StoreFaults {
        slow: 0.2,
        slow_max: Duration::from_millis(1_500),
        unavailable: 0.05,
        unknown: 0.05,
    };
    let world = World {
        store: FaultyStore::new(store_faults, rng.fork(1), trace.clone()),
        desk: TicketDesk::default(),
        gateways: Gateways::new(options.nodes),
        clock_offsets: Arc::new((0..options.nodes).map(|_| AtomicI64::new(0)).collect()),
        frozen: Arc::new(
            (0..options.nodes)
                .map(|_| AtomicI64::new(RUNNING))
                .collect(),
        ),
        dirs: Arc::new(
            (0..options.nodes)
                .map(|index| dirs.path().join(host_name(index)))
                .collect(),
        ),
        trace: trace.clone(),
        seed,
        exited: Arc::new((0..options.nodes).map(|_| AtomicBool::new(false)).collect()),
    };
    let load_end = LOAD_START_MS + options.load_secs * 1_000;
    let final_ms = load_end + OP_DEADLINE.as_millis() as u64 + 10_000;
    let plan = faults::plan(
        scenario,
        &mut rng.fork(2),
        options.nodes,
        (LOAD_START_MS + 1_000, load_end - 2_000),
    );
    let plan_hash = fnv1a(format!("{scenario:?} {plan:?}").into_bytes());
    for planned in &plan {
        trace.record_at(
            planned.start,
            format!("plan {:?} until {:?}", planned.fault, planned.end),
        );
    }
    let mut sim = turmoil::Builder::new()
        // A fixed epoch: turmoil's default is the real clock at start, which would make every
        // node's wall time (and so its gossip generation, a hashed key) differ between replays.
        .epoch(SystemTime::UNIX_EPOCH + SIM_EPOCH)
        .simulation_duration(Duration::from_millis(final_ms + 60_000))
        .rng_seed(seed)
        .min_message_latency(Duration::from_millis(LATENCY_MS.0))
        .max_message_latency(Duration::from_millis(LATENCY_MS.1))
        .repair_rate(0.5)
        .build();
    for index in 0..options.nodes {
        let world = world.clone();
        sim.host(host_name(index), move || run_node(world.clone(), index));
    }
    let records = Records::default();
    let poll_id = Arc::new(Mutex::new(None));
    spawn_clients(
        &mut sim,
        (&world, &records, &poll_id),
        options,
        (rng.fork(3), load_end, final_ms),
    );
    let mut driver = Driver {
        world: world.clone(),
        pending: plan,
        active: Vec::new(),
        poll_id,
        applied: 0,
        bounds: Bounds::default(),
        lists: options.lists + 1,
    };
    let outcome = driver.run(&mut sim, Duration::from_millis(load_end));
    let simulated = sim.elapsed();
    drop(sim);
    let mut failures = Vec::new();
    if let Err(error) = outcome {
        failures.push(format!("simulation: {error}"));
    }
    let checked = check::run_all(&world.store, &records, &driver.bounds, &mut failures);
    let store_faults = world.store.counts.slow.load(Ordering::Relaxed)
        + world.store.counts.unavailable.load(Ordering::Relaxed)
        + world.store.counts.unknown.load(Ordering::Relaxed);
    RunReport {
        seed,
        scenario,
        simulated,
        faults: driver.applied + store_faults,
        checked,
        failures,
        trace_hash: trace.hash(),
        plan_hash,
        trace: trace.lines(),
    }
}

fn spawn_clients(
    sim: &mut turmoil::Sim<'_>,
    (world, records, poll_id): (&World, &Records, &Arc<Mutex<Option<Uuid>>>),
    options: &Options,
    (mut rng, load_end, final_ms): (SimRng, u64, u64),
) {
    let clients = Clients {
        gateways: world.gateways.clone(),
        records: records.clone(),
        trace: world.trace.clone(),
        load_end: tokio::time::Instant::now(),
    };
    let options = options.clone();
    let poll_id = poll_id.clone();
    let gateways = world.gateways.clone();
    let records = records.clone();
    sim.client("clients", async move {
        let start = tokio::time::Instant::now();
        let clients = Clients {
            load_end: start + Duration::from_millis(load_end),
            ..clients
        };
        tokio::time::sleep(Duration::from_millis(2_000)).await;
        let (lists, poll) = clients.set_up(&mut rng, options.lists).await;
        *poll_id.lock().unwrap_or_else(|p| p.into_inner()) = Some(poll.id);
        let until = start + Duration::from_millis(final_ms);
        let mut tasks = Vec::new();
        let mut subscribers = Vec::new();
        for index in 0..options.writers {
            let task = clients
                .clone()
                .writer(rng.fork(10 + index as u64), lists.clone(), index);
            tasks.push(tokio::spawn(task));
        }
        for index in 0..options.voters {
            let task = clients
                .clone()
                .voter(rng.fork(100 + index as u64), poll.clone(), index);
            tasks.push(tokio::spawn(task));
        }
        for index in 0..options.subscribers {
            let list = if index % 3 == 2 {
                poll.clone()
            } else {
                lists[index % lists.len()].clone()
            };
            let task =
                clients
                    .clone()
                    .subscriber(rng.fork(1000 + index as u64), list, index, until);
            subscribers.push(tokio::spawn(task));
        }
        for task in tasks {
            task.await?;
        }
        // Every writer and voter is done; the subscribers still follow their lists (so their
        // copies stay active) while every node is read.
        let every_list: Vec<ListSpec> = lists.iter().chain([&poll]).cloned().collect();
        final_reads(&gateways, &records, &every_list, options.nodes).await;
        for task in subscribers {
            task.await?;
        }
        Ok(())
    });
}

/// Reads every list through every node once the run is quiet (retrying a node that does not
/// answer for up to 10 s) and records what each answered.
async fn final_reads(gateways: &Gateways, records: &Records, lists: &[ListSpec], nodes: usize) {
    for list in lists {
        for node in 0..nodes {
            let mut seq = None;
            for _attempt in 0..20 {
                if let Ok(Ok(state)) = snapshot_once(gateways, node, &list.owner, list.id).await {
                    seq = state["seq"].as_u64();
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            records.read(FinalRead {
                list: list.id,
                node,
                seq,
            });
        }
    }
}

struct Driver {
    world: World,
    pending: Vec<Planned>,
    active: Vec<Planned>,
    poll_id: Arc<Mutex<Option<Uuid>>>,
    applied: u64,
    bounds: Bounds,
    lists: usize,
}

impl Driver {
    fn run(&mut self, sim: &mut turmoil::Sim<'_>, heal_at: Duration) -> turmoil::Result {
        let mut next_gauge = Duration::ZERO;
        loop {
            let done = sim.step()?;
            let now = sim.elapsed();
            for (index, exited) in self.world.exited.iter().enumerate() {
                if exited.swap(false, Ordering::SeqCst) {
                    sim.crash(host_name(index));
                }
            }
            self.end_due(sim, now, heal_at);
            self.start_due(sim, now, heal_at);
            if now >= next_gauge {
                self.bounds.sample(&self.world.gateways, self.lists);
                next_gauge = now + Duration::from_secs(1);
            }
            if done {
                return Ok(());
            }
        }
    }

    fn start_due(&mut self, sim: &mut turmoil::Sim<'_>, now: Duration, heal_at: Duration) {
        while self
            .pending
            .first()
            .is_some_and(|planned| planned.start <= now)
        {
            let mut planned = self.pending.remove(0);
            if planned.start >= heal_at {
                continue;
            }
            if planned.fault == Fault::CrashPollOwner {
                match self.poll_owner() {
                    Some(owner) => planned.fault = Fault::Crash(owner),
                    None => continue,
                }
            }
            if planned.fault == Fault::PauseBusiest {
                match self.busiest() {
                    Some(node) => planned.fault = Fault::Pause(node),
                    None => continue,
                }
            }
            if !self.may_start(&planned.fault) {
                self.world.trace.record_at(
                    now,
                    format!("skip {:?} (a majority must stay)", planned.fault),
                );
                continue;
            }
            self.world
                .trace
                .record_at(now, format!("start {:?}", planned.fault));
            apply(sim, &self.world, &planned.fault, true);
            self.applied += 1;
            self.active.push(planned);
        }
    }

    fn end_due(&mut self, sim: &mut turmoil::Sim<'_>, now: Duration, heal_at: Duration) {
        let mut index = 0;
        while index < self.active.len() {
            if self.active[index].end <= now || now >= heal_at {
                let planned = self.active.remove(index);
                self.world
                    .trace
                    .record_at(now, format!("end {:?}", planned.fault));
                apply(sim, &self.world, &planned.fault, false);
            } else {
                index += 1;
            }
        }
    }

    /// At most a minority of nodes away at once, and one fault per node.
    fn may_start(&self, fault: &Fault) -> bool {
        let Some(node) = fault.downs() else {
            return true;
        };
        let nodes = self.world.gateways.len();
        let away = self
            .active
            .iter()
            .filter(|p| p.fault.downs().is_some())
            .count();
        let busy = self.active.iter().any(|p| p.fault.downs() == Some(node));
        !busy && (away + 1) * 2 < nodes
    }

    /// The running node hosting the most lists (the lowest index among equals).
    fn busiest(&self) -> Option<usize> {
        (0..self.world.gateways.len())
            .filter_map(|index| {
                let running = self.world.gateways.get(index)?;
                Some((running.node.host().active_lists(), std::cmp::Reverse(index)))
            })
            .max()
            .map(|(_, std::cmp::Reverse(index))| index)
    }

    fn poll_owner(&self) -> Option<usize> {
        let poll = (*self.poll_id.lock().unwrap_or_else(|p| p.into_inner()))?;
        let running = (0..self.world.gateways.len()).find_map(|i| self.world.gateways.get(i))?;
        let owner = running.node.state().picture().owner(poll)?.to_string();
        owner.strip_prefix("node-")?.parse().ok()
    }
}

/// Starts (`on`) or undoes a fault.
fn apply(sim: &mut turmoil::Sim<'_>, world: &World, fault: &Fault, on: bool) {
    let others = |node: usize| (0..world.gateways.len()).filter(move |o| *o != node);
    match fault {
        Fault::Partition(a, b) if on => sim.partition(host_name(*a), host_name(*b)),
        Fault::Partition(a, b) => sim.repair(host_name(*a), host_name(*b)),
        Fault::OneWay(a, b) if on => sim.partition_oneway(host_name(*a), host_name(*b)),
        Fault::OneWay(a, b) => sim.repair_oneway(host_name(*a), host_name(*b)),
        Fault::Split(group) => {
            for a in group {
                for b in (0..world.gateways.len()).filter(|b| !group.contains(b)) {
                    if on {
                        sim.partition(host_name(*a), host_name(b));
                    } else {
                        sim.repair(host_name(*a), host_name(b));
                    }
                }
            }
        }
        Fault::Pause(node) => {
            let frozen = if on {
                wall_ms(&world.clock_offsets, *node)
            } else {
                RUNNING
            };
            world.frozen[*node].store(frozen, Ordering::SeqCst);
            for other in others(*node) {
                if on {
                    sim.hold(host_name(*node), host_name(other));
                } else {
                    sim.release(host_name(*node), host_name(other));
                }
            }
        }
        Fault::Crash(node) if on => {
            world.gateways.close(*node);
            sim.crash(host_name(*node));
        }
        Fault::Drain(node) if on => {
            if let Some(running) = world.gateways.get(*node) {
                let _ = running.tx.send(Request::Drain);
            }
        }
        Fault::Crash(node) | Fault::Drain(node) => {
            world.frozen[*node].store(RUNNING, Ordering::SeqCst);
            world.gateways.close(*node);
            sim.bounce(host_name(*node));
        }
        Fault::Loss(rate) => sim.set_fail_rate(if on { *rate } else { 0.0 }),
        Fault::Latency(max) => {
            sim.set_max_message_latency(Duration::from_millis(if on { *max } else { LATENCY_MS.1 }))
        }
        Fault::Store if on => {
            world.store.windows.fetch_add(1, Ordering::SeqCst);
        }
        Fault::Store => {
            world.store.windows.fetch_sub(1, Ordering::SeqCst);
        }
        Fault::ClockStep(node, step) => {
            let delta = if on { *step } else { -*step };
            world.clock_offsets[*node].fetch_add(delta, Ordering::SeqCst);
        }
        Fault::CrashPollOwner | Fault::PauseBusiest => {}
    }
}
