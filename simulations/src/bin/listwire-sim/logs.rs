//! Node logs stamped with simulated time, for reading what a replayed seed did:
//! `LISTWIRE_SIM_LOG=debug listwire-sim --seed 12` (a `tracing` filter, as `RUST_LOG` takes).
//! A log is part of the run: compare traces of runs made with the same filter.

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::EnvFilter;

/// The variable that turns logs on.
const VAR: &str = "LISTWIRE_SIM_LOG";

/// Installs the log if the variable is set; otherwise the run logs nothing.
pub fn init_from_env() {
    if std::env::var_os(VAR).is_none() {
        return;
    }
    tracing_subscriber::fmt()
        .with_timer(SimTime)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .with_env_filter(EnvFilter::from_env(VAR))
        .init();
}

/// Simulated time since the run began (blank outside a simulated host).
struct SimTime;

impl FormatTime for SimTime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        match turmoil::sim_elapsed() {
            Some(elapsed) => write!(w, "{:>9.3}s", elapsed.as_secs_f64()),
            None => write!(w, "{:>10}", "-"),
        }
    }
}
