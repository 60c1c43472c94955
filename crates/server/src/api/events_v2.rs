//! `/v2/core/events`: the v2 events (Accounts v2) and every v1 event as
//! API v2 shows it (`v1.<type>`, its
//! `related_object`, `changes` for updates), what a thin notification's
//! `fetch_event()` reads. A connected account's events need its
//! `Stripe-Context` (or `Stripe-Account`), as on Stripe.

use axum::response::Response;
use serde_json::Value;
use switchboard_core::{catalog, form, rfc3339};
use switchboard_store::{EventFilter, EventRecord};

use super::v2;
use crate::context::{Ctx, Path};
use crate::error::ApiError;

const PATH: &str = "/v2/core/events";
use super::events::MAX_TYPES;

/// The full v2 event: the thin notification's fields, plus `changes`
/// (before and after of the fields an update changed) and the snapshot
/// event it stands for.
fn render(rec: &EventRecord) -> Value {
    let v1: Value = serde_json::from_slice(&rec.payload).unwrap_or_default();
    // A v2 event is stored as this API shows it.
    if rec.event_type.starts_with("v2.") {
        return v1;
    }
    let mut event = switchboard_core::event::thin_of(&v1);
    let changes = v1["data"]["previous_attributes"]
        .as_object()
        .map(|before| switchboard_core::event::changes(before, &v1["data"]["object"]));
    if let Some(m) = event.as_object_mut() {
        m.insert("changes".into(), changes.unwrap_or(Value::Null));
        m.insert("snapshot_event".into(), rec.id.clone().into());
    }
    event
}

pub async fn retrieve(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    match ctx.state.store.event(&ctx.scope, &id).await? {
        Some(rec) => ctx.respond(render(&rec)).await,
        None => Err(ApiError::not_found("event", id)),
    }
}

/// A `created` bound: RFC 3339 (stripe-python) or unix seconds
/// (stripe-node's types), as unix seconds.
fn created_bound(op: &str, v: &str) -> Result<i64, ApiError> {
    match v.parse::<i64>() {
        Ok(s) => Ok(s),
        Err(_) => rfc3339::parse_ms(v)
            .map(|ms| ms.div_euclid(1000))
            .ok_or_else(|| {
                ApiError::invalid(
                    &format!("created[{op}]"),
                    format!("Invalid timestamp: {v} (RFC 3339, e.g. 2026-01-01T00:00:00.000Z)"),
                )
            }),
    }
}

pub async fn list(mut ctx: Ctx) -> Result<Response, ApiError> {
    let page = v2::page_request(&mut ctx.params)?;
    let object_id = ctx.params.string("object_id")?.filter(|s| !s.is_empty());
    let types = ctx.params.string_list("types")?.unwrap_or_default();
    if types.len() > MAX_TYPES {
        return Err(ApiError::invalid(
            "types",
            format!("types may name at most {MAX_TYPES} event types"),
        ));
    }
    // Stored under their own type: v1 events without the `v1.` prefix.
    let mut stored_types = Vec::with_capacity(types.len());
    for t in &types {
        if !catalog::is_thin_event_type(t) && t != catalog::PING_EVENT_TYPE {
            return Err(ApiError::invalid(
                "types",
                format!("Invalid types: '{t}' is not an event type Switchboard emits"),
            ));
        }
        stored_types.push(t.strip_prefix("v1.").unwrap_or(t).to_owned());
    }
    let mut filter = EventFilter {
        types: stored_types,
        object_id: object_id.clone(),
        ..Default::default()
    };
    let mut extra = form::Map::new();
    if !types.is_empty() {
        extra.insert("types".into(), v2::list(&types));
    }
    if let Some(o) = &object_id {
        extra.insert("object_id".into(), form::Value::Str(o.clone()));
    }
    if let Some(mut created) = ctx.params.nested("created")?.flatten() {
        let mut echoed = form::Map::new();
        for op in ["gt", "gte", "lt", "lte"] {
            let Some(text) = created.string(op)? else {
                continue;
            };
            super::events::set_created(&mut filter, op, created_bound(op, &text)?)?;
            echoed.insert(op.into(), form::Value::Str(text));
        }
        created.finish()?;
        extra.insert("created".into(), form::Value::Map(echoed));
    }
    ctx.finish_params()?;
    let found = ctx
        .state
        .store
        .events(&ctx.scope, &filter, &page)
        .await
        .map_err(|e| v2::cursor_error(e.into()))?;
    let body = v2::list_json(PATH, &page, &extra, found, |r| render(&r), |r| r.id.clone());
    ctx.respond(body).await
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route(PATH, get(list))
        .route("/v2/core/events/{id}", get(retrieve))
}
