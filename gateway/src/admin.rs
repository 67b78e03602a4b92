//! The operator routes: `GET /v1/admin/cluster[?list=<uuid>]`, `GET /v1/admin/lists[?limit=N]`
//! (the busiest lists on this node) and `POST /v1/admin/stop`.
//!
//! They are authenticated with the admin token ([`crate::GatewayConfig::admin_token`]), never
//! with a user's session token, and the token is compared in constant time. A node without a
//! token (or without an [`Admin`]) answers them 404: the admin API is off. Calls are
//! rate-limited per client IP before the token is looked at, so guessing it is as slow as
//! guessing a password. What the answers contain is the node's business: the gateway passes
//! the node's JSON through untouched.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::error::{EdgeError, ErrorCode};
use crate::frames::{self, ClusterQuery, ListsQuery, StoppingBody};
use crate::gateway::Gateway;
use crate::http::{bearer_token, json, ApiResult, ClientIp};
use crate::router::Admin;

/// The admin routes, merged into the application by `http::app`.
pub(crate) fn routes() -> axum::Router<Gateway> {
    axum::Router::new()
        .route("/v1/admin/cluster", get(cluster))
        .route("/v1/admin/lists", get(lists))
        .route("/v1/admin/stop", post(stop))
}

async fn cluster(
    State(gateway): State<Gateway>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    query: Result<Query<ClusterQuery>, QueryRejection>,
) -> ApiResult {
    let admin = authorize(&gateway, ip, &headers)?;
    let list = list_param(query)?;
    let body = within_op_timeout(&gateway, admin.cluster(list)).await?;
    Ok(json(StatusCode::OK, body))
}

/// Lists shown when the caller gives no `limit`, and the most it may ask for.
const LISTS_DEFAULT: usize = 20;
const LISTS_MAX: usize = 1000;

async fn lists(
    State(gateway): State<Gateway>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    query: Result<Query<ListsQuery>, QueryRejection>,
) -> ApiResult {
    let admin = authorize(&gateway, ip, &headers)?;
    let limit = limit_param(query)?;
    let body = within_op_timeout(&gateway, admin.lists(limit)).await?;
    Ok(json(StatusCode::OK, body))
}

async fn stop(
    State(gateway): State<Gateway>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> ApiResult {
    let admin = authorize(&gateway, ip, &headers)?;
    tracing::warn!(%ip, "graceful stop requested through the admin api");
    within_op_timeout(&gateway, admin.stop()).await?;
    let body = frames::encode(&StoppingBody { stopping: true });
    Ok(json(StatusCode::ACCEPTED, body))
}

/// The node's admin side, once the caller proved it holds the admin token: 404 when the admin
/// API is off, 429 past the per-IP rate, 401 for a missing or wrong token.
fn authorize(
    gateway: &Gateway,
    ip: IpAddr,
    headers: &HeaderMap,
) -> Result<Arc<dyn Admin>, EdgeError> {
    let inner = &gateway.inner;
    let (Some(expected), Some(admin)) = (&inner.config.admin_token, &inner.admin) else {
        return Err(EdgeError::new(
            ErrorCode::NotFound,
            "the admin api is disabled on this node (it has no admin token)",
        ));
    };
    inner.limits.check_admin(ip)?;
    let Some(provided) = bearer_token(headers) else {
        return Err(EdgeError::new(
            ErrorCode::Unauthorized,
            "missing admin token",
        ));
    };
    if !tokens_match(provided, expected) {
        tracing::warn!(%ip, "admin call refused: wrong admin token");
        return Err(EdgeError::new(
            ErrorCode::Unauthorized,
            "invalid admin token",
        ));
    }
    Ok(Arc::clone(admin))
}

/// Whether `provided` is the admin token, in a time that does not depend on where the two
/// first differ (only a difference in length shows, and the length is no secret worth having).
fn tokens_match(provided: &str, expected: &str) -> bool {
    bool::from(provided.as_bytes().ct_eq(expected.as_bytes()))
}

/// The optional `list` parameter, which must be a UUID.
fn list_param(
    query: Result<Query<ClusterQuery>, QueryRejection>,
) -> Result<Option<Uuid>, EdgeError> {
    let Query(query) = query.map_err(|_| EdgeError::invalid("malformed query string"))?;
    match query.list {
        None => Ok(None),
        Some(list) => list
            .parse()
            .map(Some)
            .map_err(|_| EdgeError::invalid("list must be a uuid")),
    }
}

/// The optional `limit` parameter: 1 to [`LISTS_MAX`], [`LISTS_DEFAULT`] when absent.
fn limit_param(query: Result<Query<ListsQuery>, QueryRejection>) -> Result<usize, EdgeError> {
    let Query(query) = query.map_err(|_| EdgeError::invalid("limit must be a number"))?;
    match query.limit {
        None => Ok(LISTS_DEFAULT),
        Some(limit @ 1..=LISTS_MAX) => Ok(limit),
        Some(_) => Err(EdgeError::invalid(format!(
            "limit must be 1 to {LISTS_MAX}"
        ))),
    }
}

/// Every wait has a deadline: an admin call that takes longer than an op is `unavailable`.
async fn within_op_timeout<T>(
    gateway: &Gateway,
    call: impl Future<Output = Result<T, EdgeError>>,
) -> Result<T, EdgeError> {
    tokio::time::timeout(gateway.inner.config.op_timeout, call)
        .await
        .map_err(|_elapsed| EdgeError::unavailable("the node did not answer in time; retry"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: only the exact token matches; prefixes, extensions and case changes do not.
    #[test]
    fn tokens_match_only_exactly() {
        let token = "0123456789abcdef0123";
        assert!(tokens_match(token, token));
        assert!(!tokens_match("0123456789abcdef012", token));
        assert!(!tokens_match("0123456789abcdef01234", token));
        assert!(!tokens_match("0123456789ABCDEF0123", token));
        assert!(!tokens_match("", token));
    }

    // Goal: the list parameter is optional and must be a UUID when given.
    #[test]
    fn list_param_is_an_optional_uuid() {
        let list = Uuid::from_u128(7);
        let query = |list: Option<String>| Ok(Query(ClusterQuery { list }));
        assert_eq!(list_param(query(None)), Ok(None));
        assert_eq!(list_param(query(Some(list.to_string()))), Ok(Some(list)));
        let refused = list_param(query(Some("seven".into()))).unwrap_err();
        assert_eq!(refused, EdgeError::invalid("list must be a uuid"));
    }

    // Goal: the limit defaults to 20 and must be 1 to 1000.
    #[test]
    fn limit_param_is_bounded() {
        let query = |limit: Option<usize>| Ok(Query(ListsQuery { limit }));
        assert_eq!(limit_param(query(None)), Ok(20));
        assert_eq!(limit_param(query(Some(1))), Ok(1));
        assert_eq!(limit_param(query(Some(1000))), Ok(1000));
        assert!(limit_param(query(Some(0))).is_err());
        assert!(limit_param(query(Some(1001))).is_err());
    }
}
