//! An in-memory network for tests: listeners and connectors over `tokio::io::duplex`, with
//! links that can be cut and restored.
//!
//! A cut link behaves like a network that silently stops delivering (the case TCP can take
//! minutes to notice): established streams between the two addresses stall (reads and writes
//! wait, no error) and new dials between them are refused. Restoring wakes the stalled streams
//! and allows dials again. Every byte still goes through the real framing and handshake.

use std::collections::{HashMap, HashSet};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::sync::mpsc;

use super::net::{BoxedIo, Connector, Listener};

/// Bytes buffered in each direction of an in-memory stream.
const DUPLEX_BUFFER_BYTES: usize = 64 << 10;
/// Connections waiting to be accepted per listener.
const ACCEPT_BACKLOG: usize = 64;

type Pair = (String, String);

fn pair(a: &str, b: &str) -> Pair {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

#[derive(Default)]
struct NetState {
    listeners: HashMap<String, mpsc::Sender<(BoxedIo, String)>>,
    cut_pairs: HashSet<Pair>,
    gates: Vec<(Pair, Weak<Gate>)>,
}

/// An in-memory network shared by the listeners and connectors of one test.
#[derive(Clone, Default)]
pub struct MemoryNetwork {
    state: Arc<Mutex<NetState>>,
}

impl MemoryNetwork {
    /// An empty network.
    pub fn new() -> MemoryNetwork {
        MemoryNetwork::default()
    }

    fn state(&self) -> MutexGuard<'_, NetState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Listens on the name `addr` (any string, e.g. `node-a:7000`).
    pub fn listen(&self, addr: &str) -> io::Result<MemoryListener> {
        let mut state = self.state();
        if state.listeners.contains_key(addr) {
            return Err(io::Error::new(io::ErrorKind::AddrInUse, addr.to_string()));
        }
        let (accept_tx, accept_rx) = mpsc::channel(ACCEPT_BACKLOG);
        state.listeners.insert(addr.to_string(), accept_tx);
        Ok(MemoryListener {
            addr: addr.to_string(),
            accept_rx,
            network: self.clone(),
        })
    }

    /// A connector whose streams come from the name `from`.
    pub fn connector(&self, from: &str) -> MemoryConnector {
        MemoryConnector {
            from: from.to_string(),
            network: self.clone(),
        }
    }

    /// Cuts the link between `a` and `b` in both directions (see the module doc).
    pub fn cut(&self, a: &str, b: &str) {
        self.set_cut(a, b, true);
    }

    /// Restores the link between `a` and `b`.
    pub fn restore(&self, a: &str, b: &str) {
        self.set_cut(a, b, false);
    }

    fn set_cut(&self, a: &str, b: &str, is_cut: bool) {
        let key = pair(a, b);
        let mut state = self.state();
        if is_cut {
            state.cut_pairs.insert(key.clone());
        } else {
            state.cut_pairs.remove(&key);
        }
        state.gates.retain(|(_, gate)| gate.strong_count() > 0);
        for (gate_pair, gate) in &state.gates {
            if *gate_pair == key {
                if let Some(gate) = gate.upgrade() {
                    gate.set(is_cut);
                }
            }
        }
    }
}

/// Dials listeners of a [`MemoryNetwork`].
pub struct MemoryConnector {
    from: String,
    network: MemoryNetwork,
}

#[async_trait]
impl Connector for MemoryConnector {
    async fn connect(&self, addr: &str) -> io::Result<BoxedIo> {
        let refused = || io::Error::new(io::ErrorKind::ConnectionRefused, addr.to_string());
        let key = pair(&self.from, addr);
        let (accept_tx, gate) = {
            let mut state = self.network.state();
            if state.cut_pairs.contains(&key) {
                return Err(refused());
            }
            let accept_tx = state.listeners.get(addr).cloned().ok_or_else(refused)?;
            let gate = Arc::new(Gate::default());
            state.gates.push((key, Arc::downgrade(&gate)));
            (accept_tx, gate)
        };
        let (client_end, server_end) = tokio::io::duplex(DUPLEX_BUFFER_BYTES);
        let server_io: BoxedIo = Box::new(GatedStream {
            inner: server_end,
            gate: gate.clone(),
        });
        accept_tx
            .try_send((server_io, self.from.clone()))
            .map_err(|_| refused())?;
        Ok(Box::new(GatedStream {
            inner: client_end,
            gate,
        }))
    }
}

/// Accepts dials on one name of a [`MemoryNetwork`]. Dropping it frees the name (later dials
/// are refused, as after a crash).
pub struct MemoryListener {
    addr: String,
    accept_rx: mpsc::Receiver<(BoxedIo, String)>,
    network: MemoryNetwork,
}

#[async_trait]
impl Listener for MemoryListener {
    async fn accept(&mut self) -> io::Result<(BoxedIo, String)> {
        self.accept_rx
            .recv()
            .await
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "listener closed"))
    }

    fn local_addr(&self) -> io::Result<String> {
        Ok(self.addr.clone())
    }
}

impl Drop for MemoryListener {
    fn drop(&mut self) {
        self.network.state().listeners.remove(&self.addr);
    }
}

/// Whether a link is cut, and who waits for it to be restored.
#[derive(Default)]
struct Gate {
    is_cut: AtomicBool,
    waiters: Mutex<Vec<Waker>>,
}

impl Gate {
    fn waiters(&self) -> MutexGuard<'_, Vec<Waker>> {
        self.waiters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn set(&self, is_cut: bool) {
        let mut waiters = self.waiters();
        self.is_cut.store(is_cut, Ordering::SeqCst);
        if !is_cut {
            for waker in waiters.drain(..) {
                waker.wake();
            }
        }
    }

    /// `true` if the caller may proceed; otherwise its waker is kept until the restore. The
    /// check and the registration happen under one lock, so a restore cannot slip between.
    fn is_open(&self, cx: &Context<'_>) -> bool {
        let mut waiters = self.waiters();
        if self.is_cut.load(Ordering::SeqCst) {
            waiters.push(cx.waker().clone());
            return false;
        }
        true
    }
}

struct GatedStream {
    inner: DuplexStream,
    gate: Arc<Gate>,
}

impl AsyncRead for GatedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.gate.is_open(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for GatedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if !self.gate.is_open(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.gate.is_open(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
