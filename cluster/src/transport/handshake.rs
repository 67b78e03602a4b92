//! The mutual challenge-response that opens every internode connection, as a pure state
//! machine: it consumes frames and says what to send, so tests drive it by hand.
//!
//! ```text
//! client                                             server
//!   Hello(cluster, client id, version, Nc)      ──▶
//!                                               ◀──  Challenge(cluster, server id, version, Ns,
//!                                                              tag_server)
//!   Proof(tag_client)                           ──▶
//!                                               ◀──  Welcome
//! ```
//!
//! `tag_role = HMAC-SHA256(secret, "listwire-internode-v1", role, cluster id, client id,
//! server id, client version, server version, Nc, Ns)` with every field length-prefixed
//! (u32, big-endian), `role` being `client` or `server`. Nonces are 256 random bits per
//! connection, so a recorded proof is worthless on the next connection (replay); the role label
//! makes a server's tag useless as a client's proof (reflection); binding both ids and versions
//! stops a peer claiming another identity or version than it signed. Tags are compared in
//! constant time. The secret never travels. For a rolling rotation a node may accept proofs
//! made with further secrets ([`super::TransportConfig::accepted_secrets`]) while it signs
//! with one.
//!
//! Each side verifies what it can: the server checks the cluster id, the client's protocol
//! version and the client's proof; the client checks the cluster id, that the server is the
//! node it meant to dial, the server's version and the server's proof. Any other frame, or any
//! frame after a failure, is a refusal: the caller closes the connection and parses nothing
//! more from it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::config::ClusterSecret;
use super::frame::{Frame, Greeting, NONCE_BYTES, TAG_BYTES};
use crate::NodeId;

type HmacSha256 = Hmac<Sha256>;

const DOMAIN: &[u8] = b"listwire-internode-v1";

/// Why a handshake was refused. [`Refusal::label`] is the metric label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The peer's proof did not verify: it does not hold the cluster secret.
    Auth,
    /// The peer belongs to another cluster.
    Cluster { theirs: String },
    /// The server is not the node the client dialled, or the client claims the server's id.
    NodeId { theirs: String },
    /// The peer's protocol version is not accepted.
    Version { theirs: u32 },
    /// A frame out of order, or a malformed id.
    Protocol(String),
    /// The server refused us, with this reason code (see [`Refusal::code`]).
    ByPeer(u8),
}

impl Refusal {
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Refusal::Auth => "auth",
            Refusal::Cluster { .. } => "cluster",
            Refusal::NodeId { .. } => "node_id",
            Refusal::Version { .. } => "version",
            Refusal::Protocol(_) => "protocol",
            Refusal::ByPeer(_) => "by_peer",
        }
    }

    /// The code a server sends the client in its `Refused` frame.
    pub(crate) fn code(&self) -> u8 {
        match self {
            Refusal::Auth => 1,
            Refusal::Cluster { .. } => 2,
            Refusal::NodeId { .. } => 3,
            Refusal::Version { .. } => 4,
            Refusal::Protocol(_) | Refusal::ByPeer(_) => 5,
        }
    }

    /// What a `Refused` frame's code means, for the refused side's logs and errors.
    pub(crate) fn describe_code(code: u8) -> &'static str {
        match code {
            1 => "our proof did not verify (cluster secrets differ)",
            2 => "we are in another cluster",
            3 => "our node id is not acceptable to it",
            4 => "it does not accept our protocol version",
            _ => "protocol error",
        }
    }
}

/// What this side knows about itself for a handshake.
#[derive(Debug, Clone)]
pub(crate) struct LocalIdentity {
    pub(crate) cluster_id: String,
    pub(crate) node_id: NodeId,
    /// The secret this side signs with.
    pub(crate) secret: ClusterSecret,
    /// Further secrets whose proofs are accepted (the other half of a rotation).
    pub(crate) accepted_secrets: Vec<ClusterSecret>,
    pub(crate) protocol_version: u32,
    pub(crate) min_protocol_version: u32,
}

impl LocalIdentity {
    /// Every secret a peer's proof may be made with: the signing one first.
    fn verifying_secrets(&self) -> impl Iterator<Item = &ClusterSecret> {
        std::iter::once(&self.secret).chain(&self.accepted_secrets)
    }

    fn greeting(&self, nonce: [u8; NONCE_BYTES]) -> Greeting {
        Greeting {
            cluster_id: self.cluster_id.clone(),
            node_id: self.node_id.to_string(),
            protocol_version: self.protocol_version,
            nonce,
        }
    }

    /// Checks the parts of a peer's greeting that need no secret.
    fn check_greeting(&self, greeting: &Greeting) -> Result<NodeId, Refusal> {
        if greeting.cluster_id != self.cluster_id {
            return Err(Refusal::Cluster {
                theirs: greeting.cluster_id.clone(),
            });
        }
        if greeting.protocol_version < self.min_protocol_version {
            return Err(Refusal::Version {
                theirs: greeting.protocol_version,
            });
        }
        NodeId::new(greeting.node_id.clone())
            .map_err(|_| Refusal::Protocol("malformed node id".into()))
    }
}

/// The authenticated peer, once a handshake completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authenticated {
    pub(crate) node_id: NodeId,
    pub(crate) protocol_version: u32,
}

/// The transcript both tags cover.
struct Transcript<'a> {
    cluster_id: &'a str,
    client: &'a Greeting,
    server: &'a Greeting,
}

impl Transcript<'_> {
    fn tag(&self, secret: &ClusterSecret, role: &[u8]) -> HmacSha256 {
        let client_version = self.client.protocol_version.to_be_bytes();
        let server_version = self.server.protocol_version.to_be_bytes();
        let fields: [&[u8]; 9] = [
            DOMAIN,
            role,
            self.cluster_id.as_bytes(),
            self.client.node_id.as_bytes(),
            self.server.node_id.as_bytes(),
            &client_version,
            &server_version,
            &self.client.nonce,
            &self.server.nonce,
        ];
        let mut mac = secret.mac();
        for field in fields {
            // Fields are far below 4 GiB; the prefix makes the concatenation unambiguous.
            mac.update(&(field.len() as u32).to_be_bytes());
            mac.update(field);
        }
        mac
    }

    fn sign(&self, secret: &ClusterSecret, role: &[u8]) -> [u8; TAG_BYTES] {
        self.tag(secret, role).finalize().into_bytes().into()
    }

    /// Constant-time verification (`verify_slice` compares without early exit).
    fn verify(&self, secret: &ClusterSecret, role: &[u8], tag: &[u8]) -> Result<(), Refusal> {
        self.tag(secret, role)
            .verify_slice(tag)
            .map_err(|_| Refusal::Auth)
    }

    /// Accepts a tag made with any of `local`'s verifying secrets.
    fn verify_any(&self, local: &LocalIdentity, role: &[u8], tag: &[u8]) -> Result<(), Refusal> {
        for secret in local.verifying_secrets() {
            if self.verify(secret, role, tag).is_ok() {
                return Ok(());
            }
        }
        Err(Refusal::Auth)
    }
}

const ROLE_CLIENT: &[u8] = b"client";
const ROLE_SERVER: &[u8] = b"server";

/// The dialling side.
pub(crate) struct ClientHandshake {
    local: LocalIdentity,
    expected_server: NodeId,
    hello: Greeting,
    state: ClientState,
}

enum ClientState {
    AwaitChallenge,
    AwaitWelcome(Authenticated),
    Finished,
}

impl ClientHandshake {
    /// Starts a handshake towards `expected_server`; send the returned hello first.
    pub(crate) fn start(
        local: LocalIdentity,
        expected_server: NodeId,
        nonce: [u8; NONCE_BYTES],
    ) -> (ClientHandshake, Frame) {
        let hello = local.greeting(nonce);
        let frame = Frame::Hello(hello.clone());
        let handshake = ClientHandshake {
            local,
            expected_server,
            hello,
            state: ClientState::AwaitChallenge,
        };
        (handshake, frame)
    }

    /// Feeds the next frame from the server and says what to do next.
    pub(crate) fn on_frame(&mut self, frame: Frame) -> Result<ClientStep, Refusal> {
        let state = std::mem::replace(&mut self.state, ClientState::Finished);
        match (state, frame) {
            (ClientState::AwaitChallenge, Frame::Challenge(server, tag)) => {
                let server_id = self.local.check_greeting(&server)?;
                if server_id != self.expected_server {
                    return Err(Refusal::NodeId {
                        theirs: server.node_id,
                    });
                }
                let transcript = Transcript {
                    cluster_id: &self.local.cluster_id,
                    client: &self.hello,
                    server: &server,
                };
                transcript.verify_any(&self.local, ROLE_SERVER, &tag)?;
                let proof = transcript.sign(&self.local.secret, ROLE_CLIENT);
                self.state = ClientState::AwaitWelcome(Authenticated {
                    node_id: server_id,
                    protocol_version: server.protocol_version,
                });
                Ok(ClientStep::Send(Frame::Proof(proof)))
            }
            (ClientState::AwaitWelcome(peer), Frame::Welcome) => Ok(ClientStep::Done(peer)),
            (
                ClientState::AwaitChallenge | ClientState::AwaitWelcome(_),
                Frame::Refused { code },
            ) => Err(Refusal::ByPeer(code)),
            (_, frame) => Err(Refusal::Protocol(format!(
                "unexpected frame during handshake: {}",
                frame.kind_name()
            ))),
        }
    }
}

/// What the client does next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ClientStep {
    /// Send this frame, then feed the next one received.
    Send(Frame),
    /// Authenticated.
    Done(Authenticated),
}

/// The accepting side.
pub(crate) struct ServerHandshake {
    local: LocalIdentity,
    nonce: [u8; NONCE_BYTES],
    state: ServerState,
}

enum ServerState {
    AwaitHello,
    AwaitProof {
        client: Greeting,
        challenge: Greeting,
    },
    Finished,
}

impl ServerHandshake {
    /// A server handshake that will answer with `nonce`.
    pub(crate) fn new(local: LocalIdentity, nonce: [u8; NONCE_BYTES]) -> ServerHandshake {
        ServerHandshake {
            local,
            nonce,
            state: ServerState::AwaitHello,
        }
    }

    /// Feeds the next frame from the client and says what to send.
    pub(crate) fn on_frame(&mut self, frame: Frame) -> Result<ServerStep, Refusal> {
        let state = std::mem::replace(&mut self.state, ServerState::Finished);
        match (state, frame) {
            (ServerState::AwaitHello, Frame::Hello(client)) => {
                let client_id = self.local.check_greeting(&client)?;
                if client_id == self.local.node_id {
                    return Err(Refusal::NodeId {
                        theirs: client.node_id,
                    });
                }
                let challenge = self.local.greeting(self.nonce);
                let transcript = Transcript {
                    cluster_id: &self.local.cluster_id,
                    client: &client,
                    server: &challenge,
                };
                let tag = transcript.sign(&self.local.secret, ROLE_SERVER);
                let frame = Frame::Challenge(challenge.clone(), tag);
                self.state = ServerState::AwaitProof { client, challenge };
                Ok(ServerStep::Send(frame))
            }
            (ServerState::AwaitProof { client, challenge }, Frame::Proof(tag)) => {
                let transcript = Transcript {
                    cluster_id: &self.local.cluster_id,
                    client: &client,
                    server: &challenge,
                };
                transcript.verify_any(&self.local, ROLE_CLIENT, &tag)?;
                let node_id = NodeId::new(client.node_id)
                    .map_err(|_| Refusal::Protocol("malformed node id".into()))?;
                Ok(ServerStep::SendAndDone(
                    Frame::Welcome,
                    Authenticated {
                        node_id,
                        protocol_version: client.protocol_version,
                    },
                ))
            }
            (_, frame) => Err(Refusal::Protocol(format!(
                "unexpected frame during handshake: {}",
                frame.kind_name()
            ))),
        }
    }
}

/// What the server does next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ServerStep {
    /// Send this frame, then feed the next one received.
    Send(Frame),
    /// Send this frame; the client is authenticated.
    SendAndDone(Frame, Authenticated),
}

#[cfg(test)]
#[path = "handshake_tests.rs"]
mod tests;
