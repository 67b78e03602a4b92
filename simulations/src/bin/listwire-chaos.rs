//! `listwire-chaos`: real-process chaos. Starts a cluster of `listwire serve --store postgres`
//! processes on loopback addresses of their own, runs a mixed load, injects faults (SIGKILL
//! and restart, SIGSTOP/SIGCONT, partitions), checks the invariants and prints a report; exits
//! non-zero on any violation. See `simulations/README.md`, "Real-process chaos".

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use listwire_simulations::chaos::{run, Params};
use listwire_simulations::process::sibling_binary;

#[derive(Parser)]
#[command(about = "real-process chaos tests of a listwire cluster over PostgreSQL")]
struct Args {
    /// Seed of the fault schedule and the load's choices (printed; the same seed replays the
    /// same schedule). Random when not given.
    #[arg(long)]
    seed: Option<u64>,
    /// Seconds of load (faults stop 8 s before the end).
    #[arg(long, default_value_t = 60)]
    duration_secs: u64,
    /// Node processes (at least 3).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// The `listwire` binary (default: the one beside this executable).
    #[arg(long)]
    listwire_bin: Option<PathBuf>,
    /// Passed to every node as `LISTWIRE_MUTANT` (a deliberately weakened build).
    #[arg(long)]
    mutant: Option<String>,
    /// The PostgreSQL server the nodes share (a fresh schema is created and dropped).
    #[arg(long, env = "LISTWIRE_POSTGRES_URL")]
    postgres_url: String,
    /// The first node's loopback address; the others follow it.
    #[arg(long, default_value = "127.0.0.11")]
    address_base: Ipv4Addr,
    /// Lists the writers edit (plus one hot poll).
    #[arg(long, default_value_t = 4)]
    lists: usize,
    /// Writer tasks.
    #[arg(long, default_value_t = 6)]
    writers: usize,
    /// Voters on the hot poll.
    #[arg(long, default_value_t = 120)]
    voters: usize,
    /// Run without network partitions.
    #[arg(long)]
    no_partitions: bool,
    /// Resident memory no node may exceed, in MiB.
    #[arg(long, default_value_t = 1024)]
    rss_max_mib: u64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let seed = args
        .seed
        .unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0 % 1_000_000);
    let binary = args
        .listwire_bin
        .unwrap_or_else(|| sibling_binary("listwire"));
    anyhow::ensure!(
        binary.exists(),
        "no listwire binary at {}",
        binary.display()
    );
    let mut params = Params::new(
        seed,
        Duration::from_secs(args.duration_secs),
        binary,
        args.postgres_url,
    );
    params.nodes = args.nodes;
    params.mutant = args.mutant;
    params.address_base = args.address_base;
    params.lists = args.lists;
    params.writers = args.writers;
    params.voters = args.voters;
    params.partitions = !args.no_partitions;
    params.rss_max_bytes = args.rss_max_mib << 20;
    let report = tokio::select! {
        report = run(&params) => report.with_context(|| format!("chaos run with seed {seed}"))?,
        _ = tokio::signal::ctrl_c() => {
            // Returning drops the run: its packet filter rules are removed, its nodes stopped.
            eprintln!("chaos: interrupted (seed {seed}); cleaning up");
            return Ok(ExitCode::from(130));
        }
    };
    println!("{report}");
    Ok(if report.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
