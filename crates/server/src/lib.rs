//! Switchboard's HTTP API, in Stripe's wire format.
//!
//! Architecture invariants:
//! - The server never calls webhook endpoints: it writes delivery rows and
//!   the dispatcher sends them.
//! - An API write and the events and deliveries it causes commit in one
//!   `Change` (see `switchboard_store`).
//! - [`error::ApiError`] is the only place failures become Stripe error JSON.

pub mod admin;
pub mod api;
pub mod context;
pub mod dashboard;
pub mod error;
pub mod expand;
pub mod listen;
pub mod pages;
pub mod request_log;
pub mod state;
pub mod timers;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::context::RequestId;
use crate::error::ApiError;
pub use crate::state::{AppState, ServerConfig};

/// Liveness (the process answers) and readiness (it can also keep writes):
/// all a node without the API (`--role worker`) serves.
pub fn health_router(state: AppState) -> Router {
    health().with_state(state)
}

fn health() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// `GET /metrics`: Prometheus text format. Counts and latencies only, no
/// tenant data, so it needs no key (as scrapers expect); the queue gauges
/// are read from the store now.
async fn metrics(State(state): State<AppState>) -> Response {
    let m = &state.config.metrics;
    if let Ok(stats) = state.store.delivery_stats().await {
        m.queue_pending.set(stats.pending);
    }
    let now = state.clock.now_ms();
    let oldest = match state.store.next_due_ms().await {
        Ok(Some(due)) if due <= now => (now - due) as f64 / 1000.0,
        _ => 0.0,
    };
    m.queue_oldest_due_seconds.set(oldest);
    m.listen_sessions.set(state.listen.sockets() as i64);
    let mut resp = m.render().into_response();
    resp.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    resp
}

/// One log line per API request: its id, method, path (never the query or
/// body, which may carry personal data; never the key), status, duration,
/// and the connected account and idempotency key it named.
async fn log_request(req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let (account, idempotency_key) = {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        (header("stripe-account"), header("idempotency-key"))
    };
    let response = next.run(req).await;
    let request_id = response
        .headers()
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info!(target: "switchboard::request", request_id, %method, path,
        status = response.status().as_u16(), duration_ms = started.elapsed().as_millis() as u64,
        account, idempotency_key, "api request");
    response
}

/// Counts every routed request by method, route template and status.
async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let method = req.method().as_str().to_owned();
    let response = next.run(req).await;
    state
        .config
        .metrics
        .api_requests
        .get_or_create(&switchboard_store::metrics::RequestLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

pub fn router(state: AppState) -> Router {
    use api::*;
    health()
        .merge(webhook_endpoints::routes())
        .merge(event_destinations::routes())
        .merge(events_v2::routes())
        .merge(accounts_v2::routes())
        .merge(account_persons_v2::routes())
        .merge(customers::routes())
        .merge(accounts::routes())
        .merge(account_links::routes())
        .merge(account_sessions::routes())
        .merge(capabilities::routes())
        .merge(login_links::routes())
        .merge(oauth::routes())
        .merge(external_accounts::routes())
        .merge(persons::routes())
        .merge(balance::routes())
        .merge(balance_transactions::routes())
        .merge(payments::routes())
        .merge(payment_methods::routes())
        .merge(payouts::routes())
        .merge(transfers::routes())
        .merge(refunds::routes())
        .merge(disputes::routes())
        .merge(application_fees::routes())
        .merge(cash_balance::routes())
        .merge(setup_intents::routes())
        .merge(sources::routes())
        .merge(topups::routes())
        .merge(crate::pages::routes())
        .merge(crate::admin::routes())
        .merge(crate::listen::routes())
        .merge(events::routes())
        .merge(switchboard::routes())
        .merge(crate::dashboard::routes())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .fallback(unknown_route)
        .method_not_allowed_fallback(unknown_route)
        .with_state(state.clone())
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::Internal("handler panicked".into()).into_response()
        }))
        .layer(middleware::from_fn_with_state(state.clone(), schema_audit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_log::record,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            read_body_first,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            free_unused_keys,
        ))
        .layer(middleware::from_fn_with_state(state, stripe_headers))
        .layer(middleware::from_fn(log_request))
}

/// Frees the idempotency key of a request that reserved one and ended without
/// committing (see [`context::ReservedKey`]), before its response leaves.
async fn free_unused_keys(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let reserved = context::ReservedKey::default();
    req.extensions_mut().insert(reserved.clone());
    let response = next.run(req).await;
    if let Some((scope, key)) = reserved.take()
        && let Err(e) = state.store.abandon_idempotent(&scope, &key).await
    {
        tracing::warn!(error = %e, "could not free an idempotency key");
    }
    response
}

/// Reads the whole request body (within the body limit) before routing, so
/// a request refused early (an unknown route, an id that is not valid
/// UTF-8) is answered after its body was read: a client still sending would
/// otherwise see the connection reset instead of the error.
async fn read_body_first(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    match read_limited(body, state.config.max_body_bytes).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
        Err(drained) => {
            let mut resp = ApiError::BodyTooLarge(state.config.max_body_bytes).into_response();
            if !drained {
                // The rest of the body stays unread, so the connection
                // cannot be reused: say so, or a client's next request on
                // it would fail.
                resp.headers_mut().insert(
                    axum::http::header::CONNECTION,
                    HeaderValue::from_static("close"),
                );
            }
            resp
        }
    }
}

/// How much of an oversized body is still read (and dropped) so its sender
/// gets the 413 rather than a connection reset mid-upload, the way nginx
/// lingers; past this, or past [`DRAIN_TIME`], the connection is closed.
const DRAIN_BYTES: usize = 16 << 20;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// The body if it fits in `limit`; otherwise whether the rest was drained.
async fn read_limited(body: axum::body::Body, limit: usize) -> Result<bytes::Bytes, bool> {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return Err(false) };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if buf.len() + data.len() > limit {
            let drain = async {
                let mut seen = buf.len() + data.len();
                while let Some(frame) = body.frame().await {
                    let Ok(frame) = frame else { return false };
                    if let Some(data) = frame.data_ref() {
                        seen += data.len();
                        if seen > DRAIN_BYTES {
                            return false;
                        }
                    }
                }
                true
            };
            return Err(tokio::time::timeout(DRAIN_TIME, drain)
                .await
                .unwrap_or(false));
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

/// With `--check-schema`, every `/v1` and `/v2` JSON response is held to Stripe's schema.
async fn schema_audit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let api = path.starts_with("/v1/") || path.starts_with("/v2/");
    if !state.config.check_schema || !api || path.starts_with("/v1/stripecli/") {
        return next.run(req).await;
    }
    let what = format!("{} {path}", req.method());
    let (parts, body) = next.run(req).await.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return ApiError::Internal("response body".into()).into_response();
    };
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        state.audit(&what, &json);
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.health().await {
        Ok(()) => "ready".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {e}\n"),
            )
                .into_response()
        }
    }
}

async fn unknown_route(req: Request) -> ApiError {
    ApiError::UnknownRoute {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
    }
}

/// Every response carries `Request-Id`, errors included, and echoes the
/// headers stripe-node reads back into `lastResponse` (`Stripe-Version`,
/// `Stripe-Account`, `Idempotency-Key`).
async fn stripe_headers(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let id = switchboard_core::ids::generate_request_id(&mut rand::rng());
    req.extensions_mut().insert(RequestId(id.clone()));
    let echo: Vec<(&'static str, HeaderValue)> = ["stripe-account", "idempotency-key"]
        .into_iter()
        .filter_map(|h| Some((h, req.headers().get(h)?.clone())))
        .collect();
    let version = req
        .headers()
        .get("stripe-version")
        .cloned()
        .or_else(|| HeaderValue::from_str(&state.config.api_version).ok());
    let mut resp = next.run(req).await;
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert("request-id", v);
    }
    if let Some(v) = version {
        headers.insert("stripe-version", v);
    }
    for (name, value) in echo {
        headers.insert(name, value);
    }
    resp
}
