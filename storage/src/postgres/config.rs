//! Settings of the PostgreSQL backend, their validation, and the driver configuration built
//! from them.
//!
//! The public settings are our own types (the URL stays a string); the driver's `Config` is built
//! here and never leaves the module tree. The URL may carry a password, so nothing in this file
//! prints it: [`PostgresConfig`]'s `Debug` and [`PostgresConfig::describe`] name only the host,
//! port, database, user and schema.

use std::fmt;
use std::time::Duration;

use tokio_postgres::config::{Host, SslMode};

use crate::Error;

/// Settings of [`super::PostgresStore`].
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// Where the database is: `postgres://user:password@host:port/dbname` or the libpq
    /// `key=value` form. Options in it (`?options=-c…`) are kept; the timeouts below are appended
    /// after them and so take precedence.
    pub url: String,
    /// The schema holding every table (created if missing). Lowercase letters, digits and `_`,
    /// starting with a letter or `_`, at most 63 bytes.
    pub schema: String,
    /// Connections in the pool.
    pub pool_size: usize,
    /// Server-side limit of one statement (`statement_timeout`); also used as `lock_timeout` and
    /// `idle_in_transaction_session_timeout`, so a writer stuck behind a lock or a vanished client
    /// holding one is bounded by the same figure.
    pub statement_timeout: Duration,
    /// Limit of establishing one connection (TCP connect, startup and authentication).
    pub connect_timeout: Duration,
    /// How long a request waits for a free pooled connection.
    pub pool_wait_timeout: Duration,
    /// How many times an idempotent request is retried after a transient failure.
    pub retries: u32,
}

impl PostgresConfig {
    /// Settings for `url` with the defaults for everything else.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: "listwire".to_owned(),
            pool_size: 16,
            statement_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
            pool_wait_timeout: Duration::from_secs(2),
            retries: 2,
        }
    }

    /// Checks every setting. Fails with [`Error::InvalidArgument`] naming the bad one.
    pub fn validate(&self) -> Result<(), Error> {
        check_schema(&self.schema)?;
        if self.pool_size == 0 || self.pool_size > 1000 {
            return Err(invalid(format!(
                "postgres pool size {} must be between 1 and 1000",
                self.pool_size
            )));
        }
        let timeouts = [
            ("statement timeout", self.statement_timeout),
            ("connect timeout", self.connect_timeout),
            ("pool wait timeout", self.pool_wait_timeout),
        ];
        for (what, value) in timeouts {
            if value < Duration::from_millis(10) || value > Duration::from_secs(600) {
                return Err(invalid(format!(
                    "postgres {what} {value:?} must be between 10 ms and 600 s"
                )));
            }
        }
        self.driver_config().map(|_| ())
    }

    /// Where the data lives, for logs and errors: host, port, database, user and schema, never
    /// the password. Falls back to a fixed text if the URL does not parse.
    pub fn describe(&self) -> String {
        match parse_url(&self.url) {
            Ok(config) => describe_driver_config(&config, &self.schema),
            Err(_) => format!("postgres (unparsable url), schema {}", self.schema),
        }
    }

    /// The deadline of one attempt of a request on the client side: waiting for a connection,
    /// connecting, then up to two statement timeouts of work. The server-side timeouts fire
    /// first when the server is reachable; this one bounds a request that a partition swallowed.
    pub fn attempt_deadline(&self) -> Duration {
        self.pool_wait_timeout + self.connect_timeout + self.statement_timeout * 2
    }

    /// The driver configuration: the URL plus our timeouts, search path and application name.
    pub(crate) fn driver_config(&self) -> Result<tokio_postgres::Config, Error> {
        let mut config = parse_url(&self.url)?;
        if config.get_ssl_mode() == SslMode::Require {
            return Err(invalid(
                "postgres url asks for sslmode=require, but this build connects without TLS; \
                 connect over loopback, a Unix socket or a private network (or a TLS-terminating \
                 proxy) and drop sslmode=require"
                    .into(),
            ));
        }
        let statement_ms = self.statement_timeout.as_millis();
        // Later `-c` settings win, so ours go after any the URL carries.
        let ours = format!(
            "-c statement_timeout={statement_ms} -c lock_timeout={statement_ms} \
             -c idle_in_transaction_session_timeout={statement_ms} -c search_path={}",
            self.schema
        );
        let options = match config.get_options() {
            Some(theirs) if !theirs.trim().is_empty() => format!("{theirs} {ours}"),
            _ => ours,
        };
        config.options(options);
        config.connect_timeout(self.connect_timeout);
        config.keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("listwire");
        }
        Ok(config)
    }
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &self.describe())
            .field("pool_size", &self.pool_size)
            .field("statement_timeout", &self.statement_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("pool_wait_timeout", &self.pool_wait_timeout)
            .field("retries", &self.retries)
            .finish()
    }
}

fn invalid(message: String) -> Error {
    Error::InvalidArgument(message)
}

/// Parses a URL or `key=value` string. The driver's parse error names the problem, never the
/// password.
fn parse_url(url: &str) -> Result<tokio_postgres::Config, Error> {
    if url.trim().is_empty() {
        return Err(invalid("postgres url is empty".into()));
    }
    url.parse::<tokio_postgres::Config>()
        .map_err(|error| invalid(format!("postgres url does not parse: {error}")))
}

fn describe_driver_config(config: &tokio_postgres::Config, schema: &str) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(index, host)| {
            let port = config
                .get_ports()
                .get(index)
                .or(config.get_ports().first())
                .copied()
                .unwrap_or(5432);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    let hosts = if hosts.is_empty() {
        "localhost:5432".to_owned()
    } else {
        hosts.join(",")
    };
    let user = config.get_user().unwrap_or("(default user)");
    let database = config.get_dbname().unwrap_or(user);
    format!("postgres database {database} at {hosts}, user {user}, schema {schema}")
}

/// Checks a schema name: `[a-z_][a-z0-9_]*`, at most 63 bytes (PostgreSQL's identifier limit),
/// so it needs no quoting anywhere, and not a `pg_` name (reserved for system schemas).
pub fn check_schema(name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if first_ok && rest_ok && name.len() <= 63 && !name.starts_with("pg_") {
        Ok(())
    } else {
        Err(invalid(format!(
            "postgres schema {name:?}: use 1-63 lowercase letters, digits or _, starting with a \
             letter or _ (and not pg_)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> PostgresConfig {
        PostgresConfig::new(url)
    }

    #[test]
    fn defaults_validate() {
        assert!(config("postgres://lw:pw@127.0.0.1:5432/lw")
            .validate()
            .is_ok());
        assert!(config("host=/run/postgresql dbname=lw").validate().is_ok());
    }

    #[test]
    fn bad_settings_are_named() {
        let mut bad = config("postgres://127.0.0.1/lw");
        bad.pool_size = 0;
        let err = bad.validate().err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("pool size")));
        let mut bad = config("postgres://127.0.0.1/lw");
        bad.statement_timeout = Duration::ZERO;
        let err = bad.validate().err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("statement timeout")));
        for url in ["", "   ", "postgres://h:notaport/db", "nonsense=1"] {
            assert!(config(url).validate().is_err(), "{url:?}");
        }
        let tls = config("postgres://h/db?sslmode=require").validate();
        assert!(tls.err().is_some_and(|e| e.to_string().contains("TLS")));
    }

    #[test]
    fn schema_names() {
        for good in ["listwire", "_x", "lw_test_0123abcd", &"a".repeat(63)] {
            assert!(check_schema(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "1x",
            "Listwire",
            "a-b",
            "a b",
            "x;drop",
            "pg_catalog",
            &"a".repeat(64),
        ] {
            assert!(check_schema(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn descriptions_never_show_the_password() {
        let url = "postgres://alice:hunter2@db.internal:6543/lists";
        let described = config(url).describe();
        assert_eq!(
            described,
            "postgres database lists at db.internal:6543, user alice, schema listwire"
        );
        assert!(!format!("{:?}", config(url)).contains("hunter2"));
        let kv = config("host=10.1.1.1 port=5433 user=bob password=hunter2 dbname=x").describe();
        assert!(
            kv.contains("10.1.1.1:5433") && !kv.contains("hunter2"),
            "{kv}"
        );
    }

    #[test]
    fn driver_options_append_ours_after_theirs() {
        let ours = config("postgres://h/db?options=-c%20work_mem%3D64MB");
        let driver = ours.driver_config().ok();
        let options = driver
            .as_ref()
            .and_then(|c| c.get_options().map(str::to_owned))
            .unwrap_or_default();
        assert!(
            options.starts_with("-c work_mem=64MB -c statement_timeout=5000"),
            "{options}"
        );
        assert!(options.ends_with("-c search_path=listwire"), "{options}");
        assert_eq!(
            driver.as_ref().and_then(|c| c.get_application_name()),
            Some("listwire")
        );
        let plain = config("postgres://h/db").driver_config().ok();
        let options = plain.as_ref().and_then(|c| c.get_options()).unwrap_or("");
        assert!(options.starts_with("-c statement_timeout=5000 -c lock_timeout=5000"));
    }
}
