//! What the real-process tests share: the node binary and the PostgreSQL server.

use std::path::PathBuf;

/// The variable naming the PostgreSQL server (`./ops/test.sh` starts a throwaway one).
pub const URL_VAR: &str = "LISTWIRE_POSTGRES_URL";

/// The server's URL, or `None` after saying (past the harness's capture) that `test` is
/// skipped.
pub fn postgres_url_or_skip(test: &str) -> Option<String> {
    if let Ok(url) = std::env::var(URL_VAR) {
        return Some(url);
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "{test}: skipped: set {URL_VAR}=postgres://user@host:port/db to run against PostgreSQL"
    );
    None
}

/// The `listwire` binary: `LISTWIRE_BIN`, or the one beside this test's target directory
/// (`target/<profile>/deps/<test>-<hash>` → `target/<profile>/listwire`), which
/// `cargo test --workspace` builds. Panics if it is missing.
pub fn listwire_binary() -> PathBuf {
    let binary = match std::env::var_os("LISTWIRE_BIN") {
        Some(path) => PathBuf::from(path),
        None => {
            let test = std::env::current_exe().expect("the test executable");
            let profile_dir = test
                .parent()
                .and_then(|deps| deps.parent())
                .expect("the target directory");
            profile_dir.join("listwire")
        }
    };
    assert!(
        binary.exists(),
        "{} is missing: build it with `cargo build -p listwire` (or set LISTWIRE_BIN)",
        binary.display()
    );
    binary
}
