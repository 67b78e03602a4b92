//! One authenticated connection: a reader task, a writer task, and the tables that match
//! responses and stream items to their exchanges.
//!
//! The dialling side is the client (it sends requests and opens streams); the accepting side
//! is the server (it runs the [`Handler`]). Both sides ping every heartbeat interval and
//! answer pings with pongs; a side that receives no pong for the heartbeat timeout declares
//! the connection dead, which also catches a stream that stalls without an error. Closing
//! fails every in-flight request and open stream at once with [`Error::ConnectionClosed`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::time::Instant;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use super::frame::{FailureCode, Frame};
use super::server::Handler;
use super::stream::{ServerStreamState, StreamMsg};
use super::{net::BoxedIo, PeerInfo, TransportConfig};
use crate::{metrics, Error};

pub(crate) type Wire = Framed<BoxedIo, LengthDelimitedCodec>;

/// Which end of the connection this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Client,
    Server,
}

#[derive(Default)]
struct Tables {
    closed_reason: Option<String>,
    pending: HashMap<u64, oneshot::Sender<Result<Bytes, Error>>>,
    client_streams: HashMap<u64, mpsc::Sender<StreamMsg>>,
    server_streams: HashMap<u64, Arc<ServerStreamState>>,
}

/// The state shared by a connection's tasks and by the handles that use it.
pub(crate) struct Connection {
    pub(crate) peer: PeerInfo,
    side: Side,
    pub(crate) max_payload_bytes: usize,
    pub(crate) stream_window: u32,
    max_streams: usize,
    pub(crate) outbound: mpsc::Sender<Frame>,
    tables: Mutex<Tables>,
    next_id: AtomicU64,
    pub(crate) closed: CancellationToken,
}

/// What the reader of a server connection needs to run handlers.
pub(crate) struct Serving {
    handler: Arc<dyn Handler>,
    in_flight: Arc<Semaphore>,
}

impl Connection {
    /// Starts the reader and writer of an authenticated `wire`. `handler_opt` is set on the
    /// server side. The connection closes itself when `shutdown` is cancelled.
    pub(crate) fn spawn(
        wire: Wire,
        peer: PeerInfo,
        side: Side,
        config: &TransportConfig,
        handler_opt: Option<Arc<dyn Handler>>,
        shutdown: &CancellationToken,
    ) -> Arc<Connection> {
        let (outbound, outbound_rx) = mpsc::channel(config.outbound_queue_frames);
        let connection = Arc::new(Connection {
            peer,
            side,
            max_payload_bytes: config.max_payload_bytes(),
            stream_window: config.stream_window,
            max_streams: config.max_streams,
            outbound,
            tables: Mutex::new(Tables::default()),
            next_id: AtomicU64::new(1),
            closed: shutdown.child_token(),
        });
        let serving_opt = handler_opt.map(|handler| Serving {
            handler,
            in_flight: Arc::new(Semaphore::new(config.max_in_flight_requests)),
        });
        let (sink, stream) = wire.split();
        let (pong_tx, pong_rx) = watch::channel(0u64);
        tokio::spawn(super::pump::read_loop(
            connection.clone(),
            stream,
            serving_opt,
            pong_tx,
            config.heartbeat_timeout,
        ));
        tokio::spawn(super::pump::write_loop(
            connection.clone(),
            sink,
            outbound_rx,
            pong_rx,
            config.heartbeat_interval,
        ));
        ::metrics::counter!(metrics::CONNECTIONS_OPENED_TOTAL).increment(1);
        ::metrics::gauge!(metrics::CONNECTIONS).increment(1.0);
        tracing::debug!(peer = %connection.peer.node_id, side = ?side, "internode connection open");
        connection
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        // A poisoned lock only means another thread panicked mid-update of plain maps; the
        // maps are still usable, so carry on rather than spread the panic.
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    pub(crate) fn closed_error(&self) -> Error {
        let reason = self.tables().closed_reason.clone();
        Error::ConnectionClosed(reason.unwrap_or_else(|| "closed".into()))
    }

    /// Closes the connection once: records why, wakes both tasks and fails every exchange.
    pub(crate) fn close(&self, reason: &str) {
        let (pending, client_streams, server_streams) = {
            let mut tables = self.tables();
            if tables.closed_reason.is_some() {
                return;
            }
            tables.closed_reason = Some(reason.to_string());
            (
                std::mem::take(&mut tables.pending),
                std::mem::take(&mut tables.client_streams),
                std::mem::take(&mut tables.server_streams),
            )
        };
        self.closed.cancel();
        for (_, response_tx) in pending {
            let _ = response_tx.send(Err(Error::ConnectionClosed(reason.to_string())));
        }
        for (_, item_tx) in client_streams {
            let _ = item_tx.try_send(StreamMsg::End(Err(Error::ConnectionClosed(
                reason.to_string(),
            ))));
        }
        for (_, state) in server_streams {
            state.cancelled.cancel();
        }
        ::metrics::counter!(metrics::CONNECTIONS_CLOSED_TOTAL).increment(1);
        ::metrics::gauge!(metrics::CONNECTIONS).decrement(1.0);
        tracing::info!(peer = %self.peer.node_id, side = ?self.side, reason, "internode connection closed");
    }

    fn allocate_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Queues `frame` if there is room, else hands it to a task that waits for room. For
    /// frames the peer must get (stream ends and cancels); bounded by the connection's life,
    /// since closing fails the waiting send.
    pub(crate) fn send_soon(&self, frame: Frame) {
        match self.outbound.try_send(frame) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(frame)) => {
                let outbound = self.outbound.clone();
                let closed = self.closed.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = closed.cancelled() => {}
                        _ = outbound.send(frame) => {}
                    }
                });
            }
        }
    }

    fn check_size(&self, payload: &Bytes) -> Result<(), Error> {
        if payload.len() > self.max_payload_bytes {
            return Err(Error::FrameTooLarge {
                len: payload.len(),
                max: self.max_payload_bytes,
            });
        }
        Ok(())
    }

    /// Sends a request and waits for its response until `deadline`. Dropping the future
    /// forgets the request (a late response is dropped).
    pub(crate) async fn request(&self, payload: Bytes, deadline: Instant) -> Result<Bytes, Error> {
        self.check_size(&payload)?;
        let id = self.allocate_id();
        let (response_tx, response_rx) = oneshot::channel();
        {
            let mut tables = self.tables();
            if tables.closed_reason.is_some() {
                drop(tables);
                return Err(self.closed_error());
            }
            tables.pending.insert(id, response_tx);
        }
        let _forget = PendingGuard {
            connection: self,
            id,
        };
        let budget = deadline.saturating_duration_since(Instant::now());
        let budget_ms = u32::try_from(budget.as_millis()).unwrap_or(u32::MAX);
        let frame = Frame::Request {
            id,
            budget_ms,
            payload,
        };
        self.outbound.try_send(frame).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => {
                ::metrics::counter!(metrics::QUEUE_FULL_TOTAL).increment(1);
                Error::QueueFull
            }
            mpsc::error::TrySendError::Closed(_) => self.closed_error(),
        })?;
        ::metrics::counter!(metrics::REQUESTS_SENT_TOTAL).increment(1);
        match tokio::time::timeout_at(deadline, response_rx).await {
            Err(_elapsed) => Err(Error::Timeout),
            Ok(Err(_dropped)) => Err(self.closed_error()),
            Ok(Ok(result)) => result,
        }
    }

    /// Registers a client stream and sends its opening frame.
    pub(crate) fn open_stream(
        &self,
        payload: Bytes,
    ) -> Result<(u64, mpsc::Receiver<StreamMsg>), Error> {
        self.check_size(&payload)?;
        let id = self.allocate_id();
        // One slot more than the window, for the end.
        let (item_tx, item_rx) = mpsc::channel(self.stream_window as usize + 1);
        {
            let mut tables = self.tables();
            if tables.closed_reason.is_some() {
                drop(tables);
                return Err(self.closed_error());
            }
            tables.client_streams.insert(id, item_tx);
        }
        let frame = Frame::StreamOpen {
            id,
            window: self.stream_window,
            payload,
        };
        if let Err(error) = self.outbound.try_send(frame) {
            self.tables().client_streams.remove(&id);
            return Err(match error {
                mpsc::error::TrySendError::Full(_) => {
                    ::metrics::counter!(metrics::QUEUE_FULL_TOTAL).increment(1);
                    Error::QueueFull
                }
                mpsc::error::TrySendError::Closed(_) => self.closed_error(),
            });
        }
        ::metrics::counter!(metrics::REQUESTS_SENT_TOTAL).increment(1);
        Ok((id, item_rx))
    }

    /// Forgets a client stream the consumer gave up, telling the server.
    pub(crate) fn cancel_client_stream(&self, id: u64) {
        let was_open = self.tables().client_streams.remove(&id).is_some();
        if was_open && !self.is_closed() {
            self.send_soon(Frame::StreamCancel { id });
        }
    }

    /// Forgets a server stream that its handler ended or dropped.
    pub(crate) fn forget_server_stream(&self, id: u64) {
        self.tables().server_streams.remove(&id);
    }

    /// Handles one frame read from the peer. An error closes the connection.
    pub(crate) fn dispatch(
        self: &Arc<Self>,
        frame: Frame,
        serving_opt: Option<&Serving>,
    ) -> Result<(), Error> {
        match (self.side, frame) {
            (Side::Client, Frame::Response { id, payload }) => self.complete(id, Ok(payload)),
            (Side::Client, Frame::Failure { id, code, payload }) => self.complete(
                id,
                Err(failure_error(code, payload, self.max_payload_bytes)),
            ),
            (Side::Client, Frame::StreamItem { id, payload }) => self.deliver_item(id, payload),
            (Side::Client, Frame::StreamEnd { id, code, payload }) => {
                let result = match code {
                    None => Ok(()),
                    Some(code) => Err(failure_error(code, payload, self.max_payload_bytes)),
                };
                if let Some(item_tx) = self.tables().client_streams.remove(&id) {
                    let _ = item_tx.try_send(StreamMsg::End(result));
                }
            }
            (
                Side::Server,
                Frame::Request {
                    id,
                    budget_ms,
                    payload,
                },
            ) => {
                if let Some(serving) = serving_opt {
                    self.run_request(serving, id, budget_ms, payload);
                }
            }
            (
                Side::Server,
                Frame::StreamOpen {
                    id,
                    window,
                    payload,
                },
            ) => {
                if let Some(serving) = serving_opt {
                    self.run_stream(serving, id, window, payload);
                }
            }
            (Side::Server, Frame::StreamCredit { id, credit }) => {
                if let Some(state) = self.tables().server_streams.get(&id) {
                    state.add_credit(credit);
                }
            }
            (Side::Server, Frame::StreamCancel { id }) => {
                if let Some(state) = self.tables().server_streams.remove(&id) {
                    state.cancelled.cancel();
                }
            }
            (side, frame) => {
                return Err(Error::Protocol(format!(
                    "unexpected {} frame on the {side:?} side",
                    frame.kind_name()
                )))
            }
        }
        Ok(())
    }

    fn complete(&self, id: u64, result: Result<Bytes, Error>) {
        // An unknown id is a request that timed out or was dropped: its response is late.
        if let Some(response_tx) = self.tables().pending.remove(&id) {
            let _ = response_tx.send(result);
        }
    }

    fn deliver_item(&self, id: u64, payload: Bytes) {
        let mut tables = self.tables();
        let Some(item_tx) = tables.client_streams.get(&id) else {
            return; // Cancelled by the consumer; the server will hear of it.
        };
        match item_tx.try_send(StreamMsg::Item(payload)) {
            Ok(()) => ::metrics::counter!(metrics::STREAM_ITEMS_RECEIVED_TOTAL).increment(1),
            Err(mpsc::error::TrySendError::Full(_)) => {
                // The server pushed past the credit it was granted: end this stream only.
                if let Some(item_tx) = tables.client_streams.remove(&id) {
                    drop(tables);
                    let error = Error::Protocol("peer overran the stream window".into());
                    let _ = item_tx.try_send(StreamMsg::End(Err(error)));
                    self.send_soon(Frame::StreamCancel { id });
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tables.client_streams.remove(&id);
            }
        }
    }

    fn run_request(self: &Arc<Self>, serving: &Serving, id: u64, budget_ms: u32, payload: Bytes) {
        let Ok(permit) = serving.in_flight.clone().try_acquire_owned() else {
            ::metrics::counter!(metrics::BUSY_REJECTIONS_TOTAL).increment(1);
            let frame = Frame::Failure {
                id,
                code: FailureCode::Busy,
                payload: Bytes::new(),
            };
            // If even the queue is full, the caller times out instead of hearing `busy`.
            let _ = self.outbound.try_send(frame);
            return;
        };
        ::metrics::counter!(metrics::REQUESTS_HANDLED_TOTAL).increment(1);
        let connection = self.clone();
        let handler = serving.handler.clone();
        tokio::spawn(async move {
            let budget = Duration::from_millis(u64::from(budget_ms));
            let handling = handler.request(&connection.peer, payload);
            let frame = tokio::select! {
                _ = connection.closed.cancelled() => return,
                outcome = tokio::time::timeout(budget, handling) => match outcome {
                    // The caller has given up: drop the work and send nothing.
                    Err(_elapsed) => return,
                    Ok(result) => response_frame(id, result, connection.max_payload_bytes),
                },
            };
            tokio::select! {
                _ = connection.closed.cancelled() => {}
                _ = connection.outbound.send(frame) => {}
            }
            drop(permit);
        });
    }

    fn run_stream(self: &Arc<Self>, serving: &Serving, id: u64, window: u32, payload: Bytes) {
        let state = {
            let mut tables = self.tables();
            if tables.server_streams.len() >= self.max_streams {
                None
            } else {
                let state = Arc::new(ServerStreamState::new(window, self.closed.child_token()));
                tables.server_streams.insert(id, state.clone());
                Some(state)
            }
        };
        let Some(state) = state else {
            ::metrics::counter!(metrics::BUSY_REJECTIONS_TOTAL).increment(1);
            self.send_soon(Frame::StreamEnd {
                id,
                code: Some(FailureCode::Busy),
                payload: Bytes::new(),
            });
            return;
        };
        let sender = super::stream::StreamSender::new(id, self.clone(), state);
        let handler = serving.handler.clone();
        let peer = self.peer.clone();
        tokio::spawn(async move { handler.stream(&peer, payload, sender).await });
    }
}

fn response_frame(id: u64, result: Result<Bytes, Bytes>, max_payload_bytes: usize) -> Frame {
    let (code, payload) = match result {
        Ok(payload) if payload.len() <= max_payload_bytes => {
            return Frame::Response { id, payload }
        }
        Err(payload) if payload.len() <= max_payload_bytes => (FailureCode::Handler, payload),
        Ok(payload) | Err(payload) => (FailureCode::TooLarge, too_large_note(payload.len())),
    };
    Frame::Failure { id, code, payload }
}

/// The body of a `TooLarge` failure: the size that did not fit, as 8 bytes.
pub(crate) fn too_large_note(len: usize) -> Bytes {
    Bytes::copy_from_slice(&(len as u64).to_be_bytes())
}

fn failure_error(code: FailureCode, payload: Bytes, max_payload_bytes: usize) -> Error {
    match code {
        FailureCode::Handler => Error::Remote(payload),
        FailureCode::Busy => Error::Busy,
        FailureCode::TooLarge => {
            let len = <[u8; 8]>::try_from(payload.as_ref()).map_or(0, u64::from_be_bytes);
            Error::FrameTooLarge {
                len: usize::try_from(len).unwrap_or(usize::MAX),
                max: max_payload_bytes,
            }
        }
        FailureCode::Abandoned => Error::ConnectionClosed("stream abandoned by its handler".into()),
    }
}

/// Removes a pending request when its caller stops waiting, so the table stays bounded.
struct PendingGuard<'a> {
    connection: &'a Connection,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.connection.tables().pending.remove(&self.id);
    }
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
