//! The node's network under turmoil: internode TCP over `turmoil::net`, and chitchat gossip
//! over turmoil UDP with the 8-byte-ticket workaround (CRATES.md, chitchat section): chitchat
//! 0.13 keeps its envelope encoding private, so each datagram carries a ticket and the typed
//! envelope waits in a table shared by the simulation's hosts. Turmoil's partitions, holds,
//! loss and latency apply to the ticket, so they apply to gossip.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chitchat::transport::{RecvOutcome, SendOutcome, Socket};
use chitchat::ChitchatEnvelope;
use listwire_cluster::membership::GossipTransport;
use listwire_cluster::transport::{BoxedIo, Connector, Listener};

/// Bytes a gossip datagram is counted as (chitchat only uses the figure for statistics).
const TICKET_BYTES: usize = 8;

/// Dials internode connections over turmoil TCP (`host:port`, resolved by turmoil's DNS).
#[derive(Debug, Clone, Copy, Default)]
pub struct SimConnector;

#[async_trait]
impl Connector for SimConnector {
    async fn connect(&self, addr: &str) -> io::Result<BoxedIo> {
        let stream = turmoil::net::TcpStream::connect(addr).await?;
        Ok(Box::new(stream))
    }
}

/// Accepts internode connections over turmoil TCP.
pub struct SimListener {
    listener: turmoil::net::TcpListener,
}

impl SimListener {
    /// Binds `addr` inside the current turmoil host.
    pub async fn bind(addr: SocketAddr) -> io::Result<SimListener> {
        let listener = turmoil::net::TcpListener::bind(addr).await?;
        Ok(SimListener { listener })
    }
}

#[async_trait]
impl Listener for SimListener {
    async fn accept(&mut self) -> io::Result<(BoxedIo, String)> {
        let (stream, peer) = self.listener.accept().await?;
        Ok((Box::new(stream), peer.to_string()))
    }

    fn local_addr(&self) -> io::Result<String> {
        Ok(self.listener.local_addr()?.to_string())
    }
}

/// The envelopes in flight, by ticket; shared by every host of one simulation.
#[derive(Clone, Default)]
pub struct TicketDesk {
    next: Arc<AtomicU64>,
    waiting: Arc<Mutex<HashMap<u64, ChitchatEnvelope>>>,
}

impl TicketDesk {
    fn deposit(&self, envelope: ChitchatEnvelope) -> u64 {
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(ticket, envelope);
        ticket
    }

    fn collect(&self, ticket: u64) -> Option<ChitchatEnvelope> {
        self.lock().remove(&ticket)
    }

    /// Envelopes whose tickets were lost on the way (dropped by a partition or a crash).
    pub fn uncollected(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, ChitchatEnvelope>> {
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Chitchat's transport over turmoil UDP.
#[derive(Clone, Default)]
pub struct TicketTransport {
    desk: TicketDesk,
}

impl TicketTransport {
    /// A transport depositing envelopes at `desk`.
    pub fn new(desk: TicketDesk) -> TicketTransport {
        TicketTransport { desk }
    }
}

#[async_trait]
impl GossipTransport for TicketTransport {
    async fn open(&self, listen_addr: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        let socket = turmoil::net::UdpSocket::bind(listen_addr).await?;
        Ok(Box::new(TicketSocket {
            socket,
            desk: self.desk.clone(),
        }))
    }
}

struct TicketSocket {
    socket: turmoil::net::UdpSocket,
    desk: TicketDesk,
}

#[async_trait]
impl Socket for TicketSocket {
    fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }

    async fn send(
        &mut self,
        to: SocketAddr,
        envelope: ChitchatEnvelope,
    ) -> anyhow::Result<SendOutcome> {
        let ticket = self.desk.deposit(envelope);
        if self
            .socket
            .send_to(&ticket.to_be_bytes(), to)
            .await
            .is_err()
        {
            // An unreachable peer is a lost datagram, not a broken transport.
            self.desk.collect(ticket);
        }
        Ok(SendOutcome {
            num_bytes_sent: TICKET_BYTES,
        })
    }

    async fn recv(&mut self) -> anyhow::Result<RecvOutcome> {
        let mut buf = [0u8; TICKET_BYTES];
        loop {
            // Cancel-safe: turmoil's recv_from takes a datagram only when it returns.
            let (len, from_addr) = self.socket.recv_from(&mut buf).await?;
            if len != TICKET_BYTES {
                continue;
            }
            if let Some(envelope) = self.desk.collect(u64::from_be_bytes(buf)) {
                return Ok(RecvOutcome {
                    from_addr,
                    envelope,
                    num_bytes_received: TICKET_BYTES,
                });
            }
        }
    }
}
