//! The `listwire` binary: `listwire serve` runs a node, `listwire dev-cluster` a cluster of
//! nodes in one process; the other subcommands are a client.

use clap::Parser;
use listwire::cli::{run_client, Cli, Command};
use listwire::config::LogFormat;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
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

fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
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
