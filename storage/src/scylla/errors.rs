//! Mapping of driver errors to the crate [`Error`].
//!
//! Driver errors are first classified into [`Class`] (ours, easy to test), then turned into an
//! [`Error`] with the operation named. Nothing is swallowed: every driver error becomes an error.

use scylla::errors::{
    DbError, ExecutionError, IntoRowsResultError, NewSessionError, PrepareError,
    RequestAttemptError, RowsError, SchemaAgreementError,
};

use crate::Error;

/// What a driver error means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Timeout, unavailable replicas, overload, broken connection: retrying may succeed.
    /// For a conditional write the outcome is unknown and must be resolved by a serial read.
    Uncertain,
    /// Replicas were known unavailable or busy before anything was written: retrying may
    /// succeed, and a conditional write certainly did not apply.
    Transient,
    /// The request or the schema is wrong (syntax, invalid, unauthorized, config): a bug or a
    /// deployment problem, not retryable.
    Fatal,
}

/// Classifies a server-side error.
pub(crate) fn classify_db(err: &DbError) -> Class {
    match err {
        DbError::Unavailable { .. }
        | DbError::Overloaded
        | DbError::IsBootstrapping
        | DbError::RateLimitReached { .. } => Class::Transient,
        DbError::ReadTimeout { .. }
        | DbError::WriteTimeout { .. }
        | DbError::ReadFailure { .. }
        | DbError::WriteFailure { .. }
        | DbError::ServerError
        | DbError::TruncateError => Class::Uncertain,
        _ => Class::Fatal,
    }
}

/// Classifies the error of one request execution.
pub(crate) fn classify(err: &ExecutionError) -> Class {
    match err {
        ExecutionError::LastAttemptError(attempt) => classify_attempt(attempt),
        ExecutionError::RequestTimeout(_) => Class::Uncertain,
        ExecutionError::ConnectionPoolError(_) | ExecutionError::EmptyPlan => Class::Transient,
        ExecutionError::PrepareError(PrepareError::ConnectionPoolError(_)) => Class::Transient,
        ExecutionError::SchemaAgreementError(_) => Class::Transient,
        _ => Class::Fatal,
    }
}

fn classify_attempt(err: &RequestAttemptError) -> Class {
    match err {
        RequestAttemptError::DbError(db, _) => classify_db(db),
        RequestAttemptError::BrokenConnectionError(_) => Class::Uncertain,
        RequestAttemptError::UnableToAllocStreamId => Class::Transient,
        _ => Class::Fatal,
    }
}

/// Turns a classified error into the crate error, naming the operation.
pub(crate) fn to_error(class: Class, what: &str, detail: &dyn std::fmt::Display) -> Error {
    match class {
        Class::Uncertain | Class::Transient => Error::Unavailable(format!("{what}: {detail}")),
        Class::Fatal => Error::Backend(format!("{what}: {detail}")),
    }
}

/// Maps a request error.
pub(crate) fn exec(what: &str) -> impl FnOnce(ExecutionError) -> Error + '_ {
    move |err| to_error(classify(&err), what, &err)
}

/// Maps a prepare error (at startup).
pub(crate) fn prepare(what: &str) -> impl FnOnce(PrepareError) -> Error + '_ {
    move |err| {
        let class = match err {
            PrepareError::ConnectionPoolError(_) => Class::Transient,
            _ => Class::Fatal,
        };
        to_error(class, what, &err)
    }
}

/// Maps a session creation error: the cluster could not be reached or spoke nonsense.
pub(crate) fn connect(err: NewSessionError) -> Error {
    let class = match &err {
        NewSessionError::FailedToResolveAnyHostname(_) | NewSessionError::EmptyKnownNodesList => {
            Class::Fatal
        }
        _ => Class::Transient,
    };
    to_error(class, "connect to scylla", &err)
}

/// Maps a schema agreement failure.
pub(crate) fn agreement(err: SchemaAgreementError) -> Error {
    Error::Unavailable(format!("waiting for schema agreement: {err}"))
}

/// A result had the wrong shape or types: the stored data or schema is not what we wrote.
pub(crate) fn rows_shape(what: &str) -> impl FnOnce(IntoRowsResultError) -> Error + '_ {
    move |err| Error::Corrupt(format!("{what}: unexpected result: {err}"))
}

/// Row type check or decode failure.
pub(crate) fn rows(what: &str) -> impl FnOnce(RowsError) -> Error + '_ {
    move |err| Error::Corrupt(format!("{what}: {err}"))
}

/// Whether a server error says that a table does not exist ("unconfigured table" in ScyllaDB
/// and Cassandra), used to treat a missing `system_schema.scylla_keyspaces` as "no tablets".
pub(crate) fn is_missing_table(err: &ExecutionError) -> bool {
    match err {
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(DbError::Invalid, msg)) => {
            let msg = msg.to_ascii_lowercase();
            msg.contains("unconfigured table") || msg.contains("does not exist")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use scylla::errors::{OperationType, WriteType};
    use scylla::statement::Consistency;

    use super::*;

    fn db(err: DbError) -> ExecutionError {
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(err, "msg".into()))
    }

    #[test]
    fn classes() {
        let unavailable = DbError::Unavailable {
            consistency: Consistency::LocalQuorum,
            required: 2,
            alive: 1,
        };
        assert_eq!(classify(&db(unavailable)), Class::Transient);
        assert_eq!(classify(&db(DbError::Overloaded)), Class::Transient);
        let cas_timeout = DbError::WriteTimeout {
            consistency: Consistency::Serial,
            received: 0,
            required: 1,
            write_type: WriteType::Cas,
        };
        assert_eq!(classify(&db(cas_timeout)), Class::Uncertain);
        let read_timeout = DbError::ReadTimeout {
            consistency: Consistency::LocalQuorum,
            received: 1,
            required: 2,
            data_present: false,
        };
        assert_eq!(classify(&db(read_timeout)), Class::Uncertain);
        let timeout = ExecutionError::RequestTimeout(Duration::from_secs(1));
        assert_eq!(classify(&timeout), Class::Uncertain);
        assert_eq!(classify(&ExecutionError::EmptyPlan), Class::Transient);
        assert_eq!(classify(&db(DbError::SyntaxError)), Class::Fatal);
        assert_eq!(classify(&db(DbError::Unauthorized)), Class::Fatal);
        let _ = OperationType::Read;
    }

    #[test]
    fn errors() {
        let timeout = ExecutionError::RequestTimeout(Duration::from_secs(1));
        let err = exec("append")(timeout);
        assert!(
            matches!(&err, Error::Unavailable(m) if m.starts_with("append")),
            "{err:?}"
        );
        assert!(err.is_retryable());
        let err = exec("read")(db(DbError::Invalid));
        assert!(matches!(err, Error::Backend(_)), "{err:?}");
        assert!(!err.is_retryable());
    }

    #[test]
    fn missing_table() {
        let missing = ExecutionError::LastAttemptError(RequestAttemptError::DbError(
            DbError::Invalid,
            "unconfigured table scylla_keyspaces".into(),
        ));
        assert!(is_missing_table(&missing));
        assert!(!is_missing_table(&db(DbError::Invalid)));
        assert!(!is_missing_table(&db(DbError::Overloaded)));
    }
}
