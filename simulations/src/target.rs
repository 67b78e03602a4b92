//! What a benchmark runs against, and the identities it uses there.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use listwire::server::RunningNode;
use listwire_gateway::{Principal, Tokens};
use uuid::Uuid;

/// Flags every node spawned by the bench gets, so the bench measures the node and not the
/// per-user abuse limits (each simulated user is far busier than a person).
pub const BENCH_NODE_FLAGS: &[&str] = &[
    "--ops-per-second-per-user",
    "10000000",
    "--ops-burst-per-user",
    "10000000",
    "--auth-per-second-per-ip",
    "100000",
    "--auth-burst-per-ip",
    "100000",
    "--connections-max",
    "200000",
    "--log",
    "warn",
];

/// A process started by the bench; stopped gracefully (SIGTERM, then SIGKILL) on drop.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let pid = self.0.id() as libc::pid_t;
        // SAFETY: signalling our own child process.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        for _ in 0..200 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The endpoint under test.
pub struct Target {
    http: String,
    tokens: Option<Tokens>,
    pid: Option<u32>,
    salt: u128,
    child: Option<ChildGuard>,
    node: Option<RunningNode>,
    _dir: Option<tempfile::TempDir>,
}

impl Target {
    /// A node that is already running at `url`; `secret` is its JWT secret (from
    /// `<data-dir>/jwt-secret` or `--jwt-secret`), used to mint identities.
    pub fn remote(url: &str, secret: &[u8]) -> Self {
        Self::with(
            url.trim_end_matches('/').to_owned(),
            Some(secret),
            None,
            None,
            None,
            None,
        )
    }

    /// Starts `listwire serve` from `binary` on a free loopback port with a fresh data
    /// directory and a fresh secret, plus `extra` flags.
    pub fn spawn_node(binary: &Path, extra: &[String]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let secret = format!(
            "{:032x}{:032x}",
            Uuid::new_v4().as_u128(),
            Uuid::new_v4().as_u128()
        );
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--jwt-secret", &secret])
            .arg("--data-dir")
            .arg(dir.path());
        command.args(BENCH_NODE_FLAGS).args(extra);
        let (child, url) = spawn_and_read_url(command)?;
        let pid = child.0.id();
        Ok(Self::with(
            url,
            Some(secret.as_bytes()),
            Some(pid),
            Some(child),
            None,
            Some(dir),
        ))
    }

    /// Starts the reference rebroadcast server from `binary`.
    pub fn spawn_reference(binary: &Path) -> anyhow::Result<Self> {
        let mut command = Command::new(binary);
        command.args(["--listen", "127.0.0.1:0"]);
        let (child, url) = spawn_and_read_url(command)?;
        let pid = child.0.id();
        Ok(Self::with(url, None, Some(pid), Some(child), None, None))
    }

    /// A node running in this process (tests).
    pub fn in_process(node: RunningNode) -> Self {
        let secret = node.jwt_secret.clone();
        Self::with(node.http_url(), Some(&secret), None, None, Some(node), None)
    }

    fn with(
        http: String,
        secret: Option<&[u8]>,
        pid: Option<u32>,
        child: Option<ChildGuard>,
        node: Option<RunningNode>,
        dir: Option<tempfile::TempDir>,
    ) -> Self {
        let tokens = secret.map(|secret| Tokens::new(secret, Duration::from_secs(24 * 3600)));
        Self {
            http,
            tokens,
            pid,
            salt: Uuid::new_v4().as_u128(),
            child,
            node,
            _dir: dir,
        }
    }

    /// Base HTTP URL.
    pub fn http_url(&self) -> &str {
        &self.http
    }

    /// The WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("{}/v1/ws", self.http.replacen("http", "ws", 1))
    }

    /// The server's process id, when the bench started it (for memory figures).
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Whether this is the reference rebroadcast server (no auth, no lists).
    pub fn is_reference(&self) -> bool {
        self.tokens.is_none()
    }

    /// The id of simulated user `index` (distinct per run).
    pub fn user(&self, index: u64) -> Uuid {
        Uuid::from_u128(self.salt ^ u128::from(index))
    }

    /// A session token for simulated user `index`. The gateway trusts a valid token's subject,
    /// so simulated users need not be registered (argon2 makes registration slow by design).
    pub fn token(&self, index: u64) -> String {
        match &self.tokens {
            Some(tokens) => {
                tokens
                    .mint(&Principal {
                        user_id: self.user(index),
                        username: format!("bench{index}"),
                    })
                    .0
            }
            None => String::from("reference"),
        }
    }

    /// Stops what the bench started (gracefully) and waits.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(node) = self.node.take() {
            node.stop().await?;
        }
        if let Some(child) = self.child.take() {
            tokio::task::spawn_blocking(move || drop(child)).await?;
        }
        Ok(())
    }
}

fn spawn_and_read_url(mut command: Command) -> anyhow::Result<(ChildGuard, String)> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {command:?}"))?;
    let stdout = child.stdout.take().context("child stdout")?;
    let guard = ChildGuard(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let Some(url) = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
    else {
        bail!("the server did not print where it listens: {line:?}");
    };
    Ok((guard, url.to_owned()))
}

/// The sibling binary `name` of the running executable (both are built into one target dir).
pub fn sibling_binary(name: &str) -> PathBuf {
    let mut path = std::env::current_exe().unwrap_or_default();
    path.set_file_name(name);
    path
}

/// Resident memory of process `pid` in bytes (Linux).
pub fn resident_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .context("VmRSS value")?
        .parse()?;
    Ok(kib * 1024)
}
