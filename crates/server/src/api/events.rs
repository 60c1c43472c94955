//! `/v1/events`: retrieve, list with Stripe's filters, and resend.

use axum::response::Response;
use serde_json::Value;
use switchboard_core::catalog;
use switchboard_core::form::Value as FormValue;
use switchboard_store::{EventFilter, EventRecord, Write};

use super::{cursor_param, list_json, page_request};
use crate::context::{Ctx, Path};
use crate::error::ApiError;

pub(super) const MAX_TYPES: usize = 20;

/// The stored event with its *current* `pending_webhooks` (deliveries carry
/// the value at creation; the API shows how many are still outstanding).
pub fn render(rec: &EventRecord) -> Value {
    let mut v: Value = serde_json::from_slice(&rec.payload).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("pending_webhooks".into(), rec.pending_webhooks.into());
    }
    v
}

/// A v1 event (a v2 event has no v1 form: API v1 does not know it).
pub async fn load(ctx: &Ctx, id: &str) -> Result<EventRecord, ApiError> {
    Some(load_any(ctx, id).await?)
        .filter(|e| !e.event_type.starts_with("v2."))
        .ok_or_else(|| ApiError::not_found("notification", id))
}

/// An event of either API version (Switchboard's own routes show both).
pub async fn load_any(ctx: &Ctx, id: &str) -> Result<EventRecord, ApiError> {
    ctx.state
        .store
        .event(&ctx.scope, id)
        .await?
        .ok_or_else(|| ApiError::not_found("notification", id))
}

pub async fn retrieve(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    ctx.respond(render(&load(&ctx, &id).await?)).await
}

/// One bound of `created` (`created[gt]`…), or the error naming an unknown one.
pub(super) fn set_created(f: &mut EventFilter, op: &str, t: i64) -> Result<(), ApiError> {
    let bound = match op {
        "gt" => &mut f.created_gt,
        "gte" => &mut f.created_gte,
        "lt" => &mut f.created_lt,
        "lte" => &mut f.created_lte,
        other => {
            return Err(ApiError::Param(
                switchboard_core::form::ParamError::unknown(format!("created[{other}]")),
            ));
        }
    };
    *bound = Some(t);
    Ok(())
}

fn created_filter(ctx: &mut Ctx, f: &mut EventFilter) -> Result<(), ApiError> {
    let bad = |v: &str| ApiError::invalid("created", format!("Invalid integer: {v}"));
    match ctx.params.take("created") {
        None => {}
        Some(FormValue::Str(s)) => {
            let t: i64 = s.parse().map_err(|_| bad(&s))?;
            f.created_gte = Some(t);
            f.created_lte = Some(t);
        }
        Some(FormValue::Map(m)) => {
            for (op, v) in m {
                let FormValue::Str(s) = v else {
                    return Err(ApiError::invalid(
                        &format!("created[{op}]"),
                        "Invalid integer",
                    ));
                };
                let t: i64 = s.parse().map_err(|_| {
                    ApiError::invalid(&format!("created[{op}]"), format!("Invalid integer: {s}"))
                })?;
                set_created(f, &op, t)?;
            }
        }
        Some(FormValue::List(_)) => {
            return Err(ApiError::invalid(
                "created",
                "Invalid created: expected an integer or a range",
            ));
        }
    }
    Ok(())
}

pub async fn list(mut ctx: Ctx) -> Result<Response, ApiError> {
    let page = page_request(&mut ctx)?;
    let mut filter = EventFilter {
        event_type: ctx.params.string("type")?.filter(|s| !s.is_empty()),
        v2: Some(false),
        ..Default::default()
    };
    if let Some(t) = &filter.event_type {
        let known = match t.strip_suffix('*') {
            Some(prefix) => catalog::event_types().any(|e| e.starts_with(prefix)),
            None => catalog::is_event_type(t),
        };
        if !known {
            return Err(ApiError::invalid(
                "type",
                format!("Invalid type: '{t}' is not a known event type or pattern."),
            ));
        }
    }
    filter.types = ctx.params.string_list("types")?.unwrap_or_default();
    if !filter.types.is_empty() && filter.event_type.is_some() {
        return Err(ApiError::invalid(
            "types",
            "You may only specify one of these parameters: type, types.",
        ));
    }
    if filter.types.len() > MAX_TYPES {
        return Err(ApiError::invalid(
            "types",
            format!("types may list at most {MAX_TYPES} event types."),
        ));
    }
    created_filter(&mut ctx, &mut filter)?;
    filter.delivery_success = ctx.params.bool("delivery_success")?;
    ctx.finish_params()?;
    let found = ctx
        .state
        .store
        .events(&ctx.scope, &filter, &page)
        .await
        .map_err(|e| cursor_param(&page, e.into()))?;
    ctx.respond(list_json("/v1/events", found, |e| render(&e)))
        .await
}

/// `POST /v1/events/{id}/retry`: one more attempt to one endpoint
/// (what `stripe events resend --webhook-endpoint` calls), or with
/// `for_stripecli=true` to every connected `stripe listen` session.
pub async fn retry(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let endpoint = ctx
        .params
        .string("webhook_endpoint")?
        .filter(|s| !s.is_empty());
    let for_cli = ctx.params.bool("for_stripecli")?.unwrap_or(false);
    // The CLI sends `account` to fetch a connected account's event.
    if let Some(acct) = ctx.params.string("account")?.filter(|s| !s.is_empty())
        && ctx.scope.account.as_deref() != Some(acct.as_str())
    {
        ctx.scope = crate::context::connected_scope_for(&ctx, acct).await?;
    }
    ctx.finish_params()?;
    let event = load(&ctx, &id).await?;
    let targets = match endpoint {
        Some(endpoint_id) => {
            let target = super::webhook_endpoints::load(&ctx, &endpoint_id)
                .await
                .map_err(|_| ApiError::NotFound {
                    kind: "webhook endpoint",
                    id: endpoint_id.clone(),
                    param: "webhook_endpoint",
                })?;
            vec![target.id]
        }
        None if for_cli => {
            let listeners = ctx
                .state
                .store
                .listeners(&ctx.platform.id, ctx.livemode())
                .await?;
            // Snapshot sessions only: a v1 event is no thin listener's.
            let live: Vec<String> = listeners
                .into_iter()
                .filter(|l| l.enabled && l.destination.is_none())
                .map(|l| l.id)
                .collect();
            if live.is_empty() {
                return Err(ApiError::invalid(
                    "for_stripecli",
                    "No `stripe listen` session is connected.",
                ));
            }
            live
        }
        None => {
            return Err(ApiError::invalid(
                "webhook_endpoint",
                "Provide webhook_endpoint (the endpoint to resend this event to) or for_stripecli=true.",
            ));
        }
    };
    let mut change = ctx.change();
    for endpoint_id in targets {
        change.writes.push(Write::Resend {
            event_id: event.id.clone(),
            endpoint_id,
        });
    }
    ctx.commit(change, &render(&event)).await
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/v1/events", get(list))
        .route("/v1/events/{id}", get(retrieve))
        .route("/v1/events/{id}/retry", post(retry))
}
