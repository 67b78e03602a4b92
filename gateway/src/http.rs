//! The HTTP application: REST routes, health, metrics, and the error-to-response mapping.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Path, Request, State,
};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::value::RawValue;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::auth::{check_password, check_username, rfc3339_from_ms};
use crate::error::{EdgeError, ErrorCode};
use crate::frames::{self, CreatedList, Credentials, ErrorBody, LooseOpRequest, SeqBody, Session};
use crate::gateway::Gateway;
use crate::metrics as names;
use crate::router::{Account, Principal, Reply};

/// Builds the application over `gateway`.
pub(crate) fn app(gateway: Gateway) -> axum::Router {
    let body_bytes_max = gateway.inner.config.http_body_bytes_max;
    axum::Router::new()
        .route("/v1/auth/register", post(register))
        .route("/v1/auth/login", post(login))
        .route("/v1/lists", get(lists_of).post(create_list))
        .route("/v1/lists/{id}", get(snapshot))
        .route("/v1/lists/{id}/ops", post(submit_op))
        .route("/v1/ws", get(crate::ws::upgrade))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(render_metrics))
        .merge(crate::admin::routes())
        .merge(crate::web::routes())
        .route_layer(middleware::from_fn(count_requests))
        .fallback(|| async { ApiError(EdgeError::new(ErrorCode::NotFound, "no such route")) })
        .method_not_allowed_fallback(|| async {
            let body = r#"{"code":"invalid","message":"method not allowed on this route"}"#;
            (
                StatusCode::METHOD_NOT_ALLOWED,
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
        })
        .layer(DefaultBodyLimit::max(body_bytes_max))
        .with_state(gateway)
}

/// An [`EdgeError`] as an HTTP answer: its status, `{"code","message"[,"retry_after_ms"]}` and,
/// when rate limited, a `Retry-After` header.
#[derive(Debug)]
pub(crate) struct ApiError(pub EdgeError);

impl From<EdgeError> for ApiError {
    fn from(error: EdgeError) -> Self {
        Self(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = self.0;
        names::count_error(error.code);
        let status = StatusCode::from_u16(error.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = frames::encode(&ErrorBody {
            code: error.code,
            message: &error.message,
            retry_after_ms: error.retry_after_ms,
        });
        let mut response = (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        if let Some(retry_after_ms) = error.retry_after_ms {
            let retry_after_s = retry_after_ms.div_ceil(1000).max(1);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
        }
        response
    }
}

pub(crate) type ApiResult = Result<Response, ApiError>;

/// A JSON answer from pre-encoded bytes.
pub(crate) fn json(status: StatusCode, body: Bytes) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The caller, from `Authorization: Bearer <token>`; missing or invalid → 401.
pub(crate) struct Authenticated(pub Principal);

impl FromRequestParts<Gateway> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        gateway: &Gateway,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers)
            .ok_or_else(|| EdgeError::new(ErrorCode::Unauthorized, "missing bearer token"))?;
        Ok(Self(gateway.verify_token(token)?))
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The client's IP (unspecified when the app runs without connect info, as in-process tests do).
pub(crate) struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        Ok(Self(ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))))
    }
}

/// The raw body, within `http_body_bytes_max`; a bigger one → 413 `too_large` as JSON.
struct Body(Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(Self(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError(
                EdgeError::new(ErrorCode::TooLarge, "request body too large"),
            )),
            Err(rejection) => Err(ApiError(EdgeError::invalid(format!(
                "unreadable body: {}",
                rejection.body_text()
            )))),
        }
    }
}

impl Body {
    fn parse<'a, T: serde::Deserialize<'a>>(&'a self) -> Result<T, EdgeError> {
        serde_json::from_slice(&self.0).map_err(|error| frames::json_error(&error))
    }
}

/// A path id; it must be a UUID.
fn list_id(id: &str) -> Result<Uuid, EdgeError> {
    id.parse()
        .map_err(|_| EdgeError::invalid("list id must be a uuid"))
}

/// Username and password from a register or login body.
fn credentials(body: &Body) -> Result<(String, String), EdgeError> {
    let credentials: Credentials = body.parse()?;
    let username = credentials
        .username
        .ok_or_else(|| EdgeError::invalid("username is required"))?;
    let password = credentials
        .password
        .ok_or_else(|| EdgeError::invalid("password is required"))?;
    Ok((username, password))
}

fn session(gateway: &Gateway, principal: &Principal) -> Bytes {
    let (token, expires_at_ms) = gateway.mint_token(principal);
    frames::encode(&Session {
        user_id: principal.user_id,
        token,
        expires_at: rfc3339_from_ms(expires_at_ms),
        expires_at_ms,
    })
}

async fn register(State(gateway): State<Gateway>, ClientIp(ip): ClientIp, body: Body) -> ApiResult {
    gateway.inner.limits.check_auth(ip)?;
    let (username, password) = credentials(&body)?;
    check_username(&username)?;
    check_password(&password)?;
    let password_hash = gateway.inner.passwords.hash(password).await?;
    let principal = Principal {
        user_id: Uuid::now_v7(),
        username,
    };
    let account = Account {
        user_id: principal.user_id,
        username: principal.username.clone(),
        password_hash,
    };
    gateway.inner.accounts.create(account).await?;
    Ok(json(StatusCode::CREATED, session(&gateway, &principal)))
}

async fn login(State(gateway): State<Gateway>, ClientIp(ip): ClientIp, body: Body) -> ApiResult {
    gateway.inner.limits.check_auth(ip)?;
    let (username, password) = credentials(&body)?;
    let refused = || {
        ApiError(EdgeError::new(
            ErrorCode::Unauthorized,
            "wrong username or password",
        ))
    };
    // Badly formed credentials cannot match an account; refuse them without hashing work.
    if check_username(&username).is_err() || check_password(&password).is_err() {
        return Err(refused());
    }
    let account_opt = gateway.inner.accounts.find(&username).await?;
    let phc_hash_opt = account_opt
        .as_ref()
        .map(|account| account.password_hash.clone());
    let verified = gateway.inner.passwords.verify(password, phc_hash_opt).await;
    match account_opt {
        Some(account) if verified => {
            let principal = Principal {
                user_id: account.user_id,
                username: account.username,
            };
            Ok(json(StatusCode::OK, session(&gateway, &principal)))
        }
        _ => Err(refused()),
    }
}

async fn lists_of(
    State(gateway): State<Gateway>,
    Authenticated(principal): Authenticated,
) -> ApiResult {
    let lists = gateway.inner.router.lists_of(&principal).await?;
    Ok(json(StatusCode::OK, lists))
}

async fn create_list(
    State(gateway): State<Gateway>,
    Authenticated(principal): Authenticated,
    body: Body,
) -> ApiResult {
    // Creating a list writes like any op, so it counts against the same per-user rate.
    gateway.inner.limits.check_op(principal.user_id)?;
    let raw: Box<RawValue> = body.parse()?;
    if !raw.get().starts_with('{') {
        return Err(EdgeError::invalid("body must be a json object").into());
    }
    let creating = gateway.inner.router.create_list(&principal, raw);
    let list_id = tokio::time::timeout(gateway.inner.config.op_timeout, creating)
        .await
        .map_err(|_elapsed| outcome_unknown())??;
    Ok(json(
        StatusCode::CREATED,
        frames::encode(&CreatedList { list_id }),
    ))
}

async fn snapshot(
    State(gateway): State<Gateway>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> ApiResult {
    let list = list_id(&id)?;
    let state = gateway.inner.router.snapshot(&principal, list).await?;
    Ok(json(StatusCode::OK, state))
}

async fn submit_op(
    State(gateway): State<Gateway>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult {
    let list = list_id(&id)?;
    let request: LooseOpRequest<'_> = body.parse()?;
    let (op_id, op) = request.parse()?;
    gateway.inner.limits.check_op(principal.user_id)?;
    let timer = gateway.inner.op_seconds.start(list, op_id, &op);
    let (outcome_tx, outcome_rx) = oneshot::channel();
    let reply = Reply::new(move |outcome| {
        let _ = outcome_tx.send(outcome);
    });
    // One deadline over handing the op in (which may wait for its list to load) and its
    // answer. The reply answers exactly once, with `unavailable` if it is dropped unanswered;
    // a reply that does not come in time leaves the outcome unknown.
    let router = &gateway.inner.router;
    let answered = async {
        router.submit(&principal, list, op_id, op, reply).await;
        outcome_rx.await
    };
    let outcome = match tokio::time::timeout(gateway.inner.config.op_timeout, answered).await {
        Ok(answered) => {
            answered.unwrap_or_else(|_| Err(EdgeError::unavailable("the op was dropped; retry")))
        }
        Err(_elapsed) => Err(outcome_unknown()),
    };
    timer.finish(&outcome);
    let seq = outcome?;
    Ok(json(StatusCode::OK, frames::encode(&SeqBody { seq })))
}

/// The answer to a write whose outcome did not arrive in time: it may still be applied.
fn outcome_unknown() -> EdgeError {
    EdgeError::unavailable("no answer in time; the outcome is unknown, retry with the same op_id")
}

async fn ready(State(gateway): State<Gateway>) -> ApiResult {
    if gateway.inner.router.ready().await {
        Ok("ready".into_response())
    } else {
        Err(EdgeError::unavailable("not ready").into())
    }
}

async fn render_metrics(State(gateway): State<Gateway>) -> ApiResult {
    let handle = gateway
        .inner
        .metrics
        .as_ref()
        .ok_or_else(|| EdgeError::new(ErrorCode::NotFound, "metrics are not enabled"))?;
    // The process's CPU, memory, threads and file descriptors, read now (`process_*`).
    gateway.inner.process.collect();
    let content_type = HeaderValue::from_static("text/plain; version=0.0.4");
    Ok(([(header::CONTENT_TYPE, content_type)], handle.render()).into_response())
}

/// Counts each routed request by route template and status.
async fn count_requests(
    matched_path: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let route = matched_path
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(names::HTTP_REQUESTS_TOTAL, names::LABEL_ROUTE => route, names::LABEL_STATUS => status).increment(1);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: an edge error becomes its status, the JSON body, and a Retry-After header when limited.
    #[tokio::test]
    async fn maps_errors_to_responses() {
        let response = ApiError(EdgeError::rate_limited(1500)).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "2");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"code":"rate_limited","message":"rate limit exceeded","retry_after_ms":1500})
        );

        let cases = [
            (ErrorCode::Unauthorized, 401),
            (ErrorCode::Forbidden, 403),
            (ErrorCode::NotFound, 404),
            (ErrorCode::Invalid, 400),
            (ErrorCode::TooLarge, 413),
            (ErrorCode::Conflict, 409),
            (ErrorCode::Busy, 503),
            (ErrorCode::Moved, 503),
            (ErrorCode::Unavailable, 503),
            (ErrorCode::Internal, 500),
        ];
        for (code, status) in cases {
            let response = ApiError(EdgeError::new(code, "m")).into_response();
            assert_eq!(response.status().as_u16(), status, "{code:?}");
            assert!(response.headers().get(header::RETRY_AFTER).is_none());
        }
    }
}
