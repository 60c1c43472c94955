//! `/v1/balance_transactions`: one per movement of funds on an account's
//! balance (a charge, a payout, a payout's failure), in that account's
//! scope, so the `balance_transaction` ids of charges and payouts can be
//! retrieved and expanded.

use axum::response::Response;
use serde_json::json;
use switchboard_core::ids;
use switchboard_store::{Change, Scope};

use super::objects;
use crate::context::{Ctx, Path};
use crate::error::ApiError;

pub const KIND: &str = "balance_transaction";

const DAY: i64 = 86_400;

/// One movement of funds; `fee` is Stripe's and `application_fee` the
/// platform's (both part of `amount - net`).
#[derive(Default)]
pub struct Movement<'a> {
    pub amount: i64,
    pub fee: i64,
    pub application_fee: i64,
    pub currency: &'a str,
    /// Stripe's `type` (`charge`, `payout`, `payout_failure`, …).
    pub kind: &'a str,
    pub reporting_category: &'a str,
    pub source: &'a str,
    pub description: Option<&'a str>,
    /// Whether the funds are available at once (else in two days).
    pub available_now: bool,
}

impl Movement<'_> {
    pub fn fee_total(&self) -> i64 {
        self.fee + self.application_fee
    }
}

/// Writes `m`'s balance transaction on `scope` into `change`; returns its id
/// and `available_on`. Balances move through [`super::balance::Ledger`],
/// which calls this.
pub(super) fn record(
    ctx: &Ctx,
    change: &mut Change,
    scope: &Scope,
    m: &Movement<'_>,
) -> (String, i64) {
    let id = ids::generate(ids::Prefix::BalanceTransaction, &mut rand::rng());
    let now = ctx.now();
    let mut fee_details = Vec::new();
    if m.fee != 0 {
        fee_details.push(
            json!({"amount": m.fee, "application": null, "currency": m.currency,
                "description": "Stripe processing fees", "type": "stripe_fee"}),
        );
    }
    if m.application_fee != 0 {
        fee_details.push(json!({"amount": m.application_fee, "application": ctx.platform.client_id,
                "currency": m.currency, "description": "Application fee", "type": "application_fee"}));
    }
    let available_on = if m.available_now { now } else { now + 2 * DAY };
    let txn = objects::build(
        KIND,
        json!({
            "id": id, "amount": m.amount, "available_on": available_on,
            "balance_type": "payments", "created": now, "currency": m.currency, "description": m.description,
            "exchange_rate": null, "fee": m.fee_total(), "fee_details": fee_details, "net": m.amount - m.fee_total(),
            "reporting_category": m.reporting_category, "source": m.source,
            "status": if m.available_now { "available" } else { "pending" }, "type": m.kind,
        }),
    );
    change
        .writes
        .push(objects::insert(scope, KIND, &id, now, txn));
    (id, available_on)
}

pub async fn retrieve(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    let txn = objects::load(&ctx, &ctx.scope, KIND, &id, "balance_transaction").await?;
    ctx.respond(txn.data).await
}

pub async fn list(mut ctx: Ctx) -> Result<Response, ApiError> {
    let scope = ctx.scope.clone();
    objects::list(
        &mut ctx,
        &scope,
        KIND,
        "/v1/balance_transactions",
        &[
            objects::by("type", "type"),
            objects::by("source", "source"),
            objects::by("currency", "currency"),
        ],
    )
    .await
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/v1/balance_transactions", get(list))
        .route("/v1/balance_transactions/{id}", get(retrieve))
}
