//! The scenarios and their flags, each turned into its scenario's parameters.

use clap::{Args, Subcommand};
use listwire_simulations::scenarios::layout::Layout;
use listwire_simulations::scenarios::{failover, fanout, forwarded, hot_poll, memory, throughput};

#[derive(Subcommand)]
pub enum Scenario {
    /// Many lists, W writers, open-loop rate: acked ops/s and ack latency.
    Throughput(ThroughputArgs),
    /// One list, S subscribers, one writer: delivery latency, loss, duplicates.
    Fanout(FanoutArgs),
    /// A public poll, V distinct voters (or with --ws, C voters on WebSockets that follow the
    /// tally), W watchers: votes/s, latency, tally lag, exact tally, and the CPU time of each
    /// started node per vote.
    HotPoll(HotPollArgs),
    /// On a cluster: ack latency of ops forwarded to the list's owner beside ops sent to the
    /// owner itself, at the same rate, in one run.
    Forwarded(ForwardedArgs),
    /// On a cluster the bench started: writers and subscribers, the owner of some of their
    /// lists SIGKILLed mid-run; outage as clients see it, nothing acked lost or doubled.
    Failover(FailoverArgs),
    /// Writes, fan-out and a poll at once.
    Mixed,
    /// Resident memory per idle connection and per active list (started node only).
    Memory(MemoryArgs),
}

/// Where a scenario's list lives and where its clients connect, on a cluster.
#[derive(Args, Clone)]
pub struct LayoutArgs {
    /// Place the list on this node (by index: the order of --url, or 0..N of --cluster).
    #[arg(long)]
    pub owner_node: Option<usize>,
    /// Connect clients round-robin to these nodes only (repeat; default: every node).
    #[arg(long = "gateway-node")]
    pub gateway_nodes: Vec<usize>,
}

impl LayoutArgs {
    fn layout(&self) -> Layout {
        Layout {
            owner: self.owner_node,
            gateways: self.gateway_nodes.clone(),
        }
    }
}

#[derive(Args)]
pub struct ThroughputArgs {
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
    pub max: bool,
}

impl ThroughputArgs {
    pub fn params(&self) -> throughput::Params {
        throughput::Params {
            lists: self.lists,
            writers: self.writers,
            rate: self.rate,
            seconds: self.seconds,
            ..Default::default()
        }
    }
}

#[derive(Args)]
pub struct FanoutArgs {
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Raise the rate until p99 passes 100 ms or a delivery is lost; report the maximum.
    #[arg(long)]
    pub max: bool,
    /// Also measure the reference rebroadcast server and report the ratio.
    #[arg(long)]
    pub compare_reference: bool,
    #[command(flatten)]
    layout: LayoutArgs,
}

impl FanoutArgs {
    pub fn params(&self) -> fanout::Params {
        fanout::Params {
            subscribers: self.subscribers,
            rate: self.rate,
            seconds: self.seconds,
            layout: self.layout.layout(),
        }
    }
}

#[derive(Args)]
pub struct HotPollArgs {
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
    /// Vote over WebSockets: --connections voters, each following the poll's tally and voting
    /// on that socket once per item (C × items votes; the poll allows `items` votes per user;
    /// --voters is unused). Nodes the bench starts already get its raised per-user op and
    /// connection limits; keep C under the fd limit (about 15 000 with a hard limit of 20 000).
    #[arg(long)]
    ws: bool,
    /// With --ws: voter connections, one user each, round-robin over the gateway nodes.
    #[arg(long, default_value_t = 5000)]
    connections: u64,
    /// Sends per vote (same op id) on retryable errors (busy, unavailable, moved, rate_limited).
    #[arg(long, default_value_t = 5)]
    attempts: u32,
    #[command(flatten)]
    layout: LayoutArgs,
}

impl HotPollArgs {
    pub fn params(&self) -> hot_poll::Params {
        hot_poll::Params {
            voters: self.voters,
            rate: self.rate,
            items: self.items,
            watchers: self.watchers,
            http2: self.http2,
            layout: self.layout.layout(),
            ws: self.ws,
            connections: self.connections,
            attempts: self.attempts,
        }
    }
}

#[derive(Args)]
pub struct ForwardedArgs {
    /// Lists per path.
    #[arg(long, default_value_t = 100)]
    lists: usize,
    /// Writer connections per path.
    #[arg(long, default_value_t = 4)]
    writers: usize,
    /// Offered ops per second, per path.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// The node owning every list.
    #[arg(long, default_value_t = 0)]
    owner_node: usize,
    /// The node the forwarded path's writers connect to.
    #[arg(long, default_value_t = 1)]
    gateway_node: usize,
}

impl ForwardedArgs {
    pub fn params(&self) -> forwarded::Params {
        forwarded::Params {
            lists: self.lists,
            writers: self.writers,
            rate: self.rate,
            seconds: self.seconds,
            owner: self.owner_node,
            gateway: self.gateway_node,
            ..Default::default()
        }
    }
}

#[derive(Args)]
pub struct FailoverArgs {
    #[arg(long, default_value_t = 30)]
    lists: usize,
    /// Ops per second offered to each list.
    #[arg(long, default_value_t = 20.0)]
    rate_per_list: f64,
    #[arg(long, default_value_t = 6)]
    writers: usize,
    #[arg(long, default_value_t = 4)]
    subscribers_per_list: usize,
    #[arg(long, default_value_t = 12.0)]
    seconds: f64,
    /// When the victim is killed, in seconds after the first op.
    #[arg(long, default_value_t = 4.0)]
    kill_after: f64,
    /// The node to kill (default: the last).
    #[arg(long)]
    victim: Option<usize>,
}

impl FailoverArgs {
    pub fn params(&self) -> failover::Params {
        failover::Params {
            lists: self.lists,
            rate_per_list: self.rate_per_list,
            writers: self.writers,
            subscribers_per_list: self.subscribers_per_list,
            seconds: self.seconds,
            kill_after: self.kill_after,
            victim: self.victim,
        }
    }
}

#[derive(Args)]
pub struct MemoryArgs {
    #[arg(long, default_value_t = 5000)]
    connections: usize,
    #[arg(long, default_value_t = 5000)]
    lists: usize,
}

impl MemoryArgs {
    pub fn params(&self) -> memory::Params {
        memory::Params {
            connections: self.connections,
            lists: self.lists,
            ..Default::default()
        }
    }
}
