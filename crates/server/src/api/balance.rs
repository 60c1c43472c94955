//! Balances: one per account and mode, `GET /v1/balance`, and the
//! [`Ledger`] through which every movement of funds goes.
//!
//! Funds that are not available at once wait in the balance's private list
//! of pending entries, each with its `available_on`; whenever the balance is
//! opened at or after that time (a later movement, `GET /v1/balance`, or its
//! timer: `crate::timers` fires it at the earliest `available_on`, which the
//! test clock brings forward), the entry moves to `available`, its balance
//! transaction becomes `available`, and `balance.available` is emitted.

use axum::response::Response;
use serde_json::{Value, json};
use switchboard_store::{Change, Scope, StoredObject, Write};

use super::balance_transactions::{self, Movement};
use super::objects::{self, PRIVATE};
use crate::context::{Ctx, retry_conflicts};
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
            PRIVATE: {"pending": []},
        }),
    )
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

/// Moves funds: `available` and `pending` change by the given amounts.
fn adjust(balance: &mut Value, currency: &str, available: i64, pending: i64) {
    for (key, delta) in [("available", available), ("pending", pending)] {
        if delta == 0 && key == "pending" {
            continue;
        }
        let e = entry(&mut balance[key], currency);
        e["amount"] = (e["amount"].as_i64().unwrap_or(0) + delta).into();
        e["source_types"]["card"] =
            (e["source_types"]["card"].as_i64().unwrap_or(0) + delta).into();
    }
}

fn amount_in(balance: &Value, key: &str, currency: &str) -> i64 {
    balance[key]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["currency"] == currency))
        .and_then(|e| e["amount"].as_i64())
        .unwrap_or(0)
}

/// Moves the pending entries due at `now` to `available`; returns the ids of
/// their balance transactions.
fn settle(balance: &mut Value, now: i64) -> Vec<String> {
    let entries = match balance[PRIVATE]["pending"].take() {
        Value::Array(a) => a,
        _ => Vec::new(),
    };
    let (due, waiting): (Vec<Value>, Vec<Value>) = entries
        .into_iter()
        .partition(|e| e["available_on"].as_i64().unwrap_or(0) <= now);
    balance[PRIVATE]["pending"] = Value::Array(waiting);
    due.iter()
        .map(|e| {
            let currency = e["currency"].as_str().unwrap_or("usd");
            let net = e["amount"].as_i64().unwrap_or(0);
            adjust(balance, currency, net, -net);
            e["txn"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

/// When the balance's next pending funds become available (unix seconds).
fn earliest(balance: &Value) -> Option<i64> {
    balance[PRIVATE]["pending"]
        .as_array()?
        .iter()
        .filter_map(|e| e["available_on"].as_i64())
        .min()
}

/// The balance's timer, armed for `due` (platform seconds) or disarmed.
fn timer(ctx: &Ctx, scope: &Scope, due: Option<i64>) -> Write {
    ctx.timer(scope, KIND, &internal_id(scope), due)
}

/// The balance's timer fired: funds due by now become available, and the
/// timer is armed for the next pending funds (or disarmed).
pub async fn tick(ctx: &Ctx, scope: &Scope) -> Result<(), ApiError> {
    retry_conflicts!((), {
        let mut ledger = Ledger::default();
        ledger.open(ctx, scope).await?;
        let next = earliest(&ledger.books[0].data);
        let mut change = ctx.change();
        ledger.close(ctx, &mut change).await?;
        change.writes.retain(|w| !matches!(w, Write::Timer(_)));
        change.writes.push(timer(ctx, scope, next));
        ctx.commit_unanswered(change).await
    })
}

/// One account's balance inside a [`Ledger`].
struct Book {
    scope: Scope,
    stored: Option<StoredObject>,
    data: Value,
    /// Balance transactions whose funds became available while open.
    settled: Vec<String>,
    /// Whether funds became available (then `balance.available` is emitted).
    grew: bool,
}

/// The balances one change moves: each opened (read, and settled up to now)
/// once, moved by any number of [`Movement`]s, written once by [`Ledger::close`].
#[derive(Default)]
pub struct Ledger {
    books: Vec<Book>,
}

impl Ledger {
    /// Reads `scope`'s balance, unless this ledger already holds it.
    pub async fn open(&mut self, ctx: &Ctx, scope: &Scope) -> Result<(), ApiError> {
        if self.books.iter().any(|b| &b.scope == scope) {
            return Ok(());
        }
        let stored = ctx
            .state
            .store
            .object(scope, KIND, &internal_id(scope))
            .await?;
        let mut data = stored
            .as_ref()
            .map_or_else(|| empty(scope.livemode), |o| o.data.clone());
        let settled = settle(&mut data, ctx.now());
        self.books.push(Book {
            scope: scope.clone(),
            stored,
            data,
            grew: !settled.is_empty(),
            settled,
        });
        Ok(())
    }

    fn book(&mut self, scope: &Scope) -> &mut Book {
        self.books
            .iter_mut()
            .find(|b| &b.scope == scope)
            .expect("a ledger moves only balances it opened")
    }

    /// The available amount of `currency` in an opened balance.
    pub fn available(&mut self, scope: &Scope, currency: &str) -> i64 {
        amount_in(&self.book(scope).data, "available", currency)
    }

    /// Records `m` on `scope` (opened): its balance transaction, and its net
    /// in `available` now or in `pending` until its `available_on`.
    pub fn record(
        &mut self,
        ctx: &Ctx,
        change: &mut Change,
        scope: &Scope,
        m: Movement<'_>,
    ) -> String {
        let net = m.amount - m.fee_total();
        let currency = m.currency.to_owned();
        let (id, available_on) = balance_transactions::record(ctx, change, scope, &m);
        let book = self.book(scope);
        if available_on <= ctx.now() {
            adjust(&mut book.data, &currency, net, 0);
            // Stripe announces funds that became available, not debits.
            book.grew |= net > 0;
        } else {
            adjust(&mut book.data, &currency, 0, net);
            book.data[PRIVATE]["pending"]
                .as_array_mut()
                .expect("pending entries are a list")
                .push(json!({"available_on": available_on, "currency": currency, "amount": net, "txn": id}));
        }
        id
    }

    /// Writes every opened balance that changed, marks its settled balance
    /// transactions available, and emits `balance.available` where funds
    /// became available.
    pub async fn close(self, ctx: &Ctx, change: &mut Change) -> Result<(), ApiError> {
        let now = ctx.now();
        for book in self.books {
            for txn in &book.settled {
                if let Some(mut t) = ctx
                    .state
                    .store
                    .object(&book.scope, balance_transactions::KIND, txn)
                    .await?
                {
                    t.data["status"] = "available".into();
                    change.writes.push(objects::replace(&book.scope, t));
                }
            }
            let unchanged = book.stored.as_ref().is_some_and(|s| s.data == book.data);
            if unchanged {
                continue;
            }
            let next = earliest(&book.data);
            if book.stored.as_ref().and_then(|s| earliest(&s.data)) != next {
                change.writes.push(timer(ctx, &book.scope, next));
            }
            if book.grew {
                change.events.push(ctx.event_on(
                    book.scope.account.clone(),
                    "balance.available",
                    objects::public(&book.data),
                    None,
                ));
            }
            change
                .writes
                .push(write(&book.scope, book.stored, book.data, now));
        }
        Ok(())
    }
}

/// The write that stores `data` as the balance read as `stored`.
fn write(scope: &Scope, stored: Option<StoredObject>, data: Value, now: i64) -> Write {
    match stored {
        Some(mut o) => {
            o.data = data;
            objects::replace(scope, o)
        }
        None => objects::insert(scope, KIND, &internal_id(scope), now, data),
    }
}

/// `scope`'s balance as of now, as `GET /v1/balance` shows it (without
/// writing what settled: a page reads it, the next movement settles it).
pub async fn current(ctx: &Ctx, scope: &Scope) -> Result<Value, ApiError> {
    let mut ledger = Ledger::default();
    ledger.open(ctx, scope).await?;
    Ok(objects::public(&ledger.books[0].data))
}

pub async fn retrieve(mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    let scope = ctx.scope.clone();
    // Settling writes the balance, so a request moving it at the same time can win the race.
    crate::context::retry_conflicts!({
        let mut ledger = Ledger::default();
        ledger.open(&ctx, &scope).await?;
        let data = objects::public(&ledger.books[0].data);
        if ledger.books[0].grew {
            // Funds became available since the last movement: say so once.
            let mut change = ctx.change();
            ledger.close(&ctx, &mut change).await?;
            return ctx.commit(change, &data).await;
        }
        ctx.respond(data).await
    })
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::get;
    axum::Router::new().route("/v1/balance", get(retrieve))
}
