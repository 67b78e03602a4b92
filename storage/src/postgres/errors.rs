//! Mapping of driver and pool errors to the crate [`Error`].
//!
//! SQLSTATEs are first classified into [`Class`] by a pure function of the code (easy to test
//! against the PostgreSQL manual's list), then turned into an [`Error`] naming the operation.
//! An error without a SQLSTATE never reached the server's answer (broken connection, IO, connect
//! failure, timeout), so it is transient. Nothing is swallowed.

use deadpool_postgres::PoolError;

use crate::Error;

/// What a failure means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// The server is unreachable, shutting down, overloaded, or the statement lost a lock or
    /// serialization race or ran out of time: retrying may succeed.
    Transient,
    /// A unique constraint refused the row.
    Unique,
    /// The request, the schema or the credentials are wrong: not retryable.
    Fatal,
}

/// Classifies a SQLSTATE (https://www.postgresql.org/docs/15/errcodes-appendix.html).
pub(crate) fn classify_sqlstate(code: &str) -> Class {
    match code {
        // unique_violation
        "23505" => Class::Unique,
        // serialization_failure, statement_completion_unknown, deadlock_detected
        "40001" | "40003" | "40P01" => Class::Transient,
        // query_canceled (statement_timeout), admin_shutdown, crash_shutdown,
        // cannot_connect_now (starting up or in recovery), idle_session_timeout
        "57014" | "57P01" | "57P02" | "57P03" | "57P05" => Class::Transient,
        // lock_not_available (lock_timeout)
        "55P03" => Class::Transient,
        // read_only_sql_transaction (a standby during failover),
        // idle_in_transaction_session_timeout
        "25006" | "25P03" => Class::Transient,
        // Class 08, connection exceptions; class 53, insufficient resources (too many
        // connections, out of memory, disk full); class 58, system errors (IO).
        _ if code.starts_with("08") || code.starts_with("53") || code.starts_with("58") => {
            Class::Transient
        }
        _ => Class::Fatal,
    }
}

/// Classifies a driver error: by its SQLSTATE when the server answered, transient otherwise.
pub(crate) fn classify(error: &tokio_postgres::Error) -> Class {
    match error.code() {
        Some(code) => classify_sqlstate(code.code()),
        None => Class::Transient,
    }
}

/// Whether the connection is still in step with the server after `error`: the server answered
/// (with an error), so the connection can go back to the pool. Anything else discards it.
pub(crate) fn connection_usable(error: &tokio_postgres::Error) -> bool {
    error.code().is_some() && !error.is_closed()
}

/// A driver error with its cause: the driver's `Display` names only the kind ("db error").
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    match (error.as_db_error(), std::error::Error::source(error)) {
        (Some(db), _) => format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        ),
        (None, Some(source)) => format!("{error}: {source}"),
        (None, None) => error.to_string(),
    }
}

/// The crate error for a driver error during `what`.
pub(crate) fn to_error(what: &str, error: &tokio_postgres::Error) -> Error {
    let detail = describe(error);
    match classify(error) {
        Class::Transient => Error::Unavailable(format!("postgres {what}: {detail}")),
        Class::Unique => Error::AlreadyExists(format!("postgres {what}: {detail}")),
        Class::Fatal => Error::Backend(format!("postgres {what}: {detail}")),
    }
}

/// The crate error for a failure to get a pooled connection.
pub(crate) fn pool(error: PoolError) -> Error {
    match error {
        PoolError::Timeout(kind) => Error::Unavailable(format!(
            "postgres: no connection in time ({kind:?} timeout)"
        )),
        PoolError::Backend(error) => match classify(&error) {
            // A unique violation cannot come from connecting; treat it like any server refusal.
            Class::Fatal | Class::Unique => {
                Error::Backend(format!("postgres connect: {}", describe(&error)))
            }
            Class::Transient => {
                Error::Unavailable(format!("postgres connect: {}", describe(&error)))
            }
        },
        PoolError::Closed => Error::ShuttingDown,
        other => Error::Backend(format!("postgres pool: {other}")),
    }
}

/// A client-side deadline passed during `what`.
pub(crate) fn timed_out(what: &str) -> Error {
    Error::Unavailable(format!("postgres {what}: no answer before the deadline"))
}

#[cfg(test)]
mod tests {
    use deadpool_postgres::TimeoutType;
    use tokio_postgres::error::SqlState;

    use super::*;

    /// Every code the backend relies on maps to the class its handling assumes; codes come from
    /// the driver's constants, so a typo in the table above cannot hide.
    #[test]
    fn sqlstates() {
        let transient = [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::T_R_STATEMENT_COMPLETION_UNKNOWN,
            SqlState::QUERY_CANCELED,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::IDLE_SESSION_TIMEOUT,
            SqlState::LOCK_NOT_AVAILABLE,
            SqlState::READ_ONLY_SQL_TRANSACTION,
            SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
            SqlState::CONNECTION_EXCEPTION,
            SqlState::CONNECTION_FAILURE,
            SqlState::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::OUT_OF_MEMORY,
            SqlState::DISK_FULL,
            SqlState::IO_ERROR,
        ];
        for code in transient {
            assert_eq!(classify_sqlstate(code.code()), Class::Transient, "{code:?}");
        }
        assert_eq!(
            classify_sqlstate(SqlState::UNIQUE_VIOLATION.code()),
            Class::Unique
        );
        let fatal = [
            SqlState::UNDEFINED_TABLE,
            SqlState::SYNTAX_ERROR,
            SqlState::INVALID_PASSWORD,
            SqlState::INSUFFICIENT_PRIVILEGE,
            SqlState::INVALID_CATALOG_NAME,
            SqlState::CHECK_VIOLATION,
            SqlState::NOT_NULL_VIOLATION,
            SqlState::FOREIGN_KEY_VIOLATION,
            SqlState::INTERNAL_ERROR,
            SqlState::FEATURE_NOT_SUPPORTED,
        ];
        for code in fatal {
            assert_eq!(classify_sqlstate(code.code()), Class::Fatal, "{code:?}");
        }
    }

    #[test]
    fn pool_errors() {
        let waited = pool(PoolError::Timeout(TimeoutType::Wait));
        assert!(
            matches!(&waited, Error::Unavailable(m) if m.contains("Wait")),
            "{waited:?}"
        );
        assert!(waited.is_retryable());
        assert!(pool(PoolError::Timeout(TimeoutType::Create)).is_retryable());
        assert!(matches!(pool(PoolError::Closed), Error::ShuttingDown));
        assert!(matches!(
            pool(PoolError::NoRuntimeSpecified),
            Error::Backend(_)
        ));
    }

    #[test]
    fn deadlines_are_retryable() {
        let err = timed_out("append");
        assert!(err.is_retryable());
        assert!(err.to_string().contains("append"));
    }
}
