//! The report of a chaos run: what was injected, what the clients did, and the verdict.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::check::Violation;
use super::clients::{Answer, OpRecord};
use super::faults::{Fault, FaultKind, Window};
use super::subscriber::SubscriberLog;

/// Everything a run found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The seed (same seed, same fault schedule and load choices).
    pub seed: u64,
    /// How long the load ran.
    pub duration: Duration,
    /// Node processes.
    pub nodes: usize,
    /// `Err` says why the run had no partitions.
    pub partitions: Result<(), String>,
    /// The schedule drawn from the seed.
    pub schedule: Vec<Fault>,
    /// Faults injected, by kind.
    pub faults: BTreeMap<FaultKind, usize>,
    /// Writer ops: sent, acked.
    pub writes: (usize, usize),
    /// Votes: sent, acked, refused `conflict` (the limit at work).
    pub votes: (usize, usize, usize),
    /// Ops (writes and votes) whose stored history the checkers read.
    pub ops_checked: usize,
    /// Attempts retried (same op id) over all ops.
    pub retries: usize,
    /// Slowest op, first send to final answer.
    pub latency_max: Duration,
    /// Subscribers: total, whose first connection lasted, resubscribes.
    pub subscribers: (usize, usize, u64),
    /// Highest resident memory per node, in bytes.
    pub rss_max: Vec<u64>,
    /// Every broken invariant.
    pub violations: Vec<Violation>,
    /// Where node logs are kept (after a violation).
    pub logs: Option<std::path::PathBuf>,
}

impl Report {
    pub(crate) fn new(params: &super::Params, duration: Duration, rss_max: Vec<u64>) -> Self {
        Self {
            seed: params.seed,
            duration,
            nodes: params.nodes,
            partitions: Ok(()),
            schedule: Vec::new(),
            faults: BTreeMap::new(),
            writes: (0, 0),
            votes: (0, 0, 0),
            ops_checked: 0,
            retries: 0,
            latency_max: Duration::ZERO,
            subscribers: (0, 0, 0),
            rss_max,
            violations: Vec::new(),
            logs: None,
        }
    }

    /// Whether every checker passed.
    pub fn clean(&self) -> bool {
        self.violations.is_empty()
    }

    pub(crate) fn count_ops(&mut self, ops: &[OpRecord]) {
        for op in ops {
            let acked = op.acked().is_some();
            if op.vote {
                self.votes.0 += 1;
                self.votes.1 += usize::from(acked);
                let conflict =
                    matches!(op.outcome(), Some(Answer::Refused(code)) if code == "conflict");
                self.votes.2 += usize::from(conflict);
            } else {
                self.writes.0 += 1;
                self.writes.1 += usize::from(acked);
            }
            self.retries += op.attempts.len().saturating_sub(1);
            self.latency_max = self.latency_max.max(op.latency());
        }
    }

    pub(crate) fn count_faults(&mut self, windows: &[Window]) {
        for window in windows {
            *self.faults.entry(window.kind).or_default() += 1;
        }
    }

    pub(crate) fn count_subscribers(&mut self, logs: &[SubscriberLog]) {
        self.subscribers.0 = logs.len();
        self.subscribers.1 = logs.iter().filter(|log| log.stayed_connected).count();
        self.subscribers.2 = logs.iter().map(|log| log.resubscribes).sum();
    }
}

impl fmt::Display for Report {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(out, "chaos report")?;
        writeln!(out, "  seed            {}", self.seed)?;
        writeln!(
            out,
            "  duration        {:.0} s of load, {} nodes",
            self.duration.as_secs_f64(),
            self.nodes
        )?;
        match &self.partitions {
            Ok(()) => writeln!(out, "  partitions      on (iptables on the node addresses)")?,
            Err(why) => writeln!(out, "  partitions      OFF: {why}")?,
        }
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        writeln!(
            out,
            "  faults          {} ({} planned)",
            faults.join(", "),
            self.schedule.len()
        )?;
        writeln!(
            out,
            "  writes          {} sent, {} acked",
            self.writes.0, self.writes.1
        )?;
        writeln!(
            out,
            "  votes           {} sent, {} acked, {} refused at the limit",
            self.votes.0, self.votes.1, self.votes.2
        )?;
        writeln!(
            out,
            "  ops checked     {} ({} retries; slowest {} ms)",
            self.ops_checked,
            self.retries,
            self.latency_max.as_millis()
        )?;
        writeln!(
            out,
            "  subscribers     {} ({} stayed connected, {} resubscribes)",
            self.subscribers.0, self.subscribers.1, self.subscribers.2
        )?;
        let rss: Vec<String> = self
            .rss_max
            .iter()
            .map(|bytes| format!("{} MiB", bytes >> 20))
            .collect();
        writeln!(out, "  resident max    {}", rss.join(", "))?;
        for violation in &self.violations {
            writeln!(
                out,
                "  VIOLATION [seed {}] {}: {}",
                self.seed, violation.invariant, violation.evidence
            )?;
        }
        if let Some(logs) = &self.logs {
            writeln!(out, "  node logs       {}", logs.display())?;
        }
        let verdict = if self.clean() { "clean" } else { "VIOLATED" };
        write!(
            out,
            "  verdict         {verdict} ({} violations)",
            self.violations.len()
        )
    }
}
