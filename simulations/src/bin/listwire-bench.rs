//! `listwire-bench`: the load generator. Drives a listwire endpoint over the real client
//! protocol, or starts a local node itself, and prints progress, one JSON result line per run,
//! and (with `--plot`) an SVG latency plot.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use listwire_simulations::report::{print_result, progress, Latency};
use listwire_simulations::scenarios::{fanout, hot_poll, memory, mixed, throughput};
use listwire_simulations::target::{sibling_binary, Target};
use listwire_simulations::{plot, raise_fd_limit};
use serde_json::json;

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
    scenario: Scenario,
}

#[derive(Args)]
struct TargetArgs {
    /// Measure a running node at this URL instead of starting one (needs its JWT secret).
    #[arg(long, global = true)]
    url: Option<String>,
    /// The running node's JWT secret (or use --data-dir to read `<dir>/jwt-secret`).
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
    /// The `listwire` binary to start (default: next to this one).
    #[arg(long, global = true)]
    listwire_bin: Option<PathBuf>,
    /// Extra flag for the started node (repeat), e.g. --node-flag=--no-fsync.
    #[arg(long = "node-flag", global = true, allow_hyphen_values = true)]
    node_flags: Vec<String>,
}

#[derive(Subcommand)]
enum Scenario {
    /// Many lists, W writers, open-loop rate: acked ops/s and ack latency.
    Throughput {
        #[arg(long, default_value_t = 1000)]
        lists: usize,
        #[arg(long, default_value_t = 16)]
        writers: usize,
        #[arg(long, default_value_t = 20000.0)]
        rate: f64,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Raise the rate step by step until acks fall behind; report the maximum.
        #[arg(long)]
        max: bool,
    },
    /// One list, S subscribers, one writer: delivery latency, loss, duplicates.
    Fanout {
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Raise the rate until p99 passes 100 ms or a delivery is lost; report the maximum.
        #[arg(long)]
        max: bool,
        /// Also measure the reference rebroadcast server and report the ratio.
        #[arg(long)]
        compare_reference: bool,
    },
    /// A public poll, V distinct voters, W watchers: votes/s, latency, tally lag, exact tally.
    HotPoll {
        #[arg(long, default_value_t = 100_000)]
        voters: u64,
        #[arg(long, default_value_t = 20000.0)]
        rate: f64,
        #[arg(long, default_value_t = 10)]
        items: usize,
        #[arg(long, default_value_t = 100)]
        watchers: usize,
        /// Vote over HTTP/2 (h2c) instead of HTTP/1.1 keep-alive.
        #[arg(long)]
        http2: bool,
    },
    /// Writes, fan-out and a poll at once.
    Mixed,
    /// Resident memory per idle connection and per active list (started node only).
    Memory {
        #[arg(long, default_value_t = 5000)]
        connections: usize,
        #[arg(long, default_value_t = 5000)]
        lists: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    raise_fd_limit();
    let cli = Cli::parse();
    let target = open_target(&cli.target)?;
    let name = if cli.target.url.is_some() {
        "remote"
    } else {
        "spawned"
    };
    let outcome = run(&cli, &target, name).await;
    target.shutdown().await?;
    outcome
}

fn open_target(args: &TargetArgs) -> anyhow::Result<Target> {
    if let Some(url) = &args.url {
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
        return Ok(Target::remote(url, &secret));
    }
    let binary = args
        .listwire_bin
        .clone()
        .unwrap_or_else(|| sibling_binary("listwire"));
    Target::spawn_node(&binary, &args.node_flags)
}

async fn run(cli: &Cli, target: &Target, name: &str) -> anyhow::Result<()> {
    match &cli.scenario {
        Scenario::Throughput {
            lists,
            writers,
            rate,
            seconds,
            max,
        } => {
            let params = throughput::Params {
                lists: *lists,
                writers: *writers,
                rate: *rate,
                seconds: *seconds,
                ..Default::default()
            };
            if *max {
                return throughput_max(cli, target, name, params).await;
            }
            let outcome = throughput::run(target, &params).await?;
            progress(format_args!(
                "throughput: {:.0} acked ops/s, ack {}",
                outcome.acked_per_sec, outcome.ack_latency
            ));
            print_result("throughput", name, json!(params), json!(outcome));
            maybe_plot(
                cli,
                "ack latency (throughput)",
                &[("listwire", &outcome.latency)],
            )
        }
        Scenario::Fanout {
            subscribers,
            rate,
            seconds,
            max,
            compare_reference,
        } => {
            let params = fanout::Params {
                subscribers: *subscribers,
                rate: *rate,
                seconds: *seconds,
            };
            fanout_command(cli, target, name, params, *max, *compare_reference).await
        }
        Scenario::HotPoll {
            voters,
            rate,
            items,
            watchers,
            http2,
        } => {
            let params = hot_poll::Params {
                voters: *voters,
                rate: *rate,
                items: *items,
                watchers: *watchers,
                http2: *http2,
                ..Default::default()
            };
            let outcome = hot_poll::run(target, &params).await?;
            progress(format_args!(
                "hot-poll: {:.0} votes/s, ack {}; tally lag {}; exact tally: {}",
                outcome.votes_per_sec, outcome.ack_latency, outcome.tally_lag, outcome.tally_exact
            ));
            print_result("hot-poll", name, json!(params), json!(outcome));
            maybe_plot(
                cli,
                "vote ack latency (hot poll)",
                &[("listwire", &outcome.latency)],
            )
        }
        Scenario::Mixed => {
            let params = mixed::Params::default();
            let outcome = mixed::run(target, &params).await?;
            print_result("mixed", name, json!(params), json!(outcome));
            let series = [
                ("writes ack", &outcome.throughput.latency),
                ("fan-out delivery", &outcome.fanout.latency),
                ("vote ack", &outcome.hot_poll.latency),
            ];
            maybe_plot(cli, "mixed workload latency", &series)
        }
        Scenario::Memory { connections, lists } => {
            let params = memory::Params {
                connections: *connections,
                lists: *lists,
                ..Default::default()
            };
            let outcome = memory::run(target, &params).await?;
            progress(format_args!(
                "memory: {:.1} KiB per idle connection, {:.1} KiB per active list",
                outcome.bytes_per_connection / 1024.0,
                outcome.bytes_per_list / 1024.0
            ));
            print_result("memory", name, json!(params), json!(outcome));
            Ok(())
        }
    }
}

async fn throughput_max(
    cli: &Cli,
    target: &Target,
    name: &str,
    mut params: throughput::Params,
) -> anyhow::Result<()> {
    let mut best: Option<throughput::Outcome> = None;
    loop {
        let outcome = throughput::run(target, &params).await?;
        let keeping_up = outcome.acked as f64 >= 0.97 * outcome.offered as f64
            && outcome.unanswered == 0
            && outcome.ack_latency.p99_ms < 1000.0;
        progress(format_args!(
            "  offered {:.0}/s: acked {:.0}/s, ack {} -> {}",
            params.rate,
            outcome.acked_per_sec,
            outcome.ack_latency,
            if keeping_up { "ok" } else { "falling behind" }
        ));
        print_result("throughput", name, json!(params), json!(outcome));
        if !keeping_up {
            break;
        }
        best = Some(outcome);
        params.rate *= 1.25;
    }
    let best = best.context("even the first rate was not sustained")?;
    progress(format_args!(
        "throughput max: {:.0} acked ops/s",
        best.acked_per_sec
    ));
    maybe_plot(
        cli,
        "ack latency at the maximum sustained rate",
        &[("listwire", &best.latency)],
    )
}

async fn fanout_command(
    cli: &Cli,
    target: &Target,
    name: &str,
    params: fanout::Params,
    max: bool,
    compare: bool,
) -> anyhow::Result<()> {
    let listwire = fanout_measure(target, name, params.clone(), max).await?;
    let mut series: Vec<(String, Latency)> = vec![("listwire".into(), listwire.latency.clone())];
    if compare {
        let reference = Target::spawn_reference(&sibling_binary("listwire-rebroadcast"))?;
        let outcome = fanout_measure(&reference, "reference", params, max).await;
        reference.shutdown().await?;
        let outcome = outcome?;
        let ratio = listwire.rate / outcome.rate;
        progress(format_args!(
            "fanout: listwire {:.0} edits/s vs reference {:.0} edits/s: ratio {:.2}",
            listwire.rate, outcome.rate, ratio
        ));
        print_result(
            "fanout-ratio",
            name,
            json!({"max": max}),
            json!({"listwire_rate": listwire.rate, "reference_rate": outcome.rate, "ratio": ratio}),
        );
        series.push(("reference rebroadcast".into(), outcome.latency));
    }
    let named: Vec<(&str, &Latency)> = series
        .iter()
        .map(|(name, latency)| (name.as_str(), latency))
        .collect();
    maybe_plot(cli, "edit → subscriber delivery latency (fan-out)", &named)
}

/// One fan-out run, or with `max` the ladder of rates; returns the run to report.
async fn fanout_measure(
    target: &Target,
    name: &str,
    mut params: fanout::Params,
    max: bool,
) -> anyhow::Result<fanout::Outcome> {
    let mut best = None;
    loop {
        let outcome = fanout::run(target, &params).await?;
        let passes = outcome.lost == 0
            && outcome.duplicates == 0
            && outcome.delivery_latency.p99_ms <= 100.0;
        progress(format_args!(
            "fanout ({name}) at {:.0} edits/s: {:.0} deliveries/s, lost {}, dup {}, {}",
            params.rate,
            outcome.deliveries_per_sec,
            outcome.lost,
            outcome.duplicates,
            outcome.delivery_latency
        ));
        print_result("fanout", name, json!(params), json!(outcome));
        if !max {
            return Ok(outcome);
        }
        if !passes {
            return best.context("even the first rate failed (p99 > 100 ms or loss)");
        }
        best = Some(outcome);
        params.rate *= 1.25;
    }
}

fn maybe_plot(cli: &Cli, title: &str, series: &[(&str, &Latency)]) -> anyhow::Result<()> {
    if let Some(path) = &cli.plot {
        plot::percentile_plot(path, title, series)?;
        progress(format_args!("plot written to {}", path.display()));
    }
    Ok(())
}
