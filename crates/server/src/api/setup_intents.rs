//! `/v1/setup_intents`: saving a payment method for later. Confirming checks
//! the test card as Stripe does: it succeeds (attaching the method to the
//! customer), needs 3-D Secure (`requires_action`), or fails
//! (`setup_intent.setup_failed`, a 402 `card_error`).

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use switchboard_core::connect::{self, CardOutcome};
use switchboard_core::form::Params;
use switchboard_core::ids;
use switchboard_store::Change;

use super::objects::{self, PRIVATE};
use super::patch::Patch;
use super::payment_methods;
use crate::context::{Ctx, Path, retry_conflicts};
use crate::error::ApiError;

const KIND: &str = "setup_intent";
const CANCELLATION_REASONS: [&str; 3] = ["abandoned", "requested_by_customer", "duplicate"];

fn parse(p: &mut Params) -> Result<Patch, ApiError> {
    let mut patch = Patch::default();
    patch.strings(
        p,
        &[],
        &["customer", "description", "payment_method", "on_behalf_of"],
    )?;
    if let Some(types) = p.string_list("payment_method_types")? {
        patch.set(&["payment_method_types"], json!(types));
    }
    if let Some(usage) = p.string("usage")? {
        if usage != "on_session" && usage != "off_session" {
            return Err(ApiError::invalid(
                "usage",
                format!("Invalid usage: {usage}"),
            ));
        }
        patch.set(&["usage"], usage);
    }
    if let Some(Some(mut apm)) = p.nested("automatic_payment_methods")? {
        let enabled = apm.bool("enabled")?.unwrap_or(false);
        let redirects = apm.string("allow_redirects")?;
        apm.finish()?;
        patch.set(
            &["automatic_payment_methods"],
            json!({"allow_redirects": redirects.unwrap_or_else(|| "always".into()), "enabled": enabled}),
        );
    }
    patch.metadata(p)?;
    for ignored in [
        "payment_method_options",
        "mandate_data",
        "return_url",
        "use_stripe_sdk",
        "single_use",
        "flow_directions",
    ] {
        p.take(ignored);
    }
    Ok(patch)
}

pub async fn create(mut ctx: Ctx) -> Result<Response, ApiError> {
    let confirm = ctx.params.bool("confirm")?.unwrap_or(false);
    let patch = parse(&mut ctx.params)?;
    ctx.finish_params()?;
    let id = ids::generate(ids::Prefix::SetupIntent, &mut rand::rng());
    let now = ctx.now();
    let mut si = objects::build(
        KIND,
        json!({
            "id": id, "application": null, "automatic_payment_methods": null, "cancellation_reason": null,
            "client_secret": format!("{id}_secret_{}", ids::generate_request_id(&mut rand::rng()).trim_start_matches("req_")),
            "created": now, "customer": null, "description": null, "flow_directions": null, "last_setup_error": null,
            "latest_attempt": null, "livemode": ctx.livemode(), "mandate": null, "metadata": {}, "next_action": null,
            "on_behalf_of": null, "payment_method": null, "payment_method_types": ["card"], "single_use_mandate": null,
            "status": "requires_payment_method", "usage": "off_session",
        }),
    );
    patch.apply(&mut si);
    let mut change = ctx.change();
    let pm = resolve(&ctx, &mut si, &mut change).await?;
    if pm.is_some() {
        si["status"] = "requires_confirmation".into();
    }
    change
        .events
        .push(ctx.event("setup_intent.created", si.clone(), None));
    let status = if confirm {
        confirm_into(&ctx, &mut si, pm, &mut change).await?
    } else {
        StatusCode::OK
    };
    change
        .writes
        .push(objects::insert(&ctx.scope, KIND, &id, now, si.clone()));
    respond(&ctx, change, status, &si).await
}

async fn resolve(
    ctx: &Ctx,
    si: &mut Value,
    change: &mut Change,
) -> Result<Option<Value>, ApiError> {
    let Some(named) = si["payment_method"].as_str().map(str::to_owned) else {
        return Ok(None);
    };
    let pm = payment_methods::resolve(ctx, &named, change).await?;
    si["payment_method"] = pm["id"].clone();
    Ok(Some(pm))
}

async fn respond(
    ctx: &Ctx,
    change: Change,
    status: StatusCode,
    si: &Value,
) -> Result<Response, ApiError> {
    if status == StatusCode::OK {
        return ctx.commit(change, si).await;
    }
    let body = crate::error::setup_card_error(&si["last_setup_error"], si);
    ctx.commit_status(change, status, &body).await
}

async fn confirm_into(
    ctx: &Ctx,
    si: &mut Value,
    pm: Option<Value>,
    change: &mut Change,
) -> Result<StatusCode, ApiError> {
    let status = si["status"].as_str().unwrap_or_default();
    if ![
        "requires_payment_method",
        "requires_confirmation",
        "requires_action",
    ]
    .contains(&status)
    {
        return Err(ApiError::InvalidRequest {
            message: format!("This SetupIntent's status is {status}, so it cannot be confirmed."),
            param: None,
            code: Some("setup_intent_unexpected_state"),
        });
    }
    let Some(pm) = pm else {
        return Err(ApiError::InvalidRequest {
            message: "You cannot confirm this SetupIntent because it's missing a payment method."
                .into(),
            param: Some("payment_method".into()),
            code: Some("setup_intent_unexpected_state"),
        });
    };
    let alias = pm[PRIVATE]["alias"].as_str().unwrap_or_default();
    let card = connect::test_card(alias);
    let needs_action =
        card.is_some_and(|c| c.outcome == CardOutcome::RequiresAction || c.last4 == "3155");
    if needs_action {
        si["status"] = "requires_action".into();
        si["next_action"] = json!({"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": ""}});
        change
            .events
            .push(ctx.event("setup_intent.requires_action", si.clone(), None));
        return Ok(StatusCode::OK);
    }
    if let Some(c) = card
        && let CardOutcome::Declined {
            code,
            decline_code,
            message,
        } = c.outcome
        && c.last4 != "0341"
    {
        si["status"] = "requires_payment_method".into();
        si["last_setup_error"] = json!({
            "code": code, "decline_code": decline_code,
            "doc_url": format!("https://stripe.com/docs/error-codes/{}", code.replace('_', "-")),
            "message": message, "payment_method": objects::public(&pm), "type": "card_error",
        });
        si["payment_method"] = Value::Null;
        change
            .events
            .push(ctx.event("setup_intent.setup_failed", si.clone(), None));
        return Ok(StatusCode::PAYMENT_REQUIRED);
    }
    if let Some(customer) = si["customer"].as_str().map(str::to_owned) {
        let id = pm["id"].as_str().unwrap_or_default().to_owned();
        let stored = pending_or_stored(ctx, change, &id).await?;
        payment_methods::attach_to(ctx, change, stored, &customer).await?;
    }
    si["status"] = "succeeded".into();
    si["next_action"] = Value::Null;
    change
        .events
        .push(ctx.event("setup_intent.succeeded", si.clone(), None));
    Ok(StatusCode::OK)
}

/// The PaymentMethod `id` as stored, or as the insert `change` holds.
async fn pending_or_stored(
    ctx: &Ctx,
    change: &mut Change,
    id: &str,
) -> Result<switchboard_store::StoredObject, ApiError> {
    if let Some(staged) = objects::staged(change, id) {
        return Ok(staged.clone());
    }
    objects::load(ctx, &ctx.scope, payment_methods::KIND, id, "payment_method").await
}

pub async fn confirm(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let patch = parse(&mut ctx.params)?;
    ctx.params.take("client_secret");
    ctx.finish_params()?;
    retry_conflicts!({
        let mut stored = objects::load(&ctx, &ctx.scope, KIND, &id, "setup_intent").await?;
        patch.apply(&mut stored.data);
        let mut change = ctx.change();
        let mut si = stored.data.clone();
        let pm = resolve(&ctx, &mut si, &mut change).await?;
        let status = confirm_into(&ctx, &mut si, pm, &mut change).await?;
        stored.data = si.clone();
        change.writes.push(objects::replace(&ctx.scope, stored));
        respond(&ctx, change, status, &si).await
    })
}

pub async fn cancel(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let reason = ctx.params.string("cancellation_reason")?;
    if let Some(r) = &reason
        && !CANCELLATION_REASONS.contains(&r.as_str())
    {
        return Err(ApiError::invalid(
            "cancellation_reason",
            format!("Invalid cancellation_reason: {r}"),
        ));
    }
    ctx.finish_params()?;
    retry_conflicts!({
        let mut stored = objects::load(&ctx, &ctx.scope, KIND, &id, "setup_intent").await?;
        let status = stored.data["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if status == "succeeded" || status == "canceled" {
            return Err(ApiError::InvalidRequest {
                message: format!(
                    "You cannot cancel this SetupIntent because it has a status of {status}."
                ),
                param: None,
                code: Some("setup_intent_unexpected_state"),
            });
        }
        stored.data["status"] = "canceled".into();
        stored.data["next_action"] = Value::Null;
        stored.data["cancellation_reason"] = reason.clone().map_or(Value::Null, Value::String);
        let mut change = ctx.change();
        change
            .events
            .push(ctx.event("setup_intent.canceled", stored.data.clone(), None));
        let body = stored.data.clone();
        change.writes.push(objects::replace(&ctx.scope, stored));
        ctx.commit(change, &body).await
    })
}

pub async fn retrieve(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.params.take("client_secret");
    ctx.finish_params()?;
    ctx.respond(
        objects::load(&ctx, &ctx.scope, KIND, &id, "setup_intent")
            .await?
            .data,
    )
    .await
}

pub async fn update(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let patch = parse(&mut ctx.params)?;
    ctx.finish_params()?;
    retry_conflicts!({
        let mut stored = objects::load(&ctx, &ctx.scope, KIND, &id, "setup_intent").await?;
        if ["succeeded", "canceled"].contains(&stored.data["status"].as_str().unwrap_or_default()) {
            return Err(ApiError::InvalidRequest {
                message: "This SetupIntent can no longer be updated.".into(),
                param: None,
                code: Some("setup_intent_unexpected_state"),
            });
        }
        patch.apply(&mut stored.data);
        let mut change = ctx.change();
        let mut si = stored.data.clone();
        if resolve(&ctx, &mut si, &mut change).await?.is_some()
            && si["status"] == "requires_payment_method"
        {
            si["status"] = "requires_confirmation".into();
        }
        stored.data = si.clone();
        change.writes.push(objects::replace(&ctx.scope, stored));
        ctx.commit(change, &si).await
    })
}

pub async fn list(mut ctx: Ctx) -> Result<Response, ApiError> {
    let scope = ctx.scope.clone();
    objects::list(
        &mut ctx,
        &scope,
        KIND,
        "/v1/setup_intents",
        &[
            objects::by("customer", "customer"),
            objects::by("payment_method", "payment_method"),
        ],
    )
    .await
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/v1/setup_intents", get(list).post(create))
        .route("/v1/setup_intents/{id}", get(retrieve).post(update))
        .route("/v1/setup_intents/{id}/confirm", post(confirm))
        .route("/v1/setup_intents/{id}/cancel", post(cancel))
}
