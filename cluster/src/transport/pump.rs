//! The two tasks that move a connection's frames: the reader (decode, heartbeat deadline,
//! dispatch) and the writer (pings, pongs, queued frames fed in bursts with one flush).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::connection::{Connection, Serving, Wire};
use super::frame::Frame;
use crate::metrics;

/// Frames the writer takes from the queue before one flush.
const BURST_FRAMES_MAX: usize = 256;

pub(crate) async fn read_loop(
    connection: Arc<Connection>,
    mut stream: SplitStream<Wire>,
    serving_opt: Option<Serving>,
    pong_tx: watch::Sender<u64>,
    heartbeat_timeout: Duration,
) {
    let heartbeat = tokio::time::sleep(heartbeat_timeout);
    tokio::pin!(heartbeat);
    let reason = loop {
        let next = tokio::select! {
            _ = connection.closed.cancelled() => break "shut down".to_string(),
            _ = &mut heartbeat => break "heartbeat timeout".to_string(),
            next = stream.next() => next,
        };
        let bytes = match next {
            None => break "peer closed the connection".to_string(),
            Some(Err(error)) => break format!("read failed: {error}"),
            Some(Ok(bytes)) => bytes,
        };
        ::metrics::counter!(metrics::BYTES_RECEIVED_TOTAL).increment(bytes.len() as u64 + 4);
        let frame = match Frame::decode(BytesMut::freeze(bytes)) {
            Ok(frame) => frame,
            Err(error) => break error.to_string(),
        };
        match frame {
            Frame::Pong { .. } => heartbeat.as_mut().reset(Instant::now() + heartbeat_timeout),
            Frame::Ping { seq } => {
                pong_tx.send_replace(seq);
            }
            frame => {
                if let Err(error) = connection.dispatch(frame, serving_opt.as_ref()) {
                    break error.to_string();
                }
            }
        }
    };
    connection.close(&reason);
}

pub(crate) async fn write_loop(
    connection: Arc<Connection>,
    mut sink: SplitSink<Wire, Bytes>,
    mut outbound_rx: mpsc::Receiver<Frame>,
    mut pong_rx: watch::Receiver<u64>,
    heartbeat_interval: Duration,
) {
    let mut ping_ticker = tokio::time::interval(heartbeat_interval);
    // After a stall, one ping is enough: do not send the missed ones in a burst.
    ping_ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ping_seq = 0u64;
    let reason = loop {
        let first = tokio::select! {
            biased;
            _ = connection.closed.cancelled() => return,
            changed = pong_rx.changed() => match changed {
                Ok(()) => Frame::Pong { seq: *pong_rx.borrow_and_update() },
                Err(_) => return,
            },
            _ = ping_ticker.tick() => {
                ping_seq += 1;
                Frame::Ping { seq: ping_seq }
            }
            frame = outbound_rx.recv() => match frame {
                Some(frame) => frame,
                None => return,
            },
        };
        let burst = write_burst(&mut sink, &mut outbound_rx, first);
        tokio::select! {
            _ = connection.closed.cancelled() => return,
            written = burst => if let Err(error) = written {
                break format!("write failed: {error}");
            },
        }
    };
    connection.close(&reason);
}

/// Feeds `first` and whatever else is queued (up to a bound), then flushes once, so frames
/// queued together leave in one write.
async fn write_burst(
    sink: &mut SplitSink<Wire, Bytes>,
    outbound_rx: &mut mpsc::Receiver<Frame>,
    first: Frame,
) -> std::io::Result<()> {
    let mut fed = 0;
    let mut next_opt = Some(first);
    while let Some(frame) = next_opt.take() {
        let bytes = frame.encode();
        ::metrics::counter!(metrics::BYTES_SENT_TOTAL).increment(bytes.len() as u64 + 4);
        sink.feed(bytes).await?;
        fed += 1;
        if fed < BURST_FRAMES_MAX {
            next_opt = outbound_rx.try_recv().ok();
        }
    }
    sink.flush().await
}
