//! `/v1/application_fees` and their refunds: what the platform takes from a
//! charge with `application_fee_amount`. On a direct charge the fee moves
//! from the connected account's charge (its balance transaction lists it)
//! to the platform's balance; on a destination charge the platform keeps it
//! by transferring less, so the fee object records it without moving funds.

use axum::response::Response;
use serde_json::{Value, json};
use switchboard_core::ids;
use switchboard_core::object::previous_attributes;
use switchboard_store::{Change, StoredObject};

use super::accounts::{account_scope, platform_only, platform_scope};
use super::balance::Ledger;
use super::balance_transactions::Movement;
use super::objects;
use super::patch::Patch;
use crate::context::{Ctx, Path, retry_conflicts};
use crate::error::ApiError;

pub const KIND: &str = "application_fee";
const REFUND: &str = "fee_refund";

pub struct NewFee<'a> {
    pub amount: i64,
    pub currency: &'a str,
    /// The connected account the fee was taken from.
    pub account: &'a str,
    pub charge: &'a str,
    /// Whether the fee moves funds to the platform's balance (direct charges).
    pub moves_funds: bool,
    pub available_now: bool,
}

/// Writes a new application fee (platform scope) with
/// `application_fee.created`; returns its id.
pub async fn create_in(
    ctx: &Ctx,
    change: &mut Change,
    ledger: &mut Ledger,
    f: NewFee<'_>,
) -> Result<String, ApiError> {
    let platform = platform_scope(ctx);
    let id = ids::generate(ids::Prefix::ApplicationFee, &mut rand::rng());
    let txn = if f.moves_funds {
        ledger.open(ctx, &platform).await?;
        Value::from(ledger.record(
            ctx,
            change,
            &platform,
            Movement {
                amount: f.amount,
                currency: f.currency,
                kind: "application_fee",
                reporting_category: "platform_earning",
                source: &id,
                available_now: f.available_now,
                ..Default::default()
            },
        ))
    } else {
        Value::Null
    };
    let now = ctx.now();
    let fee = objects::build(
        KIND,
        json!({
            "id": id, "account": f.account, "amount": f.amount, "amount_refunded": 0,
            "application": ctx.platform.client_id, "balance_transaction": txn, "charge": f.charge,
            "created": now, "currency": f.currency, "fee_source": {"charge": f.charge, "type": "charge"},
            "livemode": ctx.livemode(), "originating_transaction": f.charge, "refunded": false,
            "refunds": {"object": "list", "data": [], "has_more": false, "url": format!("/v1/application_fees/{id}/refunds")},
        }),
    );
    change
        .writes
        .push(objects::insert(&platform, KIND, &id, now, fee.clone()));
    change
        .events
        .push(ctx.event_on(None, "application_fee.created", fee, None));
    Ok(id)
}

/// Refunds `amount` of the fee `fee` to its connected account (funds move
/// back when the fee moved them), with `application_fee.refunded`. Returns
/// the fee refund.
pub async fn refund_in(
    ctx: &Ctx,
    change: &mut Change,
    ledger: &mut Ledger,
    mut fee: StoredObject,
    amount: i64,
    metadata: Value,
) -> Result<Value, ApiError> {
    let platform = platform_scope(ctx);
    let left = fee.data["amount"].as_i64().unwrap_or(0)
        - fee.data["amount_refunded"].as_i64().unwrap_or(0);
    if amount <= 0 || amount > left {
        return Err(ApiError::invalid(
            "amount",
            format!(
                "Refund amount must be positive and at most the fee's unrefunded amount ({left})."
            ),
        ));
    }
    let id = ids::generate(ids::Prefix::FeeRefund, &mut rand::rng());
    let currency = fee.data["currency"].as_str().unwrap_or("usd").to_owned();
    let txn = if fee.data["balance_transaction"].is_string() {
        let account = fee.data["account"].as_str().unwrap_or_default().to_owned();
        let acct = account_scope(ctx, &account);
        ledger.open(ctx, &platform).await?;
        ledger.open(ctx, &acct).await?;
        let txn = ledger.record(
            ctx,
            change,
            &platform,
            Movement {
                amount: -amount,
                currency: &currency,
                kind: "application_fee_refund",
                reporting_category: "platform_earning_refund",
                source: &id,
                available_now: true,
                ..Default::default()
            },
        );
        ledger.record(
            ctx,
            change,
            &acct,
            Movement {
                amount,
                currency: &currency,
                kind: "application_fee_refund",
                reporting_category: "platform_earning_refund",
                source: &id,
                available_now: true,
                ..Default::default()
            },
        );
        Value::from(txn)
    } else {
        Value::Null
    };
    let now = ctx.now();
    let refund = objects::build(
        REFUND,
        json!({"id": id, "amount": amount, "balance_transaction": txn, "created": now, "currency": currency,
               "fee": fee.id, "metadata": metadata}),
    );
    change
        .writes
        .push(objects::insert(&platform, REFUND, &id, now, refund.clone()));
    let before = fee.data.clone();
    let refunded = before["amount_refunded"].as_i64().unwrap_or(0) + amount;
    fee.data["amount_refunded"] = refunded.into();
    fee.data["refunded"] = (refunded >= fee.data["amount"].as_i64().unwrap_or(0)).into();
    objects::push_sublist(&mut fee.data, "refunds", &refund);
    change.events.push(ctx.event_on(
        None,
        "application_fee.refunded",
        fee.data.clone(),
        Some(previous_attributes(&before, &fee.data)),
    ));
    change.writes.push(objects::replace(&platform, fee));
    Ok(refund)
}

pub async fn retrieve(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let scope = platform_only(&ctx, "application fees")?;
    ctx.finish_params()?;
    ctx.respond(
        objects::load(&ctx, &scope, KIND, &id, "application_fee")
            .await?
            .data,
    )
    .await
}

pub async fn list(mut ctx: Ctx) -> Result<Response, ApiError> {
    let scope = platform_only(&ctx, "application fees")?;
    objects::list(
        &mut ctx,
        &scope,
        KIND,
        "/v1/application_fees",
        &[objects::by("charge", "charge")],
    )
    .await
}

/// `POST /v1/application_fees/{id}/refunds` (and the legacy `/refund`).
pub async fn create_refund(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let scope = platform_only(&ctx, "application fees")?;
    let amount = ctx.params.int("amount")?;
    let mut meta = json!({"metadata": {}});
    let mut patch = Patch::default();
    patch.metadata(&mut ctx.params)?;
    patch.apply(&mut meta);
    ctx.finish_params()?;
    retry_conflicts!({
        let fee = objects::load(&ctx, &scope, KIND, &id, "application_fee").await?;
        let left = fee.data["amount"].as_i64().unwrap_or(0)
            - fee.data["amount_refunded"].as_i64().unwrap_or(0);
        let mut ledger = Ledger::default();
        let mut change = ctx.change();
        let refund = refund_in(
            &ctx,
            &mut change,
            &mut ledger,
            fee,
            amount.unwrap_or(left),
            meta["metadata"].clone(),
        )
        .await?;
        ledger.close(&ctx, &mut change).await?;
        ctx.commit(change, &refund).await
    })
}

pub async fn list_refunds(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let scope = platform_only(&ctx, "application fees")?;
    objects::load(&ctx, &scope, KIND, &id, "application_fee").await?;
    objects::list_where(
        &mut ctx,
        &scope,
        REFUND,
        &format!("/v1/application_fees/{id}/refunds"),
        &[],
        vec![("fee", id.clone().into())],
    )
    .await
}

pub async fn retrieve_refund(
    Path((fee, id)): Path<(String, String)>,
    mut ctx: Ctx,
) -> Result<Response, ApiError> {
    let scope = platform_only(&ctx, "application fees")?;
    ctx.finish_params()?;
    let r = objects::load(&ctx, &scope, REFUND, &id, "fee_refund").await?;
    if r.data["fee"] != fee.as_str() {
        return Err(ApiError::not_found("fee_refund", id));
    }
    ctx.respond(r.data).await
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/v1/application_fees", get(list))
        .route("/v1/application_fees/{id}", get(retrieve))
        .route("/v1/application_fees/{id}/refund", post(create_refund))
        .route(
            "/v1/application_fees/{id}/refunds",
            get(list_refunds).post(create_refund),
        )
        .route(
            "/v1/application_fees/{id}/refunds/{refund}",
            get(retrieve_refund),
        )
}
