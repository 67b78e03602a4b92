//! Simulated subscribers: a `FrameSink` at some node, every frame checked as it arrives (a
//! delta must start right after what the subscriber has; a snapshot or tally may not go back),
//! resubscribing with `since` at another node when the connection is lost, as a real client
//! does.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use listwire_gateway::{FrameSink, Outbound, Principal};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::clients::{principal, Clients, ListSpec};
use super::gateway::call;
use super::node::Request;
use super::records::SubRecord;
use super::rng::SimRng;

/// Frames a subscriber's queue holds (far above what the workload sends between reads).
const SINK_CAPACITY: usize = 65_536;

impl SubRecord {
    /// Applies one frame to what the subscriber has.
    pub fn apply(&mut self, frame: &Bytes) {
        self.frames += 1;
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(frame) else {
            self.violations.push("a frame that is not JSON".into());
            return;
        };
        let seq = |key: &str| value[key].as_u64().unwrap_or(0);
        match value["type"].as_str() {
            Some("delta") => self.delta(seq("from"), seq("to"), &value["events"]),
            Some("snapshot") => self.advance("snapshot", seq("seq")),
            Some("tally") => {
                self.advance("tally", seq("seq"));
                let counts = value["counts"].as_object().cloned().unwrap_or_default();
                let counts = counts
                    .iter()
                    .filter_map(|(item, votes)| Some((item.parse().ok()?, votes.as_u64()?)))
                    .collect();
                self.tally = Some((seq("seq"), counts));
            }
            _ => {}
        }
    }

    fn delta(&mut self, from: u64, to: u64, events: &serde_json::Value) {
        if from != self.last + 1 {
            let what = if from <= self.last { "repeat" } else { "gap" };
            self.violations.push(format!(
                "delta {from}..={to} after seq {} ({what})",
                self.last
            ));
        }
        for event in events.as_array().into_iter().flatten() {
            let seq = event["seq"].as_u64().unwrap_or(0);
            let op_id = event["op_id"].as_str().and_then(|id| id.parse().ok());
            if let Some(op_id) = op_id {
                self.events.insert(seq, op_id);
            }
        }
        self.last = self.last.max(to);
    }

    fn advance(&mut self, what: &str, seq: u64) {
        if seq < self.last {
            self.violations
                .push(format!("{what} at seq {seq} after seq {}", self.last));
        }
        self.last = self.last.max(seq);
    }
}

enum Ended {
    /// The run is over.
    Done,
    /// The connection went away or the owner ended the subscription.
    Lost,
}

impl Clients {
    /// Subscribes to `list` (at random nodes, resubscribing on loss) until `until`.
    pub async fn subscriber(self, mut rng: SimRng, list: ListSpec, index: usize, until: Instant) {
        let user = if list.items.is_empty() {
            list.owner.clone()
        } else {
            principal(&mut rng, format!("watcher{index}"))
        };
        let mut record = SubRecord {
            index,
            list: list.id,
            ..SubRecord::default()
        };
        tokio::time::sleep(Duration::from_millis(rng.between(0, 3_000))).await;
        while Instant::now() < until {
            let node = rng.below(self.gateways.len() as u64) as usize;
            let since = (record.last > 0).then_some(record.last);
            let connection =
                ((index as u64) << 32) | u64::from(record.disconnects) << 16 | rng.below(1 << 16);
            let Some(frames) = self
                .connect(connection, node, &user, (list.id, since))
                .await
            else {
                tokio::time::sleep(Duration::from_millis(rng.between(100, 500))).await;
                continue;
            };
            self.trace
                .record(format!("subscriber {index} on node {node} since {since:?}"));
            match read_frames(&mut record, &frames, until).await {
                Ended::Done => {
                    record.connected_at_end = true;
                    break;
                }
                Ended::Lost => {
                    record.disconnects += 1;
                    self.trace
                        .record(format!("subscriber {index} lost at seq {}", record.last));
                }
            }
        }
        self.trace.record(format!(
            "subscriber {index} ends at seq {} with {} violations",
            record.last,
            record.violations.len()
        ));
        self.records.sub(record);
    }

    async fn connect(
        &self,
        connection: u64,
        node: usize,
        user: &Principal,
        (list, since): (Uuid, Option<u64>),
    ) -> Option<listwire_gateway::OutboundReceiver> {
        let cancel = CancellationToken::new();
        let (sink, frames) = FrameSink::new(connection, user.user_id, SINK_CAPACITY, cancel);
        let answer = call(&self.gateways, node, |done| Request::Subscribe {
            principal: user.clone(),
            list,
            since,
            sink,
            done,
        })
        .await;
        matches!(answer, Ok(Ok(()))).then_some(frames)
    }
}

async fn read_frames(
    record: &mut SubRecord,
    frames: &listwire_gateway::OutboundReceiver,
    until: Instant,
) -> Ended {
    loop {
        tokio::select! {
            biased;
            frame = frames.recv_async() => match frame {
                Ok(Outbound::Frame(bytes)) => record.apply(&bytes),
                Ok(Outbound::SubscriptionEnded { .. }) | Err(_) => return Ended::Lost,
            },
            () = tokio::time::sleep_until(until) => {
                // Take what already arrived, then stop.
                while let Ok(Outbound::Frame(bytes)) = frames.try_recv() {
                    record.apply(&bytes);
                }
                return Ended::Done;
            }
        }
    }
}

/// Counts of a tally, by item (for comparing with the stored votes).
pub type Tally = BTreeMap<Uuid, u64>;
