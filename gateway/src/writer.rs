//! A connection's writer: drains its outbound queue into the socket (one flush per burst),
//! pings on schedule, answers ops whose deadline passed, and sends the close frame. It measures
//! delivery once per burst (from when the burst's oldest frame was queued until the burst is
//! written, or its write timed out), counts the frames among them that waited longer than
//! [`names::LATE_AFTER`] (frame-weighted, for the alert), and samples the queue's depth when it
//! wakes. A histogram sample per write rather than per frame keeps a backlogged fan-out from
//! buffering millions of samples between scrapes.

use std::sync::Arc;
use std::time::Instant as StdInstant;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use futures_util::{Sink, SinkExt, StreamExt};
use metrics::{Counter, Histogram};
use tokio::time::Instant;

use crate::connection::{
    forget_subscription, Shared, CLOSE_GOING_AWAY, CLOSE_SLOW, CLOSE_WRITE_TIMEOUT,
};
use crate::error::EdgeError;
use crate::frames;
use crate::metrics as names;
use crate::sink::{Outbound, OutboundReceiver, Queued};

/// Most queued frames written before one flush; bounds the latency a big backlog adds to pings.
const BURST_FRAMES_MAX: usize = 256;

/// One burst: the messages to write and when each queued frame among them was queued
/// (oldest first: the queue is FIFO).
#[derive(Default)]
struct Burst {
    messages: Vec<Message>,
    queued_at: Vec<StdInstant>,
}

impl Burst {
    fn control(message: Message) -> Self {
        Self {
            messages: vec![message],
            queued_at: Vec::new(),
        }
    }

    fn texts(messages: Vec<Message>) -> Self {
        Self {
            messages,
            queued_at: Vec::new(),
        }
    }
}

/// The writer's handles, resolved once per connection.
struct WriterMetrics {
    delivery: Histogram,
    late: Counter,
    queue_depth: Histogram,
    sent: Counter,
}

impl WriterMetrics {
    /// Records a written (or timed-out) burst's delivery: its oldest frame's wait, and how
    /// many of its frames were late.
    fn delivered(&self, queued_at: &[StdInstant]) {
        let Some(oldest) = queued_at.first() else {
            return;
        };
        let now = StdInstant::now();
        self.delivery
            .record(now.saturating_duration_since(*oldest).as_secs_f64());
        let late = queued_at
            .iter()
            .take_while(|at| now.saturating_duration_since(**at) > names::LATE_AFTER)
            .count();
        if late > 0 {
            self.late.increment(late as u64);
        }
    }
}

/// Drains the outbound queue into the socket, one flush per burst, and pings on schedule.
pub(crate) async fn write_loop<W>(shared: Arc<Shared>, mut writer: W, outbound: OutboundReceiver)
where
    W: Sink<Message> + Unpin,
    W::Error: std::fmt::Display,
{
    let config = &shared.inner.config;
    let metrics = WriterMetrics {
        delivery: metrics::histogram!(names::DELIVERY_SECONDS),
        late: metrics::counter!(names::FRAMES_LATE_TOTAL),
        queue_depth: metrics::histogram!(names::OUTBOUND_QUEUE_FRAMES),
        sent: metrics::counter!(names::FRAMES_SENT_TOTAL),
    };
    // Made once: a cancellation future registers with its token when first polled, and one
    // made per loop would register and unregister (a lock each) for every burst.
    let cancelled = shared.cancel.cancelled();
    tokio::pin!(cancelled);
    let mut ping =
        tokio::time::interval_at(Instant::now() + config.ping_interval, config.ping_interval);
    let queue = outbound.queued().clone();
    let mut stream = queue.clone().into_stream();
    loop {
        let next_deadline = shared.deadlines.next();
        let burst = tokio::select! {
            biased;
            _ = &mut cancelled => break,
            _ = ping.tick() => Burst::control(Message::Ping(bytes::Bytes::new())),
            () = tokio::time::sleep_until(next_deadline.unwrap_or_else(Instant::now)),
                if next_deadline.is_some() => Burst::texts(expired_ops(&shared)),
            () = shared.deadlines.armed.notified(), if next_deadline.is_none() => continue,
            first = stream.next() => match first {
                Some(first) => {
                    metrics.queue_depth.record((1 + queue.len()) as f64);
                    collect_burst(&shared, first, &queue)
                }
                None => break,
            },
        };
        if burst.messages.is_empty() {
            continue;
        }
        let frame_count = burst
            .messages
            .iter()
            .filter(|message| matches!(message, Message::Text(_)))
            .count();
        let Burst {
            messages,
            queued_at,
        } = burst;
        let written = write_burst(&mut writer, messages);
        let result = tokio::time::timeout(config.write_timeout, written).await;
        // A write that timed out still delivered late (or never): its wait counts too.
        metrics.delivered(&queued_at);
        match result {
            Ok(Ok(())) => {
                metrics.sent.increment(frame_count as u64);
            }
            Ok(Err(error)) => {
                tracing::debug!(connection_id = shared.connection_id, %error, "websocket write failed");
                shared.cancel.cancel();
                return;
            }
            Err(_elapsed) => {
                shared.set_close_reason(CLOSE_WRITE_TIMEOUT);
                break;
            }
        }
    }
    shared.cancel.cancel();
    send_close(&shared, &mut writer).await;
}

/// Error frames for the ops whose deadline passed unanswered: their outcome is unknown.
fn expired_ops(shared: &Shared) -> Vec<Message> {
    let error = EdgeError::unavailable(
        "no answer in time; the outcome is unknown, retry with the same op_id",
    );
    shared
        .deadlines
        .expire(Instant::now())
        .into_iter()
        .filter_map(|op| {
            names::count_error(error.code);
            if let Some(timer) = op.take_timer() {
                timer.finish(&Err(error.clone()));
            }
            let frame = frames::error_frame(&error, Some(op.op_id), Some(op.list));
            Utf8Bytes::try_from(frame).ok().map(Message::Text)
        })
        .collect()
}

/// `first` and whatever else is queued now (up to [`BURST_FRAMES_MAX`]), as messages.
fn collect_burst(shared: &Shared, first: Queued, queue: &flume::Receiver<Queued>) -> Burst {
    let mut burst = Burst::default();
    let mut next = Some(first);
    while let Some(Queued { outbound, at }) = next {
        let frame = match outbound {
            Outbound::Frame(frame) => frame,
            Outbound::SubscriptionEnded { list, frame } => {
                forget_subscription(shared, list);
                frame
            }
        };
        // Frames are encoded once by their owner and shared; this only checks UTF-8.
        match Utf8Bytes::try_from(frame) {
            Ok(text) => {
                burst.messages.push(Message::Text(text));
                burst.queued_at.push(at);
            }
            Err(error) => tracing::error!(%error, "dropping an outbound frame that is not utf-8"),
        }
        next = if burst.messages.len() < BURST_FRAMES_MAX {
            queue.try_recv().ok()
        } else {
            None
        };
    }
    burst
}

async fn write_burst<W: Sink<Message> + Unpin>(
    writer: &mut W,
    burst: Vec<Message>,
) -> Result<(), W::Error> {
    for message in burst {
        writer.feed(message).await?;
    }
    writer.flush().await
}

/// Sends the close frame the connection's end calls for, if any.
async fn send_close<W: Sink<Message> + Unpin>(shared: &Shared, writer: &mut W) {
    let chosen = *shared.close_reason.lock().expect("close reason lock");
    let reason = chosen.or_else(|| {
        if shared.sink.is_slow() {
            Some(CLOSE_SLOW)
        } else if shared.inner.shutdown.is_cancelled() {
            Some(CLOSE_GOING_AWAY)
        } else {
            None
        }
    });
    let Some((code, reason)) = reason else {
        return;
    };
    let close = Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }));
    let _ = tokio::time::timeout(shared.inner.config.write_timeout, writer.send(close)).await;
}
