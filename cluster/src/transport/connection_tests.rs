//! Connection tests without sockets: a connection runs over one end of a `tokio::io::duplex`
//! and the test plays the peer by writing raw frames into the other end.

use futures_util::SinkExt;
use tokio_util::codec::LengthDelimitedCodec;

use super::*;
use crate::transport::handshake::Authenticated;
use crate::transport::ClusterSecret;
use crate::NodeId;

fn config() -> TransportConfig {
    let secret = ClusterSecret::new(b"0123456789abcdef".to_vec()).unwrap();
    TransportConfig::new("test", NodeId::new("local").unwrap(), secret, 1)
}

/// A client-side connection and the raw framed stream of its peer.
fn client_connection() -> (
    Arc<Connection>,
    Framed<tokio::io::DuplexStream, LengthDelimitedCodec>,
) {
    let (local, remote) = tokio::io::duplex(64 << 10);
    let local: BoxedIo = Box::new(local);
    let wire = LengthDelimitedCodec::builder().new_framed(local);
    let peer = PeerInfo::new(
        Authenticated {
            node_id: NodeId::new("remote").unwrap(),
            protocol_version: 1,
        },
        "remote:1".into(),
    );
    let connection = Connection::spawn(
        wire,
        peer,
        Side::Client,
        &config(),
        None,
        &CancellationToken::new(),
    );
    (
        connection,
        LengthDelimitedCodec::builder().new_framed(remote),
    )
}

async fn closed_reason(connection: &Connection) -> String {
    tokio::time::timeout(Duration::from_secs(5), connection.closed.cancelled())
        .await
        .unwrap();
    connection.closed_error().to_string()
}

/// A frame kind the client side never receives (a request) closes the connection, naming
/// the violation, and fails what was in flight.
#[tokio::test]
async fn unexpected_kind_closes_the_connection() {
    let (connection, mut peer) = client_connection();
    let deadline = Instant::now() + Duration::from_secs(30);
    let in_flight = {
        let connection = connection.clone();
        tokio::spawn(async move { connection.request(Bytes::from_static(b"x"), deadline).await })
    };
    let request = Frame::Request {
        id: 1,
        budget_ms: 1,
        payload: Bytes::new(),
    };
    peer.send(request.encode()).await.unwrap();
    assert!(closed_reason(&connection)
        .await
        .contains("unexpected request frame"));
    assert!(matches!(
        in_flight.await.unwrap(),
        Err(Error::ConnectionClosed(_))
    ));
}

/// A frame of an unknown framing version closes the connection with that version named.
#[tokio::test]
async fn unknown_version_closes_the_connection() {
    let (connection, mut peer) = client_connection();
    peer.send(Bytes::from_static(&[9, 24, 0, 0, 0, 0, 0, 0, 0, 1]))
        .await
        .unwrap();
    assert!(closed_reason(&connection)
        .await
        .contains("unknown frame version 9"));
}

/// A response for an id nobody waits for (a late one) is dropped without harm; a matching
/// one completes its request.
#[tokio::test]
async fn late_responses_are_dropped() {
    let (connection, mut peer) = client_connection();
    let late = Frame::Response {
        id: 999,
        payload: Bytes::from_static(b"late"),
    };
    peer.send(late.encode()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let waiting = {
        let connection = connection.clone();
        tokio::spawn(async move { connection.request(Bytes::from_static(b"q"), deadline).await })
    };
    // Read frames until the request shows up, then answer it.
    let id = loop {
        let bytes = peer.next().await.unwrap().unwrap();
        if let Frame::Request { id, .. } = Frame::decode(bytes.freeze()).unwrap() {
            break id;
        }
    };
    let answer = Frame::Response {
        id,
        payload: Bytes::from_static(b"answer"),
    };
    peer.send(answer.encode()).await.unwrap();
    assert_eq!(waiting.await.unwrap().unwrap(), "answer");
    assert!(!connection.is_closed());
}

/// A peer that never answers pings is declared dead after the heartbeat timeout (time is
/// paused and advanced by tokio, so the test takes no wall-clock time).
#[tokio::test(start_paused = true)]
async fn silent_peer_is_dead_after_the_heartbeat_timeout() {
    let (connection, _peer) = client_connection();
    let started = Instant::now();
    assert_eq!(
        closed_reason(&connection).await,
        "connection closed: heartbeat timeout"
    );
    assert_eq!(started.elapsed(), config().heartbeat_timeout);
}
