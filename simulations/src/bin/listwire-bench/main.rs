//! `listwire-bench`: the load generator. Drives listwire over the real client protocol — a
//! node it starts, a cluster of nodes it starts over PostgreSQL, or nodes already running —
//! and prints progress, one JSON result line per run, and (with `--plot`) an SVG latency plot.
//!
//! Layout: `main.rs` (the target flags and opening the target), `args.rs` (the scenarios and
//! their flags), `commands.rs` (running a scenario and reporting it).

mod args;
mod commands;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser};
use listwire_simulations::cluster::{spawn_cluster, ClusterSpec};
use listwire_simulations::raise_fd_limit;
use listwire_simulations::target::{sibling_binary, Target};

#[derive(Parser)]
#[command(
    name = "listwire-bench",
    about = "listwire load generator and benchmarks"
)]
struct Cli {
    #[command(flatten)]
    target: TargetArgs,
    /// Write an SVG latency plot here.
    #[arg(long, global = true)]
    plot: Option<PathBuf>,
    #[command(subcommand)]
    scenario: args::Scenario,
}

#[derive(Args)]
struct TargetArgs {
    /// Measure running nodes instead of starting one: repeat for the nodes of a cluster
    /// (clients spread round-robin over them). Needs their shared JWT secret.
    #[arg(long = "url", global = true)]
    urls: Vec<String>,
    /// The cluster node id of each --url node, in the same order, for placement (default: the
    /// URL's host:port, which is a node's default id).
    #[arg(long = "node-id", global = true)]
    node_ids: Vec<String>,
    /// The running nodes' JWT secret (or use --data-dir to read `<dir>/jwt-secret`).
    #[arg(
        long,
        global = true,
        env = "LISTWIRE_JWT_SECRET",
        hide_env_values = true
    )]
    jwt_secret: Option<String>,
    /// The running node's data directory (to read its JWT secret).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Start a cluster of this many `listwire serve` processes on loopback over PostgreSQL
    /// (--postgres-url), in a fresh schema dropped at the end.
    #[arg(long, global = true, conflicts_with = "urls")]
    cluster: Option<usize>,
    /// The database a started cluster shares.
    #[arg(
        long,
        global = true,
        env = "LISTWIRE_POSTGRES_URL",
        hide_env_values = true
    )]
    postgres_url: Option<String>,
    /// The `listwire` binary to start (default: next to this one).
    #[arg(long, global = true)]
    listwire_bin: Option<PathBuf>,
    /// Extra flag for every started node (repeat), e.g. --node-flag=--no-fsync.
    #[arg(long = "node-flag", global = true, allow_hyphen_values = true)]
    node_flags: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    raise_fd_limit();
    let cli = Cli::parse();
    // Opened on this (the main) thread, which outlives every process the bench starts.
    let target = open_target(&cli.target).await?;
    let name = if !cli.target.urls.is_empty() {
        "remote"
    } else if cli.target.cluster.is_some() {
        "cluster"
    } else {
        "spawned"
    };
    let outcome = commands::run(&cli.scenario, cli.plot.as_deref(), &target, name).await;
    target.shutdown().await?;
    outcome
}

async fn open_target(args: &TargetArgs) -> anyhow::Result<Target> {
    if !args.urls.is_empty() {
        let secret = match (&args.jwt_secret, &args.data_dir) {
            (Some(secret), _) => secret.clone().into_bytes(),
            (None, Some(dir)) => {
                std::fs::read(dir.join("jwt-secret")).context("reading <data-dir>/jwt-secret")?
            }
            (None, None) => {
                anyhow::bail!("--url needs --jwt-secret or --data-dir to mint identities")
            }
        };
        let secret = String::from_utf8_lossy(&secret).trim().as_bytes().to_vec();
        return Target::remote(&args.urls, &args.node_ids, &secret);
    }
    let binary = args
        .listwire_bin
        .clone()
        .unwrap_or_else(|| sibling_binary("listwire"));
    let Some(nodes) = args.cluster else {
        return Target::spawn_node(&binary, &args.node_flags);
    };
    let postgres_url = args
        .postgres_url
        .as_deref()
        .context("--cluster needs --postgres-url or LISTWIRE_POSTGRES_URL (nodes share it)")?;
    let spec = ClusterSpec {
        binary: &binary,
        nodes,
        postgres_url,
        extra: &args.node_flags,
    };
    spawn_cluster(&spec).await
}
