//! The transport under faults: a peer that restarts, a connection that dies or stalls with
//! requests in flight, and peers that fail the handshake.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use listwire_cluster::transport::memory::MemoryNetwork;
use listwire_cluster::transport::{Client, ClusterSecret, Server, TcpConnector, TcpListener};
use listwire_cluster::{metrics, Error};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

const LONG: Duration = Duration::from_secs(10);

/// The counters recorded since the last call, as (name, `reason` label, value). Taking a
/// snapshot resets the debugging recorder's counters, so take one per check.
fn counters(snapshotter: &Snapshotter) -> Vec<(String, Option<String>, u64)> {
    let mut counters = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let reason_opt = key
            .labels()
            .find(|label| label.key() == metrics::LABEL_REASON)
            .map(|label| label.value().to_string());
        if let DebugValue::Counter(count) = value {
            counters.push((key.name().to_string(), reason_opt, count));
        }
    }
    counters
}

/// The total of counter `name` (only with label `reason`, if given).
fn count(counters: &[(String, Option<String>, u64)], name: &str, reason_opt: Option<&str>) -> u64 {
    counters
        .iter()
        .filter(|(counter, reason, _)| {
            counter == name && reason_opt.is_none_or(|r| reason.as_deref() == Some(r))
        })
        .map(|(_, _, value)| value)
        .sum()
}

/// A peer that goes away and comes back on the same address is redialled (with backoff) and
/// requests work again; while it is away requests fail with a retryable error, not a hang.
#[tokio::test]
async fn peer_restart_reconnects() {
    let handler = scripted();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener_addr(&listener);
    let server = Server::spawn(transport_config("server"), listener, handler.clone()).unwrap();
    let client = Client::new(transport_config("client"), Arc::new(TcpConnector)).unwrap();
    let peer = client.peer(&id("server"), &addr);
    assert_eq!(
        peer.request(Bytes::from_static(b"echo:1"), LONG)
            .await
            .unwrap(),
        "1"
    );

    server.shutdown().await;
    eventually("client saw the connection drop", LONG, || {
        !peer.is_connected()
    })
    .await;
    let away = peer
        .request(Bytes::from_static(b"echo:2"), Duration::from_millis(200))
        .await;
    assert!(matches!(away, Err(Error::NotConnected { .. })), "{away:?}");
    assert!(away.unwrap_err().is_retryable());

    let listener = TcpListener::bind(&addr).await.unwrap();
    let _restarted = Server::spawn(transport_config("server"), listener, handler).unwrap();
    let started = Instant::now();
    assert_eq!(
        peer.request(Bytes::from_static(b"echo:3"), LONG)
            .await
            .unwrap(),
        "3"
    );
    println!("reconnected within {:?}", started.elapsed());
}

fn listener_addr(listener: &TcpListener) -> String {
    use listwire_cluster::transport::Listener;
    listener.local_addr().unwrap()
}

/// A request in flight when the connection dies fails at once with `ConnectionClosed`, long
/// before its own deadline.
#[tokio::test]
async fn dead_connection_fails_in_flight_requests_promptly() {
    let handler = scripted();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::spawn(transport_config("server"), listener, handler.clone()).unwrap();
    let client = Client::new(transport_config("client"), Arc::new(TcpConnector)).unwrap();
    let peer = client.peer(&id("server"), server.local_addr());
    peer.wait_connected(LONG).await.unwrap();
    let in_flight = tokio::spawn({
        let peer = peer.clone();
        async move {
            peer.request(Bytes::from_static(b"sleep:20000"), Duration::from_secs(30))
                .await
        }
    });
    eventually("handler started", LONG, || {
        handler.handled.load(Ordering::SeqCst) == 1
    })
    .await;
    let killed_at = Instant::now();
    server.shutdown().await;
    let result = in_flight.await.unwrap();
    assert!(
        matches!(result, Err(Error::ConnectionClosed(_))),
        "{result:?}"
    );
    assert!(
        killed_at.elapsed() < Duration::from_secs(1),
        "{:?}",
        killed_at.elapsed()
    );
}

/// A link that stalls without any error (packets silently dropped) is detected by the
/// heartbeat: the in-flight request fails within the heartbeat timeout, dials are refused
/// while the link is cut, and the peer reconnects once it is restored.
#[tokio::test]
async fn stalled_link_is_detected_by_heartbeat() {
    let network = MemoryNetwork::new();
    let handler = scripted();
    let mut server_config = transport_config("server");
    server_config.heartbeat_interval = Duration::from_millis(100);
    server_config.heartbeat_timeout = Duration::from_millis(400);
    let mut client_config = server_config.clone();
    client_config.node_id = id("client");
    let listener = network.listen("server:7000").unwrap();
    let _server = Server::spawn(server_config, listener, handler.clone()).unwrap();
    let client = Client::new(client_config, Arc::new(network.connector("client"))).unwrap();
    let peer = client.peer(&id("server"), "server:7000");
    assert_eq!(
        peer.request(Bytes::from_static(b"echo:up"), LONG)
            .await
            .unwrap(),
        "up"
    );

    let in_flight = tokio::spawn({
        let peer = peer.clone();
        async move {
            peer.request(Bytes::from_static(b"sleep:20000"), Duration::from_secs(30))
                .await
        }
    });
    eventually("handler started", LONG, || {
        handler.handled.load(Ordering::SeqCst) == 2
    })
    .await;
    let cut_at = Instant::now();
    network.cut("client", "server:7000");
    let result = in_flight.await.unwrap();
    let detected_after = cut_at.elapsed();
    assert!(
        matches!(&result, Err(Error::ConnectionClosed(reason)) if reason.contains("heartbeat")),
        "{result:?}"
    );
    assert!(
        detected_after < Duration::from_secs(2),
        "{detected_after:?}"
    );
    println!("stall detected after {detected_after:?}");

    let while_cut = peer
        .request(Bytes::from_static(b"echo:x"), Duration::from_millis(300))
        .await;
    assert!(
        matches!(while_cut, Err(Error::NotConnected { .. })),
        "{while_cut:?}"
    );
    network.restore("client", "server:7000");
    assert_eq!(
        peer.request(Bytes::from_static(b"echo:back"), LONG)
            .await
            .unwrap(),
        "back"
    );
}

/// A client with the wrong secret never gets a connection: it refuses the server's proof,
/// counts the refusal, and its requests fail with `NotConnected` naming the reason. The
/// server's handler never runs.
#[tokio::test]
async fn wrong_secret_is_refused_and_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = ::metrics::set_default_local_recorder(&recorder);
    let handler = scripted();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::spawn(transport_config("server"), listener, handler.clone()).unwrap();
    let mut config = transport_config("client");
    config.secret = ClusterSecret::new(b"another secret entirely, 32 bytes".to_vec()).unwrap();
    let client = Client::new(config, Arc::new(TcpConnector)).unwrap();
    let peer = client.peer(&id("server"), server.local_addr());
    let refused = peer
        .request(Bytes::from_static(b"echo:x"), Duration::from_millis(500))
        .await;
    match refused {
        Err(Error::NotConnected { reason, .. }) => {
            assert!(reason.contains("authentication"), "{reason}")
        }
        other => panic!("expected NotConnected, got {other:?}"),
    }
    let counters = counters(&snapshotter);
    assert!(count(&counters, metrics::HANDSHAKE_REFUSALS_TOTAL, Some("auth")) >= 1);
    assert!(count(&counters, metrics::CONNECT_ERRORS_TOTAL, None) >= 1);
    assert_eq!(handler.handled.load(Ordering::SeqCst), 0);
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut framed = BytesMut::new();
    framed.put_u32(body.len() as u32);
    framed.put_slice(body);
    framed.to_vec()
}

fn hello(cluster: &str, node: &str) -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_slice(&[1, 1]);
    for text in [cluster, node] {
        body.put_u16(text.len() as u16);
        body.put_slice(text.as_bytes());
    }
    body.put_u32(1);
    body.put_slice(&[0x42; 32]);
    frame(&body)
}

/// An intruder without the secret sends a hello, a made-up proof and, in the same write, a
/// request. The server refuses the proof, counts it, answers only with a refusal frame,
/// closes the connection, and never parses or handles the request.
#[tokio::test]
async fn forged_proof_is_refused_and_nothing_after_it_is_parsed() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = ::metrics::set_default_local_recorder(&recorder);
    let handler = scripted();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::spawn(transport_config("server"), listener, handler.clone()).unwrap();
    let mut intruder = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    intruder
        .write_all(&hello("test-cluster", "intruder"))
        .await
        .unwrap();
    let mut challenge_len = [0u8; 4];
    intruder.read_exact(&mut challenge_len).await.unwrap();
    let mut challenge = vec![0u8; u32::from_be_bytes(challenge_len) as usize];
    intruder.read_exact(&mut challenge).await.unwrap();
    assert_eq!(&challenge[..2], &[1, 2], "a version-1 challenge");

    let mut proof_and_request = frame(&[&[1u8, 3][..], &[0u8; 32]].concat());
    let request = [
        &[1u8, 16][..],
        &7u64.to_be_bytes(),
        &1000u32.to_be_bytes(),
        b"echo:x",
    ]
    .concat();
    proof_and_request.extend(frame(&request));
    intruder.write_all(&proof_and_request).await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(LONG, intruder.read_to_end(&mut rest))
        .await
        .unwrap();
    assert!(read.is_ok());
    assert_eq!(
        rest,
        frame(&[1, 5, 1]),
        "only a refusal frame (code 1: auth)"
    );
    let counters = counters(&snapshotter);
    assert_eq!(
        count(&counters, metrics::HANDSHAKE_REFUSALS_TOTAL, Some("auth")),
        1
    );
    assert_eq!(handler.handled.load(Ordering::SeqCst), 0);
}

/// Before authentication the frame limit is small: a peer announcing a 1 MiB frame is cut
/// off (and counted) without the server buffering it.
#[tokio::test]
async fn oversize_frame_before_auth_is_refused() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = ::metrics::set_default_local_recorder(&recorder);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::spawn(transport_config("server"), listener, scripted()).unwrap();
    let mut intruder = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    intruder
        .write_all(&(1u32 << 20).to_be_bytes())
        .await
        .unwrap();
    intruder.write_all(&[0u8; 1024]).await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(LONG, intruder.read_to_end(&mut rest))
        .await
        .unwrap();
    assert!(read.is_err() || rest == frame(&[1, 5, 5]), "{rest:?}");
    let counters = counters(&snapshotter);
    assert_eq!(
        count(
            &counters,
            metrics::HANDSHAKE_REFUSALS_TOTAL,
            Some("protocol")
        ),
        1
    );
}

/// Versions: a peer at or above the oldest accepted version connects; an older one is
/// refused by the server, which tells it why; so is a peer of another cluster. Both sides
/// count the refusal.
#[tokio::test]
async fn other_cluster_and_old_version_are_refused() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = ::metrics::set_default_local_recorder(&recorder);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut server_config = transport_config("server");
    server_config.protocol_version = 3;
    server_config.min_protocol_version = 2;
    let server = Server::spawn(server_config, listener, scripted()).unwrap();

    let mut previous = transport_config("client-v2");
    previous.protocol_version = 2;
    previous.min_protocol_version = 2;
    let client = Client::new(previous, Arc::new(TcpConnector)).unwrap();
    let info = client
        .peer(&id("server"), server.local_addr())
        .wait_connected(LONG)
        .await
        .unwrap();
    assert_eq!(
        info.protocol_version(),
        3,
        "each side learns the other's version"
    );

    let mut too_old = transport_config("client-v1");
    too_old.protocol_version = 1;
    too_old.min_protocol_version = 1;
    let client = Client::new(too_old, Arc::new(TcpConnector)).unwrap();
    let peer = client.peer(&id("server"), server.local_addr());
    let refused = peer.wait_connected(Duration::from_millis(500)).await;
    assert!(
        matches!(&refused, Err(Error::NotConnected { reason, .. }) if reason.contains("protocol version")),
        "{refused:?}"
    );

    let mut foreign = transport_config("client-foreign");
    foreign.cluster_id = "another-cluster".into();
    let client = Client::new(foreign, Arc::new(TcpConnector)).unwrap();
    let peer = client.peer(&id("server"), server.local_addr());
    let refused = peer.wait_connected(Duration::from_millis(500)).await;
    assert!(
        matches!(&refused, Err(Error::NotConnected { reason, .. }) if reason.contains("another cluster")),
        "{refused:?}"
    );

    let counters = counters(&snapshotter);
    assert!(
        count(
            &counters,
            metrics::HANDSHAKE_REFUSALS_TOTAL,
            Some("version")
        ) >= 1
    );
    assert!(
        count(
            &counters,
            metrics::HANDSHAKE_REFUSALS_TOTAL,
            Some("cluster")
        ) >= 1
    );
    assert!(
        count(
            &counters,
            metrics::HANDSHAKE_REFUSALS_TOTAL,
            Some("by_peer")
        ) >= 2
    );
}
