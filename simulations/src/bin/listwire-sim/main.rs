//! `listwire-sim`: runs the deterministic cluster simulation for some seeds and prints, for
//! each failure, the seed and the failed invariants. A seed replays exactly: `--seed S` runs
//! it in this process, and a run of many seeds runs each in a fresh child process the same way,
//! so what a batch printed for a seed is what `--seed S` prints again (simulations/README.md,
//! "Deterministic simulation").

mod entropy;
mod logs;
mod runner;

use clap::Parser;
use listwire_simulations::dsim::{self, Options, RunReport, Scenario};
use listwire_storage::mutants::{self, Mutant};

/// Deterministic simulation of a listwire cluster under faults.
#[derive(Parser, Clone)]
pub struct Args {
    /// Run seeds FIRST..FIRST+N.
    #[arg(long, default_value_t = 10)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    first: u64,
    /// Run only this seed (in this process).
    #[arg(long)]
    seed: Option<u64>,
    /// Seeds run at once, each in its own process (default: one per core).
    #[arg(long)]
    jobs: Option<usize>,
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
    /// Set by the parent of a many-seed run: end with a totals line for it to add up.
    #[arg(long, hide = true)]
    child: bool,
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
        if !args.child {
            println!("mutant: {name}");
        }
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
    let totals = match args.seed {
        Some(seed) => run_here(&args, seed, &options)?,
        None => runner::run_children(&args)?,
    };
    if args.child {
        println!("{}", totals.encode());
        return Ok(());
    }
    println!("{}", totals.summary());
    if totals.failed > 0 {
        anyhow::bail!("{} seeds failed", totals.failed);
    }
    Ok(())
}

/// Runs `seed` in this process, with the process's entropy drawn from the seed.
fn run_here(args: &Args, seed: u64, options: &Options) -> anyhow::Result<runner::Totals> {
    entropy::seed(seed);
    anyhow::ensure!(
        entropy::in_use(),
        "the seeded getrandom is not linked in (simulations/build.rs): a seed would not replay"
    );
    logs::init_from_env();
    let report = dsim::run_seed(seed, options);
    if args.trace {
        report.trace.iter().for_each(|line| println!("{line}"));
    }
    println!("{}", seed_line(&report));
    for failure in &report.failures {
        println!("  seed {seed} invariant failed: {failure}");
    }
    Ok(runner::Totals::of(&report))
}

fn seed_line(report: &RunReport) -> String {
    let verdict = if report.failures.is_empty() {
        "ok"
    } else {
        "FAILED"
    };
    format!(
        "seed {} [{}] {verdict}: {:.0}s simulated, {} faults, {} ops ({} acked), {} events, {} subscribers, trace {:016x}",
        report.seed,
        report.scenario.name(),
        report.simulated.as_secs_f64(),
        report.faults,
        report.checked.ops,
        report.checked.acked,
        report.checked.events,
        report.checked.subscribers,
        report.trace_hash
    )
}
