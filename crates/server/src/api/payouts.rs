//! `/v1/payouts`: money leaving an account's available balance for one of its
//! external accounts. A payout is `pending` until its `arrival_date` (two
//! days; at once for `method=instant`), when its timer makes it `paid`
//! (`payout.paid`); the test clock brings that forward. Paying out to one of
//! Stripe's failing test bank numbers fails the payout then instead
//! (`payout.failed` with Stripe's `failure_code`), returns the funds, and
//! marks the external account `errored`: later payouts to it are refused
//! until it is updated or replaced.

use axum::response::Response;
use serde_json::{Value, json};
use switchboard_core::connect;
use switchboard_core::ids;
use switchboard_core::object::previous_attributes;
use switchboard_store::{Change, PageRequest, StoredObject, Write};

use super::balance::Ledger;
use super::balance_transactions::Movement;
use super::external_accounts::KIND as EXTERNAL;
use super::objects::{self, PRIVATE, public};
use super::patch::Patch;
use crate::context::{Ctx, Path, retry_conflicts};
use crate::error::ApiError;

const KIND: &str = "payout";
const DAY: i64 = 86_400;

/// The external account a payout goes to: the named one, or the default for the currency.
async fn destination(
    ctx: &Ctx,
    requested: Option<&str>,
    currency: &str,
) -> Result<StoredObject, ApiError> {
    if let Some(id) = requested {
        return objects::load(ctx, &ctx.scope, EXTERNAL, id, "external account")
            .await
            .map_err(|_| ApiError::NotFound {
                kind: "external account",
                id: id.into(),
                param: "destination",
            });
    }
    let all = PageRequest {
        limit: 100,
        ..Default::default()
    };
    let accounts = ctx
        .state
        .store
        .objects(&ctx.scope, EXTERNAL, &all)
        .await?
        .data;
    let default = accounts
        .into_iter()
        .find(|e| e.data["currency"] == currency && e.data["default_for_currency"] == true);
    if default.is_none() && ctx.scope.account.is_none() {
        return Ok(platform_bank(ctx, currency));
    }
    default.ok_or_else(|| ApiError::InvalidRequest {
        message: format!(
            "Sorry, you don't have any external accounts in that currency ({currency})."
        ),
        param: Some("destination".into()),
        code: Some("invalid_request"),
    })
}

/// The platform's own bank account: a Stripe test platform always has one, so
/// `stripe trigger payout.created` works without setup. It is never stored.
fn platform_bank(ctx: &Ctx, currency: &str) -> StoredObject {
    let id = format!("ba_{}", ctx.platform.id.trim_start_matches("acct_"));
    StoredObject {
        id: id.clone(),
        kind: EXTERNAL.into(),
        version: 0,
        created: ctx.platform.created,
        deleted: false,
        data: objects::build(
            "bank_account",
            json!({"id": id, "account": ctx.platform.id, "bank_name": "STRIPE TEST BANK",
            "country": "US", "currency": currency, "default_for_currency": true, "fingerprint": "platformbank0000",
            "last4": "6789", "routing_number": "110000000", "status": "verified",
            PRIVATE: {"account_number": "000123456789"}}),
        ),
    }
}

/// Why a payout to this external account fails, if it does.
fn failure(ea: &Value) -> Option<(&'static str, &'static str)> {
    match ea["object"].as_str() {
        Some("card") if ea[PRIVATE]["payouts_fail"] == true => Some((
            "could_not_process",
            "The bank could not process this payout.",
        )),
        Some("bank_account") => ea[PRIVATE]["account_number"]
            .as_str()
            .and_then(connect::payout_failure),
        _ => None,
    }
}

pub async fn create(mut ctx: Ctx) -> Result<Response, ApiError> {
    let amount = objects::amount(&mut ctx, "amount")?;
    let currency = objects::currency(&mut ctx, Some("usd"))?;
    let requested = ctx.params.string("destination")?.filter(|s| !s.is_empty());
    let method = ctx
        .params
        .string("method")?
        .unwrap_or_else(|| "standard".into());
    if !["standard", "instant"].contains(&method.as_str()) {
        return Err(ApiError::invalid(
            "method",
            format!("Invalid method: {method}"),
        ));
    }
    let source_type = ctx
        .params
        .string("source_type")?
        .unwrap_or_else(|| "card".into());
    let mut extra = json!({"description": null, "statement_descriptor": null, "metadata": {}});
    let mut patch = Patch::default();
    patch.strings(
        &mut ctx.params,
        &[],
        &["description", "statement_descriptor"],
    )?;
    patch.metadata(&mut ctx.params)?;
    patch.apply(&mut extra);
    ctx.finish_params()?;
    let id = ids::generate(ids::Prefix::Payout, &mut rand::rng());
    retry_conflicts!({
        let ea = destination(&ctx, requested.as_deref(), &currency).await?;
        if ea.data["status"] == "errored" {
            return Err(ApiError::InvalidRequest {
                message: format!(
                    "The external account {} cannot be used for payouts: a previous payout to it failed. Update it or add a new one.",
                    ea.id
                ),
                param: Some("destination".into()),
                code: Some("bank_account_unusable"),
            });
        }
        let scope = ctx.scope.clone();
        let mut ledger = Ledger::default();
        ledger.open(&ctx, &scope).await?;
        let available = ledger.available(&scope, &currency);
        if available < amount {
            return Err(ApiError::InvalidRequest {
                message: format!(
                    "You have insufficient funds in your Stripe account for this transfer. Your card balance is too low ({available} {currency} available)."
                ),
                param: Some("amount".into()),
                code: Some("balance_insufficient"),
            });
        }
        let now = ctx.now();
        let payout = objects::build(
            "payout",
            json!({
                "id": id, "amount": amount, "application_fee": null, "application_fee_amount": null,
                "arrival_date": if method == "instant" { now } else { now + 2 * DAY }, "automatic": false,
                "created": now, "currency": currency,
                "description": extra["description"], "destination": ea.id, "failure_balance_transaction": null,
                "failure_code": null, "failure_message": null, "livemode": ctx.livemode(), "metadata": extra["metadata"],
                "method": method, "original_payout": null, "reconciliation_status": "not_applicable", "reversed_by": null,
                "source_type": source_type, "statement_descriptor": extra["statement_descriptor"], "status": "pending",
                "trace_id": {"status": "pending", "value": null},
                "type": if ea.data["object"] == "card" { "card" } else { "bank_account" },
            }),
        );
        let mut change = ctx.change();
        let txn = ledger.record(
            &ctx,
            &mut change,
            &scope,
            Movement {
                amount: -amount,
                currency: &currency,
                kind: "payout",
                reporting_category: "payout",
                source: &id,
                description: payout["description"].as_str(),
                available_now: true,
                ..Default::default()
            },
        );
        let mut payout = payout;
        payout["balance_transaction"] = txn.into();
        change
            .events
            .push(ctx.event("payout.created", payout.clone(), None));
        // It arrives at its arrival_date (at once for an instant payout):
        // until then it is pending, and its timer fires then.
        let mut stored = payout.clone();
        if payout["arrival_date"].as_i64().unwrap_or(0) <= now {
            arrive(&ctx, &mut ledger, &mut change, &mut stored, ea).await?;
        } else {
            change
                .writes
                .push(timer(&ctx, &id, payout["arrival_date"].as_i64()));
        }
        change
            .writes
            .push(objects::insert(&ctx.scope, KIND, &id, now, stored));
        ledger.close(&ctx, &mut change).await?;
        ctx.commit(change, &payout).await
    })
}

pub async fn retrieve(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    ctx.respond(
        objects::load(&ctx, &ctx.scope, KIND, &id, "payout")
            .await?
            .data,
    )
    .await
}

/// `POST /v1/payouts/{id}`: metadata only, as on Stripe → `payout.updated`.
pub async fn update(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let mut patch = Patch::default();
    patch.metadata(&mut ctx.params)?;
    ctx.finish_params()?;
    let scope = ctx.scope.clone();
    objects::update(
        &ctx,
        &scope,
        KIND,
        &id,
        "payout",
        &patch,
        &["payout.updated"],
    )
    .await
}

/// The payout's timer: armed for `arrival` (platform seconds) or disarmed.
fn timer(ctx: &Ctx, id: &str, arrival: Option<i64>) -> Write {
    ctx.timer(&ctx.scope, KIND, id, arrival)
}

/// A pending payout reaches the bank: `payout.paid`, or, for one of the
/// failing test bank numbers, `payout.failed` with the funds back in the
/// balance and the external account `errored`.
async fn arrive(
    ctx: &Ctx,
    ledger: &mut Ledger,
    change: &mut Change,
    payout: &mut Value,
    mut ea: StoredObject,
) -> Result<(), ApiError> {
    let id = payout["id"].as_str().unwrap_or_default().to_owned();
    let before = payout.clone();
    match failure(&ea.data) {
        None => {
            payout["status"] = "paid".into();
            payout["trace_id"] = json!({"status": "supported", "value": format!("TRACE{}", &id[3..13.min(id.len())])});
            change.events.push(ctx.event(
                "payout.paid",
                payout.clone(),
                Some(previous_attributes(&before, payout)),
            ));
        }
        Some((code, message)) => {
            let amount = payout["amount"].as_i64().unwrap_or(0);
            let currency = payout["currency"].as_str().unwrap_or("usd").to_owned();
            let scope = ctx.scope.clone();
            payout["status"] = "failed".into();
            payout["failure_code"] = code.into();
            payout["failure_message"] = message.into();
            payout["failure_balance_transaction"] = ledger
                .record(
                    ctx,
                    change,
                    &scope,
                    Movement {
                        amount,
                        currency: &currency,
                        kind: "payout_failure",
                        reporting_category: "payout_reversal",
                        source: &id,
                        description: Some("Payout failure"),
                        available_now: true,
                        ..Default::default()
                    },
                )
                .into();
            change.events.push(ctx.event(
                "payout.failed",
                payout.clone(),
                Some(previous_attributes(&before, payout)),
            ));
            if ea.version > 0 {
                let before = public(&ea.data);
                ea.data["status"] = "errored".into();
                let after = public(&ea.data);
                change.events.push(ctx.event(
                    "account.external_account.updated",
                    after.clone(),
                    Some(previous_attributes(&before, &after)),
                ));
                change.writes.push(objects::replace(&ctx.scope, ea));
            }
        }
    }
    Ok(())
}

/// The payout's timer fired: a pending payout whose arrival date has come
/// arrives ([`arrive`]); anything else only disarms the timer.
pub async fn tick(ctx: &Ctx, id: &str) -> Result<(), ApiError> {
    retry_conflicts!((), {
        let mut change = ctx.change();
        let Some(mut stored) = ctx.state.store.object(&ctx.scope, KIND, id).await? else {
            change.writes.push(timer(ctx, id, None));
            return ctx.commit_unanswered(change).await;
        };
        let arrival = stored.data["arrival_date"].as_i64().unwrap_or(0);
        if stored.data["status"] != "pending" {
            change.writes.push(timer(ctx, id, None));
        } else if arrival > ctx.now() {
            change.writes.push(timer(ctx, id, Some(arrival)));
        } else {
            let destination = stored.data["destination"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let currency = stored.data["currency"].as_str().unwrap_or("usd").to_owned();
            let ea = match ctx
                .state
                .store
                .object(&ctx.scope, EXTERNAL, &destination)
                .await?
            {
                Some(ea) => ea,
                None => platform_bank(ctx, &currency),
            };
            let scope = ctx.scope.clone();
            let mut ledger = Ledger::default();
            ledger.open(ctx, &scope).await?;
            arrive(ctx, &mut ledger, &mut change, &mut stored.data, ea).await?;
            ledger.close(ctx, &mut change).await?;
            change.writes.push(timer(ctx, id, None));
            change.writes.push(objects::replace(&ctx.scope, stored));
        }
        ctx.commit_unanswered(change).await
    })
}

/// `POST /v1/payouts/{id}/cancel`: only a pending payout can be canceled;
/// its funds return to the available balance → `payout.canceled`.
pub async fn cancel(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    retry_conflicts!({
        let mut stored = objects::load(&ctx, &ctx.scope, KIND, &id, "payout").await?;
        if stored.data["status"] != "pending" {
            return Err(ApiError::InvalidRequest {
                message: format!(
                    "Payouts can only be canceled while they are pending. This payout is {}.",
                    stored.data["status"].as_str().unwrap_or("?")
                ),
                param: None,
                code: Some("payout_not_cancelable"),
            });
        }
        let scope = ctx.scope.clone();
        let mut ledger = Ledger::default();
        ledger.open(&ctx, &scope).await?;
        let mut change = ctx.change();
        let before = stored.data.clone();
        let amount = stored.data["amount"].as_i64().unwrap_or(0);
        let currency = stored.data["currency"].as_str().unwrap_or("usd").to_owned();
        let txn = ledger.record(
            &ctx,
            &mut change,
            &scope,
            Movement {
                amount,
                currency: &currency,
                kind: "payout_cancel",
                reporting_category: "payout_reversal",
                source: &id,
                description: Some("Payout cancellation"),
                available_now: true,
                ..Default::default()
            },
        );
        stored.data["status"] = "canceled".into();
        stored.data["failure_balance_transaction"] = txn.into();
        change.writes.push(timer(&ctx, &id, None));
        change.events.push(ctx.event(
            "payout.canceled",
            stored.data.clone(),
            Some(previous_attributes(&before, &stored.data)),
        ));
        ledger.close(&ctx, &mut change).await?;
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
        KIND,
        "/v1/payouts",
        &[
            objects::by("status", "status"),
            objects::by("destination", "destination"),
        ],
    )
    .await
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/v1/payouts", get(list).post(create))
        .route("/v1/payouts/{id}", get(retrieve).post(update))
        .route("/v1/payouts/{id}/cancel", post(cancel))
}
