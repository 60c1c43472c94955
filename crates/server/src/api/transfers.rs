//! `/v1/transfers` and their reversals: funds moving from the platform's
//! balance to a connected account's. The connected account receives a
//! *payment* (`py_…`, a charge object with `source_transfer`) in its own
//! scope; each side gets its balance transaction. Destination charges make
//! their transfer through [`create_in`] too.

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

pub const KIND: &str = "transfer";
const REVERSAL: &str = "transfer_reversal";

/// What a new transfer moves.
pub struct NewTransfer<'a> {
    pub amount: i64,
    pub currency: &'a str,
    /// A connected account of the platform, already checked.
    pub destination: &'a str,
    pub source_transaction: Option<&'a str>,
    pub transfer_group: Option<String>,
    pub description: Option<String>,
    pub metadata: Value,
    /// Whether the funds are available at once on both sides (a transfer
    /// funded by a pending charge waits with it).
    pub available_now: bool,
}

/// Writes a transfer, its destination payment and both balance transactions
/// into `change` (the ledger holds the platform's and the destination's
/// balances), with `transfer.created`. Returns the transfer.
pub fn create_in(ctx: &Ctx, change: &mut Change, ledger: &mut Ledger, t: NewTransfer<'_>) -> Value {
    let now = ctx.now();
    let platform = platform_scope(ctx);
    let dest = account_scope(ctx, t.destination);
    let id = ids::generate(ids::Prefix::Transfer, &mut rand::rng());
    let payment_id = ids::generate(ids::Prefix::Payment, &mut rand::rng());
    let txn = ledger.record(
        ctx,
        change,
        &platform,
        Movement {
            amount: -t.amount,
            currency: t.currency,
            kind: "transfer",
            reporting_category: "transfer",
            source: &id,
            description: t.description.as_deref(),
            available_now: t.available_now,
            ..Default::default()
        },
    );
    let payment_txn = ledger.record(
        ctx,
        change,
        &dest,
        Movement {
            amount: t.amount,
            currency: t.currency,
            kind: "payment",
            reporting_category: "charge",
            source: &payment_id,
            available_now: t.available_now,
            ..Default::default()
        },
    );
    let payment = objects::build(
        "charge",
        json!({
            "id": payment_id, "amount": t.amount, "amount_captured": t.amount, "amount_refunded": 0,
            "application": ctx.platform.client_id, "balance_transaction": payment_txn, "captured": true,
            "created": now, "currency": t.currency, "disputed": false, "livemode": ctx.livemode(), "metadata": {},
            "paid": true, "payment_method_details": {"stripe_account": {}, "type": "stripe_account"},
            "refunded": false, "source_transfer": id, "status": "succeeded",
            "transfer_group": t.transfer_group,
        }),
    );
    change
        .writes
        .push(objects::insert(&dest, "charge", &payment_id, now, payment));
    let transfer = objects::build(
        KIND,
        json!({
            "id": id, "amount": t.amount, "amount_reversed": 0, "balance_transaction": txn, "created": now,
            "currency": t.currency, "description": t.description, "destination": t.destination,
            "destination_payment": payment_id, "livemode": ctx.livemode(), "metadata": t.metadata,
            "reversals": {"object": "list", "data": [], "has_more": false, "url": format!("/v1/transfers/{id}/reversals")},
            "reversed": false, "source_transaction": t.source_transaction, "source_type": "card",
            "transfer_group": t.transfer_group,
        }),
    );
    change
        .writes
        .push(objects::insert(&platform, KIND, &id, now, transfer.clone()));
    change
        .events
        .push(ctx.event_on(None, "transfer.created", transfer.clone(), None));
    transfer
}

/// Reverses `amount` of `transfer` (stored in the platform's scope): the
/// destination gives the funds back. Writes the reversal, the updated
/// transfer and both balance transactions, with `transfer.reversed`.
/// Returns the reversal.
pub async fn reverse_in(
    ctx: &Ctx,
    change: &mut Change,
    ledger: &mut Ledger,
    mut transfer: StoredObject,
    amount: i64,
    metadata: Value,
    source_refund: Option<&str>,
) -> Result<Value, ApiError> {
    let now = ctx.now();
    let platform = platform_scope(ctx);
    let destination = transfer.data["destination"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let dest = account_scope(ctx, &destination);
    let left = transfer.data["amount"].as_i64().unwrap_or(0)
        - transfer.data["amount_reversed"].as_i64().unwrap_or(0);
    if amount > left {
        return Err(ApiError::invalid(
            "amount",
            format!(
                "You have attempted to reverse {amount} of transfer {}, but only {left} remains.",
                transfer.id
            ),
        ));
    }
    let currency = transfer.data["currency"]
        .as_str()
        .unwrap_or("usd")
        .to_owned();
    ledger.open(ctx, &platform).await?;
    ledger.open(ctx, &dest).await?;
    let id = ids::generate(ids::Prefix::TransferReversal, &mut rand::rng());
    let refund_id = ids::generate(ids::Prefix::PaymentRefund, &mut rand::rng());
    let txn = ledger.record(
        ctx,
        change,
        &platform,
        Movement {
            amount,
            currency: &currency,
            kind: "transfer_refund",
            reporting_category: "transfer_reversal",
            source: &id,
            available_now: true,
            ..Default::default()
        },
    );
    ledger.record(
        ctx,
        change,
        &dest,
        Movement {
            amount: -amount,
            currency: &currency,
            kind: "payment_refund",
            reporting_category: "refund",
            source: &refund_id,
            available_now: true,
            ..Default::default()
        },
    );
    let reversal = objects::build(
        REVERSAL,
        json!({
            "id": id, "amount": amount, "balance_transaction": txn, "created": now, "currency": currency,
            "destination_payment_refund": refund_id, "metadata": metadata, "source_refund": source_refund,
            "transfer": transfer.id,
        }),
    );
    change.writes.push(objects::insert(
        &platform,
        REVERSAL,
        &id,
        now,
        reversal.clone(),
    ));
    let before = transfer.data.clone();
    let reversed = before["amount_reversed"].as_i64().unwrap_or(0) + amount;
    transfer.data["amount_reversed"] = reversed.into();
    transfer.data["reversed"] = (reversed >= transfer.data["amount"].as_i64().unwrap_or(0)).into();
    objects::push_sublist(&mut transfer.data, "reversals", &reversal);
    change.events.push(ctx.event_on(
        None,
        "transfer.reversed",
        transfer.data.clone(),
        Some(previous_attributes(&before, &transfer.data)),
    ));
    change.writes.push(objects::replace(&platform, transfer));
    Ok(reversal)
}

/// A connected account the platform may transfer to, named by `param`.
pub async fn destination(
    ctx: &Ctx,
    id: &str,
    param: &'static str,
) -> Result<StoredObject, ApiError> {
    let acct = super::accounts::load(ctx, id)
        .await
        .map_err(|_| ApiError::InvalidRequest {
            message: format!("No such destination: '{id}'"),
            param: Some(param.into()),
            code: Some("resource_missing"),
        })?;
    Ok(acct)
}

/// `POST /v1/transfers`.
pub async fn create(mut ctx: Ctx) -> Result<Response, ApiError> {
    let scope = platform_only(&ctx, "transfers")?;
    let amount = objects::amount(&mut ctx, "amount")?;
    let currency = objects::currency(&mut ctx, None)?;
    let dest_id = ctx.params.required_string("destination")?;
    let source_transaction = ctx.params.string("source_transaction")?;
    let transfer_group = ctx.params.string("transfer_group")?;
    let description = ctx.params.string("description")?;
    ctx.params.take("source_type");
    let mut meta = json!({"metadata": {}});
    let mut patch = Patch::default();
    patch.metadata(&mut ctx.params)?;
    patch.apply(&mut meta);
    ctx.finish_params()?;
    destination(&ctx, &dest_id, "destination").await?;
    let destination = dest_id;
    retry_conflicts!({
        let mut ledger = Ledger::default();
        ledger.open(&ctx, &scope).await?;
        ledger
            .open(&ctx, &account_scope(&ctx, &destination))
            .await?;
        // Funds come from the available balance, or from the charge named
        // as `source_transaction` (then they wait as long as its funds do).
        let available_now = match &source_transaction {
            None => {
                let available = ledger.available(&scope, &currency);
                if available < amount {
                    return Err(ApiError::InvalidRequest {
                        message: "You have insufficient available funds in your Stripe account. Try adding funds directly to your available balance by creating Charges using the 4000000000000077 test card. See: https://stripe.com/docs/testing#available-balance".into(),
                        param: Some("amount".into()),
                        code: Some("balance_insufficient"),
                    });
                }
                true
            }
            Some(charge) => {
                let ch = objects::load(&ctx, &scope, "charge", charge, "charge")
                    .await
                    .map_err(|_| ApiError::NotFound {
                        kind: "charge",
                        id: charge.clone(),
                        param: "source_transaction",
                    })?;
                let txn_id = ch.data["balance_transaction"].as_str().unwrap_or_default();
                let txn = objects::load(
                    &ctx,
                    &scope,
                    super::balance_transactions::KIND,
                    txn_id,
                    "balance_transaction",
                )
                .await?;
                txn.data["status"] == "available"
            }
        };
        let mut change = ctx.change();
        let transfer = create_in(
            &ctx,
            &mut change,
            &mut ledger,
            NewTransfer {
                amount,
                currency: &currency,
                destination: &destination,
                source_transaction: source_transaction.as_deref(),
                transfer_group: transfer_group.clone(),
                description: description.clone(),
                metadata: meta["metadata"].clone(),
                available_now,
            },
        );
        ledger.close(&ctx, &mut change).await?;
        ctx.commit(change, &transfer).await
    })
}

pub async fn retrieve(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let scope = platform_only(&ctx, "transfers")?;
    ctx.finish_params()?;
    ctx.respond(
        objects::load(&ctx, &scope, KIND, &id, "transfer")
            .await?
            .data,
    )
    .await
}

/// `POST /v1/transfers/{id}`: description and metadata → `transfer.updated`.
pub async fn update(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let scope = platform_only(&ctx, "transfers")?;
    let mut patch = Patch::default();
    patch.strings(&mut ctx.params, &[], &["description"])?;
    patch.metadata(&mut ctx.params)?;
    ctx.finish_params()?;
    objects::update(
        &ctx,
        &scope,
        KIND,
        &id,
        "transfer",
        &patch,
        &["transfer.updated"],
    )
    .await
}

pub async fn list(mut ctx: Ctx) -> Result<Response, ApiError> {
    let scope = platform_only(&ctx, "transfers")?;
    objects::list(
        &mut ctx,
        &scope,
        KIND,
        "/v1/transfers",
        &[
            objects::by("destination", "destination"),
            objects::by("transfer_group", "transfer_group"),
        ],
    )
    .await
}

/// `POST /v1/transfers/{id}/reversals`.
pub async fn create_reversal(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let scope = platform_only(&ctx, "transfers")?;
    let amount = ctx.params.int("amount")?;
    if let Some(a) = amount
        && a <= 0
    {
        return Err(ApiError::invalid("amount", format!("Invalid amount: {a}")));
    }
    ctx.params.take("description");
    ctx.params.take("refund_application_fee");
    let mut meta = json!({"metadata": {}});
    let mut patch = Patch::default();
    patch.metadata(&mut ctx.params)?;
    patch.apply(&mut meta);
    ctx.finish_params()?;
    retry_conflicts!({
        let transfer = objects::load(&ctx, &scope, KIND, &id, "transfer").await?;
        let left = transfer.data["amount"].as_i64().unwrap_or(0)
            - transfer.data["amount_reversed"].as_i64().unwrap_or(0);
        let mut ledger = Ledger::default();
        let mut change = ctx.change();
        let reversal = reverse_in(
            &ctx,
            &mut change,
            &mut ledger,
            transfer,
            amount.unwrap_or(left),
            meta["metadata"].clone(),
            None,
        )
        .await?;
        ledger.close(&ctx, &mut change).await?;
        ctx.commit(change, &reversal).await
    })
}

fn reversal_of(r: StoredObject, transfer: &str) -> Result<StoredObject, ApiError> {
    if r.data["transfer"] == transfer {
        Ok(r)
    } else {
        Err(ApiError::not_found("transfer_reversal", r.id))
    }
}

pub async fn retrieve_reversal(
    Path((transfer, id)): Path<(String, String)>,
    mut ctx: Ctx,
) -> Result<Response, ApiError> {
    let scope = platform_only(&ctx, "transfers")?;
    ctx.finish_params()?;
    let r = objects::load(&ctx, &scope, REVERSAL, &id, "transfer_reversal").await?;
    ctx.respond(reversal_of(r, &transfer)?.data).await
}

/// `POST /v1/transfers/{id}/reversals/{reversal}`: metadata.
pub async fn update_reversal(
    Path((transfer, id)): Path<(String, String)>,
    mut ctx: Ctx,
) -> Result<Response, ApiError> {
    let scope = platform_only(&ctx, "transfers")?;
    let mut patch = Patch::default();
    patch.metadata(&mut ctx.params)?;
    ctx.finish_params()?;
    retry_conflicts!({
        let r = objects::load(&ctx, &scope, REVERSAL, &id, "transfer_reversal").await?;
        let mut r = reversal_of(r, &transfer)?;
        patch.apply(&mut r.data);
        let body = r.data.clone();
        let mut change = ctx.change();
        change.writes.push(objects::replace(&scope, r));
        ctx.commit(change, &body).await
    })
}

pub async fn list_reversals(
    Path(transfer): Path<String>,
    mut ctx: Ctx,
) -> Result<Response, ApiError> {
    let scope = platform_only(&ctx, "transfers")?;
    objects::load(&ctx, &scope, KIND, &transfer, "transfer").await?;
    objects::list_where(
        &mut ctx,
        &scope,
        REVERSAL,
        &format!("/v1/transfers/{transfer}/reversals"),
        &[],
        vec![("transfer", transfer.clone().into())],
    )
    .await
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/v1/transfers", get(list).post(create))
        .route("/v1/transfers/{id}", get(retrieve).post(update))
        .route(
            "/v1/transfers/{id}/reversals",
            get(list_reversals).post(create_reversal),
        )
        .route(
            "/v1/transfers/{id}/reversals/{reversal}",
            get(retrieve_reversal).post(update_reversal),
        )
}
