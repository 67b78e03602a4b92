//! The network the transport runs on, behind two small traits so a simulation (turmoil) or
//! the in-memory twin can stand in for TCP.

use std::io;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};

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
