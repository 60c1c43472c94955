//! `/v1/payment_intents` and `/v1/charges`: card payments with Stripe's test
//! payment methods. A successful charge credits the owner's balance (pending,
//! or available at once for `pm_card_bypassPending`, which emits
//! `balance.available`); a declined card is a 402 whose events still happen.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use switchboard_core::connect::{self, CardOutcome};
use switchboard_core::form::Params;
use switchboard_core::ids;
use switchboard_store::Change;

use super::patch::Patch;
use super::{balance, balance_transactions, objects, payment_methods};
use crate::context::{Ctx, Path, retry_conflicts};
use crate::error::ApiError;

const PI: &str = "payment_intent";
const CHARGE: &str = "charge";

/// Resolves the PaymentMethod `pi` names (a test alias becomes a new
/// `pm_…` object, written into `change`) and points `pi` at its id.
async fn attach_method(
    ctx: &Ctx,
    pi: &mut Value,
    change: &mut Change,
) -> Result<Option<Value>, ApiError> {
    let Some(named) = pi["payment_method"].as_str().map(str::to_owned) else {
        return Ok(None);
    };
    let pm = payment_methods::resolve(ctx, &named, change).await?;
    pi["payment_method"] = pm["id"].clone();
    Ok(Some(pm))
}

/// Parameters shared by create and update.
fn parse(p: &mut Params) -> Result<Patch, ApiError> {
    let mut patch = Patch::default();
    patch.strings(
        p,
        &[],
        &[
            "description",
            "receipt_email",
            "customer",
            "statement_descriptor",
        ],
    )?;
    if let Some(pm) = p.string("payment_method")? {
        // A name for now; `attach_method` turns it into a PaymentMethod.
        patch.set(&["payment_method"], pm);
    }
    if let Some(types) = p.string_list("payment_method_types")? {
        patch.set(&["payment_method_types"], json!(types));
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
    if let Some(shipping) = p.take("shipping") {
        patch.set(&["shipping"], objects::form_json(shipping));
    }
    patch.metadata(p)?;
    Ok(patch)
}

/// `patch` on a PaymentIntent: a payment method makes it ready to confirm.
fn apply(patch: &Patch, pi: &mut Value) {
    patch.apply(pi);
    if patch.touches(&["payment_method"]) && pi["status"] == "requires_payment_method" {
        pi["status"] = "requires_confirmation".into();
    }
}

pub async fn create(mut ctx: Ctx) -> Result<Response, ApiError> {
    let amount = objects::amount(&mut ctx, "amount")?;
    let currency = objects::currency(&mut ctx, None)?;
    let confirm = ctx.params.bool("confirm")?.unwrap_or(false);
    if let Some(method) = ctx.params.string("capture_method")?
        && method != "automatic"
        && method != "automatic_async"
    {
        return Err(ApiError::invalid(
            "capture_method",
            "Switchboard supports capture_method=automatic only.",
        ));
    }
    for ignored in [
        "return_url",
        "off_session",
        "setup_future_usage",
        "payment_method_options",
        "mandate_data",
    ] {
        // Accepted for SDK and CLI fixtures; they do not change a test card's outcome.
        ctx.params.take(ignored);
    }
    let id = ids::generate(ids::Prefix::PaymentIntent, &mut rand::rng());
    let now = ctx.now();
    let mut pi = json!({
        "id": id, "object": "payment_intent", "amount": amount, "amount_capturable": 0, "amount_details": {"tip": {}},
        "amount_received": 0, "application": null, "application_fee_amount": null, "automatic_payment_methods": null,
        "canceled_at": null, "cancellation_reason": null, "capture_method": "automatic",
        "client_secret": format!("{id}_secret_{}", ids::generate_request_id(&mut rand::rng()).trim_start_matches("req_")),
        "confirmation_method": "automatic", "created": now, "currency": currency, "customer": null, "description": null,
        "last_payment_error": null, "latest_charge": null, "livemode": ctx.livemode(), "metadata": {}, "next_action": null,
        "on_behalf_of": null, "payment_method": null, "payment_method_types": ["card"], "processing": null,
        "receipt_email": null, "shipping": null, "statement_descriptor": null, "status": "requires_payment_method",
        "transfer_data": null,
    });
    apply(&parse(&mut ctx.params)?, &mut pi);
    ctx.finish_params()?;
    let mut change = ctx.change();
    let method = attach_method(&ctx, &mut pi, &mut change).await?;
    let pi = objects::build("payment_intent", pi);
    change
        .events
        .push(ctx.event("payment_intent.created", pi.clone(), None));
    if !confirm {
        change
            .writes
            .push(objects::insert(&ctx.scope, PI, &id, now, pi.clone()));
        return ctx.commit(change, &pi).await;
    }
    let (balance_stored, mut bal) = balance::load(&ctx, &ctx.scope).await?;
    let mut pi = pi;
    let status = confirm_into(&ctx, &mut pi, method.as_ref(), &mut bal, &mut change)?;
    change
        .writes
        .push(objects::insert(&ctx.scope, PI, &id, now, pi.clone()));
    change
        .writes
        .push(balance::write(&ctx.scope, balance_stored, bal, now));
    respond(&ctx, change, status, &pi).await
}

/// Charges the payment method: builds the charge, moves funds, and adds the
/// events. Returns the HTTP status of the answer (402 for a decline).
fn confirm_into(
    ctx: &Ctx,
    pi: &mut Value,
    method: Option<&Value>,
    bal: &mut Value,
    change: &mut Change,
) -> Result<StatusCode, ApiError> {
    if !["requires_payment_method", "requires_confirmation"]
        .contains(&pi["status"].as_str().unwrap_or_default())
    {
        return Err(ApiError::InvalidRequest {
            message: format!(
                "This PaymentIntent's status is {}, so it cannot be confirmed.",
                pi["status"].as_str().unwrap_or("?")
            ),
            param: None,
            code: Some("payment_intent_unexpected_state"),
        });
    }
    let Some(pm) = method else {
        return Err(ApiError::InvalidRequest {
            message: "You cannot confirm this PaymentIntent because it's missing a payment method."
                .into(),
            param: Some("payment_method".into()),
            code: Some("payment_intent_unexpected_state"),
        });
    };
    let outcome = payment_methods::outcome(pm);
    let now = ctx.now();
    let amount = pi["amount"].as_i64().unwrap_or(0);
    let currency = pi["currency"].as_str().unwrap_or("usd").to_owned();
    let card = &pm["card"];
    let charge_id = ids::generate(ids::Prefix::Charge, &mut rand::rng());
    let succeeded = matches!(outcome, CardOutcome::Succeeds { .. });
    let balance_transaction = match outcome {
        CardOutcome::Succeeds { available } => Value::from(balance_transactions::record(
            ctx,
            change,
            balance_transactions::Movement {
                amount,
                fee: connect::card_fee(amount),
                currency: &currency,
                kind: "charge",
                reporting_category: "charge",
                source: &charge_id,
                description: pi["description"].as_str(),
                available_now: available,
            },
        )),
        CardOutcome::Declined { .. } => Value::Null,
    };
    let (decline_code, message) = match outcome {
        CardOutcome::Declined {
            decline_code,
            message,
        } => (Some(decline_code), Some(message)),
        CardOutcome::Succeeds { .. } => (None, None),
    };
    let charge = objects::build(
        "charge",
        json!({
            "id": charge_id, "amount": amount, "amount_captured": if succeeded { amount } else { 0 },
            "amount_refunded": 0, "application_fee_amount": null,
            "balance_transaction": balance_transaction,
            "captured": succeeded, "created": now, "currency": currency, "customer": pi["customer"], "description": pi["description"],
            "disputed": false, "failure_code": decline_code.map(|_| "card_declined"), "failure_message": message,
            "livemode": ctx.livemode(), "metadata": pi["metadata"],
            "outcome": if succeeded {
                json!({"network_status": "approved_by_network", "reason": null, "risk_level": "normal", "seller_message": "Payment complete.", "type": "authorized"})
            } else {
                json!({"network_status": "declined_by_network", "reason": decline_code, "risk_level": "normal", "seller_message": "The bank did not return any further details with this decline.", "type": "issuer_declined"})
            },
            "paid": succeeded, "payment_intent": pi["id"], "payment_method": pm["id"],
            "payment_method_details": {"card": {
                "amount_authorized": if succeeded { Value::from(amount) } else { Value::Null },
                "authorization_code": if succeeded { Value::from("123456") } else { Value::Null },
                "brand": card["brand"], "checks": card["checks"], "country": card["country"], "exp_month": card["exp_month"],
                "exp_year": card["exp_year"], "fingerprint": card["fingerprint"], "funding": card["funding"],
                "last4": card["last4"], "network": card["brand"], "network_transaction_id": if succeeded { Value::from("1041029786787710") } else { Value::Null },
                "regulated_status": card["regulated_status"],
            }, "type": "card"},
            "receipt_email": pi["receipt_email"], "refunded": false, "shipping": pi["shipping"],
            "status": if succeeded { "succeeded" } else { "failed" },
        }),
    );
    pi["latest_charge"] = charge_id.clone().into();
    change.writes.push(objects::insert(
        &ctx.scope,
        CHARGE,
        &charge_id,
        now,
        charge.clone(),
    ));
    match outcome {
        CardOutcome::Succeeds { available } => {
            pi["status"] = "succeeded".into();
            pi["amount_received"] = amount.into();
            change
                .events
                .push(ctx.event("charge.succeeded", charge, None));
            change
                .events
                .push(ctx.event("payment_intent.succeeded", pi.clone(), None));
            let net = amount - connect::card_fee(amount);
            if available {
                balance::adjust(bal, &currency, net, 0);
                change
                    .events
                    .push(ctx.event("balance.available", bal.clone(), None));
            } else {
                balance::adjust(bal, &currency, 0, net);
            }
            Ok(StatusCode::OK)
        }
        CardOutcome::Declined {
            decline_code,
            message,
        } => {
            pi["status"] = "requires_payment_method".into();
            pi["last_payment_error"] = json!({
                "charge": charge_id, "code": "card_declined", "decline_code": decline_code,
                "doc_url": "https://stripe.com/docs/error-codes/card-declined", "message": message,
                "payment_method": objects::public(pm), "type": "card_error",
            });
            change.events.push(ctx.event("charge.failed", charge, None));
            change
                .events
                .push(ctx.event("payment_intent.payment_failed", pi.clone(), None));
            Ok(StatusCode::PAYMENT_REQUIRED)
        }
    }
}

/// 200 with the PaymentIntent, or Stripe's 402 `card_error` carrying it.
async fn respond(
    ctx: &Ctx,
    change: Change,
    status: StatusCode,
    pi: &Value,
) -> Result<Response, ApiError> {
    if status == StatusCode::OK {
        return ctx.commit(change, pi).await;
    }
    let body = crate::error::card_error(&pi["last_payment_error"], pi);
    ctx.commit_status(change, status, &body).await
}

pub async fn confirm(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let patch = parse(&mut ctx.params)?;
    ctx.params.take("return_url");
    ctx.finish_params()?;
    retry_conflicts!({
        let mut stored = objects::load(&ctx, &ctx.scope, PI, &id, "payment_intent").await?;
        apply(&patch, &mut stored.data);
        let (balance_stored, mut bal) = balance::load(&ctx, &ctx.scope).await?;
        let mut change = ctx.change();
        let mut pi = stored.data.clone();
        let method = attach_method(&ctx, &mut pi, &mut change).await?;
        let status = confirm_into(&ctx, &mut pi, method.as_ref(), &mut bal, &mut change)?;
        stored.data = pi.clone();
        change.writes.push(objects::replace(&ctx.scope, stored));
        change
            .writes
            .push(balance::write(&ctx.scope, balance_stored, bal, ctx.now()));
        respond(&ctx, change, status, &pi).await
    })
}

const CANCELLATION_REASONS: [&str; 4] = [
    "duplicate",
    "fraudulent",
    "requested_by_customer",
    "abandoned",
];

/// `POST /v1/payment_intents/{id}/cancel` → `payment_intent.canceled`.
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
        let mut stored = objects::load(&ctx, &ctx.scope, PI, &id, "payment_intent").await?;
        let status = stored.data["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if status == "succeeded" || status == "canceled" {
            return Err(ApiError::InvalidRequest {
                message: format!(
                    "You cannot cancel this PaymentIntent because it has a status of {status}. Only a PaymentIntent with one of the following statuses may be canceled: requires_payment_method, requires_capture, requires_confirmation, requires_action, processing."
                ),
                param: None,
                code: Some("payment_intent_unexpected_state"),
            });
        }
        stored.data["status"] = "canceled".into();
        stored.data["canceled_at"] = ctx.now().into();
        stored.data["cancellation_reason"] = reason.clone().map_or(Value::Null, Value::String);
        let mut change = ctx.change();
        change
            .events
            .push(ctx.event("payment_intent.canceled", stored.data.clone(), None));
        let body = stored.data.clone();
        change.writes.push(objects::replace(&ctx.scope, stored));
        ctx.commit(change, &body).await
    })
}

pub async fn retrieve(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.params.take("client_secret");
    ctx.finish_params()?;
    ctx.respond(
        objects::load(&ctx, &ctx.scope, PI, &id, "payment_intent")
            .await?
            .data,
    )
    .await
}

pub async fn update(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let patch = parse(&mut ctx.params)?;
    ctx.finish_params()?;
    retry_conflicts!({
        let mut stored = objects::load(&ctx, &ctx.scope, PI, &id, "payment_intent").await?;
        if stored.data["status"] == "succeeded" {
            return Err(ApiError::InvalidRequest {
                message: "This PaymentIntent has succeeded and can no longer be updated.".into(),
                param: None,
                code: Some("payment_intent_unexpected_state"),
            });
        }
        let before = stored.data.clone();
        apply(&patch, &mut stored.data);
        let mut change = ctx.change();
        if stored.data["payment_method"] != before["payment_method"] {
            attach_method(&ctx, &mut stored.data, &mut change).await?;
        }
        // Stripe has no `payment_intent.updated`: an update emits nothing.
        let body = stored.data.clone();
        change.writes.push(objects::replace(&ctx.scope, stored));
        ctx.commit(change, &body).await
    })
}

pub async fn list(mut ctx: Ctx) -> Result<Response, ApiError> {
    let scope = ctx.scope.clone();
    objects::list(
        &mut ctx,
        &scope,
        PI,
        "/v1/payment_intents",
        &[objects::by("customer", "customer")],
    )
    .await
}

pub async fn retrieve_charge(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    ctx.respond(
        objects::load(&ctx, &ctx.scope, CHARGE, &id, "charge")
            .await?
            .data,
    )
    .await
}

pub async fn list_charges(mut ctx: Ctx) -> Result<Response, ApiError> {
    let scope = ctx.scope.clone();
    objects::list(
        &mut ctx,
        &scope,
        CHARGE,
        "/v1/charges",
        &[
            objects::by("customer", "customer"),
            objects::by("payment_intent", "payment_intent"),
        ],
    )
    .await
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/v1/payment_intents", get(list).post(create))
        .route("/v1/payment_intents/{id}", get(retrieve).post(update))
        .route("/v1/payment_intents/{id}/confirm", post(confirm))
        .route("/v1/payment_intents/{id}/cancel", post(cancel))
        .route("/v1/charges", get(list_charges))
        .route("/v1/charges/{id}", get(retrieve_charge))
}
