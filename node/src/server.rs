//! Wiring: opens storage, builds the host, router, admin side and gateway, serves until
//! shutdown (a signal, or a stop asked by an admin call), then drains (in a cluster), flushes
//! every list and closes storage.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use listwire_gateway::{Gateway, GatewayConfig, Router};
use listwire_storage::embedded::{EmbeddedOptions, EmbeddedStore};
use listwire_storage::memory::MemoryStore;
use listwire_storage::metered::Metered;
use listwire_storage::{AccountStore, EventStore};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::admin::{Identity, NodeAdmin, StopSignal};
use crate::clock::system_now_ms;
use crate::cluster::{ClusterIo, ClusterNode};
use crate::config::{ServeArgs, StoreKind};
use crate::host::Host;
use crate::router::{LocalRouter, NodeAccounts};
use crate::secret;

/// How long shutdown waits for lists to flush and snapshot.
const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(20);

/// A node started in the background (tests, embedding).
pub struct RunningNode {
    /// The address clients connect to.
    pub addr: SocketAddr,
    /// The JWT secret in use (tests mint tokens with it).
    pub jwt_secret: Vec<u8>,
    /// The node's cluster side, when it runs in a cluster.
    pub cluster: Option<Arc<ClusterNode>>,
    /// The node's host (its list actors).
    pub host: Host,
    gateway: Gateway,
    stop: Option<oneshot::Sender<()>>,
    stopped_rx: watch::Receiver<bool>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningNode {
    /// Base HTTP URL.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Resolves once the node has stopped: by itself (an admin call asked it to) or through
    /// [`RunningNode::stop`]. Call [`RunningNode::stop`] afterwards for the outcome.
    pub async fn stopped(&self) {
        let mut stopped_rx = self.stopped_rx.clone();
        // A closed watch means the task ended without saying so (it panicked): stopped too.
        let _ = stopped_rx.wait_for(|stopped| *stopped).await;
    }

    /// Stops gracefully (drain if in a cluster, flush, snapshot, close) and waits.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.context("node task panicked")?
    }

    /// Stops at once, as a crash would: the serving task is aborted, every connection and
    /// internode socket closed, gossip silenced and list actors killed without a flush.
    /// Storage is left as it is (another node or a restart takes over).
    pub async fn crash(mut self) {
        self.stop.take();
        self.gateway.close_connections();
        self.task.abort();
        if let Some(cluster) = &self.cluster {
            cluster.crash().await;
        } else {
            self.host.kill_all().await;
        }
    }
}

/// Starts a node in the background and returns once it listens.
pub async fn start(args: ServeArgs) -> anyhow::Result<RunningNode> {
    start_with(args, None).await
}

/// Starts a node in the background over `stores` (or the ones its settings name), and returns
/// once it listens (and, in a cluster, serves).
pub async fn start_with(args: ServeArgs, stores: Option<Stores>) -> anyhow::Result<RunningNode> {
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let prepared = prepare(&args, stores).await?;
    let addr = prepared.listener.local_addr()?;
    let jwt_secret = prepared.jwt_secret.clone();
    let cluster = prepared.cluster.clone();
    let host = prepared.host.clone();
    let gateway = prepared.gateway.clone();
    let (stopped_tx, stopped_rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let result = prepared
            .run(async move {
                let _ = stop_rx.await;
            })
            .await;
        stopped_tx.send_replace(true);
        result
    });
    Ok(RunningNode {
        addr,
        jwt_secret,
        cluster,
        host,
        gateway,
        stop: Some(stop_tx),
        stopped_rx,
        task,
    })
}

/// Runs a node in the foreground until `shutdown` resolves.
pub async fn run(
    args: ServeArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let prepared = prepare(&args, None).await?;
    let addr = prepared.listener.local_addr()?;
    println!(
        "listwire listening on http://{addr} (WebSocket: ws://{addr}/v1/ws, data: {})",
        describe_store(&args)
    );
    prepared.run(shutdown).await
}

fn describe_store(args: &ServeArgs) -> String {
    match args.store {
        StoreKind::Embedded => format!("{}", args.data_dir.join("store").display()),
        StoreKind::Memory => "memory (not durable)".into(),
        StoreKind::Scylla => format!(
            "scylla keyspace {} at {}",
            args.scylla_keyspace, args.scylla_nodes
        ),
        StoreKind::Postgres => match args.postgres_config() {
            Ok(config) => config.describe(),
            Err(_) => "postgres (invalid settings)".into(),
        },
    }
}

struct Prepared {
    listener: TcpListener,
    gateway: Gateway,
    host: Host,
    events: Arc<dyn EventStore>,
    jwt_secret: Vec<u8>,
    cluster: Option<Arc<ClusterNode>>,
    /// Raised by an admin call: the same graceful stop as the process's shutdown signal.
    stop: StopSignal,
    /// Whether this node opened its stores (and closes them); shared stores are the caller's.
    owns_stores: bool,
}

impl Prepared {
    async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Prepared {
            listener,
            gateway,
            host,
            events,
            cluster,
            stop,
            owns_stores,
            ..
        } = self;
        // In a cluster, a stop drains first: lists move to other nodes while this node's
        // connections stay open (their subscriptions follow the lists); only then do the
        // connections close with 1001. An admin call's stop is the same stop.
        let draining = cluster.clone();
        let signal = async move {
            tokio::select! {
                () = shutdown => {}
                () = stop.requested() => {}
            }
            if let Some(cluster) = draining {
                tracing::info!("draining: handing lists to other nodes");
                cluster.drain().await;
            }
        };
        listwire_gateway::serve(listener, gateway, signal)
            .await
            .context("serving clients")?;
        tracing::info!("shutting down: flushing lists");
        host.shutdown(SHUTDOWN_FLUSH_TIMEOUT).await;
        if let Some(cluster) = cluster {
            cluster.stop().await;
        }
        if owns_stores {
            events.close().await.context("closing storage")?;
        }
        tracing::info!("shutdown complete");
        Ok(())
    }
}

async fn prepare(args: &ServeArgs, stores: Option<Stores>) -> anyhow::Result<Prepared> {
    args.validate().map_err(anyhow::Error::msg)?;
    // Installed first: the host resolves its metric handles from it.
    let metrics = crate::telemetry::metrics_handle();
    let owns_stores = stores.is_none();
    let (events, accounts) = match stores {
        Some(stores) => stores,
        None => {
            if args.cluster.enabled() && args.store == StoreKind::Embedded {
                tracing::warn!("a cluster node on the embedded store shares its lists with no other process; use --store postgres or scylla (or listwire dev-cluster)");
            }
            open_stores(args).await?
        }
    };
    let backend = args.store.label();
    let events: Arc<dyn EventStore> = Arc::new(Metered::new(backend, events));
    let accounts: Arc<dyn AccountStore> = Arc::new(Metered::new(backend, accounts));
    let jwt_secret = jwt_secret(args)?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let client_addr = listener.local_addr()?;
    let sides = start_sides(args, (events.clone(), accounts.clone()), client_addr).await?;
    let stop = StopSignal::default();
    let admin = NodeAdmin::new(
        sides.host.clone(),
        sides.cluster.clone(),
        stop.clone(),
        identity(args, client_addr),
        Duration::from_millis(args.admin_peer_timeout_ms),
    );
    let node_accounts = Arc::new(NodeAccounts::new(accounts));
    let config = gateway_config(args, jwt_secret.clone());
    let gateway = Gateway::new(
        config,
        sides.router,
        node_accounts,
        Some(Arc::new(admin)),
        Some(metrics),
    )?;
    if let Some(cluster) = &sides.cluster {
        cluster.serve().await?;
    }
    Ok(Prepared {
        listener,
        gateway,
        host: sides.host,
        events,
        jwt_secret,
        cluster: sides.cluster,
        stop,
        owns_stores,
    })
}

fn jwt_secret(args: &ServeArgs) -> anyhow::Result<Vec<u8>> {
    Ok(match (&args.jwt_secret, args.store) {
        (Some(secret), _) => secret.as_bytes().to_vec(),
        (None, StoreKind::Memory) => secret::generate(),
        (None, StoreKind::Embedded) => secret::load_or_create(&args.data_dir.join("jwt-secret"))?,
        (None, StoreKind::Scylla | StoreKind::Postgres) => {
            tracing::warn!("no --jwt-secret: using one kept in the data directory; every node of a cluster needs the same secret");
            secret::load_or_create(&args.data_dir.join("jwt-secret"))?
        }
    })
}

/// What serves a node's lists: its host, its cluster side if it runs in one, and the router
/// the gateway sends requests to.
struct Sides {
    host: Host,
    cluster: Option<Arc<ClusterNode>>,
    router: Arc<dyn Router>,
}

async fn start_sides(
    args: &ServeArgs,
    stores: Stores,
    client_addr: SocketAddr,
) -> anyhow::Result<Sides> {
    if !args.cluster.enabled() {
        let (events, accounts) = stores;
        let host = Host::new(events, accounts, args.host_config());
        let router = Arc::new(LocalRouter::new(host.clone()));
        return Ok(Sides {
            host,
            cluster: None,
            router,
        });
    }
    let op_timeout = Duration::from_millis(args.op_timeout_ms);
    let cluster = ClusterNode::start(
        &args.cluster,
        stores,
        args.host_config(),
        client_addr,
        op_timeout,
        &args.data_dir,
        ClusterIo::tokio(args.cluster.internode_listen.ip()),
    )
    .await
    .context("starting the cluster side")?;
    Ok(Sides {
        host: cluster.host().clone(),
        router: Arc::new(cluster.router()),
        cluster: Some(cluster),
    })
}

/// Who a node running alone says it is in the admin view (a cluster node's view says it).
fn identity(args: &ServeArgs, client_addr: SocketAddr) -> Identity {
    Identity {
        node_id: args
            .cluster
            .node_id
            .clone()
            .unwrap_or_else(|| client_addr.to_string()),
        generation: system_now_ms(),
        client_addr: args
            .cluster
            .client_advertise
            .clone()
            .unwrap_or_else(|| client_addr.to_string()),
    }
}

/// A node's event and account stores.
pub type Stores = (Arc<dyn EventStore>, Arc<dyn AccountStore>);

/// Opens the stores `args` name (the embedded one under `<data-dir>/store`).
pub async fn open_stores(args: &ServeArgs) -> anyhow::Result<Stores> {
    match args.store {
        StoreKind::Memory => {
            let store = Arc::new(MemoryStore::new());
            Ok((store.clone(), store))
        }
        StoreKind::Scylla => {
            let config = args.scylla_config().map_err(anyhow::Error::msg)?;
            let store = listwire_storage::scylla::ScyllaStore::connect(config)
                .await
                .context("connecting to ScyllaDB")?;
            let store = Arc::new(store);
            Ok((store.clone(), store))
        }
        StoreKind::Postgres => {
            let config = args.postgres_config().map_err(anyhow::Error::msg)?;
            let described = config.describe();
            let store = listwire_storage::postgres::PostgresStore::connect(config)
                .await
                .with_context(|| format!("connecting to PostgreSQL ({described})"))?;
            let store = Arc::new(store);
            Ok((store.clone(), store))
        }
        StoreKind::Embedded => {
            let dir = args.data_dir.join("store");
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let options = EmbeddedOptions {
                fsync: !args.no_fsync,
                worker_threads: args.store_worker_threads,
                request_timeout: Duration::from_millis(args.store_request_timeout_ms),
                ..EmbeddedOptions::default()
            };
            let store = tokio::task::spawn_blocking(move || open_embedded(&dir, options)).await??;
            let store = Arc::new(store);
            Ok((store.clone(), store))
        }
    }
}

fn open_embedded(dir: &Path, options: EmbeddedOptions) -> anyhow::Result<EmbeddedStore> {
    EmbeddedStore::open(dir, options)
        .with_context(|| format!("opening the embedded store in {}", dir.display()))
}

fn gateway_config(args: &ServeArgs, jwt_secret: Vec<u8>) -> GatewayConfig {
    GatewayConfig {
        ws_message_bytes_max: args.ws_message_bytes_max,
        ws_message_bytes_hard_max: args.ws_message_bytes_hard_max,
        ws_read_buffer_bytes: args.ws_read_buffer_bytes,
        ops_in_flight_per_connection_max: args.ops_in_flight_per_connection_max,
        ping_interval: Duration::from_secs(args.ws_ping_interval_secs),
        idle_timeout: Duration::from_secs(args.ws_idle_timeout_secs),
        write_timeout: Duration::from_secs(args.ws_write_timeout_secs),
        op_timeout: Duration::from_millis(args.op_timeout_ms),
        http_body_bytes_max: args.http_body_bytes_max,
        subscriptions_per_connection_max: args.subscriptions_per_connection_max,
        outbound_queue_frames: args.outbound_queue_frames,
        ops_per_second_per_user: args.ops_per_second_per_user,
        ops_burst_per_user: args.ops_burst_per_user,
        auth_per_second_per_ip: args.auth_per_second_per_ip,
        auth_burst_per_ip: args.auth_burst_per_ip,
        token_ttl: Duration::from_secs(args.token_ttl_secs),
        jwt_secret,
        admin_token: args.admin_token.clone(),
        argon2_memory_kib: args.argon2_memory_kib,
        argon2_iterations: args.argon2_iterations,
        connections_max: args.connections_max,
        connections_per_user_max: args.connections_per_user_max,
        ..GatewayConfig::default()
    }
}
