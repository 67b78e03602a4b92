//! The `listwire` binary: `listwire serve` runs a node, `listwire dev-cluster` a cluster of
//! nodes in one process; the other subcommands are a client.

use std::process::ExitCode;

use clap::Parser;
use listwire::cli::{run_client, Cli, Command};
use listwire::telemetry::init_logging;

/// mimalloc instead of the system allocator: a node allocates and frees many small buffers per
/// op (frames, messages) from many threads, where glibc's malloc spent about 13% of a hot
/// poll's CPU in its free lists (BENCHMARKS.md, issue 13).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs the command. A failure (a refusal the server gave, a node that cannot start) prints one
/// line, `listwire: error: …` with its causes, and exits 1; never a backtrace, whatever
/// `RUST_BACKTRACE` says: the line is the whole message.
fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("listwire: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => {
            init_logging(args.log_format, &args.log);
            runtime.block_on(listwire::server::run(*args, shutdown_signal()))
        }
        Command::DevCluster(args) => {
            init_logging(args.log_format, &args.log);
            runtime.block_on(listwire::dev_cluster::run(args, shutdown_signal()))
        }
        _ => runtime.block_on(run_client(cli)),
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutdown signal received");
}
