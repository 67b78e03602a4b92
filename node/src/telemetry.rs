//! What a node tells its operator: the Prometheus recorder behind `/metrics` (bucket layout,
//! descriptions, every series registered at startup) and the log subscriber (text or JSON,
//! per-module levels, libraries quiet unless asked).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::config::LogFormat;

/// Buckets of every `*_seconds` histogram: 0.1 ms to 10 s, about three per decade.
const SECONDS_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Buckets of the histograms that count things (batch sizes, fan-out, queue depths): powers
/// of two up to 65,536 (a full vote batch holds about 4,700; a list may have 10,000 members).
const COUNT_BUCKETS: [f64; 17] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0,
    16384.0, 32768.0, 65536.0,
];
/// The suffixes of the histograms that count things.
const COUNT_SUFFIXES: [&str; 5] = ["_events", "_requests", "_ops", "_subscribers", "_frames"];

/// The version and commit this binary was built from.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit this binary was built from (`unknown` outside a checkout).
pub const COMMIT: &str = env!("LISTWIRE_GIT_COMMIT");
/// What `listwire --version` prints after the name: the version and the commit.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("LISTWIRE_GIT_COMMIT"),
    ")"
);

/// The process-wide Prometheus recorder, installed once; later nodes in the same process share
/// it. Every metric is described, and every series an operator's dashboard or alert reads is
/// registered (at zero) before the first event.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = builder().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics shows only this node's recorder");
            }
            describe_all();
            register_all();
            // Histogram upkeep runs in `listwire_gateway::serve`, which owns the handle's route.
            handle
        })
        .clone()
}

fn builder() -> PrometheusBuilder {
    let mut builder = PrometheusBuilder::new();
    let mut layout = vec![(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS[..])];
    for suffix in COUNT_SUFFIXES {
        layout.push((Matcher::Suffix(suffix.into()), &COUNT_BUCKETS[..]));
    }
    for (matcher, buckets) in layout {
        // Fails only for an empty bucket list, which these constants are not.
        builder = match builder.set_buckets_for_metric(matcher, buckets) {
            Ok(builder) => builder,
            Err(_) => PrometheusBuilder::new(),
        };
    }
    builder
}

fn describe_all() {
    metrics::describe_gauge!(
        "listwire_build_info",
        "always 1; the labels say which version and commit this node runs"
    );
    crate::metrics::describe();
    crate::cluster::metrics::describe();
    listwire_cluster::metrics::describe_metrics();
    listwire_gateway::describe_metrics();
    listwire_storage::embedded::describe_metrics();
    listwire_storage::postgres::describe_metrics();
    listwire_storage::metered::describe_metrics();
}

fn register_all() {
    metrics::gauge!("listwire_build_info", "version" => VERSION, "commit" => COMMIT).set(1.0);
    crate::metrics::register();
    listwire_gateway::register_metrics();
}

/// The log filter when the operator gives none: listwire's own lines at `info`, the libraries'
/// (the embedded store's recovery, gossip, the database drivers) only when they warn.
pub const DEFAULT_LOG_FILTER: &str =
    "warn,listwire=info,listwire_cluster=info,listwire_gateway=info,listwire_storage=info";

/// Installs the log subscriber: `filter` in tracing's EnvFilter syntax (per-module levels, e.g.
/// `warn,listwire=debug,fjall=info`). A JSON line carries the event's fields at top level
/// (a line about an op names its `list_id` and `op_id`), and any spans it is in under `spans`.
pub fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|error| {
        eprintln!("listwire: ignoring the log filter {filter:?} ({error}); using the default");
        tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER)
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .init(),
        LogFormat::Text => builder.init(),
    }
}
