//! Customer cash balances: `GET /v1/customers/{id}/cash_balance`, the test
//! helper `POST /v1/test_helpers/customers/{id}/fund_cash_balance` (a bank
//! transfer arriving), and PaymentIntents paid with `customer_balance`,
//! which wait in `requires_action` with bank transfer instructions and take
//! funds as they arrive (`payment_intent.partially_funded`, then
//! `payment_intent.succeeded`).

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use switchboard_core::ids;
use switchboard_store::{Change, PageRequest, StoredObject};

use super::balance::Ledger;
use super::objects;
use crate::context::{Ctx, Path, retry_conflicts};
use crate::error::ApiError;

const KIND: &str = "cash_balance";
const TXN: &str = "customer_cash_balance_transaction";

fn internal_id(customer: &str) -> String {
    format!("cashbal_{customer}")
}

async fn load(ctx: &Ctx, customer: &str) -> Result<(Option<StoredObject>, Value), ApiError> {
    let stored = ctx
        .state
        .store
        .object(&ctx.scope, KIND, &internal_id(customer))
        .await?;
    let data = stored.as_ref().map_or_else(
        || {
            objects::build(
                KIND,
                json!({"available": {}, "customer": customer, "livemode": ctx.livemode(),
                   "settings": {"reconciliation_mode": "automatic", "using_merchant_default": true}}),
            )
        },
        |o| o.data.clone(),
    );
    Ok((stored, data))
}

fn available(cash: &Value, currency: &str) -> i64 {
    cash["available"][currency].as_i64().unwrap_or(0)
}

fn set_available(cash: &mut Value, currency: &str, amount: i64) {
    cash["available"][currency] = amount.into();
}

/// Confirming a PaymentIntent with `customer_balance`: it takes what the
/// customer's cash balance holds, and waits for the rest.
pub async fn apply_to_payment(
    ctx: &Ctx,
    pi: &mut Value,
    ledger: &mut Ledger,
    change: &mut Change,
) -> Result<StatusCode, ApiError> {
    let Some(customer) = pi["customer"].as_str().map(str::to_owned) else {
        return Err(ApiError::InvalidRequest {
            message: "A PaymentIntent paid with customer_balance needs a customer.".into(),
            param: Some("customer".into()),
            code: Some("parameter_missing"),
        });
    };
    let amount = pi["amount"].as_i64().unwrap_or(0);
    let currency = pi["currency"].as_str().unwrap_or("usd").to_owned();
    pi["status"] = "requires_action".into();
    pi["next_action"] = json!({"type": "display_bank_transfer_instructions", "display_bank_transfer_instructions": {
        "amount_remaining": amount, "currency": currency, "financial_addresses": [],
        "hosted_instructions_url": null, "reference": format!("REF{}", &pi["id"].as_str().unwrap_or("pi_0000000000")[3..11]),
        "type": if currency == "jpy" { "jp_bank_transfer" } else { "us_bank_transfer" }}});
    change
        .events
        .push(ctx.event("payment_intent.requires_action", objects::public(pi), None));
    let (stored, mut cash) = load(ctx, &customer).await?;
    let funds = available(&cash, &currency);
    if funds > 0 {
        let used = take_funds(ctx, pi, funds, ledger, change).await?;
        set_available(&mut cash, &currency, funds - used);
        write(ctx, change, stored, cash);
    }
    Ok(StatusCode::OK)
}

/// Applies up to `funds` to a waiting PaymentIntent; returns what it took.
/// Fully funded, it is paid: its charge moves the funds to the merchant.
async fn take_funds(
    ctx: &Ctx,
    pi: &mut Value,
    funds: i64,
    ledger: &mut Ledger,
    change: &mut Change,
) -> Result<i64, ApiError> {
    let remaining = pi["next_action"]["display_bank_transfer_instructions"]["amount_remaining"]
        .as_i64()
        .unwrap_or(0);
    let used = funds.min(remaining);
    let left = remaining - used;
    if left == 0 {
        pi["next_action"] = Value::Null;
        super::payments::charge_cash_balance(ctx, pi, ledger, change).await?;
        change
            .events
            .push(ctx.event("payment_intent.succeeded", objects::public(pi), None));
    } else {
        pi["next_action"]["display_bank_transfer_instructions"]["amount_remaining"] = left.into();
        change
            .events
            .push(ctx.event("payment_intent.partially_funded", objects::public(pi), None));
    }
    Ok(used)
}

fn write(ctx: &Ctx, change: &mut Change, stored: Option<StoredObject>, cash: Value) {
    match stored {
        Some(mut o) => {
            o.data = cash;
            change.writes.push(objects::replace(&ctx.scope, o));
        }
        None => {
            let id = internal_id(cash["customer"].as_str().unwrap_or_default());
            change
                .writes
                .push(objects::insert(&ctx.scope, KIND, &id, ctx.now(), cash));
        }
    }
}

pub async fn retrieve(Path(customer): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    super::customers::load(&ctx, &customer).await?;
    ctx.respond(load(&ctx, &customer).await?.1).await
}

/// `POST /v1/test_helpers/customers/{id}/fund_cash_balance`.
pub async fn fund(Path(customer): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    if ctx.livemode() {
        return Err(ApiError::Permission(
            "Test helpers are only available in test mode.".into(),
        ));
    }
    let amount = objects::amount(&mut ctx, "amount")?;
    let currency = objects::currency(&mut ctx, None)?;
    ctx.params.take("reference");
    ctx.finish_params()?;
    retry_conflicts!({
        super::customers::load(&ctx, &customer).await?;
        let (stored, mut cash) = load(&ctx, &customer).await?;
        let mut change = ctx.change();
        let mut ledger = Ledger::default();
        let now = ctx.now();
        let mut funds = available(&cash, &currency) + amount;
        let id = ids::generate(ids::Prefix::CashBalanceTransaction, &mut rand::rng());
        let txn = objects::build(
            TXN,
            json!({"id": id, "created": now, "currency": currency, "customer": customer, "ending_balance": funds,
                   "funded": {"bank_transfer": {"reference": null, "type": if currency == "jpy" { "jp_bank_transfer" } else { "us_bank_transfer" }}},
                   "livemode": ctx.livemode(), "net_amount": amount, "type": "funded"}),
        );
        change
            .writes
            .push(objects::insert(&ctx.scope, TXN, &id, now, txn.clone()));
        change.events.push(ctx.event(
            "customer_cash_balance_transaction.created",
            txn.clone(),
            None,
        ));
        set_available(&mut cash, &currency, funds);
        change
            .events
            .push(ctx.event("cash_balance.funds_available", cash.clone(), None));
        // Waiting customer_balance payments of this customer take the funds, oldest first.
        let page = PageRequest {
            limit: 100,
            filters: vec![(
                switchboard_store::Field("customer"),
                Value::String(customer.clone()),
            )],
            ..Default::default()
        };
        let mut waiting: Vec<StoredObject> = ctx
            .state
            .store
            .objects(&ctx.scope, "payment_intent", &page)
            .await?
            .data
            .into_iter()
            .filter(|p| {
                p.data["status"] == "requires_action"
                    && p.data["currency"] == currency.as_str()
                    && p.data["next_action"]["type"] == "display_bank_transfer_instructions"
            })
            .collect();
        waiting.reverse();
        for mut pi in waiting {
            if funds == 0 {
                break;
            }
            let used = take_funds(&ctx, &mut pi.data, funds, &mut ledger, &mut change).await?;
            if used > 0 {
                funds -= used;
                let applied = ids::generate(ids::Prefix::CashBalanceTransaction, &mut rand::rng());
                let t = objects::build(
                    TXN,
                    json!({"id": applied, "applied_to_payment": {"payment_intent": pi.id}, "created": now, "currency": currency,
                           "customer": customer, "ending_balance": funds, "livemode": ctx.livemode(), "net_amount": -used,
                           "type": "applied_to_payment"}),
                );
                change
                    .writes
                    .push(objects::insert(&ctx.scope, TXN, &applied, now, t.clone()));
                change
                    .events
                    .push(ctx.event("customer_cash_balance_transaction.created", t, None));
                change.writes.push(objects::replace(&ctx.scope, pi));
            }
        }
        set_available(&mut cash, &currency, funds);
        write(&ctx, &mut change, stored, cash);
        ledger.close(&ctx, &mut change).await?;
        ctx.commit(change, &txn).await
    })
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/v1/customers/{id}/cash_balance", get(retrieve))
        .route(
            "/v1/test_helpers/customers/{id}/fund_cash_balance",
            post(fund),
        )
}
