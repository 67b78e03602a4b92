//! A rough first measurement of acknowledged ops per second and ack latency on one node, until
//! the full load generator (`simulations/`) exists.
//!
//! Usage: `cargo run --release -p listwire --example ack_load -- URL [connections] [window] [seconds]`
//! against a node started with a high per-user rate limit, e.g.
//! `listwire serve --ops-per-second-per-user 1000000 --ops-burst-per-user 1000000 --auth-per-second-per-ip 1000 --auth-burst-per-ip 1000`.
//! Each connection is its own user writing to its own list with `window` ops in flight
//! (closed loop: latency under overload is understated, see the coordinated-omission note in
//! the load-generator issue).

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use listwire::client::{Client, ServerFrame};
use serde_json::json;
use uuid::Uuid;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "http://127.0.0.1:7070".into());
    let connections: usize = args
        .get(2)
        .map(|value| value.parse())
        .transpose()?
        .unwrap_or(16);
    let window: usize = args
        .get(3)
        .map(|value| value.parse())
        .transpose()?
        .unwrap_or(64);
    let seconds: u64 = args
        .get(4)
        .map(|value| value.parse())
        .transpose()?
        .unwrap_or(10);
    let run = format!("{:x}", Uuid::new_v4().as_u128() as u32);
    let mut tasks = Vec::new();
    for index in 0..connections {
        let anonymous = Client::new(&url);
        let session = anonymous
            .register(&format!("load{run}x{index}"), "load-test-password")
            .await?;
        let client = anonymous.with_token(&session.token);
        let list = client
            .create_list(json!({"title": format!("load {index}")}))
            .await?;
        tasks.push(tokio::spawn(writer(
            client,
            list,
            window,
            Duration::from_secs(seconds),
        )));
    }
    let mut total = Histogram::<u64>::new(3)?;
    let mut acked = 0u64;
    for task in tasks {
        let (histogram, count) = task.await??;
        total.add(histogram)?;
        acked += count;
    }
    let micros = |quantile: f64| total.value_at_quantile(quantile) as f64 / 1000.0;
    println!(
        "connections={connections} window={window} seconds={seconds} acked={acked} ops_per_sec={:.0} ack_ms p50={:.2} p99={:.2} p999={:.2} max={:.2}",
        acked as f64 / seconds as f64,
        micros(0.5),
        micros(0.99),
        micros(0.999),
        total.max() as f64 / 1000.0
    );
    Ok(())
}

async fn writer(
    client: Client,
    list: Uuid,
    window: usize,
    duration: Duration,
) -> anyhow::Result<(Histogram<u64>, u64)> {
    let mut live = client.connect().await?;
    let mut histogram = Histogram::<u64>::new(3)?;
    let mut sent_at = std::collections::HashMap::new();
    let started = Instant::now();
    let mut acked = 0u64;
    let mut sequence = 0u64;
    while started.elapsed() < duration || !sent_at.is_empty() {
        while started.elapsed() < duration && sent_at.len() < window {
            let op_id = Uuid::new_v4();
            sequence += 1;
            // A rename is durable and keeps the list small however long the run.
            live.send_op(
                list,
                op_id,
                &json!({"kind": "rename", "title": format!("title {sequence}")}),
            )
            .await?;
            sent_at.insert(op_id, Instant::now());
        }
        match live.next().await? {
            ServerFrame::Ack { op_id, .. } => {
                if let Some(sent) = sent_at.remove(&op_id) {
                    histogram.record(sent.elapsed().as_micros() as u64)?;
                    acked += 1;
                }
            }
            ServerFrame::Error { code, message, .. } => {
                anyhow::bail!("op refused: {code}: {message}")
            }
            _ => {}
        }
    }
    Ok((histogram, acked))
}
