//! A TCP proxy on 127.0.0.1 for fault tests: it forwards to a real server and can cut every
//! connection, refuse new ones, or drop a connection right around a chosen message.
//!
//! Faults are deterministic: a trigger fires on the first client → server chunk that contains
//! its pattern (for example `COMMIT` in a simple-query message), once.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What to do with the chunk that matches a trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward the chunk to the server, then close both sockets (the server acts on it; the
    /// client never hears back).
    AfterForwarding,
    /// Close both sockets without forwarding the chunk (the server never sees it).
    InsteadOfForwarding,
}

#[derive(Debug, Clone)]
struct Trigger {
    pattern: Vec<u8>,
    fault: Fault,
    then_cut: bool,
}

#[derive(Debug, Default)]
struct State {
    refusing: bool,
    trigger: Option<Trigger>,
    fired: u32,
}

/// A running proxy; stops (closing every connection) when dropped.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    cut_tx: Arc<watch::Sender<u64>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy on a free port of 127.0.0.1 that forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let (cut_tx, _) = watch::channel(0u64);
        let cut_tx = Arc::new(cut_tx);
        let accept = tokio::spawn(accept_loop(
            listener,
            upstream,
            Arc::clone(&state),
            Arc::clone(&cut_tx),
        ));
        Ok(Proxy {
            addr,
            state,
            cut_tx,
            accept,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Closes every open connection and refuses new ones (accepted, then closed at once) until
    /// [`Proxy::restore`].
    pub fn cut(&self) {
        cut(&self.state, &self.cut_tx);
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.lock().refusing = false;
    }

    /// Arms a one-shot trigger on the next client → server chunk containing `pattern`. With
    /// `then_cut`, the proxy also [cuts](Proxy::cut) right after the fault (once the chunk is
    /// forwarded, if it is), so nothing can reach the server until [`Proxy::restore`].
    pub fn fault_on(&self, pattern: &[u8], fault: Fault, then_cut: bool) {
        self.lock().trigger = Some(Trigger {
            pattern: pattern.to_vec(),
            fault,
            then_cut,
        });
    }

    /// How many triggers have fired.
    pub fn fired(&self) -> u32 {
        self.lock().fired
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut_tx.send_modify(|generation| *generation += 1);
    }
}

fn cut(state: &Mutex<State>, cut_tx: &watch::Sender<u64>) {
    state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .refusing = true;
    cut_tx.send_modify(|generation| *generation += 1);
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
    cut_tx: Arc<watch::Sender<u64>>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let refusing = state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .refusing;
        if refusing {
            continue; // Dropped: closed at once.
        }
        let state = Arc::clone(&state);
        let cut_tx = Arc::clone(&cut_tx);
        tokio::spawn(async move {
            if let Ok(server) = TcpStream::connect(upstream).await {
                pipe(client, server, state, cut_tx).await;
            }
        });
    }
}

/// Forwards both ways until either side closes, a cut, or a trigger.
async fn pipe(
    client: TcpStream,
    server: TcpStream,
    state: Arc<Mutex<State>>,
    cut_tx: Arc<watch::Sender<u64>>,
) {
    let mut cut_rx = cut_tx.subscribe();
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let chunk = buf.get(..n).unwrap_or_default();
            match take_trigger(&state, chunk) {
                Some(trigger) => {
                    if trigger.fault == Fault::AfterForwarding {
                        let _ = server_write.write_all(chunk).await;
                        let _ = server_write.flush().await;
                    }
                    if trigger.then_cut {
                        cut(&state, &cut_tx);
                    }
                    return;
                }
                None => {
                    if server_write.write_all(chunk).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    let downstream = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if client_write
                .write_all(buf.get(..n).unwrap_or_default())
                .await
                .is_err()
            {
                return;
            }
        }
    };
    let cut = async {
        let _ = cut_rx.changed().await;
    };
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
        () = cut => {}
    }
    // Dropping the halves closes both sockets.
}

fn take_trigger(state: &Mutex<State>, chunk: &[u8]) -> Option<Trigger> {
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    let pattern = &state.trigger.as_ref()?.pattern;
    if pattern.is_empty()
        || !chunk
            .windows(pattern.len())
            .any(|w| w == pattern.as_slice())
    {
        return None;
    }
    state.fired += 1;
    state.trigger.take()
}
