//! The node's token-signing secret: given by the operator, or generated once and kept in the
//! data directory so tokens stay valid across restarts.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

const SECRET_BYTES: usize = 32;

/// A fresh random secret (hex-encoded, so it can also be passed as a flag).
pub fn generate() -> Vec<u8> {
    let mut raw = [0u8; SECRET_BYTES];
    getrandom::fill(&mut raw).expect("the operating system random source failed");
    raw.iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<String>()
        .into_bytes()
}

/// Reads the secret at `path`, creating it (mode 0600) on first start.
pub fn load_or_create(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path.exists() {
        let secret = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let secret = String::from_utf8_lossy(&secret).trim().as_bytes().to_vec();
        anyhow::ensure!(
            secret.len() >= SECRET_BYTES,
            "{} holds a secret shorter than {SECRET_BYTES} bytes",
            path.display()
        );
        return Ok(secret);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let secret = generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(&secret)?;
    file.sync_all()?;
    Ok(secret)
}
