//! `listwire-sim`: runs the deterministic cluster simulation for some seeds and prints, for
//! each failure, the seed and the failed invariants (replay with `--seed S`).

use clap::Parser;
use listwire_simulations::dsim::{self, Options, Scenario};
use listwire_storage::mutants::{self, Mutant};

/// Deterministic simulation of a listwire cluster under faults.
#[derive(Parser)]
struct Args {
    /// Run seeds FIRST..FIRST+N.
    #[arg(long, default_value_t = 10)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    first: u64,
    /// Run only this seed.
    #[arg(long)]
    seed: Option<u64>,
    /// The scenario (default: by seed): random, two-owners, join-during-drain,
    /// partition-heal, hot-poll.
    #[arg(long)]
    scenario: Option<String>,
    /// Simulated seconds of faulty load per seed.
    #[arg(long, default_value_t = 30)]
    load_secs: u64,
    /// Print each run's trace.
    #[arg(long)]
    trace: bool,
    /// Run a deliberately weakened node (needs a build with `--features mutants`; see
    /// simulations/README.md, "Mutation checks"): a checker should fail.
    #[arg(long)]
    mutant: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(name) = &args.mutant {
        let mutant = Mutant::from_name(name).ok_or_else(|| anyhow::anyhow!("no mutant {name}"))?;
        anyhow::ensure!(
            mutants::compiled_in(),
            "this build has no mutants: build with `--features mutants`"
        );
        mutants::select(Some(mutant));
        println!("mutant: {name}");
    }
    let scenario = match &args.scenario {
        Some(name) => {
            Some(Scenario::parse(name).ok_or_else(|| anyhow::anyhow!("no scenario {name}"))?)
        }
        None => None,
    };
    let options = Options {
        load_secs: args.load_secs,
        scenario,
        ..Options::default()
    };
    let seeds: Vec<u64> = match args.seed {
        Some(seed) => vec![seed],
        None => (args.first..args.first + args.seeds).collect(),
    };
    let (mut failed, mut simulated, mut faults, mut ops, mut events) = (0, 0.0, 0, 0, 0);
    for seed in &seeds {
        let report = dsim::run_seed(*seed, &options);
        if args.trace {
            report.trace.iter().for_each(|line| println!("{line}"));
        }
        simulated += report.simulated.as_secs_f64();
        faults += report.faults;
        ops += report.checked.ops;
        events += report.checked.events;
        let verdict = if report.failures.is_empty() {
            "ok"
        } else {
            "FAILED"
        };
        println!(
            "seed {seed} [{}] {verdict}: {:.0}s simulated, {} faults, {} ops ({} acked), {} events, {} subscribers, trace {:016x}",
            report.scenario.name(), report.simulated.as_secs_f64(), report.faults, report.checked.ops,
            report.checked.acked, report.checked.events, report.checked.subscribers, report.trace_hash
        );
        for failure in &report.failures {
            println!("  seed {seed} invariant failed: {failure}");
        }
        failed += usize::from(!report.failures.is_empty());
    }
    println!(
        "{} seeds, {failed} failed; {:.2} simulated hours, {faults} faults injected, {ops} ops and {events} stored events checked",
        seeds.len(), simulated / 3600.0
    );
    if failed > 0 {
        anyhow::bail!("{failed} seeds failed");
    }
    Ok(())
}
