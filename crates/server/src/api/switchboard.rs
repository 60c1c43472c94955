//! Switchboard's own routes, under `/switchboard/v1/`, apart from Stripe's:
//! the delivery attempt log and secret rolling.

use axum::response::Response;
use serde_json::{Value, json};
use switchboard_core::ids;
use switchboard_store::{AttemptFilter, AttemptRecord, SigningSecret, Write};

use super::{cursor_param, list_json, page_request};
use crate::context::{Ctx, Path, ok_json, retry_conflicts};
use crate::error::ApiError;

/// Default time the old secret keeps signing after a roll.
const DEFAULT_ROLL_OVERLAP_SECS: i64 = 24 * 3600;
const MAX_ROLL_OVERLAP_SECS: i64 = 7 * 24 * 3600;

pub fn render_attempt(a: &AttemptRecord) -> Value {
    json!({
        "id": format!("att_{}", a.id),
        "object": "webhook_attempt",
        "attempt": a.attempt,
        "chaos": a.chaos,
        "created": a.started_at_ms.div_euclid(1000),
        "duration_ms": a.duration_ms,
        "error": a.error.map(|e| e.as_str()),
        "event": a.event_id,
        "next_action": a.next_action.as_str(),
        "next_attempt_at": a.next_at_ms.map(|t| t.div_euclid(1000)),
        "response_body": a.response_body,
        "started_at_ms": a.started_at_ms,
        "status_code": a.status_code,
        "succeeded": a.succeeded,
        "webhook_endpoint": a.endpoint_id,
    })
}

async fn list(mut ctx: Ctx, filter: AttemptFilter, url: String) -> Result<Response, ApiError> {
    let page = page_request(&mut ctx)?;
    ctx.finish_params()?;
    let found = ctx
        .state
        .store
        .attempts(&ctx.platform.id, ctx.livemode(), &filter, &page)
        .await
        .map_err(|e| cursor_param(&page, e.into()))?;
    Ok(ok_json(&list_json(&url, found, |a| render_attempt(&a))))
}

/// `GET /switchboard/v1/events/{id}/attempts`
pub async fn event_attempts(Path(id): Path<String>, ctx: Ctx) -> Result<Response, ApiError> {
    let event = super::events::load_any(&ctx, &id).await?;
    let url = format!("/switchboard/v1/events/{}/attempts", event.id);
    list(ctx, AttemptFilter::Event(event.id), url).await
}

/// `GET /switchboard/v1/webhook_endpoints/{id}/attempts`
pub async fn endpoint_attempts(Path(id): Path<String>, ctx: Ctx) -> Result<Response, ApiError> {
    let endpoint = super::webhook_endpoints::load_any(&ctx, &id).await?;
    let url = format!("/switchboard/v1/webhook_endpoints/{}/attempts", endpoint.id);
    list(ctx, AttemptFilter::Endpoint(endpoint.id), url).await
}

/// `POST /switchboard/v1/webhook_endpoints/{id}/roll_secret` with optional
/// `expires_in` (seconds the current secret keeps signing; default 24 h, 0 = now).
pub async fn roll_secret(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let overlap = ctx
        .params
        .int("expires_in")?
        .unwrap_or(DEFAULT_ROLL_OVERLAP_SECS);
    if !(0..=MAX_ROLL_OVERLAP_SECS).contains(&overlap) {
        return Err(ApiError::invalid(
            "expires_in",
            format!("expires_in must be between 0 and {MAX_ROLL_OVERLAP_SECS} seconds."),
        ));
    }
    ctx.finish_params()?;
    retry_conflicts!({
        let mut rec = super::webhook_endpoints::load(&ctx, &id).await?;
        let expected = rec.version;
        let now = ctx.real_now();
        let expires_at = now + overlap;
        // Older secrets keep their own expiry; the current one gets the new one.
        rec.secrets.retain(|s| s.expires_at.is_none_or(|e| e > now));
        for s in rec.secrets.iter_mut() {
            s.expires_at = Some(s.expires_at.map_or(expires_at, |e| e.min(expires_at)));
        }
        rec.secrets.retain(|s| s.expires_at.is_none_or(|e| e > now));
        let secret = ids::generate_secret(ids::WEBHOOK_SECRET, &mut rand::rng());
        rec.secrets.insert(
            0,
            SigningSecret {
                secret: secret.clone(),
                expires_at: None,
            },
        );
        rec.version += 1;
        let mut body = super::webhook_endpoints::render(&rec, &ctx.platform.client_id);
        body["secret"] = secret.into();
        body["previous_secret_expires_at"] = if overlap > 0 {
            expires_at.into()
        } else {
            Value::Null
        };
        let mut change = ctx.change();
        change
            .writes
            .push(Write::Endpoint(Box::new(rec), Some(expected)));
        ctx.commit(change, &body).await
    })
}

/// What Switchboard keeps about an endpoint beyond Stripe's object: its own
/// chaos mode (`null`: the server's `--chaos`).
fn endpoint_extras(rec: &switchboard_store::EndpointRecord) -> Value {
    json!({"id": rec.id, "object": "switchboard.webhook_endpoint", "chaos": rec.chaos})
}

/// `GET /switchboard/v1/webhook_endpoints/{id}`.
pub async fn endpoint_settings(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    let rec = super::webhook_endpoints::load(&ctx, &id).await?;
    Ok(ok_json(&endpoint_extras(&rec)))
}

/// `POST /switchboard/v1/webhook_endpoints/{id}` with `chaos`: chaos mode
/// for this endpoint alone (`duplicate=0.1,reorder=0.2,delay=5s,fail=0.05,seed=7`,
/// as `--chaos`), so one receiver can rehearse duplicates and reordering
/// while the others get a calm stream; an empty `chaos` gives it back the
/// server's.
pub async fn update_endpoint_settings(
    Path(id): Path<String>,
    mut ctx: Ctx,
) -> Result<Response, ApiError> {
    let chaos = ctx.params.clearable_string("chaos")?;
    ctx.finish_params()?;
    let Some(chaos) = chaos else {
        return Err(ApiError::Param(
            switchboard_core::form::ParamError::missing("chaos"),
        ));
    };
    if let Some(spec) = &chaos {
        switchboard_core::chaos::Chaos::parse(spec)
            .map_err(|why| ApiError::invalid("chaos", why))?;
    }
    retry_conflicts!({
        let mut rec = super::webhook_endpoints::load(&ctx, &id).await?;
        let expected = rec.version;
        rec.chaos = chaos.clone();
        rec.version += 1;
        let body = endpoint_extras(&rec);
        let mut change = ctx.change();
        change
            .writes
            .push(Write::Endpoint(Box::new(rec), Some(expected)));
        ctx.commit(change, &body).await
    })
}

/// `GET /switchboard/v1/webhook_endpoints/{id}/secret`: the current signing
/// secret (Stripe's Dashboard "Reveal"; its API shows it only at creation).
pub async fn reveal_secret(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    let rec = super::webhook_endpoints::load(&ctx, &id).await?;
    let now = ctx.real_now();
    let secret = rec
        .secrets
        .iter()
        .find(|s| s.expires_at.is_none_or(|e| e > now))
        .map(|s| s.secret.clone());
    Ok(ok_json(&json!({
        "object": "webhook_endpoint_secret",
        "webhook_endpoint": rec.id,
        "secret": secret,
    })))
}

/// `GET /switchboard/v1/request_logs`: the newest API requests this node
/// served for the platform and mode (`method`, `status` and `path` narrow
/// them; `limit` up to 100).
pub async fn request_logs(mut ctx: Ctx) -> Result<Response, ApiError> {
    let limit = ctx.params.int("limit")?.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            "limit must be between 1 and 100.",
        ));
    }
    let one = |v: Option<String>| v.into_iter().collect::<Vec<_>>();
    let filters = crate::request_log::Filters {
        filter_http_method: one(ctx.params.string("method")?),
        filter_status_code: one(ctx.params.string("status")?),
        filter_request_path: one(ctx.params.string("path")?),
        ..Default::default()
    };
    ctx.finish_params()?;
    let entries =
        ctx.state
            .request_log
            .list(&ctx.platform.id, ctx.livemode(), &filters, limit as usize);
    Ok(ok_json(&json!({
        "object": "list",
        "data": entries.iter().map(|e| e.to_json()).collect::<Vec<_>>(),
        "has_more": false,
        "url": "/switchboard/v1/request_logs",
    })))
}

/// `GET /switchboard/v1/listeners`: the `stripe listen` devices of this
/// platform and mode, and whether one of their sessions is connected.
pub async fn listeners(mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    let devices = ctx
        .state
        .store
        .listeners(&ctx.platform.id, ctx.livemode())
        .await?;
    let data: Vec<Value> = devices
        .iter()
        .map(|d| {
            json!({
                "id": d.id,
                "object": "stripecli_device",
                "connected": d.enabled,
                "created": d.created,
                "device_name": d.description,
                "livemode": d.livemode,
                // `stripe listen --all-thin` sessions get a device of their own.
                "event_payload": if d.destination.is_some() { "thin" } else { "snapshot" },
            })
        })
        .collect();
    Ok(ok_json(&json!({
        "object": "list",
        "data": data,
        "has_more": false,
        "url": "/switchboard/v1/listeners",
    })))
}

/// `GET /switchboard/v1/schema_violations`: what `--check-schema` found
/// (404 without it).
pub async fn schema_violations(ctx: Ctx) -> Result<Response, ApiError> {
    if !ctx.state.config.check_schema {
        return Err(ApiError::UnknownRoute {
            method: "GET".into(),
            path: ctx.path.clone(),
        });
    }
    Ok(ok_json(&serde_json::json!({
        "object": "list",
        "data": ctx.state.schema_violations(),
        "has_more": false,
        "url": "/switchboard/v1/schema_violations",
    })))
}

/// The longest single advance of a test clock (ten years).
const MAX_ADVANCE_SECS: i64 = 10 * 365 * 86_400;

fn clock_json(ctx: &Ctx, fired: Option<usize>) -> Value {
    let mut v = json!({
        "object": "switchboard.test_clock", "livemode": ctx.livemode(), "now": ctx.now(),
        "offset_seconds": ctx.offset_ms.div_euclid(1000),
    });
    if let Some(n) = fired {
        v["timers_fired"] = n.into();
    }
    v
}

/// `GET /switchboard/v1/clock`: the time the platform's API runs on in
/// this mode (its test clock in test mode, real time in live mode).
pub async fn clock(mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    Ok(ok_json(&clock_json(&ctx, None)))
}

/// `POST /switchboard/v1/clock/advance` with `seconds`: moves the
/// platform's test-mode clock forward, so that what would happen in that
/// time happens now (funds become available, payouts arrive, authorizations
/// expire, webhook retries come due), before this answers. Live mode runs
/// on real time and refuses.
pub async fn advance_clock(mut ctx: Ctx) -> Result<Response, ApiError> {
    let seconds = ctx
        .params
        .int("seconds")?
        .ok_or_else(|| ApiError::Param(switchboard_core::form::ParamError::missing("seconds")))?;
    ctx.finish_params()?;
    if !(1..=MAX_ADVANCE_SECS).contains(&seconds) {
        return Err(ApiError::invalid(
            "seconds",
            format!("seconds must be between 1 and {MAX_ADVANCE_SECS}, got {seconds}"),
        ));
    }
    if ctx.livemode() {
        return Err(ApiError::invalid(
            "seconds",
            "Only the test-mode clock can be advanced: live mode runs on real time. Use your test key.",
        ));
    }
    let (offset, fired) = crate::timers::advance(&ctx.state, &ctx.platform.id, seconds).await?;
    ctx.offset_ms = offset * 1000;
    Ok(ok_json(&clock_json(&ctx, Some(fired))))
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/switchboard/v1/events/{id}/attempts", get(event_attempts))
        .route(
            "/switchboard/v1/webhook_endpoints/{id}/attempts",
            get(endpoint_attempts),
        )
        .route(
            "/switchboard/v1/webhook_endpoints/{id}/roll_secret",
            post(roll_secret),
        )
        .route(
            "/switchboard/v1/webhook_endpoints/{id}/secret",
            get(reveal_secret),
        )
        .route(
            "/switchboard/v1/webhook_endpoints/{id}",
            get(endpoint_settings).post(update_endpoint_settings),
        )
        .route("/switchboard/v1/listeners", get(listeners))
        .route("/switchboard/v1/request_logs", get(request_logs))
        .route("/switchboard/v1/schema_violations", get(schema_violations))
        .route("/switchboard/v1/clock", get(clock))
        .route("/switchboard/v1/clock/advance", post(advance_clock))
}
