//! The internode transport over real TCP on 127.0.0.1 (ports chosen by the OS): requests,
//! deadlines, concurrency limits, streams and their flow control, reconnects and refusals.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use listwire_cluster::transport::{
    Client, Peer, Server, TcpConnector, TcpListener, TransportConfig,
};
use listwire_cluster::Error;
use support::*;
use tokio::time::Instant;

async fn server(config: TransportConfig, handler: Arc<ScriptedHandler>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    Server::spawn(config, listener, handler).unwrap()
}

fn client(config: TransportConfig) -> Client {
    Client::new(config, Arc::new(TcpConnector)).unwrap()
}

async fn pair() -> (Server, Arc<ScriptedHandler>, Client, Peer) {
    let handler = scripted();
    let server = server(transport_config("server"), handler.clone()).await;
    let client = client(transport_config("client"));
    let peer = client.peer(&id("server"), server.local_addr());
    (server, handler, client, peer)
}

const LONG: Duration = Duration::from_secs(10);

/// A request gets its response; the handler sees the client's proven node id; handler errors
/// come back as `Remote` with their payload.
#[tokio::test]
async fn request_response() {
    let (_server, handler, _client, peer) = pair().await;
    let info = peer.wait_connected(LONG).await.unwrap();
    assert_eq!(info.node_id().as_str(), "server");
    assert_eq!(
        peer.request(Bytes::from_static(b"echo:hi"), LONG)
            .await
            .unwrap(),
        "hi"
    );
    assert_eq!(
        peer.request(Bytes::from_static(b"who"), LONG)
            .await
            .unwrap(),
        "client"
    );
    let failed = peer.request(Bytes::from_static(b"fail"), LONG).await;
    assert!(matches!(failed, Err(Error::Remote(payload)) if payload == "nope"));
    assert_eq!(handler.handled.load(Ordering::SeqCst), 3);
}

/// Many concurrent requests on one connection each get their own response (correlation ids),
/// whatever order the handler finishes them in.
#[tokio::test]
async fn concurrent_requests_are_correlated() {
    let (_server, _handler, _client, peer) = pair().await;
    peer.wait_connected(LONG).await.unwrap();
    let requests = (0..200).map(|n| {
        let peer = peer.clone();
        async move {
            let payload = Bytes::from(format!("echo:{n}"));
            (n, peer.request(payload, LONG).await.unwrap())
        }
    });
    for (n, response) in futures_util::future::join_all(requests).await {
        assert_eq!(response, n.to_string());
    }
}

/// A request past its deadline fails with `Timeout` at the deadline (the server drops the
/// work, so nothing answers late; `connection_tests` covers late responses), and the
/// connection keeps working.
#[tokio::test]
async fn deadline_expiry_is_a_typed_timeout() {
    let (_server, _handler, _client, peer) = pair().await;
    peer.wait_connected(LONG).await.unwrap();
    let started = Instant::now();
    let timed_out = peer
        .request(
            Bytes::from_static(b"sleep:2000"),
            Duration::from_millis(100),
        )
        .await;
    let elapsed = started.elapsed();
    assert!(matches!(timed_out, Err(Error::Timeout)), "{timed_out:?}");
    // Not before the deadline; long before the handler would have answered.
    assert!(
        elapsed >= Duration::from_millis(100) && elapsed < Duration::from_millis(1500),
        "{elapsed:?}"
    );
    assert!(timed_out.unwrap_err().is_retryable());
    let echo = peer.request(Bytes::from_static(b"echo:after"), LONG).await;
    assert_eq!(echo.unwrap(), "after");
}

/// Past the server's per-connection bound on in-flight requests, requests are refused as
/// `Busy` at once rather than queued.
#[tokio::test]
async fn in_flight_bound_answers_busy() {
    let handler = scripted();
    let mut config = transport_config("server");
    config.max_in_flight_requests = 2;
    let server = server(config, handler).await;
    let client = client(transport_config("client"));
    let peer = client.peer(&id("server"), server.local_addr());
    peer.wait_connected(LONG).await.unwrap();
    let slow = || peer.request(Bytes::from_static(b"sleep:300"), LONG);
    let (first, second, third) = tokio::join!(slow(), slow(), slow());
    let results = [first, second, third];
    let busy = results
        .iter()
        .filter(|r| matches!(r, Err(Error::Busy)))
        .count();
    let slept = results
        .iter()
        .filter(|r| matches!(r, Ok(b) if b == "slept"))
        .count();
    assert_eq!((busy, slept), (1, 2), "{results:?}");
}

/// A full outbound queue refuses at once with `QueueFull` (nothing waits, nothing is
/// buffered beyond the capacity). The test runtime is single-threaded, so the writer cannot
/// drain the queue while the requests are being offered.
#[tokio::test]
async fn full_outbound_queue_refuses_at_once() {
    let handler = scripted();
    let server = server(transport_config("server"), handler).await;
    let mut config = transport_config("client");
    config.outbound_queue_frames = 4;
    let client = client(config);
    let peer = client.peer(&id("server"), server.local_addr());
    peer.wait_connected(LONG).await.unwrap();
    let requests = (0..50).map(|n| peer.request(Bytes::from(format!("echo:{n}")), LONG));
    let results = futures_util::future::join_all(requests).await;
    let full = results
        .iter()
        .filter(|r| matches!(r, Err(Error::QueueFull)))
        .count();
    let answered = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(answered + full, 50, "{results:?}");
    assert!(
        full >= 40 && answered >= 4,
        "{full} refused, {answered} answered"
    );
}

/// A stream delivers many items in order then ends cleanly; the server paces itself on the
/// client's credit (`push` waits), so nothing is lost.
#[tokio::test]
async fn stream_with_many_items() {
    let (_server, _handler, _client, peer) = pair().await;
    let mut stream = peer
        .open_stream(Bytes::from_static(b"items:10000"), LONG)
        .await
        .unwrap();
    let mut expected = 0u32;
    while let Some(item) = stream.next().await {
        assert_eq!(item.unwrap(), Bytes::from(expected.to_be_bytes().to_vec()));
        expected += 1;
    }
    assert_eq!(expected, 10_000);
    assert!(stream.next().await.is_none());
}

/// A consumer that does not read: the server's `try_push` fails with `Full` after exactly one
/// window of items, the handler ends the stream with an error, and the consumer then reads
/// the window and that error (listwire's slow-consumer policy).
#[tokio::test]
async fn slow_consumer_gets_full_then_an_error_end() {
    let (_server, handler, _client, peer) = pair().await;
    let mut stream = peer
        .open_stream(Bytes::from_static(b"burst:1000"), LONG)
        .await
        .unwrap();
    // Without reading, wait until the server has run out of credit and ended the stream.
    eventually("server saw full", LONG, || {
        handler.ended_full.load(Ordering::SeqCst) == 1
    })
    .await;
    let mut items = 0;
    let end = loop {
        match stream.next().await {
            Some(Ok(_)) => items += 1,
            Some(Err(error)) => break Some(error),
            None => break None,
        }
    };
    assert_eq!(items, 128, "the default window");
    assert!(matches!(end, Some(Error::Remote(payload)) if payload == "full after 128"));
}

/// Dropping the receiver cancels the stream on the server.
#[tokio::test]
async fn dropping_the_receiver_cancels_the_stream() {
    let (_server, handler, _client, peer) = pair().await;
    let stream = peer
        .open_stream(Bytes::from_static(b"hold"), LONG)
        .await
        .unwrap();
    eventually("handler holds the stream", LONG, || {
        handler.holding.load(Ordering::SeqCst) == 1
    })
    .await;
    stream.cancel();
    eventually("server saw the cancel", LONG, || {
        handler.cancelled.load(Ordering::SeqCst) == 1
    })
    .await;
}

/// A payload over the frame limit is refused locally before anything is sent.
#[tokio::test]
async fn oversize_payload_is_refused_locally() {
    let (_server, handler, _client, peer) = pair().await;
    peer.wait_connected(LONG).await.unwrap();
    let huge = Bytes::from(vec![0u8; 9 << 20]);
    let refused = peer.request(huge, LONG).await;
    assert!(
        matches!(refused, Err(Error::FrameTooLarge { .. })),
        "{refused:?}"
    );
    assert_eq!(handler.handled.load(Ordering::SeqCst), 0);
    assert_eq!(
        peer.request(Bytes::from_static(b"echo:ok"), LONG)
            .await
            .unwrap(),
        "ok"
    );
}

/// Counts the writes that reach the socket, by decorating the real connector.
struct CountingConnector {
    writes: Arc<std::sync::atomic::AtomicUsize>,
}

struct CountingIo {
    inner: listwire_cluster::transport::BoxedIo,
    writes: Arc<std::sync::atomic::AtomicUsize>,
}

impl tokio::io::AsyncRead for CountingIo {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for CountingIo {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if polled.is_ready() {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
        polled
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[async_trait::async_trait]
impl listwire_cluster::transport::Connector for CountingConnector {
    async fn connect(&self, addr: &str) -> std::io::Result<listwire_cluster::transport::BoxedIo> {
        let inner = TcpConnector.connect(addr).await?;
        Ok(Box::new(CountingIo {
            inner,
            writes: self.writes.clone(),
        }))
    }
}

/// Frames queued together leave together: 100 requests offered in one go reach the socket in
/// a handful of writes, not 100 (the writer feeds the burst and flushes once). The test
/// runtime is single-threaded, so all 100 are queued before the writer runs.
#[tokio::test]
async fn queued_frames_leave_in_one_write() {
    let handler = scripted();
    let server = server(transport_config("server"), handler).await;
    let writes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let connector = CountingConnector {
        writes: writes.clone(),
    };
    let client = Client::new(transport_config("client"), Arc::new(connector)).unwrap();
    let peer = client.peer(&id("server"), server.local_addr());
    peer.wait_connected(LONG).await.unwrap();
    let before = writes.load(Ordering::SeqCst);
    let requests = (0..100).map(|n| peer.request(Bytes::from(format!("echo:{n}")), LONG));
    let results = futures_util::future::join_all(requests).await;
    assert!(results.iter().all(Result::is_ok));
    let burst_writes = writes.load(Ordering::SeqCst) - before;
    // One write for the burst, plus perhaps a heartbeat ping or pong meanwhile.
    assert!(burst_writes <= 4, "{burst_writes} writes for 100 requests");
}
