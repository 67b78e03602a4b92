//! The network the transport runs on, behind two small traits so a simulation (turmoil) or
//! the in-memory twin can stand in for TCP.

use std::io;
use std::net::{IpAddr, SocketAddr};

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpSocket;

/// A byte stream the transport can run a connection over.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A boxed [`Io`].
pub type BoxedIo = Box<dyn Io>;

/// Opens streams to peers.
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    /// Opens a stream to `addr` (`host:port`). The transport applies its own connect timeout.
    async fn connect(&self, addr: &str) -> io::Result<BoxedIo>;
}

/// Accepts streams from peers.
#[async_trait]
pub trait Listener: Send + 'static {
    /// The next incoming stream and the peer's address (for logs only: identity comes from
    /// the handshake).
    async fn accept(&mut self) -> io::Result<(BoxedIo, String)>;

    /// The address this listener is bound to.
    fn local_addr(&self) -> io::Result<String>;
}

/// Dials real TCP, with `TCP_NODELAY` (the writer batches frames itself).
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpConnector;

#[async_trait]
impl Connector for TcpConnector {
    async fn connect(&self, addr: &str) -> io::Result<BoxedIo> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Box::new(stream))
    }
}

/// Dials real TCP from a fixed source address, with `TCP_NODELAY`.
///
/// On one machine, nodes told apart by their loopback address (127.0.0.11, 127.0.0.12, …)
/// would otherwise all dial from 127.0.0.1, the kernel's choice of source on `lo`, and a peer
/// (or a packet filter partitioning them) could not tell who is calling.
#[derive(Debug, Clone, Copy)]
pub struct SourceTcpConnector {
    source: IpAddr,
}

impl SourceTcpConnector {
    /// A connector whose connections leave from `source` (an ephemeral port on it).
    pub fn new(source: IpAddr) -> Self {
        Self { source }
    }
}

#[async_trait]
impl Connector for SourceTcpConnector {
    /// Dials each address of `addr` in turn: a loopback peer of the source's family from the
    /// source (the point of this connector), any other peer as [`TcpConnector`] would (a
    /// loopback source cannot reach a remote address).
    async fn connect(&self, addr: &str) -> io::Result<BoxedIo> {
        let mut last_error = None;
        for peer in tokio::net::lookup_host(addr).await? {
            let bound = peer.ip().is_loopback() && peer.is_ipv4() == self.source.is_ipv4();
            let dialled = if bound {
                self.dial_from_source(peer).await
            } else {
                tokio::net::TcpStream::connect(peer).await
            };
            match dialled {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    return Ok(Box::new(stream));
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("{addr} resolves to no address"),
            )
        }))
    }
}

impl SourceTcpConnector {
    async fn dial_from_source(&self, peer: SocketAddr) -> io::Result<tokio::net::TcpStream> {
        let socket = if peer.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // Ports in TIME_WAIT from earlier connections stay usable for new destinations.
        socket.set_reuseaddr(true)?;
        socket.bind(SocketAddr::new(self.source, 0))?;
        socket.connect(peer).await
    }
}

/// A real TCP listener.
#[derive(Debug)]
pub struct TcpListener {
    listener: tokio::net::TcpListener,
}

impl TcpListener {
    /// Binds `addr` (`host:port`; port 0 lets the OS choose, see [`Listener::local_addr`]).
    pub async fn bind(addr: &str) -> io::Result<TcpListener> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        Ok(TcpListener { listener })
    }
}

#[async_trait]
impl Listener for TcpListener {
    async fn accept(&mut self) -> io::Result<(BoxedIo, String)> {
        let (stream, peer_addr) = self.listener.accept().await?;
        stream.set_nodelay(true)?;
        Ok((Box::new(stream), peer_addr.to_string()))
    }

    fn local_addr(&self) -> io::Result<String> {
        Ok(self.listener.local_addr()?.to_string())
    }
}

/// A boxed listener is a listener (so callers can choose one at run time).
#[async_trait]
impl Listener for Box<dyn Listener> {
    async fn accept(&mut self) -> io::Result<(BoxedIo, String)> {
        (**self).accept().await
    }

    fn local_addr(&self) -> io::Result<String> {
        (**self).local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source-bound connector's connections leave from its address, not from 127.0.0.1.
    #[tokio::test]
    async fn dials_from_its_source_address() {
        let mut listener = TcpListener::bind("127.0.0.12:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let source: IpAddr = "127.0.0.11".parse().unwrap();
        let dialled = SourceTcpConnector::new(source).connect(&addr).await;
        assert!(dialled.is_ok());
        let (_, peer) = listener.accept().await.unwrap();
        let peer: SocketAddr = peer.parse().unwrap();
        assert_eq!(peer.ip(), source);
    }

    /// A peer of the other family is dialled without the source (before, it could not be
    /// reached at all).
    #[tokio::test]
    async fn dials_a_peer_of_another_family_unbound() {
        let Ok(mut listener) = TcpListener::bind("[::1]:0").await else {
            return; // no IPv6 loopback here: nothing to show
        };
        let addr = listener.local_addr().unwrap();
        let source: IpAddr = "127.0.0.11".parse().unwrap();
        let dialled = SourceTcpConnector::new(source).connect(&addr).await;
        assert!(dialled.is_ok(), "{:?}", dialled.err());
        let (_, peer) = listener.accept().await.unwrap();
        let peer: SocketAddr = peer.parse().unwrap();
        assert!(peer.is_ipv6());
    }
}
