//! `/v1/webhook_endpoints`.

use axum::response::Response;
use serde_json::{Value, json};
use switchboard_core::url_policy::{self, UrlProblem};
use switchboard_core::{catalog, ids};
use switchboard_store::{EndpointRecord, SigningSecret, Write};

use super::{cursor_param, list_json, page_request};
use crate::context::{Ctx, Path, retry_conflicts};
use crate::error::ApiError;

const KIND: &str = "webhook endpoint";

/// The public JSON of an endpoint; `secret` is added only by create.
pub fn render(rec: &EndpointRecord, client_id: &str) -> Value {
    json!({
        "id": rec.id,
        "object": "webhook_endpoint",
        "api_version": rec.api_version,
        "application": if rec.connect { Some(client_id) } else { None },
        "created": rec.created,
        "description": rec.description,
        "enabled_events": rec.enabled_events,
        "livemode": rec.livemode,
        "metadata": rec.metadata,
        "status": if rec.enabled { "enabled" } else { "disabled" },
        "url": rec.url,
    })
}

/// The URL policy (`core::url_policy`): well formed; in live mode HTTPS and
/// not internal, for literal addresses and for what a name resolves to now
/// (deliveries check again after their own resolution).
pub(crate) async fn validate_url(ctx: &Ctx, url: &str) -> Result<(), ApiError> {
    let policy = &ctx.state.config.url_policy;
    let refuse = |p: UrlProblem| ApiError::invalid("url", p.message(url));
    policy.check(url, ctx.livemode()).map_err(refuse)?;
    if !ctx.livemode() {
        return Ok(());
    }
    let host = url_policy::target(url).map_err(refuse)?.host.to_owned();
    if url_policy::literal_ip(&host).is_some() {
        return Ok(());
    }
    // A name that cannot be resolved here may resolve where it is delivered
    // from later; one that resolves only to internal addresses is refused.
    let lookup = tokio::net::lookup_host((host.as_str(), 443));
    let found: Vec<std::net::SocketAddr> =
        match tokio::time::timeout(std::time::Duration::from_secs(2), lookup).await {
            Ok(Ok(found)) => found.collect(),
            _ => Vec::new(),
        };
    if !found.is_empty() && found.iter().all(|a| !policy.permits(a.ip())) {
        return Err(refuse(UrlProblem::Internal(host)));
    }
    Ok(())
}

fn enabled_events(ctx: &mut Ctx, required: bool) -> Result<Option<Vec<String>>, ApiError> {
    let events = ctx.params.string_list("enabled_events")?;
    match &events {
        None if required => {
            return Err(ApiError::Param(
                switchboard_core::form::ParamError::missing("enabled_events"),
            ));
        }
        Some(list) if list.is_empty() => {
            return Err(ApiError::invalid(
                "enabled_events",
                "enabled_events must name at least one event type or '*'.",
            ));
        }
        Some(list) => {
            if let Some(bad) = list.iter().find(|e| !catalog::is_enableable(e)) {
                return Err(ApiError::invalid(
                    "enabled_events",
                    format!(
                        "Invalid enabled_events: '{bad}' is not a valid event type. See https://stripe.com/docs/api/events/types."
                    ),
                ));
            }
        }
        None => {}
    }
    Ok(events)
}

fn validate_api_version(v: &str) -> Result<(), ApiError> {
    let date = v.split('.').next().unwrap_or_default();
    let ok = date.len() == 10
        && date.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "api_version",
            format!("Invalid api_version: {v}"),
        ))
    }
}

pub async fn create(mut ctx: Ctx) -> Result<Response, ApiError> {
    let url = ctx.params.required_string("url")?;
    validate_url(&ctx, &url).await?;
    let events = enabled_events(&mut ctx, true)?.unwrap_or_default();
    let connect = ctx.params.bool("connect")?.unwrap_or(false);
    let api_version = ctx.params.string("api_version")?.filter(|s| !s.is_empty());
    if let Some(v) = &api_version {
        validate_api_version(v)?;
    }
    let description = ctx.params.clearable_string("description")?.flatten();
    let mut metadata = serde_json::Map::new();
    if let Some(m) = ctx.params.metadata()? {
        m.apply(&mut metadata);
    }
    ctx.finish_params()?;
    let (id, secret) = {
        let mut rng = rand::rng();
        (
            ids::generate(ids::Prefix::WebhookEndpoint, &mut rng),
            ids::generate_secret(ids::WEBHOOK_SECRET, &mut rng),
        )
    };
    let rec = EndpointRecord {
        id,
        platform: ctx.platform.id.clone(),
        livemode: ctx.livemode(),
        version: 1,
        created: ctx.now(),
        url,
        connect,
        enabled: true,
        enabled_events: events,
        api_version,
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
        destination: None,
    };
    let mut body = render(&rec, &ctx.platform.client_id);
    body["secret"] = rec.secrets[0].secret.clone().into();
    let mut change = ctx.change();
    change.writes.push(Write::Endpoint(Box::new(rec), None));
    ctx.commit(change, &body).await
}

/// A webhook endpoint of the caller (not a `stripe listen` device, nor an
/// API v2 event destination).
pub async fn load(ctx: &Ctx, id: &str) -> Result<EndpointRecord, ApiError> {
    load_any(ctx, id).await.and_then(|e| {
        if e.listener || e.destination.is_some() {
            Err(ApiError::not_found(KIND, id))
        } else {
            Ok(e)
        }
    })
}

/// A webhook endpoint or a `stripe listen` device of the caller.
pub async fn load_any(ctx: &Ctx, id: &str) -> Result<EndpointRecord, ApiError> {
    ctx.state
        .store
        .endpoint(&ctx.platform.id, ctx.livemode(), id)
        .await?
        .ok_or_else(|| ApiError::not_found(KIND, id))
}

pub async fn retrieve(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    let rec = load(&ctx, &id).await?;
    ctx.respond(render(&rec, &ctx.platform.client_id)).await
}

pub async fn update(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let url = ctx.params.string("url")?;
    if let Some(u) = &url {
        validate_url(&ctx, u).await?;
    }
    let events = enabled_events(&mut ctx, false)?;
    let description = ctx.params.clearable_string("description")?;
    let disabled = ctx.params.bool("disabled")?;
    let metadata = ctx.params.metadata()?;
    for fixed in ["connect", "api_version"] {
        if ctx.params.contains(fixed) {
            return Err(ApiError::invalid(
                fixed,
                format!("{fixed} cannot be changed after a webhook endpoint is created."),
            ));
        }
    }
    ctx.finish_params()?;
    retry_conflicts!({
        let mut rec = load(&ctx, &id).await?;
        let expected = rec.version;
        if let Some(u) = &url {
            rec.url = u.clone();
        }
        if let Some(e) = &events {
            rec.enabled_events = e.clone();
        }
        if let Some(d) = &description {
            rec.description = d.clone();
        }
        if let Some(d) = disabled {
            rec.enabled = !d;
        }
        if let Some(m) = &metadata {
            m.apply(&mut rec.metadata);
        }
        rec.version += 1;
        let body = render(&rec, &ctx.platform.client_id);
        let mut change = ctx.change();
        change
            .writes
            .push(Write::Endpoint(Box::new(rec), Some(expected)));
        ctx.commit(change, &body).await
    })
}

pub async fn delete(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    retry_conflicts!({
        let mut rec = load(&ctx, &id).await?;
        let expected = rec.version;
        rec.deleted = true;
        rec.version += 1;
        let body = json!({"id": rec.id, "object": "webhook_endpoint", "deleted": true});
        let mut change = ctx.change();
        change
            .writes
            .push(Write::Endpoint(Box::new(rec), Some(expected)));
        ctx.commit(change, &body).await
    })
}

pub async fn list(mut ctx: Ctx) -> Result<Response, ApiError> {
    let page = page_request(&mut ctx)?;
    ctx.finish_params()?;
    let found = ctx
        .state
        .store
        .endpoints(
            &ctx.platform.id,
            ctx.livemode(),
            switchboard_store::EndpointKind::Webhook,
            &page,
        )
        .await
        .map_err(|e| cursor_param(&page, e.into()))?;
    let client_id = ctx.platform.client_id.clone();
    let body = list_json("/v1/webhook_endpoints", found, |r| render(&r, &client_id));
    ctx.respond(body.clone()).await
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/v1/webhook_endpoints", get(list).post(create))
        .route(
            "/v1/webhook_endpoints/{id}",
            get(retrieve).post(update).delete(delete),
        )
}
