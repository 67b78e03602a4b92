//! Serving: the listener loop, periodic maintenance, and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::gateway::Gateway;

/// Serves `gateway` on `listener` until `shutdown` resolves. Then it stops accepting, closes
/// every WebSocket with 1001 "server shutting down", and waits (at most
/// `shutdown_drain_timeout`) for connections to finish.
pub async fn serve(
    listener: TcpListener,
    gateway: Gateway,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let inner = std::sync::Arc::clone(&gateway.inner);
    let maintenance = tokio::spawn(maintain(gateway.clone()));
    let shutdown_token = inner.shutdown.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("gateway shutting down");
        // Upgraded WebSockets are invisible to axum's graceful shutdown: cancel them ourselves.
        shutdown_token.cancel();
    };
    let app = gateway
        .app()
        .into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .await;
    // If serving failed before the signal, still end the connections and the maintenance task.
    inner.shutdown.cancel();
    inner.connections.close();
    let drained = tokio::time::timeout(
        inner.config.shutdown_drain_timeout,
        inner.connections.wait(),
    )
    .await;
    if drained.is_err() {
        tracing::warn!(
            remaining = inner.connections.len(),
            "websocket connections still open after the drain timeout"
        );
    }
    let _ = maintenance.await;
    served
}

/// Drops idle rate-limiter keys and upkeeps the metrics handle until shutdown.
async fn maintain(gateway: Gateway) {
    let inner = &gateway.inner;
    let mut tick = tokio::time::interval(inner.config.maintenance_interval);
    loop {
        tokio::select! {
            _ = inner.shutdown.cancelled() => return,
            _ = tick.tick() => {
                inner.limits.retain_recent();
                if let Some(handle) = &inner.metrics {
                    handle.run_upkeep();
                }
            }
        }
    }
}
