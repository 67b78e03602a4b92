//! Running a scenario and reporting it: progress on stderr, one JSON result line per run on
//! stdout, and an optional plot.

use std::path::Path;

use anyhow::Context;
use listwire_simulations::plot;
use listwire_simulations::report::{print_result, progress, Latency};
use listwire_simulations::scenarios::layout::Layout;
use listwire_simulations::scenarios::{
    failover, fanout, forwarded, hot_poll, memory, mixed, throughput,
};
use listwire_simulations::target::{sibling_binary, Target};
use serde_json::json;

use crate::args::Scenario;

/// Runs `scenario` against `target` (named `name` in result lines).
pub async fn run(
    scenario: &Scenario,
    plot: Option<&Path>,
    target: &Target,
    name: &str,
) -> anyhow::Result<()> {
    let reporter = Reporter { plot, target, name };
    match scenario {
        Scenario::Throughput(args) if args.max => throughput_max(&reporter, args.params()).await,
        Scenario::Throughput(args) => throughput_once(&reporter, args.params()).await,
        Scenario::Fanout(args) => {
            fanout_command(&reporter, args.params(), args.max, args.compare_reference).await
        }
        Scenario::HotPoll(args) => hot_poll_command(&reporter, args.params()).await,
        Scenario::Forwarded(args) => forwarded_command(&reporter, args.params()).await,
        Scenario::Failover(args) => failover_command(&reporter, args.params()).await,
        Scenario::Mixed => mixed_command(&reporter).await,
        Scenario::Memory(args) => memory_command(&reporter, args.params()).await,
    }
}

/// What every command needs.
struct Reporter<'a> {
    plot: Option<&'a Path>,
    target: &'a Target,
    name: &'a str,
}

impl Reporter<'_> {
    fn plot(&self, title: &str, series: &[(&str, &Latency)]) -> anyhow::Result<()> {
        if let Some(path) = self.plot {
            plot::percentile_plot(path, title, series)?;
            progress(format_args!("plot written to {}", path.display()));
        }
        Ok(())
    }
}

async fn throughput_once(
    reporter: &Reporter<'_>,
    params: throughput::Params,
) -> anyhow::Result<()> {
    let outcome = throughput::run(reporter.target, &params).await?;
    progress(format_args!(
        "throughput: {:.0} acked ops/s, ack {}",
        outcome.acked_per_sec, outcome.ack_latency
    ));
    print_result("throughput", reporter.name, json!(params), json!(outcome));
    reporter.plot(
        "ack latency (throughput)",
        &[("listwire", &outcome.latency)],
    )
}

async fn throughput_max(
    reporter: &Reporter<'_>,
    mut params: throughput::Params,
) -> anyhow::Result<()> {
    let mut best: Option<throughput::Outcome> = None;
    loop {
        let outcome = throughput::run(reporter.target, &params).await?;
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
        print_result("throughput", reporter.name, json!(params), json!(outcome));
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
    reporter.plot(
        "ack latency at the maximum sustained rate",
        &[("listwire", &best.latency)],
    )
}

async fn fanout_command(
    reporter: &Reporter<'_>,
    params: fanout::Params,
    max: bool,
    compare: bool,
) -> anyhow::Result<()> {
    let listwire = fanout_measure(reporter.target, reporter.name, params.clone(), max).await?;
    let mut series: Vec<(String, Latency)> = vec![("listwire".into(), listwire.latency.clone())];
    if compare {
        let reference = Target::spawn_reference(&sibling_binary("listwire-rebroadcast"))?;
        // The reference server is one process: the cluster layout does not apply.
        let alone = fanout::Params {
            layout: Layout::default(),
            ..params
        };
        let outcome = fanout_measure(&reference, "reference", alone, max).await;
        reference.shutdown().await?;
        let outcome = outcome?;
        let ratio = listwire.rate / outcome.rate;
        progress(format_args!(
            "fanout: listwire {:.0} edits/s vs reference {:.0} edits/s: ratio {:.2}",
            listwire.rate, outcome.rate, ratio
        ));
        print_result(
            "fanout-ratio",
            reporter.name,
            json!({"max": max}),
            json!({"listwire_rate": listwire.rate, "reference_rate": outcome.rate, "ratio": ratio}),
        );
        series.push(("reference rebroadcast".into(), outcome.latency));
    }
    let named: Vec<(&str, &Latency)> = series
        .iter()
        .map(|(name, latency)| (name.as_str(), latency))
        .collect();
    reporter.plot("edit → subscriber delivery latency (fan-out)", &named)
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

async fn hot_poll_command(reporter: &Reporter<'_>, params: hot_poll::Params) -> anyhow::Result<()> {
    let outcome = hot_poll::run(reporter.target, &params).await?;
    progress(format_args!(
        "hot-poll: {:.0} votes/s, ack {}; tally lag {}; exact tally: {}",
        outcome.votes_per_sec, outcome.ack_latency, outcome.tally_lag, outcome.tally_exact
    ));
    if outcome.unknown > 0 {
        progress(format_args!(
            "  {} votes of unknown outcome; every item's count between acked and acked + unknown: {}",
            outcome.unknown, outcome.tally_consistent
        ));
    }
    if let Some(ws) = &outcome.ws {
        progress(format_args!(
            "  ws: {} connections opened in {:.1} s, {} converged, {} reconnects, {} resent; watchers' lag {}",
            ws.connections, ws.connect_seconds, ws.connections_converged, ws.reconnects, ws.resent, ws.watcher_lag
        ));
    }
    if !outcome.failed.is_empty() {
        progress(format_args!("  failed votes: {:?}", outcome.failed));
    }
    for node in &outcome.cpu {
        progress(format_args!(
            "  node {} ({}): {:.2} CPU s, {:.2} cores, {:.1} µs per vote",
            node.node, node.role, node.cpu_seconds, node.cores, node.us_per_unit
        ));
    }
    print_result("hot-poll", reporter.name, json!(params), json!(outcome));
    reporter.plot(
        "vote ack latency (hot poll)",
        &[("listwire", &outcome.latency)],
    )
}

async fn forwarded_command(
    reporter: &Reporter<'_>,
    params: forwarded::Params,
) -> anyhow::Result<()> {
    let outcome = forwarded::run(reporter.target, &params).await?;
    for (path, result) in [("local", &outcome.local), ("forwarded", &outcome.forwarded)] {
        progress(format_args!(
            "forwarded: {path} (clients on node {}): {} of {} acked, ack {}",
            result.node, result.acked, result.offered, result.ack_latency
        ));
    }
    print_result("forwarded", reporter.name, json!(params), json!(outcome));
    reporter.plot(
        "ack latency: client on the owner vs forwarded",
        &[
            ("local", &outcome.local.latency),
            ("forwarded", &outcome.forwarded.latency),
        ],
    )
}

async fn failover_command(reporter: &Reporter<'_>, params: failover::Params) -> anyhow::Result<()> {
    let outcome = failover::run(reporter.target, &params).await?;
    progress(format_args!(
        "failover: detection {:?} ms; serving again {}; no acks {}; deltas again {}; ops caught by the outage acked after {}",
        outcome.detection_ms,
        outcome.serving_again,
        outcome.no_ack,
        outcome.deltas_again,
        outcome.caught_ops_ack
    ));
    progress(format_args!(
        "failover: {} ops acked of {}, {} unanswered; store {:?}; subscribers {:?}",
        outcome.ops.acked,
        outcome.ops.sent,
        outcome.ops.unanswered,
        outcome.store,
        outcome.subscriber_checks
    ));
    print_result("failover", reporter.name, json!(params), json!(outcome));
    let distributions = &outcome.distributions;
    reporter.plot(
        "failover: time from the kill (per list / per subscriber), ack latency",
        &[
            ("serving again (per list)", &distributions.serving_again),
            ("deltas again (per subscriber)", &distributions.deltas_again),
            ("ack latency (every op)", &distributions.ack),
        ],
    )?;
    anyhow::ensure!(
        outcome.correct(),
        "failover checks failed: see the result line"
    );
    Ok(())
}

async fn memory_command(reporter: &Reporter<'_>, params: memory::Params) -> anyhow::Result<()> {
    let outcome = memory::run(reporter.target, &params).await?;
    progress(format_args!(
        "memory: {:.1} KiB per idle connection, {:.1} KiB per active list",
        outcome.bytes_per_connection / 1024.0,
        outcome.bytes_per_list / 1024.0
    ));
    print_result("memory", reporter.name, json!(params), json!(outcome));
    Ok(())
}

async fn mixed_command(reporter: &Reporter<'_>) -> anyhow::Result<()> {
    let params = mixed::Params::default();
    let outcome = mixed::run(reporter.target, &params).await?;
    print_result("mixed", reporter.name, json!(params), json!(outcome));
    let series = [
        ("writes ack", &outcome.throughput.latency),
        ("fan-out delivery", &outcome.fanout.latency),
        ("vote ack", &outcome.hot_poll.latency),
    ];
    reporter.plot("mixed workload latency", &series)
}
