//! `/v1/refunds`: card refunds succeed at once. The charge's owner pays the
//! refund from its balance; `reverse_transfer` takes back the destination's
//! share of a destination charge (proportionally), `refund_application_fee`
//! returns the platform's fee (proportionally). Events: `refund.created`,
//! `charge.refunded`; updates: `refund.updated`, `charge.refund.updated`.

use axum::response::Response;
use serde_json::{Value, json};
use switchboard_core::ids;
use switchboard_core::object::previous_attributes;

use super::accounts::platform_scope;
use super::balance::Ledger;
use super::balance_transactions::Movement;
use super::objects;
use super::patch::Patch;
use super::payments::CHARGE;
use super::{application_fees, transfers};
use crate::context::{Ctx, Path, retry_conflicts};
use crate::error::ApiError;

pub const KIND: &str = "refund";
const REASONS: [&str; 3] = ["duplicate", "fraudulent", "requested_by_customer"];

/// `part` of `whole` scaled to `amount` of `total`, rounded down.
fn share(part: i64, amount: i64, total: i64) -> i64 {
    if total == 0 {
        0
    } else {
        ((part as i128 * amount as i128) / total as i128) as i64
    }
}

pub async fn create(mut ctx: Ctx) -> Result<Response, ApiError> {
    let charge_id = ctx.params.string("charge")?;
    let pi_id = ctx.params.string("payment_intent")?;
    let amount = ctx.params.int("amount")?;
    let reason = ctx.params.string("reason")?;
    if let Some(r) = &reason
        && !REASONS.contains(&r.as_str())
    {
        return Err(ApiError::invalid("reason", format!("Invalid reason: {r}")));
    }
    let reverse_transfer = ctx.params.bool("reverse_transfer")?.unwrap_or(false);
    let refund_fee = ctx.params.bool("refund_application_fee")?.unwrap_or(false);
    ctx.params.take("instructions_email");
    ctx.params.take("origin");
    let mut extra = json!({"metadata": {}});
    let mut patch = Patch::default();
    patch.metadata(&mut ctx.params)?;
    patch.apply(&mut extra);
    ctx.finish_params()?;
    retry_conflicts!({
        let charge_id = match (&charge_id, &pi_id) {
            (Some(c), _) => c.clone(),
            (None, Some(pi)) => {
                let pi = objects::load(&ctx, &ctx.scope, "payment_intent", pi, "payment_intent")
                    .await
                    .map_err(|_| ApiError::NotFound {
                        kind: "payment_intent",
                        id: pi.clone(),
                        param: "payment_intent",
                    })?;
                pi.data["latest_charge"]
                    .as_str()
                    .filter(|_| pi.data["status"] == "succeeded")
                    .map(str::to_owned)
                    .ok_or_else(|| ApiError::InvalidRequest {
                        message: format!(
                            "This PaymentIntent ({}) does not have a successful charge to refund.",
                            pi.id
                        ),
                        param: Some("payment_intent".into()),
                        code: Some("charge_not_refundable"),
                    })?
            }
            (None, None) => {
                return Err(ApiError::InvalidRequest {
                    message: "One of the following params should be provided for this request: payment_intent or charge.".into(),
                    param: None,
                    code: Some("parameter_missing"),
                });
            }
        };
        let mut charge = objects::load(&ctx, &ctx.scope, CHARGE, &charge_id, "charge")
            .await
            .map_err(|_| ApiError::NotFound {
                kind: "charge",
                id: charge_id.clone(),
                param: "charge",
            })?;
        let captured = charge.data["amount_captured"].as_i64().unwrap_or(0);
        let total = charge.data["amount"].as_i64().unwrap_or(0);
        let refunded = charge.data["amount_refunded"].as_i64().unwrap_or(0);
        let left = captured - (refunded - (total - captured)).max(0);
        if charge.data["status"] != "succeeded" || left <= 0 {
            return Err(ApiError::InvalidRequest {
                message: format!("Charge {charge_id} has already been refunded."),
                param: None,
                code: Some("charge_already_refunded"),
            });
        }
        let amount = amount.unwrap_or(left);
        if amount <= 0 || amount > left {
            return Err(ApiError::invalid(
                "amount",
                format!(
                    "Refund amount ({amount}) is greater than unrefunded amount on charge ({left})"
                ),
            ));
        }
        let currency = charge.data["currency"].as_str().unwrap_or("usd").to_owned();
        let id = ids::generate(ids::Prefix::Refund, &mut rand::rng());
        let owner = ctx.scope.clone();
        let mut ledger = Ledger::default();
        ledger.open(&ctx, &owner).await?;
        let mut change = ctx.change();
        let txn = ledger.record(
            &ctx,
            &mut change,
            &owner,
            Movement {
                amount: -amount,
                currency: &currency,
                kind: "refund",
                reporting_category: "refund",
                source: &id,
                available_now: true,
                ..Default::default()
            },
        );
        let mut reversal_id = Value::Null;
        if reverse_transfer {
            let Some(tr) = charge.data["transfer"].as_str().map(str::to_owned) else {
                return Err(ApiError::invalid(
                    "reverse_transfer",
                    "This charge has no transfer to reverse.",
                ));
            };
            let transfer = objects::load(
                &ctx,
                &platform_scope(&ctx),
                transfers::KIND,
                &tr,
                "transfer",
            )
            .await?;
            let back = share(
                transfer.data["amount"].as_i64().unwrap_or(0),
                amount,
                captured,
            );
            if back > 0 {
                let r = transfers::reverse_in(
                    &ctx,
                    &mut change,
                    &mut ledger,
                    transfer,
                    back,
                    json!({}),
                    Some(&id),
                )
                .await?;
                reversal_id = r["id"].clone();
            }
        }
        if refund_fee
            && let Some(fee_id) = charge.data["application_fee"].as_str().map(str::to_owned)
        {
            let fee = objects::load(
                &ctx,
                &platform_scope(&ctx),
                application_fees::KIND,
                &fee_id,
                "application_fee",
            )
            .await?;
            let back = share(fee.data["amount"].as_i64().unwrap_or(0), amount, captured);
            if back > 0 {
                application_fees::refund_in(&ctx, &mut change, &mut ledger, fee, back, json!({}))
                    .await?;
            }
        }
        let now = ctx.now();
        let refund = objects::build(
            KIND,
            json!({
                "id": id, "amount": amount, "balance_transaction": txn, "charge": charge_id, "created": now,
                "currency": currency, "destination_details": {"card": {"reference_status": "pending", "reference_type": "acquirer_reference_number", "type": "refund"}, "type": "card"},
                "metadata": extra["metadata"], "payment_intent": charge.data["payment_intent"],
                "reason": reason, "receipt_number": null, "source_transfer_reversal": null,
                "status": "succeeded", "transfer_reversal": reversal_id,
            }),
        );
        change
            .writes
            .push(objects::insert(&owner, KIND, &id, now, refund.clone()));
        let before = objects::public(&charge.data);
        let refunded_now = refunded + amount;
        charge.data["amount_refunded"] = refunded_now.into();
        charge.data["refunded"] = (refunded_now >= total).into();
        // Since API 2022-11-15 a charge lists its refunds only when expanded
        // (`GET /v1/refunds?charge=…`), so nothing is kept on it.
        let after = objects::public(&charge.data);
        change
            .events
            .push(ctx.event("refund.created", refund.clone(), None));
        change.events.push(ctx.event(
            "charge.refunded",
            after.clone(),
            Some(previous_attributes(&before, &after)),
        ));
        change.writes.push(objects::replace(&owner, charge));
        ledger.close(&ctx, &mut change).await?;
        ctx.commit(change, &refund).await
    })
}

pub async fn retrieve(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    ctx.respond(
        objects::load(&ctx, &ctx.scope, KIND, &id, "refund")
            .await?
            .data,
    )
    .await
}

/// `POST /v1/refunds/{id}`: metadata → `refund.updated` and
/// `charge.refund.updated`.
pub async fn update(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let mut patch = Patch::default();
    patch.metadata(&mut ctx.params)?;
    ctx.finish_params()?;
    let scope = ctx.scope.clone();
    let events = ["refund.updated", "charge.refund.updated"];
    objects::update(&ctx, &scope, KIND, &id, "refund", &patch, &events).await
}

/// `POST /v1/refunds/{id}/cancel`: card refunds succeed at once, so as on
/// Stripe only a refund waiting for action could be canceled.
pub async fn cancel(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    let stored = objects::load(&ctx, &ctx.scope, KIND, &id, "refund").await?;
    Err(ApiError::InvalidRequest {
        message: format!(
            "Refund {} cannot be canceled: its status is {}. Only refunds with status requires_action can be canceled.",
            stored.id,
            stored.data["status"].as_str().unwrap_or("?")
        ),
        param: None,
        code: Some("refund_not_cancelable"),
    })
}

pub async fn list(mut ctx: Ctx) -> Result<Response, ApiError> {
    let scope = ctx.scope.clone();
    objects::list(
        &mut ctx,
        &scope,
        KIND,
        "/v1/refunds",
        &[
            objects::by("charge", "charge"),
            objects::by("payment_intent", "payment_intent"),
        ],
    )
    .await
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/v1/refunds", get(list).post(create))
        .route("/v1/refunds/{id}", get(retrieve).post(update))
        .route("/v1/refunds/{id}/cancel", post(cancel))
}
