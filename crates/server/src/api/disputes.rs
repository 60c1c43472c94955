//! `/v1/disputes`: opened by Stripe's dispute test cards when their charge
//! succeeds. A chargeback withdraws the amount and the dispute fee
//! (`charge.dispute.funds_withdrawn`); an inquiry moves nothing. Submitting
//! evidence puts it under review, and Stripe's magic evidence text decides
//! it at once (`winning_evidence` wins and reinstates the funds,
//! `losing_evidence` loses); `close` accepts the loss.

use axum::response::Response;
use serde_json::{Value, json};
use switchboard_core::connect::{self, DisputeKind};
use switchboard_core::ids;
use switchboard_core::object::previous_attributes;
use switchboard_store::Change;

use super::balance::Ledger;
use super::balance_transactions::Movement;
use super::objects;
use super::patch::Patch;
use crate::context::{Ctx, Path, retry_conflicts};
use crate::error::ApiError;

pub const KIND: &str = "dispute";
const DAY: i64 = 86_400;

const EVIDENCE: [&str; 27] = [
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
];

/// Opens a dispute on `charge` (succeeded, in the request's scope), with
/// its events; a chargeback withdraws the funds from the ledger's owner.
pub async fn open_in(
    ctx: &Ctx,
    change: &mut Change,
    ledger: &mut Ledger,
    charge: &mut Value,
    kind: DisputeKind,
) -> Result<(), ApiError> {
    let id = ids::generate(ids::Prefix::Dispute, &mut rand::rng());
    let now = ctx.now();
    let amount = charge["amount"].as_i64().unwrap_or(0);
    let currency = charge["currency"].as_str().unwrap_or("usd").to_owned();
    charge["disputed"] = true.into();
    let mut dispute = objects::build(
        KIND,
        json!({
            "id": id, "amount": amount, "balance_transactions": [], "charge": charge["id"], "created": now,
            "currency": currency, "enhanced_eligibility_types": [],
            "evidence_details": {"due_by": now + 7 * DAY, "enhanced_eligibility": {}, "has_evidence": false,
                                 "past_due": false, "submission_count": 0, "submission_method": "not_submitted"},
            "is_charge_refundable": kind == DisputeKind::Inquiry, "livemode": ctx.livemode(), "metadata": {},
            "payment_intent": charge["payment_intent"], "reason": "fraudulent",
            "payment_method_details": {"card": {"brand": charge["payment_method_details"]["card"]["brand"],
                "case_type": if kind == DisputeKind::Inquiry { "inquiry" } else { "chargeback" },
                "network": charge["payment_method_details"]["card"]["network"], "network_reason_code": "10.4"}, "type": "card"},
            "network_reason_code": "10.4",
            "status": if kind == DisputeKind::Inquiry { "warning_needs_response" } else { "needs_response" },
        }),
    );
    change
        .events
        .push(ctx.event("charge.dispute.created", dispute.clone(), None));
    if kind == DisputeKind::Fraudulent {
        let txn = move_funds(
            ctx,
            change,
            ledger,
            &id,
            -amount,
            connect::DISPUTE_FEE,
            &currency,
        )
        .await?;
        dispute["balance_transactions"] = json!([txn]);
        dispute["is_charge_refundable"] = false.into();
        change
            .events
            .push(ctx.event("charge.dispute.funds_withdrawn", dispute.clone(), None));
    }
    change
        .writes
        .push(objects::insert(&ctx.scope, KIND, &id, now, dispute));
    Ok(())
}

/// A dispute's movement of funds on the request's account; returns the
/// balance transaction as the dispute lists it.
async fn move_funds(
    ctx: &Ctx,
    change: &mut Change,
    ledger: &mut Ledger,
    dispute: &str,
    amount: i64,
    fee: i64,
    currency: &str,
) -> Result<Value, ApiError> {
    let scope = ctx.scope.clone();
    ledger.open(ctx, &scope).await?;
    let id = ledger.record(
        ctx,
        change,
        &scope,
        Movement {
            amount,
            fee,
            currency,
            kind: "adjustment",
            reporting_category: if amount < 0 {
                "dispute"
            } else {
                "dispute_reversal"
            },
            source: dispute,
            description: Some(if amount < 0 {
                "Chargeback withdrawal"
            } else {
                "Chargeback reversal"
            }),
            available_now: true,
            ..Default::default()
        },
    );
    // The dispute lists its balance transactions whole; this one is in `change`.
    Ok(objects::staged(change, &id).map_or(Value::Null, |t| t.data.clone()))
}

pub async fn retrieve(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    ctx.respond(
        objects::load(&ctx, &ctx.scope, KIND, &id, "dispute")
            .await?
            .data,
    )
    .await
}

pub async fn list(mut ctx: Ctx) -> Result<Response, ApiError> {
    let scope = ctx.scope.clone();
    objects::list(
        &mut ctx,
        &scope,
        KIND,
        "/v1/disputes",
        &[
            objects::by("charge", "charge"),
            objects::by("payment_intent", "payment_intent"),
        ],
    )
    .await
}

/// Decides a dispute: `won` reinstates a chargeback's funds. Adds
/// `charge.dispute.closed` (and `funds_reinstated`).
async fn decide(
    ctx: &Ctx,
    change: &mut Change,
    ledger: &mut Ledger,
    dispute: &mut Value,
    won: bool,
) -> Result<(), ApiError> {
    let inquiry = dispute["status"]
        .as_str()
        .is_some_and(|s| s.starts_with("warning_"));
    dispute["status"] = match (inquiry, won) {
        (true, _) => "warning_closed",
        (false, true) => "won",
        (false, false) => "lost",
    }
    .into();
    if won && !inquiry {
        let amount = dispute["amount"].as_i64().unwrap_or(0);
        let currency = dispute["currency"].as_str().unwrap_or("usd").to_owned();
        let id = dispute["id"].as_str().unwrap_or_default().to_owned();
        let txn = move_funds(ctx, change, ledger, &id, amount, 0, &currency).await?;
        if let Some(list) = dispute["balance_transactions"].as_array_mut() {
            list.push(txn);
        }
        change
            .events
            .push(ctx.event("charge.dispute.funds_reinstated", dispute.clone(), None));
    }
    change
        .events
        .push(ctx.event("charge.dispute.closed", dispute.clone(), None));
    Ok(())
}

/// `POST /v1/disputes/{id}`: evidence and metadata → `charge.dispute.updated`;
/// submitted evidence (the default) puts it under review or decides it.
pub async fn update(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let mut patch = Patch::default();
    if let Some(Some(mut evidence)) = ctx.params.nested("evidence")? {
        patch.strings(&mut evidence, &["evidence"], &EVIDENCE)?;
        evidence.take("enhanced_evidence");
        evidence.finish()?;
    }
    patch.metadata(&mut ctx.params)?;
    let submit = ctx.params.bool("submit")?.unwrap_or(true);
    ctx.finish_params()?;
    retry_conflicts!({
        let mut stored = objects::load(&ctx, &ctx.scope, KIND, &id, "dispute").await?;
        let status = stored.data["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if ![
            "needs_response",
            "warning_needs_response",
            "under_review",
            "warning_under_review",
        ]
        .contains(&status.as_str())
        {
            return Err(ApiError::InvalidRequest {
                message: format!(
                    "This dispute is already closed ({status}), so it cannot be updated."
                ),
                param: None,
                code: Some("dispute_already_closed"),
            });
        }
        let before = stored.data.clone();
        patch.apply(&mut stored.data);
        let evidence_given = patch.touches(&["evidence"]);
        if evidence_given {
            stored.data["evidence_details"]["has_evidence"] = true.into();
        }
        if submit && evidence_given {
            stored.data["evidence_details"]["submission_method"] = "manual".into();
            let d = &mut stored.data["evidence_details"]["submission_count"];
            *d = (d.as_i64().unwrap_or(0) + 1).into();
            stored.data["status"] = if status.starts_with("warning_") {
                "warning_under_review"
            } else {
                "under_review"
            }
            .into();
        }
        let mut change = ctx.change();
        change.events.push(ctx.event(
            "charge.dispute.updated",
            stored.data.clone(),
            Some(previous_attributes(&before, &stored.data)),
        ));
        let mut ledger = Ledger::default();
        if submit
            && let Some(won) =
                connect::dispute_verdict(stored.data["evidence"]["uncategorized_text"].as_str())
        {
            decide(&ctx, &mut change, &mut ledger, &mut stored.data, won).await?;
        }
        ledger.close(&ctx, &mut change).await?;
        let body = stored.data.clone();
        change.writes.push(objects::replace(&ctx.scope, stored));
        ctx.commit(change, &body).await
    })
}

/// `POST /v1/disputes/{id}/close`: accepts the dispute as lost.
pub async fn close(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    retry_conflicts!({
        let mut stored = objects::load(&ctx, &ctx.scope, KIND, &id, "dispute").await?;
        let status = stored.data["status"].as_str().unwrap_or_default();
        if ["won", "lost", "warning_closed", "charge_refunded"].contains(&status) {
            return Err(ApiError::InvalidRequest {
                message: format!("This dispute is already closed ({status})."),
                param: None,
                code: Some("dispute_already_closed"),
            });
        }
        let mut change = ctx.change();
        let mut ledger = Ledger::default();
        decide(&ctx, &mut change, &mut ledger, &mut stored.data, false).await?;
        ledger.close(&ctx, &mut change).await?;
        let body = stored.data.clone();
        change.writes.push(objects::replace(&ctx.scope, stored));
        ctx.commit(change, &body).await
    })
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/v1/disputes", get(list))
        .route("/v1/disputes/{id}", get(retrieve).post(update))
        .route("/v1/disputes/{id}/close", post(close))
}
