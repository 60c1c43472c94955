//! `/switchboard/admin/v1/platforms`: the operator's API for hosting more
//! than one platform on one Switchboard (`switchboard platforms
//! create|list|rotate-keys`). It is enabled by `serve --admin-key` and
//! authenticated by that key alone (a platform's API keys never reach it).
//! New keys are shown once, in the answer that made them; lists show only
//! their hints.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};
use switchboard_core::form::Params;
use switchboard_core::ids;
use switchboard_store::Platform;

use crate::context::{Path, ok_json};
use crate::error::ApiError;
use crate::state::AppState;

/// Refuses a request that does not carry the operator's key.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    use subtle::ConstantTimeEq as _;
    let Some(admin) = state.config.admin_key.as_deref() else {
        return Err(ApiError::Permission(
            "The admin API is off: start the server with --admin-key (or SWITCHBOARD_ADMIN_KEY)."
                .into(),
        ));
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if bool::from(given.as_bytes().ct_eq(admin.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::Unauthenticated(
            "Invalid admin key: the admin API takes the key given to serve --admin-key.".into(),
        ))
    }
}

/// `sk_test_…` with all but the last four characters hidden.
fn hint(key: &str) -> String {
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    // A live key is kept only as a digest (which ends with its last four).
    let prefix = if key.starts_with(ids::SECRET_KEY_LIVE) || ids::is_at_rest(key) {
        ids::SECRET_KEY_LIVE
    } else {
        ids::SECRET_KEY_TEST
    };
    format!("{prefix}_…{tail}")
}

fn render(p: &Platform, keys: Option<(&str, &str)>) -> Value {
    let mut v = json!({
        "id": p.id, "object": "switchboard.platform", "client_id": p.client_id, "created": p.created,
        "test_key_hint": hint(&p.test_key), "live_key_hint": hint(&p.live_key),
    });
    if let Some((test, live)) = keys {
        v["test_key"] = test.into();
        v["live_key"] = live.into();
    }
    v
}

pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let all = state.store.platforms().await?;
    Ok(ok_json(&json!({
        "object": "list", "data": all.iter().map(|p| render(p, None)).collect::<Vec<_>>(),
        "has_more": false, "url": "/switchboard/admin/v1/platforms",
    })))
}

/// A new platform with fresh ids and keys, shown once.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: String,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    Params::parse(&body)?.finish()?;
    let platform = {
        // (The thread's RNG is not Send: it must not live across an await.)
        let mut rng = rand::rng();
        Platform {
            id: ids::generate(ids::Prefix::Account, &mut rng),
            client_id: ids::generate(ids::Prefix::Application, &mut rng),
            test_key: ids::generate_secret(ids::SECRET_KEY_TEST, &mut rng),
            live_key: ids::generate_secret(ids::SECRET_KEY_LIVE, &mut rng),
            created: state.clock.now(),
        }
    };
    state.store.create_platform(platform.clone()).await?;
    Ok(ok_json(&render(
        &platform,
        Some((&platform.test_key, &platform.live_key)),
    )))
}

/// New keys for one mode (`mode=test|live`) or both (the default); the old
/// ones stop working at once on this node, within seconds on the others.
pub async fn rotate_keys(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let mut params = Params::parse(&body)?;
    let mode = params.string("mode")?.unwrap_or_else(|| "both".into());
    params.finish()?;
    if !["test", "live", "both"].contains(&mode.as_str()) {
        return Err(ApiError::invalid(
            "mode",
            format!("Invalid mode: must be test, live or both (got {mode})"),
        ));
    }
    let mut p = state
        .store
        .platform(&id)
        .await?
        .filter(|p| p.id == id)
        .ok_or_else(|| ApiError::not_found("platform", &id))?;
    if mode != "live" {
        p.test_key = ids::generate_secret(ids::SECRET_KEY_TEST, &mut rand::rng());
    }
    if mode != "test" {
        p.live_key = ids::generate_secret(ids::SECRET_KEY_LIVE, &mut rand::rng());
    }
    if !state
        .store
        .set_platform_keys(&p.id, &p.test_key, &p.live_key)
        .await?
    {
        return Err(ApiError::not_found("platform", &id));
    }
    state.forget_keys();
    let shown = (
        if mode != "live" {
            p.test_key.as_str()
        } else {
            ""
        },
        if mode != "test" {
            p.live_key.as_str()
        } else {
            ""
        },
    );
    let mut v = render(&p, Some(shown));
    for k in ["test_key", "live_key"] {
        if v[k] == "" {
            v[k] = Value::Null;
        }
    }
    Ok(ok_json(&v))
}

/// This module's routes.
pub fn routes() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/switchboard/admin/v1/platforms", get(list).post(create))
        .route(
            "/switchboard/admin/v1/platforms/{id}/rotate_keys",
            post(rotate_keys),
        )
}
