//! `listwire-rebroadcast`: the reference fan-out server (see `listwire_simulations::reference`).

use clap::Parser;

/// The minimal rebroadcast server on listwire's WebSocket stack, for fan-out comparisons.
#[derive(Parser)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7171")]
    listen: std::net::SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    listwire_simulations::raise_fd_limit();
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!(
        "reference rebroadcast listening on http://{}",
        listener.local_addr()?
    );
    listwire_simulations::reference::serve(listener).await?;
    Ok(())
}
