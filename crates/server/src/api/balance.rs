//! Balances: one per account and mode, `GET /v1/balance`.

use axum::response::Response;
use serde_json::{Value, json};
use switchboard_store::{Scope, StoredObject, Write};

use super::objects;
use crate::context::Ctx;
use crate::error::ApiError;

const KIND: &str = "balance";

/// A balance has no Stripe id; internally it is keyed by its owner and mode.
fn internal_id(scope: &Scope) -> String {
    let owner = scope.account.as_deref().unwrap_or(&scope.platform);
    format!(
        "bal_{owner}_{}",
        if scope.livemode { "live" } else { "test" }
    )
}

fn empty(livemode: bool) -> Value {
    objects::build(
        "balance",
        json!({
            "available": [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}],
            "connect_reserved": [{"amount": 0, "currency": "usd"}],
            "livemode": livemode,
            "pending": [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}],
        }),
    )
}

/// The stored balance (if any) and its current JSON.
pub async fn load(ctx: &Ctx, scope: &Scope) -> Result<(Option<StoredObject>, Value), ApiError> {
    let stored = ctx
        .state
        .store
        .object(scope, KIND, &internal_id(scope))
        .await?;
    let data = stored
        .as_ref()
        .map_or_else(|| empty(scope.livemode), |o| o.data.clone());
    Ok((stored, data))
}

fn entry<'a>(list: &'a mut Value, currency: &str) -> &'a mut Value {
    let items = list.as_array_mut().expect("balance lists are arrays");
    let pos = match items.iter().position(|e| e["currency"] == currency) {
        Some(p) => p,
        None => {
            items.push(json!({"amount": 0, "currency": currency, "source_types": {"card": 0}}));
            items.len() - 1
        }
    };
    &mut items[pos]
}

/// Moves card funds: `available` and `pending` change by the given amounts.
pub fn adjust(balance: &mut Value, currency: &str, available: i64, pending: i64) {
    for (key, delta) in [("available", available), ("pending", pending)] {
        let e = entry(&mut balance[key], currency);
        e["amount"] = (e["amount"].as_i64().unwrap_or(0) + delta).into();
        e["source_types"]["card"] =
            (e["source_types"]["card"].as_i64().unwrap_or(0) + delta).into();
    }
}

pub fn available(balance: &Value, currency: &str) -> i64 {
    balance["available"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["currency"] == currency))
        .and_then(|e| e["amount"].as_i64())
        .unwrap_or(0)
}

/// The write that stores `data` as the balance read as `stored`.
pub fn write(scope: &Scope, stored: Option<StoredObject>, data: Value, now: i64) -> Write {
    match stored {
        Some(mut o) => {
            o.data = data;
            objects::replace(scope, o)
        }
        None => objects::insert(scope, KIND, &internal_id(scope), now, data),
    }
}

pub async fn retrieve(mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    let scope = ctx.scope.clone();
    ctx.respond(load(&ctx, &scope).await?.1).await
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::get;
    axum::Router::new().route("/v1/balance", get(retrieve))
}
