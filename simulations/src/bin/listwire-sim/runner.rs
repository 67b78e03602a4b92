//! Many seeds, each in a fresh child process (`--seed S --child`), a few at a time.
//!
//! A fresh process per seed is what makes a batch's result for a seed the same as a replay's:
//! state that outlives one run inside a process (std's per-thread hash keys and their counter,
//! tokio's runtime-seed counter, actor id counters) would otherwise make a seed's run depend on
//! the seeds before it.

use std::collections::VecDeque;
use std::process::{Command, Output, Stdio};
use std::thread::JoinHandle;

use listwire_simulations::dsim::RunReport;

use crate::Args;

/// The first word of the line a child ends with.
const TOTALS: &str = "@totals";

/// What a run of seeds adds up to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Seeds run.
    pub seeds: u64,
    /// Seeds that failed.
    pub failed: u64,
    /// Simulated milliseconds.
    pub simulated_ms: u64,
    /// Faults injected.
    pub faults: u64,
    /// Ops checked.
    pub ops: u64,
    /// Stored events checked.
    pub events: u64,
}

impl Totals {
    /// One seed's report.
    pub fn of(report: &RunReport) -> Totals {
        Totals {
            seeds: 1,
            failed: u64::from(!report.failures.is_empty()),
            simulated_ms: report.simulated.as_millis() as u64,
            faults: report.faults,
            ops: report.checked.ops,
            events: report.checked.events,
        }
    }

    /// The line a child prints last.
    pub fn encode(&self) -> String {
        let Totals {
            seeds,
            failed,
            simulated_ms,
            faults,
            ops,
            events,
        } = self;
        format!("{TOTALS} {seeds} {failed} {simulated_ms} {faults} {ops} {events}")
    }

    /// Reads a line written by [`Totals::encode`].
    pub fn decode(line: &str) -> Option<Totals> {
        let mut words = line.strip_prefix(TOTALS)?.split_whitespace();
        let mut next = || words.next()?.parse::<u64>().ok();
        Some(Totals {
            seeds: next()?,
            failed: next()?,
            simulated_ms: next()?,
            faults: next()?,
            ops: next()?,
            events: next()?,
        })
    }

    fn add(&mut self, other: Totals) {
        self.seeds += other.seeds;
        self.failed += other.failed;
        self.simulated_ms += other.simulated_ms;
        self.faults += other.faults;
        self.ops += other.ops;
        self.events += other.events;
    }

    /// The closing line for a person.
    pub fn summary(&self) -> String {
        format!(
            "{} seeds, {} failed; {:.2} simulated hours, {} faults injected, {} ops and {} stored events checked",
            self.seeds,
            self.failed,
            self.simulated_ms as f64 / 3_600_000.0,
            self.faults,
            self.ops,
            self.events
        )
    }
}

/// Runs every seed of `args` in child processes, printing each seed's output in seed order.
pub fn run_children(args: &Args) -> anyhow::Result<Totals> {
    let exe = std::env::current_exe()?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1);
    let mut totals = Totals::default();
    let mut running: VecDeque<(u64, JoinHandle<std::io::Result<Output>>)> = VecDeque::new();
    let mut seeds = args.first..args.first.saturating_add(args.seeds);
    loop {
        while running.len() < jobs {
            let Some(seed) = seeds.next() else { break };
            let mut command = Command::new(&exe);
            command.args(child_args(args, seed)).stdout(Stdio::piped());
            let child = command.spawn()?;
            running.push_back((seed, std::thread::spawn(move || child.wait_with_output())));
        }
        let Some((seed, handle)) = running.pop_front() else {
            return Ok(totals);
        };
        let output = handle
            .join()
            .map_err(|_| anyhow::anyhow!("the thread waiting for seed {seed} panicked"))??;
        totals.add(report_child(seed, &output));
    }
}

/// Prints what the child for `seed` wrote and returns its totals (a failed seed if it died).
fn report_child(seed: u64, output: &Output) -> Totals {
    let text = String::from_utf8_lossy(&output.stdout);
    let mut totals = None;
    for line in text.lines() {
        match Totals::decode(line) {
            Some(decoded) => totals = Some(decoded),
            None => println!("{line}"),
        }
    }
    totals.unwrap_or_else(|| {
        println!(
            "seed {seed} FAILED: the simulation process exited with {} before reporting (replay: listwire-sim --seed {seed})",
            output.status
        );
        Totals {
            seeds: 1,
            failed: 1,
            ..Totals::default()
        }
    })
}

fn child_args(args: &Args, seed: u64) -> Vec<String> {
    let mut out = vec![
        "--child".to_owned(),
        "--seed".to_owned(),
        seed.to_string(),
        "--load-secs".to_owned(),
        args.load_secs.to_string(),
    ];
    if let Some(scenario) = &args.scenario {
        out.extend(["--scenario".to_owned(), scenario.clone()]);
    }
    if let Some(mutant) = &args.mutant {
        out.extend(["--mutant".to_owned(), mutant.clone()]);
    }
    if args.trace {
        out.push("--trace".to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: the totals line a child prints reads back as the same totals.
    #[test]
    fn totals_round_trip_through_the_child_line() {
        let totals = Totals {
            seeds: 1,
            failed: 1,
            simulated_ms: 75_000,
            faults: 6,
            ops: 611,
            events: 613,
        };
        assert_eq!(Totals::decode(&totals.encode()), Some(totals));
        assert_eq!(Totals::decode("seed 7 [random] ok"), None);
        assert_eq!(Totals::decode("@totals 1 0 x 0 0 0"), None);
    }
}
