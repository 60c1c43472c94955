//! `/v2/core/event_destinations`: API v2's webhook endpoints.
//!
//! A destination is stored as an endpoint of kind `destination` (its own
//! fields in `Destination`), so it shares the delivery engine with v1
//! endpoints: the same queue, retries, attempts, resends and metrics.
//! `events_from` decides whose events it hears (`@self`: the platform's,
//! `@accounts`: its connected accounts', as a Connect endpoint; both: both).
//! Snapshot destinations receive the v1 event exactly as a webhook endpoint
//! does; thin destinations get a `v2.core.event` per v1 event they enable
//! (named `v1.<type>`), without data, its `related_object` fetchable with
//! `Stripe-Context` (see `events_v2`).

use axum::response::Response;
use serde_json::{Value, json};
use switchboard_core::form::Params;
use switchboard_core::{catalog, ids, rfc3339};
use switchboard_store::{
    Destination, EndpointKind, EndpointRecord, EventPayload, PageRequest, SigningSecret, Write,
};

use super::v2;
use crate::context::{Ctx, Path, retry_conflicts};
use crate::error::ApiError;

const NOUN: &str = "event destination";
const PATH: &str = "/v2/core/event_destinations";
/// What `include` may ask for.
const INCLUDE_SECRET: &str = "webhook_endpoint.signing_secret";
const INCLUDE_URL: &str = "webhook_endpoint.url";

/// The public JSON; the URL and the signing secret only when included (the
/// secret only ever in the create response).
fn render(rec: &EndpointRecord, include: &[String], secret: bool) -> Value {
    let d = rec.destination.as_ref();
    let mut from = Vec::new();
    if d.is_some_and(|d| d.from_self) {
        from.push("@self");
    }
    if d.is_some_and(|d| d.from_accounts) {
        from.push("@accounts");
    }
    let shows = |what: &str| include.iter().any(|i| i == what);
    json!({
        "id": rec.id,
        "object": "v2.core.event_destination",
        "amazon_eventbridge": null,
        "azure_event_grid": null,
        "created": rfc3339::format_ms(rec.created * 1000),
        "description": rec.description.clone().unwrap_or_default(),
        "enabled_events": rec.enabled_events,
        "event_payload": match d.map(|d| d.event_payload) {
            Some(EventPayload::Thin) => "thin",
            _ => "snapshot",
        },
        "events_from": from,
        "livemode": rec.livemode,
        "metadata": rec.metadata,
        "name": d.map(|d| d.name.as_str()).unwrap_or_default(),
        "snapshot_api_version": d.and_then(|d| d.snapshot_api_version.clone()),
        "status": if rec.enabled { "enabled" } else { "disabled" },
        "status_details": if rec.enabled { Value::Null } else { json!({"disabled": {"reason": "user"}}) },
        "type": "webhook_endpoint",
        "updated": rfc3339::format_ms(d.map_or(rec.created * 1000, |d| d.updated_ms)),
        "webhook_endpoint": {
            "signing_secret": (secret && shows(INCLUDE_SECRET)).then(|| rec.secrets.first().map(|s| s.secret.clone())).flatten(),
            "url": shows(INCLUDE_URL).then(|| rec.url.clone()),
        },
    })
}

fn include(params: &mut Params, allowed: &[&str]) -> Result<Vec<String>, ApiError> {
    let list = params.string_list("include")?.unwrap_or_default();
    if let Some(bad) = list.iter().find(|i| !allowed.contains(&i.as_str())) {
        return Err(ApiError::invalid(
            "include",
            format!(
                "Invalid include: '{bad}'; expected one of {}",
                allowed.join(", ")
            ),
        ));
    }
    Ok(list)
}

/// `@self` / `@accounts` (and the `self` / `other_accounts` spellings of the
/// API reference): (from self, from accounts).
fn events_from(list: Option<Vec<String>>) -> Result<(bool, bool), ApiError> {
    let Some(list) = list else {
        return Ok((true, false));
    };
    let (mut own, mut accounts) = (false, false);
    for f in &list {
        match f.as_str() {
            "@self" | "self" => own = true,
            "@accounts" | "other_accounts" => accounts = true,
            other => {
                return Err(ApiError::invalid(
                    "events_from",
                    format!("Invalid events_from: '{other}'; expected @self or @accounts"),
                ));
            }
        }
    }
    if !(own || accounts) {
        return Err(ApiError::invalid(
            "events_from",
            "events_from must name @self, @accounts or both",
        ));
    }
    Ok((own, accounts))
}

/// Snapshot destinations take v1 event types (or `*`); thin ones take v2
/// event types and v1 events by their thin names, `v1.<type>`; a type
/// Switchboard never emits is refused rather than never delivered.
fn enabled_events(
    params: &mut Params,
    required: bool,
    payload: EventPayload,
) -> Result<Option<Vec<String>>, ApiError> {
    let events = params.string_list("enabled_events")?;
    match &events {
        None if required => return Err(ApiError::missing("enabled_events")),
        Some(list) if list.is_empty() => {
            return Err(ApiError::invalid(
                "enabled_events",
                "enabled_events must name at least one event type or '*'.",
            ));
        }
        Some(list) => {
            let fits = |e: &String| match payload {
                EventPayload::Snapshot => catalog::is_enableable(e),
                EventPayload::Thin => catalog::is_thin_event_type(e),
            };
            if let Some(bad) = list.iter().find(|e| !fits(e)) {
                let kind = match payload {
                    EventPayload::Snapshot => "a snapshot destination (a v1 event type, or '*')",
                    EventPayload::Thin => {
                        "a thin destination (a v2 event type, or a v1 one as v1.<type>)"
                    }
                };
                return Err(ApiError::invalid(
                    "enabled_events",
                    format!(
                        "Invalid enabled_events: '{bad}' is not an event type {kind} can receive."
                    ),
                ));
            }
        }
        None => {}
    }
    Ok(events)
}

pub async fn create(mut ctx: Ctx) -> Result<Response, ApiError> {
    let name = ctx.params.required_string("name")?;
    let kind = ctx.params.required_string("type")?;
    if kind != "webhook_endpoint" {
        return Err(ApiError::invalid(
            "type",
            format!(
                "Invalid type: '{kind}'; Switchboard delivers to webhook_endpoint destinations only"
            ),
        ));
    }
    let payload = match ctx.params.required_string("event_payload")?.as_str() {
        "snapshot" => EventPayload::Snapshot,
        "thin" => EventPayload::Thin,
        other => {
            return Err(ApiError::invalid(
                "event_payload",
                format!("Invalid event_payload: '{other}'; expected snapshot or thin"),
            ));
        }
    };
    let events = enabled_events(&mut ctx.params, true, payload)?.unwrap_or_default();
    let (from_self, from_accounts) = events_from(ctx.params.string_list("events_from")?)?;
    let snapshot_api_version = ctx
        .params
        .string("snapshot_api_version")?
        .filter(|v| !v.is_empty());
    let snapshot_api_version = match (payload, snapshot_api_version) {
        (EventPayload::Thin, Some(_)) => {
            return Err(ApiError::invalid(
                "snapshot_api_version",
                "snapshot_api_version is for snapshot destinations only.",
            ));
        }
        (EventPayload::Thin, None) => None,
        (EventPayload::Snapshot, v) => {
            Some(v.unwrap_or_else(|| switchboard_core::DEFAULT_API_VERSION.to_owned()))
        }
    };
    let url = match ctx.params.nested("webhook_endpoint")? {
        Some(Some(mut w)) => {
            let url = w.required_string("url")?;
            w.finish()?;
            url
        }
        _ => return Err(ApiError::missing("webhook_endpoint[url]")),
    };
    super::webhook_endpoints::validate_url(&ctx, &url)
        .await
        .map_err(|e| e.renamed("url", "webhook_endpoint[url]"))?;
    let description = ctx.params.clearable_string("description")?.flatten();
    let mut metadata = serde_json::Map::new();
    if let Some(m) = ctx.params.metadata()? {
        m.apply(&mut metadata);
    }
    let include = include(&mut ctx.params, &[INCLUDE_SECRET, INCLUDE_URL])?;
    ctx.finish_params()?;
    let (id, secret) = {
        let mut rng = rand::rng();
        (
            ids::generate(ids::Prefix::EventDestination, &mut rng),
            ids::generate_secret(ids::WEBHOOK_SECRET, &mut rng),
        )
    };
    let now_ms = ctx.now_ms();
    let rec = EndpointRecord {
        id,
        platform: ctx.platform.id.clone(),
        livemode: ctx.livemode(),
        version: 1,
        created: now_ms.div_euclid(1000),
        url,
        connect: from_accounts && !from_self,
        enabled: true,
        enabled_events: events,
        api_version: snapshot_api_version.clone(),
        description,
        metadata,
        secrets: vec![SigningSecret {
            secret,
            expires_at: None,
        }],
        deleted: false,
        failing_since: None,
        listener: false,
        chaos: None,
        destination: Some(Destination {
            name,
            event_payload: payload,
            from_self,
            from_accounts,
            snapshot_api_version,
            updated_ms: now_ms,
        }),
    };
    let body = render(&rec, &include, true);
    let mut change = ctx.change();
    change.writes.push(Write::Endpoint(Box::new(rec), None));
    ctx.commit(change, &body).await
}

/// A destination of the caller.
async fn load(ctx: &Ctx, id: &str) -> Result<EndpointRecord, ApiError> {
    match ctx
        .state
        .store
        .endpoint(&ctx.platform.id, ctx.livemode(), id)
        .await?
    {
        Some(e) if e.destination.is_some() && !e.deleted => Ok(e),
        _ => Err(ApiError::not_found(NOUN, id)),
    }
}

pub async fn retrieve(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let include = include(&mut ctx.params, &[INCLUDE_URL])?;
    ctx.finish_params()?;
    let rec = load(&ctx, &id).await?;
    ctx.respond(render(&rec, &include, false)).await
}

/// Applies `edit` to the destination and commits it, answering with `include`.
async fn change(
    ctx: &Ctx,
    id: &str,
    include: &[String],
    edit: impl Fn(&mut EndpointRecord),
) -> Result<Response, ApiError> {
    retry_conflicts!({
        let mut rec = load(ctx, id).await?;
        let expected = rec.version;
        edit(&mut rec);
        rec.version += 1;
        if let Some(d) = &mut rec.destination {
            d.updated_ms = ctx.now_ms();
        }
        let body = render(&rec, include, false);
        let mut change = ctx.change();
        change
            .writes
            .push(Write::Endpoint(Box::new(rec), Some(expected)));
        ctx.commit(change, &body).await
    })
}

pub async fn update(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let name = ctx.params.string("name")?;
    if name.as_deref() == Some("") {
        return Err(ApiError::invalid("name", "name cannot be empty"));
    }
    let description = ctx.params.clearable_string("description")?;
    let payload = load(&ctx, &id)
        .await?
        .destination
        .map_or(EventPayload::Snapshot, |d| d.event_payload);
    let events = enabled_events(&mut ctx.params, false, payload)?;
    let metadata = ctx.params.metadata()?;
    let url = match ctx.params.nested("webhook_endpoint")? {
        Some(Some(mut w)) => {
            let url = w.required_string("url")?;
            w.finish()?;
            Some(url)
        }
        Some(None) => return Err(ApiError::missing("webhook_endpoint[url]")),
        None => None,
    };
    if let Some(u) = &url {
        super::webhook_endpoints::validate_url(&ctx, u)
            .await
            .map_err(|e| e.renamed("url", "webhook_endpoint[url]"))?;
    }
    for fixed in [
        "type",
        "event_payload",
        "events_from",
        "snapshot_api_version",
    ] {
        if ctx.params.contains(fixed) {
            return Err(ApiError::invalid(
                fixed,
                format!("{fixed} cannot be changed after an event destination is created."),
            ));
        }
    }
    let include = include(&mut ctx.params, &[INCLUDE_URL])?;
    ctx.finish_params()?;
    change(&ctx, &id, &include, |rec| {
        if let (Some(n), Some(d)) = (&name, &mut rec.destination) {
            d.name = n.clone();
        }
        if let Some(d) = &description {
            rec.description = d.clone();
        }
        if let Some(e) = &events {
            rec.enabled_events = e.clone();
        }
        if let Some(m) = &metadata {
            m.apply(&mut rec.metadata);
        }
        if let Some(u) = &url {
            rec.url = u.clone();
        }
    })
    .await
}

pub async fn enable(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    change(&ctx, &id, &[], |rec| rec.enabled = true).await
}

pub async fn disable(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    change(&ctx, &id, &[], |rec| rec.enabled = false).await
}

/// Sends a `v2.core.event_destination.ping` to this destination alone (the
/// event routes nowhere; the change resends it here) and answers with the
/// destination. The ping is an event like any other: listed in
/// `/v2/core/events`, its attempts recorded, resendable.
pub async fn ping(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    let rec = load(&ctx, &id).await?;
    if !rec.enabled {
        return Err(ApiError::invalid(
            "id",
            format!("Event destination {id} is disabled; enable it before pinging it."),
        ));
    }
    let event = ctx.event_on(
        None,
        catalog::PING_EVENT_TYPE,
        json!({"id": rec.id, "object": "v2.core.event_destination"}),
        None,
    );
    let mut change = ctx.change();
    change.writes.push(Write::Resend {
        event_id: event.id.clone(),
        endpoint_id: rec.id.clone(),
    });
    change.events.push(event);
    ctx.commit(change, &render(&rec, &[], false)).await
}

pub async fn delete(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    retry_conflicts!({
        let mut rec = load(&ctx, &id).await?;
        let expected = rec.version;
        rec.deleted = true;
        rec.version += 1;
        // API v2 answers a delete with the id and object only.
        let body = json!({"id": rec.id, "object": "v2.core.event_destination"});
        let mut change = ctx.change();
        change
            .writes
            .push(Write::Endpoint(Box::new(rec), Some(expected)));
        ctx.commit(change, &body).await
    })
}

pub async fn list(mut ctx: Ctx) -> Result<Response, ApiError> {
    let include = include(&mut ctx.params, &[INCLUDE_URL])?;
    let page: PageRequest = v2::page_request(&mut ctx.params)?;
    ctx.finish_params()?;
    let found = ctx
        .state
        .store
        .endpoints(
            &ctx.platform.id,
            ctx.livemode(),
            EndpointKind::Destination,
            &page,
        )
        .await
        .map_err(|e| v2::cursor_error(e.into()))?;
    let mut extra = switchboard_core::form::Map::new();
    if !include.is_empty() {
        extra.insert("include".into(), v2::list(&include));
    }
    let body = v2::list_json(
        PATH,
        &page,
        &extra,
        found,
        |r| render(&r, &include, false),
        |r| r.id.clone(),
    );
    ctx.respond(body).await
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route(PATH, get(list).post(create))
        .route(
            "/v2/core/event_destinations/{id}",
            get(retrieve).post(update).delete(delete),
        )
        .route("/v2/core/event_destinations/{id}/enable", post(enable))
        .route("/v2/core/event_destinations/{id}/disable", post(disable))
        .route("/v2/core/event_destinations/{id}/ping", post(ping))
}
