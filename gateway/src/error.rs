//! The one edge error type: protocol error codes, HTTP status codes and wire bodies.

use serde::Serialize;

/// The protocol's error codes (`docs/PROTOCOL.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Missing or invalid credentials.
    Unauthorized,
    /// Authenticated, but the role does not allow it.
    Forbidden,
    /// No such list, item or user.
    NotFound,
    /// Bad input; the message names the field.
    Invalid,
    /// A size or count limit was exceeded.
    TooLarge,
    /// Too many requests; retry after `retry_after_ms`.
    RateLimited,
    /// The op conflicts with the current state (duplicate vote, limit reached, taken username).
    Conflict,
    /// The list is overloaded; retry.
    Busy,
    /// The list changed owner; retry.
    Moved,
    /// A dependency is unavailable; retry.
    Unavailable,
    /// A bug or an unexpected failure.
    Internal,
}

impl ErrorCode {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Invalid => "invalid",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Busy => "busy",
            ErrorCode::Moved => "moved",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// Every code.
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Invalid,
        ErrorCode::TooLarge,
        ErrorCode::RateLimited,
        ErrorCode::Conflict,
        ErrorCode::Busy,
        ErrorCode::Moved,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    /// The code with this wire spelling, if any (the inverse of [`ErrorCode::as_str`]).
    pub fn parse(text: &str) -> Option<ErrorCode> {
        Self::ALL.into_iter().find(|code| code.as_str() == text)
    }

    /// Whether a request answered with this code may succeed if sent again (with the same
    /// `op_id`): `busy`, `moved` and `unavailable`.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::Busy | ErrorCode::Moved | ErrorCode::Unavailable
        )
    }

    /// The HTTP status for this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Invalid => 400,
            ErrorCode::TooLarge => 413,
            ErrorCode::RateLimited => 429,
            ErrorCode::Conflict => 409,
            ErrorCode::Busy | ErrorCode::Moved | ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }
}

/// An error as the client sees it: a code, a message and, for `rate_limited`, a retry hint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct EdgeError {
    /// The protocol error code.
    pub code: ErrorCode,
    /// A short, lowercase, human-readable message (never an internal cause).
    pub message: String,
    /// For `rate_limited`: how long to wait before retrying.
    pub retry_after_ms: Option<u64>,
}

impl EdgeError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }
    /// `invalid`, naming the field or problem.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Invalid, message)
    }
    /// `unavailable`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }
    /// `internal`; log the cause before building it.
    pub fn internal() -> Self {
        Self::new(ErrorCode::Internal, "internal error")
    }
    /// `rate_limited` with a retry hint.
    pub fn rate_limited(retry_after_ms: u64) -> Self {
        Self {
            code: ErrorCode::RateLimited,
            message: "rate limit exceeded".into(),
            retry_after_ms: Some(retry_after_ms),
        }
    }
}
