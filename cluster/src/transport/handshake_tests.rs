//! Handshake tests, driven by hand: two in-process state machines pass frames, and an
//! attacker's frames are injected where a real one would send them.

use super::*;
use crate::transport::ClusterSecret;

fn identity(node: &str, secret: &[u8]) -> LocalIdentity {
    LocalIdentity {
        cluster_id: "listwire".into(),
        node_id: NodeId::new(node).unwrap(),
        secret: ClusterSecret::new(secret.to_vec()).unwrap(),
        accepted_secrets: Vec::new(),
        protocol_version: 2,
        min_protocol_version: 2,
    }
}

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const OTHER_SECRET: &[u8] = b"fedcba9876543210fedcba9876543210";

fn client(secret: &[u8], nonce: u8) -> (ClientHandshake, Frame) {
    ClientHandshake::start(
        identity("client", secret),
        NodeId::new("server").unwrap(),
        [nonce; 32],
    )
}

fn server(secret: &[u8], nonce: u8) -> ServerHandshake {
    ServerHandshake::new(identity("server", secret), [nonce; 32])
}

fn send(step: Result<ServerStep, Refusal>) -> Frame {
    match step.unwrap() {
        ServerStep::Send(frame) | ServerStep::SendAndDone(frame, _) => frame,
    }
}

fn proof(step: Result<ClientStep, Refusal>) -> Frame {
    match step.unwrap() {
        ClientStep::Send(frame) => frame,
        ClientStep::Done(_) => panic!("client finished early"),
    }
}

/// Two holders of the secret authenticate each other and learn each other's id and version.
#[test]
fn matching_secrets_authenticate_both_ways() {
    let (mut client, hello) = client(SECRET, 1);
    let mut server = server(SECRET, 2);
    let challenge = send(server.on_frame(hello));
    let proof = proof(client.on_frame(challenge));
    let ServerStep::SendAndDone(welcome, client_seen) = server.on_frame(proof).unwrap() else {
        panic!("server did not finish");
    };
    assert_eq!(client_seen.node_id.as_str(), "client");
    assert_eq!(client_seen.protocol_version, 2);
    let ClientStep::Done(server_seen) = client.on_frame(welcome).unwrap() else {
        panic!("client did not finish");
    };
    assert_eq!(server_seen.node_id.as_str(), "server");
}

/// A client with the wrong secret is refused by the server; a server with the wrong secret
/// is refused by the client before the client proves anything.
#[test]
fn wrong_secret_is_refused_on_either_side() {
    let (mut client_wrong, hello) = client(OTHER_SECRET, 1);
    let mut server_ok = server(SECRET, 2);
    let challenge = send(server_ok.on_frame(hello));
    assert_eq!(client_wrong.on_frame(challenge).unwrap_err(), Refusal::Auth);

    let (mut client_ok, hello) = client(SECRET, 1);
    let mut server_wrong = server(OTHER_SECRET, 2);
    let challenge = send(server_wrong.on_frame(hello.clone()));
    assert_eq!(client_ok.on_frame(challenge).unwrap_err(), Refusal::Auth);

    // A wrong-secret client that ignores its own check and proves anyway is refused too.
    let mut server_ok = server(SECRET, 2);
    let (_, hello) = client(OTHER_SECRET, 1);
    let Frame::Challenge(greeting, _) = send(server_ok.on_frame(hello)) else {
        panic!()
    };
    let client_greeting = client_greeting(1);
    let forged = Transcript {
        cluster_id: "listwire",
        client: &client_greeting,
        server: &greeting,
    }
    .sign(
        &ClusterSecret::new(OTHER_SECRET.to_vec()).unwrap(),
        ROLE_CLIENT,
    );
    assert_eq!(
        server_ok.on_frame(Frame::Proof(forged)).unwrap_err(),
        Refusal::Auth
    );
}

fn client_greeting(nonce: u8) -> Greeting {
    identity("client", SECRET).greeting([nonce; 32])
}

/// A tag computed over swapped nonces does not verify.
#[test]
fn swapped_nonces_are_refused() {
    let (_, hello) = client(SECRET, 1);
    let mut server = server(SECRET, 2);
    let Frame::Challenge(server_greeting, _) = send(server.on_frame(hello)) else {
        panic!()
    };
    let mut swapped_client = client_greeting(1);
    let mut swapped_server = server_greeting.clone();
    std::mem::swap(&mut swapped_client.nonce, &mut swapped_server.nonce);
    let tag = Transcript {
        cluster_id: "listwire",
        client: &swapped_client,
        server: &swapped_server,
    }
    .sign(&ClusterSecret::new(SECRET.to_vec()).unwrap(), ROLE_CLIENT);
    assert_eq!(
        server.on_frame(Frame::Proof(tag)).unwrap_err(),
        Refusal::Auth
    );
}

/// A proof recorded from one connection is refused on the next (fresh server nonce).
#[test]
fn replayed_proof_is_refused() {
    let (mut client, hello) = client(SECRET, 1);
    let mut first_server = server(SECRET, 2);
    let recorded = proof(client.on_frame(send(first_server.on_frame(hello.clone()))));
    let mut second_server = server(SECRET, 3);
    let _ = send(second_server.on_frame(hello));
    assert_eq!(second_server.on_frame(recorded).unwrap_err(), Refusal::Auth);
}

/// Reflection: an attacker who sends the server's own tag back as the client's proof, or who
/// opens a second connection with the server's nonce as its own, gets nothing usable: the
/// role label differs, so the server's tag never verifies as a client's.
#[test]
fn reflected_tags_are_refused() {
    let (_, hello) = client(SECRET, 1);
    let mut server_a = server(SECRET, 2);
    let Frame::Challenge(_, server_tag) = send(server_a.on_frame(hello)) else {
        panic!()
    };
    assert_eq!(
        server_a.on_frame(Frame::Proof(server_tag)).unwrap_err(),
        Refusal::Auth
    );

    // Second connection: hello carrying the first server's nonce, to get a tag over it.
    let mut reflected = client_greeting(2);
    reflected.node_id = "client".into();
    let mut server_b = server(SECRET, 1);
    let Frame::Challenge(_, tag_b) = send(server_b.on_frame(Frame::Hello(reflected))) else {
        panic!()
    };
    let mut server_c = server(SECRET, 2);
    let _ = send(server_c.on_frame(Frame::Hello(client_greeting(1))));
    assert_eq!(
        server_c.on_frame(Frame::Proof(tag_b)).unwrap_err(),
        Refusal::Auth
    );
}

/// A truncated, empty or zeroed tag fails verification (in constant time, by
/// `verify_slice`).
#[test]
fn truncated_tag_is_refused() {
    let (mut client, hello) = client(SECRET, 1);
    let mut server = server(SECRET, 2);
    let challenge = send(server.on_frame(hello));
    let Frame::Challenge(server_greeting, _) = challenge.clone() else {
        panic!()
    };
    let Frame::Proof(tag) = proof(client.on_frame(challenge)) else {
        panic!()
    };
    let secret = ClusterSecret::new(SECRET.to_vec()).unwrap();
    let client_greeting = client_greeting(1);
    let transcript = Transcript {
        cluster_id: "listwire",
        client: &client_greeting,
        server: &server_greeting,
    };
    assert_eq!(transcript.verify(&secret, ROLE_CLIENT, &tag), Ok(()));
    assert_eq!(
        transcript.verify(&secret, ROLE_CLIENT, &tag[..16]),
        Err(Refusal::Auth)
    );
    assert_eq!(
        transcript.verify(&secret, ROLE_CLIENT, &[]),
        Err(Refusal::Auth)
    );
    assert_eq!(
        server.on_frame(Frame::Proof([0u8; 32])).unwrap_err(),
        Refusal::Auth
    );
}

/// Frames out of order are refused, and a failed handshake stays failed.
#[test]
fn out_of_order_frames_are_refused() {
    let mut server_proof_first = server(SECRET, 2);
    assert!(matches!(
        server_proof_first.on_frame(Frame::Proof([0; 32])),
        Err(Refusal::Protocol(_))
    ));
    // Failed for good: even a valid hello is now refused.
    assert!(matches!(
        server_proof_first.on_frame(Frame::Hello(client_greeting(1))),
        Err(Refusal::Protocol(_))
    ));
    let mut server_request_first = server(SECRET, 2);
    let request = Frame::Request {
        id: 1,
        budget_ms: 10,
        payload: bytes::Bytes::new(),
    };
    assert!(matches!(
        server_request_first.on_frame(request),
        Err(Refusal::Protocol(_))
    ));

    let (mut client_welcome_first, _) = client(SECRET, 1);
    assert!(matches!(
        client_welcome_first.on_frame(Frame::Welcome),
        Err(Refusal::Protocol(_))
    ));
    let (mut client_twice, hello) = client(SECRET, 1);
    let mut server = server(SECRET, 2);
    let challenge = send(server.on_frame(hello.clone()));
    let _ = proof(client_twice.on_frame(challenge.clone()));
    assert!(matches!(
        client_twice.on_frame(challenge),
        Err(Refusal::Protocol(_))
    ));
    assert!(matches!(server.on_frame(hello), Err(Refusal::Protocol(_))));
}

/// The server refuses another cluster, a too-old version and its own id; the client refuses
/// a server that is not the node it dialled.
#[test]
fn identity_and_version_are_checked() {
    let mut hello = client_greeting(1);
    hello.cluster_id = "other".into();
    assert!(matches!(
        server(SECRET, 2).on_frame(Frame::Hello(hello)),
        Err(Refusal::Cluster { .. })
    ));
    let mut old = client_greeting(1);
    old.protocol_version = 1;
    assert_eq!(
        server(SECRET, 2).on_frame(Frame::Hello(old)).unwrap_err(),
        Refusal::Version { theirs: 1 }
    );
    let mut impostor = client_greeting(1);
    impostor.node_id = "server".into();
    assert!(matches!(
        server(SECRET, 2).on_frame(Frame::Hello(impostor)),
        Err(Refusal::NodeId { .. })
    ));

    let (mut dialer, hello) = ClientHandshake::start(
        identity("client", SECRET),
        NodeId::new("expected").unwrap(),
        [1; 32],
    );
    let challenge = send(server(SECRET, 2).on_frame(hello));
    assert!(matches!(
        dialer.on_frame(challenge),
        Err(Refusal::NodeId { .. })
    ));
}

/// A refusal frame from the server ends the client's handshake with the server's reason, at
/// either step.
#[test]
fn refusal_from_server_is_reported() {
    let (mut waiting_challenge, _) = client(SECRET, 1);
    assert_eq!(
        waiting_challenge.on_frame(Frame::Refused { code: 4 }),
        Err(Refusal::ByPeer(4))
    );
    let (mut waiting_welcome, hello) = client(SECRET, 1);
    let _ = proof(waiting_welcome.on_frame(send(server(SECRET, 2).on_frame(hello))));
    assert_eq!(
        waiting_welcome.on_frame(Frame::Refused { code: 1 }),
        Err(Refusal::ByPeer(1))
    );
    assert_eq!(Refusal::Version { theirs: 1 }.code(), 4);
}

/// Rotation: mid-rotation, a node signing with the new secret (still accepting the old) and a
/// node signing with the old one (already accepting the new) authenticate each other; a node
/// that does not accept the other's secret still refuses.
#[test]
fn rotation_accepts_the_other_secret() {
    let mut client_identity = identity("client", OTHER_SECRET);
    client_identity.accepted_secrets = vec![ClusterSecret::new(SECRET.to_vec()).unwrap()];
    let mut server_identity = identity("server", SECRET);
    server_identity.accepted_secrets = vec![ClusterSecret::new(OTHER_SECRET.to_vec()).unwrap()];
    let (mut client, hello) =
        ClientHandshake::start(client_identity, NodeId::new("server").unwrap(), [1; 32]);
    let mut server = ServerHandshake::new(server_identity, [2; 32]);
    let challenge = send(server.on_frame(hello));
    let proof = proof(client.on_frame(challenge));
    assert!(matches!(
        server.on_frame(proof),
        Ok(ServerStep::SendAndDone(..))
    ));

    let (mut not_accepting, hello) = self::client(OTHER_SECRET, 1);
    let mut server_identity = identity("server", SECRET);
    server_identity.accepted_secrets = vec![ClusterSecret::new(OTHER_SECRET.to_vec()).unwrap()];
    let challenge = send(ServerHandshake::new(server_identity, [2; 32]).on_frame(hello));
    assert_eq!(
        not_accepting.on_frame(challenge).unwrap_err(),
        Refusal::Auth
    );
}
