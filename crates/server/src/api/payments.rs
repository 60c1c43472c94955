//! `/v1/payment_intents` and `/v1/charges`: payments with Stripe's test
//! payment methods. Confirming charges the payment method: a declined card
//! is a 402 whose events still happen; a 3-D Secure card waits in
//! `requires_action` until the hosted authentication page
//! (`crate::pages`) completes or fails it; a bank debit is `processing`;
//! `capture_method=manual` authorizes and waits for `capture`. Captured
//! funds go through the [`Ledger`]: Stripe's fee, the platform's
//! `application_fee_amount` (an application fee on a direct charge), the
//! transfer of a destination charge (`transfer_data`), and the disputes of
//! the dispute test cards.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use switchboard_core::connect::{self, CardOutcome};
use switchboard_core::form::Params;
use switchboard_core::ids;
use switchboard_store::{Change, Scope, Write};

use super::accounts::{account_scope, platform_scope};
use super::balance::Ledger;
use super::balance_transactions::Movement;
use super::patch::Patch;
use super::payment_methods::Charging;
use super::{application_fees, disputes, objects, payment_methods, transfers};
use crate::context::{Ctx, Path, retry_conflicts};
use crate::error::ApiError;

const PI: &str = "payment_intent";
pub const CHARGE: &str = "charge";

/// Resolves the PaymentMethod `pi` names (a test alias becomes a new
/// `pm_…` object, written into `change`) and points `pi` at its id.
async fn attach_method(
    ctx: &Ctx,
    pi: &mut Value,
    change: &mut Change,
) -> Result<Option<Value>, ApiError> {
    let Some(named) = pi["payment_method"].as_str().map(str::to_owned) else {
        return Ok(None);
    };
    let pm = payment_methods::resolve(ctx, &named, change).await?;
    pi["payment_method"] = pm["id"].clone();
    Ok(Some(pm))
}

/// Parameters shared by create, update and confirm.
fn parse(p: &mut Params) -> Result<Patch, ApiError> {
    let mut patch = Patch::default();
    patch.strings(
        p,
        &[],
        &[
            "description",
            "receipt_email",
            "customer",
            "statement_descriptor",
            "statement_descriptor_suffix",
            "setup_future_usage",
            "transfer_group",
        ],
    )?;
    if let Some(pm) = p.string("payment_method")? {
        // A name for now; `attach_method` turns it into a PaymentMethod.
        patch.set(&["payment_method"], pm);
    }
    if let Some(Some(mut data)) = p.nested("payment_method_data")? {
        // An inline PaymentMethod: a card token or a customer balance.
        let kind = data.required_string("type")?;
        let alias = match kind.as_str() {
            "card" => {
                let mut card = data.nested("card")?.flatten().ok_or_else(|| {
                    ApiError::Param(switchboard_core::form::ParamError::missing(
                        "payment_method_data[card][token]",
                    ))
                })?;
                let token = card.required_string("token")?;
                card.finish()?;
                token
            }
            "customer_balance" => "customer_balance".to_owned(),
            other => {
                return Err(ApiError::invalid(
                    "payment_method_data[type]",
                    format!(
                        "Switchboard supports payment_method_data[type] card and customer_balance, not {other}."
                    ),
                ));
            }
        };
        data.take("billing_details");
        data.take("metadata");
        data.finish()?;
        patch.set(&["payment_method"], alias);
    }
    if let Some(types) = p.string_list("payment_method_types")? {
        patch.set(&["payment_method_types"], json!(types));
    }
    if let Some(Some(mut apm)) = p.nested("automatic_payment_methods")? {
        let enabled = apm.bool("enabled")?.unwrap_or(false);
        let redirects = apm.string("allow_redirects")?;
        apm.finish()?;
        patch.set(
            &["automatic_payment_methods"],
            json!({"allow_redirects": redirects.unwrap_or_else(|| "always".into()), "enabled": enabled}),
        );
    }
    if let Some(shipping) = p.take("shipping") {
        patch.set(&["shipping"], objects::form_json(shipping));
    }
    if let Some(fee) = p.int("application_fee_amount")? {
        if fee < 0 {
            return Err(ApiError::invalid(
                "application_fee_amount",
                format!("Invalid application_fee_amount: {fee}"),
            ));
        }
        patch.set(&["application_fee_amount"], fee);
    }
    if let Some(Some(mut td)) = p.nested("transfer_data")? {
        let destination = td.required_string("destination")?;
        let amount = td.int("amount")?;
        td.finish()?;
        let mut data = json!({"destination": destination});
        if let Some(amount) = amount {
            data["amount"] = amount.into();
        }
        patch.set(&["transfer_data"], data);
    }
    if let Some(obo) = p.clearable_string("on_behalf_of")? {
        patch.set(&["on_behalf_of"], obo.map_or(Value::Null, Value::String));
    }
    patch.metadata(p)?;
    Ok(patch)
}

/// `patch` on a PaymentIntent: a payment method makes it ready to confirm.
fn apply(patch: &Patch, pi: &mut Value) {
    patch.apply(pi);
    if patch.touches(&["payment_method"]) && pi["status"] == "requires_payment_method" {
        pi["status"] = "requires_confirmation".into();
    }
}

/// Stripe's rules for the Connect parameters of a PaymentIntent.
async fn check_connect(ctx: &Ctx, pi: &Value) -> Result<(), ApiError> {
    let amount = pi["amount"].as_i64().unwrap_or(0);
    let destination = pi["transfer_data"]["destination"].as_str();
    if let Some(dest) = destination {
        if ctx.scope.account.is_some() {
            return Err(ApiError::invalid(
                "transfer_data[destination]",
                "A destination charge is made by the platform: send it without the Stripe-Account header.",
            ));
        }
        transfers::destination(ctx, dest, "transfer_data[destination]").await?;
        if pi["transfer_data"]["amount"]
            .as_i64()
            .is_some_and(|a| a < 0 || a > amount)
        {
            return Err(ApiError::invalid(
                "transfer_data[amount]",
                "The transfer amount must be positive and at most the PaymentIntent's amount.",
            ));
        }
    }
    if let Some(obo) = pi["on_behalf_of"].as_str() {
        transfers::destination(ctx, obo, "on_behalf_of").await?;
    }
    if let Some(fee) = pi["application_fee_amount"].as_i64() {
        if ctx.scope.account.is_none() && destination.is_none() {
            return Err(ApiError::invalid(
                "application_fee_amount",
                "Can only apply an application_fee_amount when the PaymentIntent is attempting a direct payment (using an OAuth key or Stripe-Account header) or destination payment (using `transfer_data[destination]`).",
            ));
        }
        if fee > amount {
            return Err(ApiError::invalid(
                "application_fee_amount",
                "The application fee cannot be greater than the amount of the PaymentIntent.",
            ));
        }
    }
    Ok(())
}

/// Accepted on create and confirm for SDKs and CLI fixtures; they do not
/// change a test payment method's outcome.
const IGNORED: [&str; 5] = [
    "off_session",
    "payment_method_options",
    "mandate_data",
    "error_on_requires_action",
    "use_stripe_sdk",
];

const CAPTURE_METHODS: [&str; 3] = ["automatic", "automatic_async", "manual"];

pub async fn create(mut ctx: Ctx) -> Result<Response, ApiError> {
    let amount = objects::amount(&mut ctx, "amount")?;
    let currency = objects::currency(&mut ctx, None)?;
    let confirm = ctx.params.bool("confirm")?.unwrap_or(false);
    let capture_method = ctx
        .params
        .string("capture_method")?
        .unwrap_or_else(|| "automatic_async".into());
    if !CAPTURE_METHODS.contains(&capture_method.as_str()) {
        return Err(ApiError::invalid(
            "capture_method",
            format!(
                "Invalid capture_method: must be one of automatic, automatic_async, or manual (got {capture_method})"
            ),
        ));
    }
    let confirmation_method = ctx
        .params
        .string("confirmation_method")?
        .unwrap_or_else(|| "automatic".into());
    if !["automatic", "manual"].contains(&confirmation_method.as_str()) {
        return Err(ApiError::invalid(
            "confirmation_method",
            format!("Invalid confirmation_method: {confirmation_method}"),
        ));
    }
    let return_url = ctx.params.string("return_url")?;
    for ignored in IGNORED {
        ctx.params.take(ignored);
    }
    let id = ids::generate(ids::Prefix::PaymentIntent, &mut rand::rng());
    let now = ctx.now();
    let mut pi = json!({
        "id": id, "object": "payment_intent", "amount": amount, "amount_capturable": 0, "amount_details": {"tip": {}},
        "amount_received": 0, "application": null, "application_fee_amount": null, "automatic_payment_methods": null,
        "canceled_at": null, "cancellation_reason": null, "capture_method": capture_method,
        "client_secret": format!("{id}_secret_{}", ids::generate_request_id(&mut rand::rng()).trim_start_matches("req_")),
        "confirmation_method": confirmation_method, "created": now, "currency": currency, "customer": null, "description": null,
        "last_payment_error": null, "latest_charge": null, "livemode": ctx.livemode(), "metadata": {}, "next_action": null,
        "on_behalf_of": null, "payment_method": null, "payment_method_types": ["card"], "processing": null,
        "receipt_email": null, "shipping": null, "statement_descriptor": null, "status": "requires_payment_method",
        "transfer_data": null,
    });
    apply(&parse(&mut ctx.params)?, &mut pi);
    ctx.finish_params()?;
    check_connect(&ctx, &pi).await?;
    if ctx.scope.account.is_some() {
        pi["application"] = ctx.platform.client_id.clone().into();
    }
    pi[objects::PRIVATE]["return_url"] = return_url.map_or(Value::Null, Value::String);
    let mut change = ctx.change();
    let method = attach_method(&ctx, &mut pi, &mut change).await?;
    let pi = objects::build("payment_intent", pi);
    change
        .events
        .push(ctx.event("payment_intent.created", objects::public(&pi), None));
    if !confirm {
        change
            .writes
            .push(objects::insert(&ctx.scope, PI, &id, now, pi.clone()));
        return ctx.commit(change, &objects::public(&pi)).await;
    }
    let mut ledger = Ledger::default();
    let mut pi = pi;
    let status = confirm_into(&ctx, &mut pi, method.as_ref(), &mut ledger, &mut change).await?;
    change
        .writes
        .push(objects::insert(&ctx.scope, PI, &id, now, pi.clone()));
    ledger.close(&ctx, &mut change).await?;
    respond(&ctx, change, status, &pi).await
}

/// Charges the payment method: builds the charge, moves funds, and adds the
/// events. Returns the HTTP status of the answer (402 for a decline).
async fn confirm_into(
    ctx: &Ctx,
    pi: &mut Value,
    method: Option<&Value>,
    ledger: &mut Ledger,
    change: &mut Change,
) -> Result<StatusCode, ApiError> {
    let status = pi["status"].as_str().unwrap_or_default();
    if ![
        "requires_payment_method",
        "requires_confirmation",
        "requires_action",
    ]
    .contains(&status)
    {
        return Err(ApiError::InvalidRequest {
            message: format!("This PaymentIntent's status is {status}, so it cannot be confirmed."),
            param: None,
            code: Some("payment_intent_unexpected_state"),
        });
    }
    let Some(pm) = method else {
        return Err(ApiError::InvalidRequest {
            message: "You cannot confirm this PaymentIntent because it's missing a payment method."
                .into(),
            param: Some("payment_method".into()),
            code: Some("payment_intent_unexpected_state"),
        });
    };
    pi["next_action"] = Value::Null;
    if pm["type"] == "customer_balance" {
        return super::cash_balance::apply_to_payment(ctx, pi, ledger, change).await;
    }
    match payment_methods::outcome(pm) {
        Charging::Card(CardOutcome::RequiresAction)
            if pi[objects::PRIVATE]["authenticated"] != true =>
        {
            let id = pi["id"].as_str().unwrap_or_default().to_owned();
            let secret = pi["client_secret"].as_str().unwrap_or_default().to_owned();
            pi["status"] = "requires_action".into();
            pi["next_action"] = json!({"type": "redirect_to_url", "redirect_to_url": {
                "return_url": pi[objects::PRIVATE]["return_url"],
                "url": crate::pages::authenticate_url(ctx, &id, &secret),
            }});
            change.events.push(ctx.event(
                "payment_intent.requires_action",
                objects::public(pi),
                None,
            ));
            Ok(StatusCode::OK)
        }
        Charging::Card(CardOutcome::Declined {
            code,
            decline_code,
            message,
        }) => {
            let mut charge = new_charge(ctx, pi, pm, "failed");
            charge["failure_code"] = code.into();
            charge["failure_message"] = message.into();
            charge["outcome"] = json!({"advice_code": null, "network_advice_code": null, "network_decline_code": null,
                "network_status": "declined_by_network", "reason": decline_code, "risk_level": "normal",
                "seller_message": "The bank did not return any further details with this decline.", "type": "issuer_declined"});
            pi["status"] = "requires_payment_method".into();
            pi["last_payment_error"] = json!({
                "charge": charge["id"], "code": code, "decline_code": decline_code,
                "doc_url": format!("https://stripe.com/docs/error-codes/{}", code.replace('_', "-")), "message": message,
                "payment_method": objects::public(pm), "type": "card_error",
            });
            store_charge(ctx, change, pi, &charge);
            change.events.push(ctx.event("charge.failed", charge, None));
            change.events.push(ctx.event(
                "payment_intent.payment_failed",
                objects::public(pi),
                None,
            ));
            Ok(StatusCode::PAYMENT_REQUIRED)
        }
        Charging::Card(CardOutcome::Succeeds { available, dispute }) => {
            succeed(ctx, pi, pm, available, dispute, ledger, change).await?;
            Ok(StatusCode::OK)
        }
        Charging::Card(CardOutcome::RequiresAction) => {
            // Authenticated on the hosted page: the card now charges.
            succeed(ctx, pi, pm, false, None, ledger, change).await?;
            Ok(StatusCode::OK)
        }
        Charging::Processing => {
            let mut charge = new_charge(ctx, pi, pm, "pending");
            charge["outcome"] = json!({"advice_code": null, "network_advice_code": null, "network_decline_code": null,
                "network_status": "approved_by_network", "reason": null, "risk_level": "not_assessed",
                "seller_message": "Payment complete.", "type": "authorized"});
            pi["status"] = "processing".into();
            store_charge(ctx, change, pi, &charge);
            // The bank answers later: the PaymentIntent's timer settles it.
            let last4 = pm["sepa_debit"]["last4"].as_str().unwrap_or_default();
            let after = connect::debit_outcome(last4).after_secs;
            if let Some(id) = pi["id"].as_str() {
                change.writes.push(timer(ctx, id, Some(ctx.now() + after)));
            }
            change
                .events
                .push(ctx.event("charge.pending", objects::public(&charge), None));
            change
                .events
                .push(ctx.event("payment_intent.processing", objects::public(pi), None));
            Ok(StatusCode::OK)
        }
    }
}

/// A successful authorization: captured now, or held for `capture`.
async fn succeed(
    ctx: &Ctx,
    pi: &mut Value,
    pm: &Value,
    available: bool,
    dispute: Option<connect::DisputeKind>,
    ledger: &mut Ledger,
    change: &mut Change,
) -> Result<(), ApiError> {
    let mut charge = new_charge(ctx, pi, pm, "succeeded");
    charge[objects::PRIVATE]["available"] = available.into();
    pi["latest_charge"] = charge["id"].clone();
    let amount = pi["amount"].as_i64().unwrap_or(0);
    if pi["capture_method"] == "manual" {
        pi["status"] = "requires_capture".into();
        pi["amount_capturable"] = amount.into();
        charge["captured"] = false.into();
        charge["amount_captured"] = 0.into();
        let expires = ctx.now() + CAPTURE_WINDOW;
        charge["payment_method_details"]["card"]["capture_before"] = expires.into();
        if let Some(id) = pi["id"].as_str() {
            change.writes.push(timer(ctx, id, Some(expires)));
        }
        store_charge(ctx, change, pi, &charge);
        change
            .events
            .push(ctx.event("charge.succeeded", objects::public(&charge), None));
        change.events.push(ctx.event(
            "payment_intent.amount_capturable_updated",
            objects::public(pi),
            None,
        ));
        return Ok(());
    }
    capture_funds(ctx, pi, &mut charge, amount, ledger, change).await?;
    change
        .events
        .push(ctx.event("charge.succeeded", objects::public(&charge), None));
    change
        .events
        .push(ctx.event("payment_intent.succeeded", objects::public(pi), None));
    if let Some(kind) = dispute {
        disputes::open_in(ctx, change, ledger, &mut charge, kind).await?;
    }
    store_charge(ctx, change, pi, &charge);
    Ok(())
}

/// Writes `charge` (new, or replacing the insert already in `change`) and
/// points the PaymentIntent at it.
fn store_charge(ctx: &Ctx, change: &mut Change, pi: &mut Value, charge: &Value) {
    pi["latest_charge"] = charge["id"].clone();
    let id = charge["id"].as_str().unwrap_or_default().to_owned();
    if let Some(staged) = objects::staged(change, &id) {
        staged.data = charge.clone();
        return;
    }
    change.writes.push(objects::insert(
        &ctx.scope,
        CHARGE,
        &id,
        ctx.now(),
        charge.clone(),
    ));
}

/// A charge of `pi` with `pm`, in the given status, not yet captured.
fn new_charge(ctx: &Ctx, pi: &Value, pm: &Value, status: &str) -> Value {
    let charge_id = ids::generate(ids::Prefix::Charge, &mut rand::rng());
    let amount = pi["amount"].as_i64().unwrap_or(0);
    let succeeded = status == "succeeded";
    let details = if pm["type"] == "customer_balance" {
        json!({"customer_balance": {}, "type": "customer_balance"})
    } else if pm["type"] == "sepa_debit" {
        let d = &pm["sepa_debit"];
        json!({"sepa_debit": {"bank_code": d["bank_code"], "branch_code": d["branch_code"], "country": d["country"],
            "fingerprint": d["fingerprint"], "last4": d["last4"], "mandate": null}, "type": "sepa_debit"})
    } else {
        let card = &pm["card"];
        json!({"card": {
            "amount_authorized": if succeeded { Value::from(amount) } else { Value::Null },
            "authorization_code": if succeeded { Value::from("123456") } else { Value::Null },
            "brand": card["brand"], "checks": card["checks"], "country": card["country"], "exp_month": card["exp_month"],
            "exp_year": card["exp_year"], "fingerprint": card["fingerprint"], "funding": card["funding"],
            "last4": card["last4"], "network": card["brand"],
            "network_transaction_id": if succeeded { Value::from("1041029786787710") } else { Value::Null },
            "regulated_status": card["regulated_status"],
        }, "type": "card"})
    };
    objects::build(
        "charge",
        json!({
            "id": charge_id, "amount": amount, "amount_captured": 0,
            "amount_refunded": 0, "application": pi["application"], "application_fee_amount": null,
            "balance_transaction": null,
            "captured": false, "created": ctx.now(), "currency": pi["currency"], "customer": pi["customer"], "description": pi["description"],
            "disputed": false, "livemode": ctx.livemode(), "metadata": pi["metadata"],
            "on_behalf_of": pi["on_behalf_of"],
            "outcome": {"network_status": "approved_by_network", "reason": null, "risk_level": "normal", "seller_message": "Payment complete.", "type": "authorized"},
            "paid": succeeded, "payment_intent": pi["id"], "payment_method": pm["id"],
            "payment_method_details": details,
            "receipt_email": pi["receipt_email"], "refunded": false, "shipping": pi["shipping"],
            "status": status, "transfer_data": pi["transfer_data"], "transfer_group": pi["transfer_group"],
        }),
    )
}

/// Captures `amount` of `charge`: Stripe's fee, the application fee, the
/// destination's transfer, each on its account's balance.
async fn capture_funds(
    ctx: &Ctx,
    pi: &mut Value,
    charge: &mut Value,
    amount: i64,
    ledger: &mut Ledger,
    change: &mut Change,
) -> Result<(), ApiError> {
    let owner = ctx.scope.clone();
    let platform = platform_scope(ctx);
    ledger.open(ctx, &owner).await?;
    let currency = charge["currency"].as_str().unwrap_or("usd").to_owned();
    let charge_id = charge["id"].as_str().unwrap_or_default().to_owned();
    let available_now = charge[objects::PRIVATE]["available"] == true;
    let app_fee = pi["application_fee_amount"].as_i64().filter(|f| *f > 0);
    let direct = owner.account.is_some();
    let txn = ledger.record(
        ctx,
        change,
        &owner,
        Movement {
            amount,
            fee: connect::processing_fee(
                charge["payment_method_details"]["type"]
                    .as_str()
                    .unwrap_or("card"),
                amount,
            ),
            application_fee: if direct { app_fee.unwrap_or(0) } else { 0 },
            currency: &currency,
            kind: "charge",
            reporting_category: "charge",
            source: &charge_id,
            description: charge["description"].as_str(),
            available_now,
        },
    );
    charge["balance_transaction"] = txn.into();
    charge["captured"] = true.into();
    charge["amount_captured"] = amount.into();
    let total = charge["amount"].as_i64().unwrap_or(0);
    if amount < total {
        // The uncaptured remainder is released, shown as refunded.
        charge["amount_refunded"] = (total - amount).into();
    }
    if let Some(dest) = pi["transfer_data"]["destination"]
        .as_str()
        .map(str::to_owned)
    {
        ledger.open(ctx, &platform).await?;
        ledger.open(ctx, &account_scope(ctx, &dest)).await?;
        let transfer_amount = pi["transfer_data"]["amount"]
            .as_i64()
            .unwrap_or(amount - app_fee.unwrap_or(0))
            .min(amount);
        let group = pi["transfer_group"].as_str().map_or_else(
            || format!("group_{}", pi["id"].as_str().unwrap_or_default()),
            str::to_owned,
        );
        let transfer = transfers::create_in(
            ctx,
            change,
            ledger,
            transfers::NewTransfer {
                amount: transfer_amount,
                currency: &currency,
                destination: &dest,
                source_transaction: Some(&charge_id),
                transfer_group: Some(group.clone()),
                description: None,
                metadata: json!({}),
                available_now,
            },
        );
        charge["transfer"] = transfer["id"].clone();
        charge["transfer_group"] = group.into();
    }
    // The fee is taken from the connected account: the destination (the
    // platform keeps it by transferring less) or the direct charge's owner
    // (it moves to the platform's balance).
    let fee_account = pi["transfer_data"]["destination"]
        .as_str()
        .map(|d| (d.to_owned(), false))
        .or_else(|| owner.account.clone().map(|a| (a, true)));
    if let (Some(fee), Some((account, moves_funds))) = (app_fee, fee_account) {
        let fee_id = application_fees::create_in(
            ctx,
            change,
            ledger,
            application_fees::NewFee {
                amount: fee,
                currency: &currency,
                account: &account,
                charge: &charge_id,
                moves_funds,
                available_now,
            },
        )
        .await?;
        charge["application_fee"] = fee_id.into();
        charge["application_fee_amount"] = fee.into();
    }
    pi["status"] = "succeeded".into();
    pi["amount_received"] = amount.into();
    pi["amount_capturable"] = 0.into();
    Ok(())
}

/// A `customer_balance` PaymentIntent fully funded from the customer's cash
/// balance: its charge succeeds and the funds reach the merchant's balance
/// at once (`charge.succeeded`; the caller emits `payment_intent.succeeded`).
pub(super) async fn charge_cash_balance(
    ctx: &Ctx,
    pi: &mut Value,
    ledger: &mut Ledger,
    change: &mut Change,
) -> Result<(), ApiError> {
    let pm = json!({"id": pi["payment_method"], "type": "customer_balance"});
    let mut charge = new_charge(ctx, pi, &pm, "succeeded");
    charge[objects::PRIVATE]["available"] = true.into();
    let amount = pi["amount"].as_i64().unwrap_or(0);
    capture_funds(ctx, pi, &mut charge, amount, ledger, change).await?;
    change
        .events
        .push(ctx.event("charge.succeeded", objects::public(&charge), None));
    store_charge(ctx, change, pi, &charge);
    Ok(())
}

/// 200 with the PaymentIntent, or Stripe's 402 `card_error` carrying it.
async fn respond(
    ctx: &Ctx,
    change: Change,
    status: StatusCode,
    pi: &Value,
) -> Result<Response, ApiError> {
    let public = objects::public(pi);
    if status == StatusCode::OK {
        return ctx.commit(change, &public).await;
    }
    let body = crate::error::card_error(&pi["last_payment_error"], &public);
    ctx.commit_status(change, status, &body).await
}

pub async fn confirm(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let patch = parse(&mut ctx.params)?;
    let return_url = ctx.params.string("return_url")?;
    ctx.params.take("client_secret");
    for ignored in IGNORED {
        ctx.params.take(ignored);
    }
    ctx.finish_params()?;
    retry_conflicts!({
        let mut stored = objects::load(&ctx, &ctx.scope, PI, &id, "payment_intent").await?;
        apply(&patch, &mut stored.data);
        if let Some(url) = &return_url {
            stored.data[objects::PRIVATE]["return_url"] = url.clone().into();
        }
        check_connect(&ctx, &stored.data).await?;
        let mut ledger = Ledger::default();
        let mut change = ctx.change();
        let mut pi = stored.data.clone();
        let method = attach_method(&ctx, &mut pi, &mut change).await?;
        let status = confirm_into(&ctx, &mut pi, method.as_ref(), &mut ledger, &mut change).await?;
        stored.data = pi.clone();
        change.writes.push(objects::replace(&ctx.scope, stored));
        ledger.close(&ctx, &mut change).await?;
        respond(&ctx, change, status, &pi).await
    })
}

/// Completes or fails a PaymentIntent's 3-D Secure authentication (the
/// hosted page's buttons): completing charges the card as confirming
/// would; failing returns it to `requires_payment_method`.
pub async fn authenticate(
    ctx: &Ctx,
    scope: &Scope,
    id: &str,
    client_secret: &str,
    complete: bool,
) -> Result<Value, ApiError> {
    retry_conflicts!(Value, {
        let mut stored = objects::load(ctx, scope, PI, id, "payment_intent").await?;
        if stored.data["client_secret"] != client_secret {
            return Err(ApiError::not_found("payment_intent", id));
        }
        if stored.data["status"] != "requires_action" {
            return Ok(stored.data);
        }
        let mut change = ctx.change();
        let mut ledger = Ledger::default();
        let mut pi = stored.data.clone();
        let named = pi["payment_method"].as_str().unwrap_or_default().to_owned();
        let pm = objects::load(ctx, scope, payment_methods::KIND, &named, "payment_method").await?;
        if complete {
            pi[objects::PRIVATE]["authenticated"] = true.into();
            confirm_into(ctx, &mut pi, Some(&pm.data), &mut ledger, &mut change).await?;
        } else {
            pi["status"] = "requires_payment_method".into();
            pi["next_action"] = Value::Null;
            pi["last_payment_error"] = json!({
                "code": "payment_intent_authentication_failure",
                "doc_url": "https://stripe.com/docs/error-codes/payment-intent-authentication-failure",
                "message": "The provided PaymentMethod has failed authentication. You can provide payment_method_data or a new PaymentMethod to attempt to fulfill this PaymentIntent again.",
                "payment_method": objects::public(&pm.data), "type": "invalid_request_error",
            });
            change.events.push(ctx.event(
                "payment_intent.payment_failed",
                objects::public(&pi),
                None,
            ));
        }
        stored.data = pi.clone();
        change.writes.push(objects::replace(scope, stored));
        ledger.close(ctx, &mut change).await?;
        ctx.commit_unanswered(change).await?;
        Ok(pi)
    })
}

/// `POST /v1/payment_intents/{id}/capture`: captures an authorized payment
/// (all of it, or `amount_to_capture`) → `charge.captured`,
/// `payment_intent.succeeded`.
pub async fn capture(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let amount_to_capture = ctx.params.int("amount_to_capture")?;
    let fee = ctx.params.int("application_fee_amount")?;
    let mut patch = Patch::default();
    patch.strings(
        &mut ctx.params,
        &[],
        &["statement_descriptor", "statement_descriptor_suffix"],
    )?;
    patch.metadata(&mut ctx.params)?;
    ctx.params.take("final_capture");
    ctx.finish_params()?;
    retry_conflicts!({
        let mut stored = objects::load(&ctx, &ctx.scope, PI, &id, "payment_intent").await?;
        if stored.data["status"] != "requires_capture" {
            return Err(ApiError::InvalidRequest {
                message: format!(
                    "This PaymentIntent could not be captured because it has a status of {}. Only a PaymentIntent with one of the following statuses may be captured: requires_capture.",
                    stored.data["status"].as_str().unwrap_or("?")
                ),
                param: None,
                code: Some("payment_intent_unexpected_state"),
            });
        }
        let capturable = stored.data["amount_capturable"].as_i64().unwrap_or(0);
        let amount = amount_to_capture.unwrap_or(capturable);
        if amount <= 0 || amount > capturable {
            return Err(ApiError::invalid(
                "amount_to_capture",
                format!(
                    "The amount to capture must be positive and at most the amount capturable ({capturable})."
                ),
            ));
        }
        let mut pi = stored.data.clone();
        patch.apply(&mut pi);
        if let Some(f) = fee {
            pi["application_fee_amount"] = f.into();
        }
        let charge_id = pi["latest_charge"].as_str().unwrap_or_default().to_owned();
        let mut charge = objects::load(&ctx, &ctx.scope, CHARGE, &charge_id, "charge").await?;
        let mut ledger = Ledger::default();
        let mut change = ctx.change();
        capture_funds(
            &ctx,
            &mut pi,
            &mut charge.data,
            amount,
            &mut ledger,
            &mut change,
        )
        .await?;
        change
            .events
            .push(ctx.event("charge.captured", objects::public(&charge.data), None));
        change
            .events
            .push(ctx.event("payment_intent.succeeded", objects::public(&pi), None));
        change.writes.push(objects::replace(&ctx.scope, charge));
        stored.data = pi.clone();
        change.writes.push(objects::replace(&ctx.scope, stored));
        ledger.close(&ctx, &mut change).await?;
        ctx.commit(change, &objects::public(&pi)).await
    })
}

const CANCELLATION_REASONS: [&str; 4] = [
    "duplicate",
    "fraudulent",
    "requested_by_customer",
    "abandoned",
];

/// `POST /v1/payment_intents/{id}/cancel` → `payment_intent.canceled` (an
/// authorization held for capture is released: its charge shows refunded).
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
        if status == "succeeded" || status == "canceled" || status == "processing" {
            return Err(ApiError::InvalidRequest {
                message: format!(
                    "You cannot cancel this PaymentIntent because it has a status of {status}. Only a PaymentIntent with one of the following statuses may be canceled: requires_payment_method, requires_capture, requires_confirmation, requires_action, processing."
                ),
                param: None,
                code: Some("payment_intent_unexpected_state"),
            });
        }
        let mut change = ctx.change();
        let reason = reason.clone().map_or(Value::Null, Value::String);
        cancel_in(&ctx, &mut change, &mut stored.data, reason, false).await?;
        let body = objects::public(&stored.data);
        change.writes.push(objects::replace(&ctx.scope, stored));
        ctx.commit(change, &body).await
    })
}

/// Cancels `pi` in `change`: an authorization held for capture is released
/// (its charge shows refunded, or, when it `expired` uncaptured after seven
/// days, `charge.expired`), then `payment_intent.canceled`.
async fn cancel_in(
    ctx: &Ctx,
    change: &mut Change,
    pi: &mut Value,
    reason: Value,
    expired: bool,
) -> Result<(), ApiError> {
    if pi["status"] == "requires_capture"
        && let Some(charge_id) = pi["latest_charge"].as_str()
    {
        let mut charge = objects::load(ctx, &ctx.scope, CHARGE, charge_id, "charge").await?;
        charge.data["amount_refunded"] = charge.data["amount"].clone();
        charge.data["refunded"] = true.into();
        let event = if expired {
            "charge.expired"
        } else {
            "charge.refunded"
        };
        change
            .events
            .push(ctx.event(event, objects::public(&charge.data), None));
        change.writes.push(objects::replace(&ctx.scope, charge));
    }
    pi["status"] = "canceled".into();
    pi["amount_capturable"] = 0.into();
    pi["next_action"] = Value::Null;
    pi["canceled_at"] = ctx.now().into();
    pi["cancellation_reason"] = reason;
    change
        .events
        .push(ctx.event("payment_intent.canceled", objects::public(pi), None));
    Ok(())
}

/// An authorization held for capture expires after seven days, as on Stripe.
const CAPTURE_WINDOW: i64 = 7 * 86_400;

/// The PaymentIntent's timer: armed for `due` (platform seconds) or disarmed.
fn timer(ctx: &Ctx, id: &str, due: Option<i64>) -> Write {
    ctx.timer(&ctx.scope, PI, id, due)
}

/// The PaymentIntent's timer fired: a bank debit in `processing` settles
/// as its test IBAN says ([`settle_debit`]); an authorization still
/// uncaptured after the capture window is canceled
/// (`cancellation_reason: automatic`) and its charge expires.
pub async fn tick(ctx: &Ctx, id: &str) -> Result<(), ApiError> {
    retry_conflicts!((), {
        let mut change = ctx.change();
        change.writes.push(timer(ctx, id, None));
        let Some(mut stored) = ctx.state.store.object(&ctx.scope, PI, id).await? else {
            return ctx.commit_unanswered(change).await;
        };
        let charge = match stored.data["latest_charge"].as_str() {
            Some(c) => ctx.state.store.object(&ctx.scope, CHARGE, c).await?,
            None => None,
        };
        match (stored.data["status"].as_str(), charge) {
            (Some("processing"), Some(charge)) => {
                let mut ledger = Ledger::default();
                settle_debit(ctx, &mut stored.data, charge, &mut ledger, &mut change).await?;
                ledger.close(ctx, &mut change).await?;
                change.writes.push(objects::replace(&ctx.scope, stored));
            }
            (Some("requires_capture"), charge) => {
                let due = charge
                    .and_then(|c| {
                        c.data["payment_method_details"]["card"]["capture_before"].as_i64()
                    })
                    .unwrap_or(0);
                if due > ctx.now() {
                    change.writes.pop();
                    change.writes.push(timer(ctx, id, Some(due)));
                } else {
                    cancel_in(ctx, &mut change, &mut stored.data, "automatic".into(), true).await?;
                    change.writes.push(objects::replace(&ctx.scope, stored));
                }
            }
            _ => {}
        }
        ctx.commit_unanswered(change).await
    })
}

/// `POST /v1/payment_intents/{id}/increment_authorization`: raises the
/// amount held for capture (to `amount`, the new total) before capture, as
/// hotels and car rentals do → `payment_intent.amount_capturable_updated`.
pub async fn increment_authorization(
    Path(id): Path<String>,
    mut ctx: Ctx,
) -> Result<Response, ApiError> {
    let amount = objects::amount(&mut ctx, "amount")?;
    let fee = ctx.params.int("application_fee_amount")?;
    let mut patch = Patch::default();
    patch.strings(
        &mut ctx.params,
        &[],
        &["description", "statement_descriptor"],
    )?;
    patch.metadata(&mut ctx.params)?;
    if let Some(Some(mut td)) = ctx.params.nested("transfer_data")? {
        patch.ints(&mut td, &["transfer_data"], &["amount"])?;
        td.finish()?;
    }
    ctx.finish_params()?;
    retry_conflicts!({
        let mut stored = objects::load(&ctx, &ctx.scope, PI, &id, "payment_intent").await?;
        let status = stored.data["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if status != "requires_capture" {
            return Err(ApiError::InvalidRequest {
                message: format!(
                    "This PaymentIntent's authorization can only be incremented while it has a status of requires_capture; it is {status}."
                ),
                param: None,
                code: Some("payment_intent_unexpected_state"),
            });
        }
        let current = stored.data["amount"].as_i64().unwrap_or(0);
        if amount <= current {
            return Err(ApiError::invalid(
                "amount",
                format!(
                    "The new amount ({amount}) must be greater than the amount already authorized ({current})."
                ),
            ));
        }
        let charge_id = stored.data["latest_charge"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut charge = objects::load(&ctx, &ctx.scope, CHARGE, &charge_id, "charge").await?;
        patch.apply(&mut stored.data);
        stored.data["amount"] = amount.into();
        stored.data["amount_capturable"] = amount.into();
        if let Some(f) = fee {
            stored.data["application_fee_amount"] = f.into();
        }
        charge.data["amount"] = amount.into();
        charge.data["payment_method_details"]["card"]["amount_authorized"] = amount.into();
        let mut change = ctx.change();
        change.events.push(ctx.event(
            "payment_intent.amount_capturable_updated",
            objects::public(&stored.data),
            None,
        ));
        let body = objects::public(&stored.data);
        change.writes.push(objects::replace(&ctx.scope, charge));
        change.writes.push(objects::replace(&ctx.scope, stored));
        ctx.commit(change, &body).await
    })
}

/// The bank's answer to a debit: the funds arrive (`charge.succeeded`,
/// `payment_intent.succeeded`, maybe a dispute) or the debit fails
/// (`charge.failed`, `payment_intent.payment_failed`).
async fn settle_debit(
    ctx: &Ctx,
    pi: &mut Value,
    mut charge: switchboard_store::StoredObject,
    ledger: &mut Ledger,
    change: &mut Change,
) -> Result<(), ApiError> {
    let last4 = charge.data["payment_method_details"]["sepa_debit"]["last4"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    match connect::debit_outcome(&last4).settles {
        connect::DebitSettles::Succeeds { disputed } => {
            let amount = pi["amount"].as_i64().unwrap_or(0);
            charge.data["status"] = "succeeded".into();
            charge.data["paid"] = true.into();
            capture_funds(ctx, pi, &mut charge.data, amount, ledger, change).await?;
            change
                .events
                .push(ctx.event("charge.succeeded", objects::public(&charge.data), None));
            change
                .events
                .push(ctx.event("payment_intent.succeeded", objects::public(pi), None));
            if disputed {
                disputes::open_in(
                    ctx,
                    change,
                    ledger,
                    &mut charge.data,
                    connect::DisputeKind::Fraudulent,
                )
                .await?;
            }
        }
        connect::DebitSettles::Fails { code, message } => {
            charge.data["status"] = "failed".into();
            charge.data["failure_code"] = code.into();
            charge.data["failure_message"] = message.into();
            charge.data["outcome"]["network_status"] = "declined_by_network".into();
            charge.data["outcome"]["type"] = "issuer_declined".into();
            charge.data["outcome"]["seller_message"] = message.into();
            let pm = match pi["payment_method"].as_str() {
                Some(id) => ctx
                    .state
                    .store
                    .object(&ctx.scope, payment_methods::KIND, id)
                    .await?
                    .map(|o| objects::public(&o.data)),
                None => None,
            };
            pi["status"] = "requires_payment_method".into();
            pi["last_payment_error"] = json!({
                "charge": charge.data["id"], "code": code, "doc_url": format!("https://stripe.com/docs/error-codes/{}", code.replace('_', "-")),
                "message": message, "payment_method": pm, "type": "card_error",
            });
            change
                .events
                .push(ctx.event("charge.failed", objects::public(&charge.data), None));
            change.events.push(ctx.event(
                "payment_intent.payment_failed",
                objects::public(pi),
                None,
            ));
        }
    }
    change.writes.push(objects::replace(&ctx.scope, charge));
    Ok(())
}

pub async fn retrieve(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.params.take("client_secret");
    ctx.finish_params()?;
    let pi = objects::load(&ctx, &ctx.scope, PI, &id, "payment_intent").await?;
    ctx.respond(objects::public(&pi.data)).await
}

pub async fn update(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let patch = parse(&mut ctx.params)?;
    ctx.finish_params()?;
    retry_conflicts!({
        let mut stored = objects::load(&ctx, &ctx.scope, PI, &id, "payment_intent").await?;
        if ["succeeded", "canceled", "processing"]
            .contains(&stored.data["status"].as_str().unwrap_or_default())
        {
            return Err(ApiError::InvalidRequest {
                message: format!(
                    "This PaymentIntent's status is {}, so it can no longer be updated.",
                    stored.data["status"].as_str().unwrap_or("?")
                ),
                param: None,
                code: Some("payment_intent_unexpected_state"),
            });
        }
        let before = stored.data.clone();
        apply(&patch, &mut stored.data);
        check_connect(&ctx, &stored.data).await?;
        let mut change = ctx.change();
        if stored.data["payment_method"] != before["payment_method"] {
            attach_method(&ctx, &mut stored.data, &mut change).await?;
        }
        // Stripe has no `payment_intent.updated`: an update emits nothing.
        let body = objects::public(&stored.data);
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
        &[objects::by("customer", "customer")],
    )
    .await
}

pub async fn retrieve_charge(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    let charge = objects::load(&ctx, &ctx.scope, CHARGE, &id, "charge").await?;
    ctx.respond(objects::public(&charge.data)).await
}

/// `POST /v1/charges/{id}`: description, metadata, receipt email →
/// `charge.updated`.
pub async fn update_charge(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let mut patch = Patch::default();
    patch.strings(
        &mut ctx.params,
        &[],
        &["description", "receipt_email", "transfer_group"],
    )?;
    patch.metadata(&mut ctx.params)?;
    if let Some(shipping) = ctx.params.take("shipping") {
        patch.set(&["shipping"], objects::form_json(shipping));
    }
    ctx.params.take("fraud_details");
    ctx.finish_params()?;
    let scope = ctx.scope.clone();
    objects::update(
        &ctx,
        &scope,
        CHARGE,
        &id,
        "charge",
        &patch,
        &["charge.updated"],
    )
    .await
}

pub async fn list_charges(mut ctx: Ctx) -> Result<Response, ApiError> {
    let scope = ctx.scope.clone();
    objects::list(
        &mut ctx,
        &scope,
        CHARGE,
        "/v1/charges",
        &[
            objects::by("customer", "customer"),
            objects::by("payment_intent", "payment_intent"),
            objects::by("transfer_group", "transfer_group"),
        ],
    )
    .await
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/v1/payment_intents", get(list).post(create))
        .route("/v1/payment_intents/{id}", get(retrieve).post(update))
        .route("/v1/payment_intents/{id}/confirm", post(confirm))
        .route("/v1/payment_intents/{id}/capture", post(capture))
        .route(
            "/v1/payment_intents/{id}/increment_authorization",
            post(increment_authorization),
        )
        .route("/v1/payment_intents/{id}/cancel", post(cancel))
        .route("/v1/charges", get(list_charges))
        .route("/v1/charges/{id}", get(retrieve_charge).post(update_charge))
}
