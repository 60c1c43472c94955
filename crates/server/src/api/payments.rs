//! `/v1/payment_intents` and `/v1/charges`: card payments with Stripe's test
//! payment methods. A successful charge credits the owner's balance (pending,
//! or available at once for `pm_card_bypassPending`, which emits
//! `balance.available`); a declined card is a 402 whose events still happen.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use switchboard_core::connect::{self, CardOutcome};
use switchboard_core::form::Params;
use switchboard_core::ids;
use switchboard_core::object::stripe_order;
use switchboard_store::Change;

use super::{balance, objects};
use crate::context::{Ctx, ok_json, retry_conflicts};
use crate::error::ApiError;

const PI: &str = "payment_intent";
const CHARGE: &str = "charge";

fn check_payment_method(pm: &str) -> Result<CardOutcome, ApiError> {
    connect::card_outcome(pm).ok_or_else(|| ApiError::NotFound {
        kind: "PaymentMethod",
        id: pm.into(),
        param: "payment_method",
    })
}

fn card_details(pm: &str) -> (&'static str, &'static str) {
    match pm {
        "pm_card_mastercard" | "tok_mastercard" | "5555555555554444" => ("mastercard", "4444"),
        "pm_card_amex" => ("amex", "8431"),
        "pm_card_bypassPending" | "tok_bypassPending" | "4000000000000077" => ("visa", "0077"),
        "pm_card_chargeDeclined"
        | "pm_card_visa_chargeDeclined"
        | "tok_chargeDeclined"
        | "4000000000000002" => ("visa", "0002"),
        "pm_card_chargeDeclinedInsufficientFunds"
        | "tok_chargeDeclinedInsufficientFunds"
        | "4000000000009995" => ("visa", "9995"),
        _ => ("visa", "4242"),
    }
}

/// Parameters shared by create and update.
fn apply(p: &mut Params, pi: &mut Value) -> Result<(), ApiError> {
    objects::set_strings(
        p,
        pi,
        &[
            "description",
            "receipt_email",
            "customer",
            "statement_descriptor",
        ],
    )?;
    if let Some(pm) = p.string("payment_method")? {
        check_payment_method(&pm)?;
        pi["payment_method"] = pm.into();
        if pi["status"] == "requires_payment_method" {
            pi["status"] = "requires_confirmation".into();
        }
    }
    if let Some(types) = p.string_list("payment_method_types")? {
        pi["payment_method_types"] = json!(types);
    }
    if let Some(Some(mut apm)) = p.nested("automatic_payment_methods")? {
        let enabled = apm.bool("enabled")?.unwrap_or(false);
        let redirects = apm.string("allow_redirects")?;
        apm.finish()?;
        pi["automatic_payment_methods"] = json!({"allow_redirects": redirects.unwrap_or_else(|| "always".into()), "enabled": enabled});
    }
    if let Some(shipping) = p.take("shipping") {
        pi["shipping"] = objects::form_json(shipping);
    }
    objects::set_metadata(p, pi)?;
    Ok(())
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
    let id = ids::generate("pi", &mut rand::rng());
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
    apply(&mut ctx.params, &mut pi)?;
    ctx.finish_params()?;
    let pi = stripe_order(pi);
    let mut change = ctx.change();
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
    let status = confirm_into(&ctx, &mut pi, &mut bal, &mut change)?;
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
    let Some(pm) = pi["payment_method"].as_str().map(str::to_owned) else {
        return Err(ApiError::InvalidRequest {
            message: "You cannot confirm this PaymentIntent because it's missing a payment method."
                .into(),
            param: Some("payment_method".into()),
            code: Some("payment_intent_unexpected_state"),
        });
    };
    let outcome = check_payment_method(&pm)?;
    let now = ctx.now();
    let amount = pi["amount"].as_i64().unwrap_or(0);
    let currency = pi["currency"].as_str().unwrap_or("usd").to_owned();
    let (brand, last4) = card_details(&pm);
    let charge_id = ids::generate("ch", &mut rand::rng());
    let succeeded = matches!(outcome, CardOutcome::Succeeds { .. });
    let (decline_code, message) = match outcome {
        CardOutcome::Declined {
            decline_code,
            message,
        } => (Some(decline_code), Some(message)),
        CardOutcome::Succeeds { .. } => (None, None),
    };
    let charge = stripe_order(json!({
        "id": charge_id, "object": "charge", "amount": amount, "amount_captured": if succeeded { amount } else { 0 },
        "amount_refunded": 0, "application_fee_amount": null,
        "balance_transaction": if succeeded { Value::from(ids::generate("txn", &mut rand::rng())) } else { Value::Null },
        "captured": succeeded, "created": now, "currency": currency, "customer": pi["customer"], "description": pi["description"],
        "disputed": false, "failure_code": decline_code.map(|_| "card_declined"), "failure_message": message,
        "livemode": ctx.livemode(), "metadata": pi["metadata"],
        "outcome": if succeeded {
            json!({"network_status": "approved_by_network", "reason": null, "risk_level": "normal", "seller_message": "Payment complete.", "type": "authorized"})
        } else {
            json!({"network_status": "declined_by_network", "reason": decline_code, "risk_level": "normal", "seller_message": "The bank did not return any further details with this decline.", "type": "issuer_declined"})
        },
        "paid": succeeded, "payment_intent": pi["id"], "payment_method": pm,
        "payment_method_details": {"card": {"brand": brand, "country": "US", "exp_month": 12, "exp_year": 2034, "funding": "credit", "last4": last4}, "type": "card"},
        "receipt_email": pi["receipt_email"], "refunded": false, "shipping": pi["shipping"],
        "status": if succeeded { "succeeded" } else { "failed" },
    }));
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
                "payment_method": {"id": pm, "object": "payment_method", "type": "card"}, "type": "card_error",
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
    let err = &pi["last_payment_error"];
    let body = json!({"error": {
        "charge": err["charge"], "code": "card_declined", "decline_code": err["decline_code"],
        "doc_url": err["doc_url"], "message": err["message"], "payment_intent": pi,
        "payment_method": err["payment_method"], "request_log_url": null, "type": "card_error",
    }});
    ctx.commit_status(change, status, &body).await
}

pub async fn confirm(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let params = ctx.params.clone();
    let mut scratch = json!({"status": "requires_payment_method", "metadata": {}});
    apply(&mut ctx.params, &mut scratch)?;
    ctx.params.take("return_url");
    ctx.finish_params()?;
    retry_conflicts!({
        let mut stored = objects::load(&ctx, &ctx.scope, PI, &id, "payment_intent").await?;
        let mut p = params.clone();
        p.take("return_url");
        apply(&mut p, &mut stored.data)?;
        let (balance_stored, mut bal) = balance::load(&ctx, &ctx.scope).await?;
        let mut change = ctx.change();
        let mut pi = stored.data.clone();
        let status = confirm_into(&ctx, &mut pi, &mut bal, &mut change)?;
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
    Ok(ok_json(
        &objects::load(&ctx, &ctx.scope, PI, &id, "payment_intent")
            .await?
            .data,
    ))
}

pub async fn update(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let params = ctx.params.clone();
    apply(
        &mut ctx.params,
        &mut json!({"status": "requires_payment_method", "metadata": {}}),
    )?;
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
        apply(&mut params.clone(), &mut stored.data)?;
        let prev = switchboard_core::object::previous_attributes(&before, &stored.data);
        let mut change = ctx.change();
        if !prev.is_empty() {
            change.events.push(ctx.event(
                "payment_intent.updated",
                stored.data.clone(),
                Some(prev),
            ));
        }
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
        &[objects::by("customer", "$.customer")],
    )
    .await
}

pub async fn retrieve_charge(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    Ok(ok_json(
        &objects::load(&ctx, &ctx.scope, CHARGE, &id, "charge")
            .await?
            .data,
    ))
}

pub async fn list_charges(mut ctx: Ctx) -> Result<Response, ApiError> {
    let scope = ctx.scope.clone();
    objects::list(
        &mut ctx,
        &scope,
        CHARGE,
        "/v1/charges",
        &[
            objects::by("customer", "$.customer"),
            objects::by("payment_intent", "$.payment_intent"),
        ],
    )
    .await
}
