//! `GET /v1/ws`: authenticates the upgrade, takes a connection slot, and hands the socket to
//! the connection logic in `connection.rs`.

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::StreamExt;

use crate::error::{EdgeError, ErrorCode};
use crate::gateway::Gateway;
use crate::http::{bearer_token, ApiError};
use crate::metrics as names;

/// Upgrades an authenticated request (bearer header or `?token=`) to a WebSocket connection.
/// Missing or invalid token → 401; the user's `connections_per_user_max` open → 429;
/// `connections_max` open or shutting down → 503.
pub(crate) async fn upgrade(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let principal = bearer_token(&headers)
        .map(str::to_owned)
        .or_else(|| query.as_deref().and_then(query_token))
        .ok_or_else(|| EdgeError::new(ErrorCode::Unauthorized, "missing bearer token"))
        .and_then(|token| gateway.verify_token(&token))
        .map_err(|error| refused("unauthorized", error))?;
    let inner = gateway.inner;
    if inner.shutdown.is_cancelled() {
        let error = EdgeError::unavailable("server shutting down");
        return Err(refused("shutting_down", error));
    }
    let user_slot = inner
        .try_reserve_user_connection(principal.user_id)
        .map_err(|error| refused("user_limit", error))?;
    let slot = inner
        .try_reserve_connection()
        .map_err(|error| refused("limit", error))?;
    metrics::counter!(names::CONNECTIONS_ACCEPTED_TOTAL).increment(1);
    let message_bytes_max = inner.config.ws_message_bytes_hard_max;
    let tracker = inner.connections.clone();
    let response = upgrade
        .read_buffer_size(inner.config.ws_read_buffer_bytes)
        .max_message_size(message_bytes_max)
        .max_frame_size(message_bytes_max)
        .on_upgrade(move |socket| {
            tracker.track_future(async move {
                // Held for the connection's life; released on drop.
                let _slots = (slot, user_slot);
                let (writer, reader) = socket.split();
                crate::connection::run(inner, principal, writer, reader).await;
            })
        });
    Ok(response)
}

/// Counts a refused upgrade by `reason`.
fn refused(reason: &'static str, error: EdgeError) -> ApiError {
    metrics::counter!(names::CONNECTIONS_REFUSED_TOTAL, names::LABEL_REASON => reason).increment(1);
    error.into()
}

/// The `token` query parameter. Tokens are URL-safe (base64url and dots), so no decoding is
/// needed; a percent-encoded token simply fails verification.
fn query_token(query: &str) -> Option<String> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .filter(|token| !token.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the token is found among other query parameters and an empty one is absent.
    #[test]
    fn reads_the_query_token() {
        assert_eq!(
            query_token("a=1&token=abc.def&b=2").as_deref(),
            Some("abc.def")
        );
        assert_eq!(query_token("token="), None);
        assert_eq!(query_token("tokens=x"), None);
    }
}
