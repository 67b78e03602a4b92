//! Helpers for tests against a real PostgreSQL server, named by `LISTWIRE_POSTGRES_URL`
//! (`./ops/test.sh` starts a throwaway server and sets it). Every test uses a fresh schema, so
//! tests run in parallel on one database and leave nothing behind once they drop it.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_postgres::config::Host;
use tokio_postgres::NoTls;
use uuid::Uuid;

use crate::postgres::PostgresConfig;
use crate::Error;

/// The variable naming the server.
pub const URL_VAR: &str = "LISTWIRE_POSTGRES_URL";

/// The server's URL, or `None` after printing (once per process, to the real stderr so it shows
/// past the test harness's capture) that `binary`'s PostgreSQL tests were skipped.
pub fn url_or_skip(binary: &str) -> Option<String> {
    if let Ok(url) = std::env::var(URL_VAR) {
        return Some(url);
    }
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "{binary}: skipped: set {URL_VAR}=postgres://user@host:port/db to run against PostgreSQL"
        );
    }
    None
}

/// A schema name no other test uses: `prefix` plus 32 random hex digits.
pub fn fresh_schema(prefix: &str) -> String {
    format!("{prefix}{}", Uuid::new_v4().simple())
}

/// Store settings for tests: a small pool and short timeouts (a fault test waits for them).
pub fn test_config(url: &str, schema: &str) -> PostgresConfig {
    PostgresConfig {
        schema: schema.to_owned(),
        pool_size: 4,
        statement_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(2),
        pool_wait_timeout: Duration::from_secs(2),
        ..PostgresConfig::new(url)
    }
}

fn parse(url: &str) -> Result<tokio_postgres::Config, Error> {
    url.parse()
        .map_err(|e| Error::InvalidArgument(format!("{URL_VAR} does not parse: {e}")))
}

/// A plain client (no pool, no search path) for a test's own SQL.
pub async fn raw_client(url: &str) -> Result<tokio_postgres::Client, Error> {
    let mut config = parse(url)?;
    config.connect_timeout(Duration::from_secs(5));
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| Error::Unavailable(format!("connect to {URL_VAR}: {e}")))?;
    tokio::spawn(connection);
    Ok(client)
}

/// Drops `schema` and everything in it.
pub async fn drop_schema(url: &str, schema: &str) -> Result<(), Error> {
    crate::postgres::config::check_schema(schema)?;
    let client = raw_client(url).await?;
    // A validated identifier: lowercase letters, digits and `_` only.
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await
        .map_err(|e| Error::Backend(format!("drop schema {schema}: {e}")))
}

/// The server's first TCP address (a test proxy forwards there).
pub fn upstream_addr(url: &str) -> Result<SocketAddr, Error> {
    let config = parse(url)?;
    let port = config.get_ports().first().copied().unwrap_or(5432);
    for host in config.get_hosts() {
        if let Host::Tcp(name) = host {
            let mut found = (name.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| Error::InvalidArgument(format!("resolve {name}: {e}")))?;
            if let Some(addr) = found.next() {
                return Ok(addr);
            }
        }
    }
    Err(Error::InvalidArgument(format!(
        "{URL_VAR} names no TCP host"
    )))
}

/// The same connection settings as `url` (user, password, database, options), but to `addr`,
/// as a libpq `key=value` string.
pub fn via(url: &str, addr: SocketAddr) -> Result<String, Error> {
    let config = parse(url)?;
    let mut pairs = vec![
        ("host".to_owned(), addr.ip().to_string()),
        ("port".to_owned(), addr.port().to_string()),
    ];
    if let Some(user) = config.get_user() {
        pairs.push(("user".to_owned(), user.to_owned()));
    }
    if let Some(password) = config.get_password() {
        pairs.push((
            "password".to_owned(),
            String::from_utf8_lossy(password).into_owned(),
        ));
    }
    if let Some(dbname) = config.get_dbname() {
        pairs.push(("dbname".to_owned(), dbname.to_owned()));
    }
    if let Some(options) = config.get_options() {
        pairs.push(("options".to_owned(), options.to_owned()));
    }
    let quoted: Vec<String> = pairs
        .iter()
        .map(|(key, value)| {
            let escaped = value.replace('\\', "\\\\").replace('\'', "\\'");
            format!("{key}='{escaped}'")
        })
        .collect();
    Ok(quoted.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewritten_urls_keep_credentials_and_database() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 4242));
        let rewritten = via("postgres://bob:it's@db.example:5432/lists", addr).ok();
        let parsed = rewritten
            .as_deref()
            .and_then(|s| s.parse::<tokio_postgres::Config>().ok());
        let parsed = parsed.as_ref();
        assert_eq!(parsed.map(|c| c.get_ports().to_vec()), Some(vec![4242]));
        assert_eq!(parsed.and_then(|c| c.get_user()), Some("bob"));
        assert_eq!(
            parsed.and_then(|c| c.get_password()),
            Some(b"it's".as_slice())
        );
        assert_eq!(parsed.and_then(|c| c.get_dbname()), Some("lists"));
    }

    #[test]
    fn fresh_schemas_are_valid_and_distinct() {
        let (a, b) = (fresh_schema("lw_test_"), fresh_schema("lw_test_"));
        assert_ne!(a, b);
        assert!(crate::postgres::config::check_schema(&a).is_ok());
    }
}
