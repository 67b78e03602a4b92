//! Subscribers of one list, the recent-event ring for `since` resume, and tally coalescing.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use listwire_gateway::ErrorCode;
use uuid::Uuid;

use super::frames;
use super::node_sink::{Access, FrameSpan, NodeItem, SubscriberKey, SubscriberSink};
use crate::domain::ListState;
use crate::metrics::ListMetrics;

/// Events per catch-up delta frame, so one resume does not build one enormous frame.
const CATCH_UP_EVENTS_PER_FRAME: usize = 256;
/// Most vote events a vote-only batch may publish as a delta; a larger one (a burst after a
/// quiet moment) goes out as one tally at once, so a burst of thousands of votes never becomes
/// a delta of thousands of events copied to every subscriber.
pub const VOTE_DELTA_EVENTS_MAX: usize = 16;

struct Subscriber {
    sink: SubscriberSink,
    /// The connection's user; `None` for a node subscription (trusted; its gateway node
    /// authorizes its own users with this list).
    user: Option<Uuid>,
    /// The last seq already queued to this subscriber; later frames must go past it, so a
    /// re-subscribe or a catch-up never makes a client see a seq twice.
    queued_to: u64,
}

/// Frames that bring a follower from some `since` to the durable state.
#[derive(Debug, Clone)]
pub struct CatchUp {
    /// `(seq reached, frame)`, in order.
    pub frames: Vec<(u64, Bytes)>,
    /// Whether the frames are one snapshot (the follower replaces its state).
    pub snapshot: bool,
}

/// How a durable batch should reach subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VotePlan {
    /// Publish the batch as a delta now.
    Delta,
    /// Fold it into the next tally frame (votes arriving faster than the tally interval).
    Coalesce,
    /// Publish a tally now (a vote-only batch too large for a delta).
    Tally,
}

/// The fan-out state of one list.
pub struct Fanout {
    list: Uuid,
    subscribers: HashMap<SubscriberKey, Subscriber>,
    ring: VecDeque<(u64, Bytes)>,
    ring_max: usize,
    tally_interval: Duration,
    last_vote_frame: Option<Instant>,
    tally_pending: bool,
    metrics: ListMetrics,
}

impl Fanout {
    /// Fan-out for `list`, with the replayed tail as the initial resume ring.
    pub fn new(
        list: Uuid,
        tail: Vec<(u64, Bytes)>,
        ring_max: usize,
        tally_interval: Duration,
        metrics: ListMetrics,
    ) -> Self {
        let mut ring: VecDeque<(u64, Bytes)> = tail.into();
        while ring.len() > ring_max {
            ring.pop_front();
        }
        Self {
            list,
            subscribers: HashMap::new(),
            ring,
            ring_max,
            tally_interval,
            last_vote_frame: None,
            tally_pending: false,
            metrics,
        }
    }

    /// Whether nobody is subscribed.
    pub fn is_empty(&self) -> bool {
        self.subscribers.is_empty()
    }

    /// The frames that bring a follower at `since` (or none, `None`) to `durable`: nothing if it
    /// is there, the missed deltas while the ring holds them, else a snapshot.
    pub fn catch_up(
        &self,
        since: Option<u64>,
        durable: &ListState,
        snapshot_frame: impl FnOnce() -> Bytes,
    ) -> CatchUp {
        let head = durable.seq();
        match since {
            Some(since) if since == head => CatchUp {
                frames: Vec::new(),
                snapshot: false,
            },
            Some(since) if since < head && self.covers(since + 1) => CatchUp {
                frames: self.catch_up_frames(since),
                snapshot: false,
            },
            _ => CatchUp {
                frames: vec![(head, snapshot_frame())],
                snapshot: true,
            },
        }
    }

    /// Queues the catch-up for a new subscriber and registers it. `durable` is what it catches
    /// up to. A node subscription first gets `Started` with the durable seq.
    pub fn subscribe(
        &mut self,
        sink: SubscriberSink,
        since: Option<u64>,
        durable: &ListState,
        snapshot_frame: impl FnOnce() -> Bytes,
    ) -> bool {
        let head = durable.seq();
        let key = sink.key();
        // On a re-subscribe the queue already holds everything up to `queued_to`, in order.
        let already_queued = self
            .subscribers
            .get(&key)
            .map(|subscriber| subscriber.queued_to);
        let since = match (since, already_queued) {
            (Some(since), Some(queued_to)) => Some(since.max(queued_to)),
            (since, _) => since,
        };
        let nothing = CatchUp {
            frames: Vec::new(),
            snapshot: false,
        };
        let catch_up = match (since, &sink) {
            // A node subscription without `since` wants live frames only (its gateway catches
            // each of its users up on its own).
            (None, SubscriberSink::Node(_)) => nothing,
            (Some(since), _) if since >= head && already_queued.is_some() => nothing,
            (since, _) => self.catch_up(since, durable, snapshot_frame),
        };
        if let SubscriberSink::Node(node) = &sink {
            let access = Arc::new(Access::of(durable));
            if node.push(NodeItem::Started { seq: head, access }).is_err() {
                return false;
            }
        }
        // Catch-up deltas are contiguous from `since + 1`; a snapshot stands alone.
        let mut next_from = since.map_or(1, |since| since + 1);
        for (seq, frame) in catch_up.frames {
            let span = if catch_up.snapshot {
                FrameSpan::snapshot(seq)
            } else {
                FrameSpan::delta(next_from, seq, None)
            };
            next_from = seq + 1;
            if sink
                .push_frame(frame, span, std::time::Instant::now())
                .is_err()
            {
                return false;
            }
        }
        let subscriber = Subscriber {
            user: sink.user(),
            sink,
            queued_to: head,
        };
        self.subscribers.insert(key, subscriber);
        true
    }

    /// Removes a subscriber.
    pub fn remove(&mut self, key: SubscriberKey) {
        self.subscribers.remove(&key);
    }

    /// Removes a connection's subscription.
    pub fn unsubscribe(&mut self, connection_id: u64) {
        self.subscribers
            .remove(&SubscriberKey::Connection(connection_id));
    }

    /// Drops subscribers whose connection (or consuming node) has gone.
    pub fn drop_closed(&mut self) {
        self.subscribers
            .retain(|_, subscriber| !subscriber.sink.is_closed());
    }

    /// Ends the subscriptions of users who may no longer view the list. Node subscriptions stay:
    /// their frames carry the new `Access`, and their gateway ends its own users by it.
    pub fn revoke_unauthorized(&mut self, durable: &ListState) {
        let list = self.list;
        self.subscribers
            .retain(|_, subscriber| match subscriber.user {
                Some(user) if !durable.can_view(user) => {
                    let message = "access to this list was revoked";
                    subscriber.sink.end(list, ErrorCode::Forbidden, message);
                    false
                }
                _ => true,
            });
    }

    /// Ends every subscription (connections get an error frame, nodes `End`), so followers
    /// resubscribe (with `since`) instead of waiting on a list that sends them nothing more.
    pub fn end_all(&mut self, code: ErrorCode, message: &str) {
        for (_, subscriber) in self.subscribers.drain() {
            subscriber.sink.end(self.list, code, message);
        }
    }

    /// Remembers durable events for resume.
    pub fn remember(&mut self, seq: u64, event_json: Bytes) {
        self.ring.push_back((seq, event_json));
        if self.ring.len() > self.ring_max {
            self.ring.pop_front();
        }
    }

    /// Decides how a durable batch of `events` goes out; call before folding it into the
    /// durable state.
    pub fn plan(&self, all_votes: bool, events: usize, now: Instant) -> VotePlan {
        if !all_votes || self.tally_interval.is_zero() {
            return VotePlan::Delta;
        }
        let recent_vote_frame = self
            .last_vote_frame
            .is_some_and(|at| now.duration_since(at) < self.tally_interval);
        if recent_vote_frame {
            VotePlan::Coalesce
        } else if events > VOTE_DELTA_EVENTS_MAX {
            VotePlan::Tally
        } else {
            VotePlan::Delta
        }
    }

    /// Whether a tally is owed to subscribers.
    pub fn tally_pending(&self) -> bool {
        self.tally_pending
    }

    /// Marks a coalesced batch; returns the delay after which the tally is due if a timer must be armed.
    pub fn coalesced(&mut self, now: Instant) -> Option<Duration> {
        let arm = !self.tally_pending;
        self.tally_pending = true;
        let since_last = self
            .last_vote_frame
            .map(|at| now.duration_since(at))
            .unwrap_or_default();
        arm.then(|| self.tally_interval.saturating_sub(since_last))
    }

    /// Publishes the owed tally for `durable` (which must not yet include later non-vote events).
    pub fn publish_tally(&mut self, durable: &ListState, now: Instant) {
        self.tally_pending = false;
        self.last_vote_frame = Some(now);
        if self.subscribers.is_empty() {
            return;
        }
        let frame = frames::tally(self.list, durable.seq(), &durable.tally_json());
        self.metrics.tallies_published.increment(1);
        self.publish(frame, FrameSpan::tally(durable.seq()));
    }

    /// Publishes a durable batch as one delta frame; `access` (who may read after it) when its
    /// events changed that.
    pub fn publish_delta(
        &mut self,
        (from, to): (u64, u64),
        events: &[Bytes],
        all_votes: bool,
        access: Option<Arc<Access>>,
        now: Instant,
    ) {
        if all_votes {
            self.last_vote_frame = Some(now);
        }
        if self.subscribers.is_empty() {
            return;
        }
        let frame = frames::delta(self.list, from, to, events);
        self.metrics.deltas_published.increment(1);
        self.publish(frame, FrameSpan::delta(from, to, access));
    }

    fn publish(&mut self, frame: Bytes, span: FrameSpan) {
        let to = span.seq;
        self.metrics
            .fanout_subscribers
            .record(self.subscribers.len() as f64);
        let at = std::time::Instant::now();
        self.subscribers.retain(|_, subscriber| {
            if subscriber.queued_to >= to {
                // It caught up past this frame when it subscribed (e.g. a tally of votes it
                // already received as events).
                return true;
            }
            subscriber.queued_to = to;
            // A full queue closes that subscriber (the sink marks it); either way it leaves.
            subscriber
                .sink
                .push_frame(frame.clone(), span.clone(), at)
                .is_ok()
        });
    }

    fn covers(&self, seq: u64) -> bool {
        self.ring.front().is_some_and(|(first, _)| *first <= seq)
    }

    fn catch_up_frames(&self, since: u64) -> Vec<(u64, Bytes)> {
        let events: Vec<&(u64, Bytes)> = self.ring.iter().filter(|(seq, _)| *seq > since).collect();
        events
            .chunks(CATCH_UP_EVENTS_PER_FRAME)
            .filter_map(|chunk| {
                let from = chunk.first()?.0;
                let to = chunk.last()?.0;
                let payload: Vec<Bytes> = chunk.iter().map(|(_, json)| json.clone()).collect();
                Some((to, frames::delta(self.list, from, to, &payload)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fanout(interval_ms: u64) -> Fanout {
        let interval = Duration::from_millis(interval_ms);
        Fanout::new(Uuid::nil(), Vec::new(), 16, interval, ListMetrics::new())
    }

    // Goal: a burst of votes after a quiet moment goes out as one tally, never as a delta of
    // thousands of events copied to every subscriber; a few votes stay a delta, and votes
    // within the interval of the previous vote frame are coalesced.
    #[test]
    fn a_vote_burst_is_published_as_a_tally() {
        let now = Instant::now();
        let mut fanout = fanout(100);
        assert_eq!(
            fanout.plan(true, VOTE_DELTA_EVENTS_MAX, now),
            VotePlan::Delta
        );
        assert_eq!(
            fanout.plan(true, VOTE_DELTA_EVENTS_MAX + 1, now),
            VotePlan::Tally
        );
        assert_eq!(
            fanout.plan(false, 5_000, now),
            VotePlan::Delta,
            "edits are deltas"
        );
        fanout.last_vote_frame = Some(now);
        let soon = now + Duration::from_millis(10);
        assert_eq!(fanout.plan(true, 1, soon), VotePlan::Coalesce);
        assert_eq!(fanout.plan(true, 5_000, soon), VotePlan::Coalesce);
        let later = now + Duration::from_millis(100);
        assert_eq!(fanout.plan(true, 5_000, later), VotePlan::Tally);
    }

    // Goal: `--tally-interval-ms 0` disables tallies, bursts included.
    #[test]
    fn no_tallies_without_an_interval() {
        let fanout = fanout(0);
        assert_eq!(fanout.plan(true, 5_000, Instant::now()), VotePlan::Delta);
    }
}
