//! `/v1/accounts/{account}/external_accounts`: where a connected account's
//! payouts go. A bank account's full number is kept privately so that the
//! test numbers of failing banks make payouts fail.

use axum::response::Response;
use serde_json::{Value, json};
use switchboard_core::connect;
use switchboard_core::form::Params;
use switchboard_core::ids;
use switchboard_core::object::previous_attributes;
use switchboard_store::StoredObject;

use super::accounts::{self, account_scope};
use super::objects::{self, PRIVATE, public};
use super::patch::Patch;
use crate::context::{Ctx, Path, retry_conflicts};
use crate::error::ApiError;

pub const KIND: &str = "external_account";
const TEST_ROUTING: &str = "110000000";

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A new bank account or card from `external_account` (a token or a map).
pub(super) fn build(p: &mut Params, account: &str, created: i64) -> Result<Value, ApiError> {
    let param = "external_account";
    let missing = || ApiError::Param(switchboard_core::form::ParamError::missing(param));
    use switchboard_core::form::Value as Form;
    let mut m = match p.take(param) {
        None => return Err(missing()),
        Some(Form::Map(map)) => Params::nested_from(param, map),
        Some(Form::List(_)) => {
            return Err(ApiError::invalid(
                param,
                "external_account must be a token or an object",
            ));
        }
        Some(Form::Str(token)) => return from_token(&token, account, created),
    };
    let object = m.string("object")?.unwrap_or_default();
    if object != "bank_account" {
        return Err(ApiError::invalid(
            "external_account[object]",
            "external_account[object] must be bank_account (cards are added with a token such as tok_visa_debit)",
        ));
    }
    let country = m
        .string("country")?
        .unwrap_or_else(|| "US".into())
        .to_ascii_uppercase();
    let currency = m
        .string("currency")?
        .unwrap_or_else(|| "usd".into())
        .to_ascii_lowercase();
    let routing = m
        .string("routing_number")?
        .unwrap_or_else(|| TEST_ROUTING.into());
    if routing.len() != 9 || !digits(&routing) {
        return Err(ApiError::invalid(
            "external_account[routing_number]",
            format!("Routing number must have 9 digits: {routing}"),
        ));
    }
    let number = m.required_string("account_number")?;
    if !digits(&number) || number.len() < 4 || number.len() > 17 {
        return Err(ApiError::invalid(
            "external_account[account_number]",
            "Account number must have 4 to 17 digits.",
        ));
    }
    let holder = m.string("account_holder_name")?;
    let holder_type = m
        .string("account_holder_type")?
        .unwrap_or_else(|| "individual".into());
    if !["individual", "company"].contains(&holder_type.as_str()) {
        return Err(ApiError::invalid(
            "external_account[account_holder_type]",
            "account_holder_type must be individual or company",
        ));
    }
    m.finish()?;
    Ok(bank(
        account,
        created,
        &country,
        &currency,
        &routing,
        &number,
        holder,
        &holder_type,
    ))
}

fn from_token(token: &str, account: &str, created: i64) -> Result<Value, ApiError> {
    if let Some(number) = connect::bank_token_account_number(token) {
        return Ok(bank(
            account,
            created,
            "US",
            "usd",
            TEST_ROUTING,
            number,
            None,
            "individual",
        ));
    }
    if let Some((last4, fails)) = connect::debit_card_token(token) {
        return Ok(card(account, created, last4, fails));
    }
    Err(ApiError::invalid(
        "external_account",
        format!("No such token: '{token}'"),
    ))
}

#[allow(clippy::too_many_arguments)]
fn bank(
    account: &str,
    _created: i64,
    country: &str,
    currency: &str,
    routing: &str,
    number: &str,
    holder: Option<String>,
    holder_type: &str,
) -> Value {
    let id = ids::generate(ids::Prefix::BankAccount, &mut rand::rng());
    objects::build(
        "bank_account",
        json!({
            "id": id, "account": account, "account_holder_name": holder,
            "account_holder_type": holder_type, "account_type": null, "available_payout_methods": ["standard"],
            "bank_name": "STRIPE TEST BANK", "country": country, "currency": currency,
            "default_for_currency": false, "fingerprint": objects::fingerprint(&format!("{routing}/{number}")),
            "future_requirements": {"currently_due": [], "errors": [], "past_due": [], "pending_verification": []},
            "last4": &number[number.len() - 4..], "metadata": {}, "routing_number": routing, "status": "new",
            PRIVATE: {"account_number": number},
        }),
    )
}

fn card(account: &str, _created: i64, last4: &str, payouts_fail: bool) -> Value {
    let id = ids::generate(ids::Prefix::Card, &mut rand::rng());
    objects::build(
        "card",
        json!({
            "id": id, "account": account, "address_zip": null, "available_payout_methods": ["standard", "instant"],
            "brand": "Visa", "country": "US", "currency": "usd", "default_for_currency": false, "exp_month": 12, "exp_year": 2034,
            "fingerprint": objects::fingerprint(&format!("card/{last4}")), "funding": "debit", "last4": last4, "metadata": {}, "name": null,
            "status": "new",
            PRIVATE: {"payouts_fail": payouts_fail},
        }),
    )
}

/// Fields an update may change: which depends on the kind (a card has
/// `exp_month`, a bank account `account_holder_type`).
fn parse_update(p: &mut Params, card: bool) -> Result<Patch, ApiError> {
    let mut patch = Patch::default();
    if card {
        patch.strings(
            p,
            &[],
            &[
                "name",
                "address_city",
                "address_country",
                "address_line1",
                "address_line2",
                "address_state",
                "address_zip",
            ],
        )?;
        patch.ints(p, &[], &["exp_month", "exp_year"])?;
    } else {
        patch.strings(
            p,
            &[],
            &["account_holder_name", "account_holder_type", "account_type"],
        )?;
    }
    patch.bools(p, &[], &["default_for_currency"])?;
    patch.metadata(p)?;
    Ok(patch)
}

pub async fn create(Path(account): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let now = ctx.now();
    let mut ea = build(&mut ctx.params, &account, now)?;
    let make_default = ctx.params.bool("default_for_currency")?.unwrap_or(false);
    let mut patch = Patch::default();
    patch.metadata(&mut ctx.params)?;
    patch.apply(&mut ea);
    ctx.finish_params()?;
    let id = ea["id"].as_str().unwrap_or_default().to_owned();
    retry_conflicts!({
        let acct = accounts::load(&ctx, &account).await?;
        let mut ea = ea.clone();
        let mut deps = accounts::dependents(&ctx, &account).await?;
        let currency = ea["currency"].clone();
        let first_in_currency = !deps
            .external_accounts
            .iter()
            .any(|e| e["currency"] == currency);
        ea["default_for_currency"] = (make_default || first_in_currency).into();
        let scope = account_scope(&ctx, &account);
        let mut change = ctx.change();
        if make_default && !first_in_currency {
            unset_defaults(&ctx, &account, &currency, &mut change).await?;
            for e in deps
                .external_accounts
                .iter_mut()
                .filter(|e| e["currency"] == currency)
            {
                e["default_for_currency"] = false.into();
            }
        }
        deps.external_accounts.insert(0, public(&ea));
        change
            .writes
            .push(objects::insert(&scope, KIND, &id, now, ea.clone()));
        change.events.push(ctx.event_on(
            Some(account.clone()),
            "account.external_account.created",
            public(&ea),
            None,
        ));
        accounts::rederive(&ctx, acct, &deps, &mut change);
        ctx.commit(change, &public(&ea)).await
    })
}

/// Clears `default_for_currency` on the account's other external accounts.
async fn unset_defaults(
    ctx: &Ctx,
    account: &str,
    currency: &Value,
    change: &mut switchboard_store::Change,
) -> Result<(), ApiError> {
    let scope = account_scope(ctx, account);
    let all = switchboard_store::PageRequest {
        limit: 100,
        ..Default::default()
    };
    for mut other in ctx.state.store.objects(&scope, KIND, &all).await?.data {
        if other.data["currency"] == *currency && other.data["default_for_currency"] == true {
            other.data["default_for_currency"] = false.into();
            change.writes.push(objects::replace(&scope, other));
        }
    }
    Ok(())
}

pub async fn load(ctx: &Ctx, account: &str, id: &str) -> Result<StoredObject, ApiError> {
    objects::load(
        ctx,
        &account_scope(ctx, account),
        KIND,
        id,
        "external account",
    )
    .await
}

pub async fn retrieve(
    Path((account, id)): Path<(String, String)>,
    mut ctx: Ctx,
) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    accounts::load(&ctx, &account).await?;
    ctx.respond(public(&load(&ctx, &account, &id).await?.data))
        .await
}

/// Any update of an errored external account makes it usable again, as
/// Stripe documents for accounts whose payouts failed.
pub async fn update(
    Path((account, id)): Path<(String, String)>,
    mut ctx: Ctx,
) -> Result<Response, ApiError> {
    // The kind never changes, so reading it once decides the parameters.
    let card = load(&ctx, &account, &id).await?.data["object"] == "card";
    let patch = parse_update(&mut ctx.params, card)?;
    ctx.finish_params()?;
    retry_conflicts!({
        let acct = accounts::load(&ctx, &account).await?;
        let mut ea = load(&ctx, &account, &id).await?;
        let before = public(&ea.data);
        patch.apply(&mut ea.data);
        if ea.data["status"] == "errored" {
            ea.data["status"] = "new".into();
        }
        let after = public(&ea.data);
        let prev = previous_attributes(&before, &after);
        let mut change = ctx.change();
        if after["default_for_currency"] == true && before["default_for_currency"] != true {
            unset_defaults(&ctx, &account, &after["currency"], &mut change).await?;
        }
        if !prev.is_empty() {
            change.events.push(ctx.event_on(
                Some(account.clone()),
                "account.external_account.updated",
                after.clone(),
                Some(prev),
            ));
        }
        let mut deps = accounts::dependents(&ctx, &account).await?;
        for e in deps
            .external_accounts
            .iter_mut()
            .filter(|e| e["id"] == id.as_str())
        {
            *e = after.clone();
        }
        accounts::rederive(&ctx, acct, &deps, &mut change);
        change
            .writes
            .push(objects::replace(&account_scope(&ctx, &account), ea));
        ctx.commit(change, &after).await
    })
}

pub async fn delete(
    Path((account, id)): Path<(String, String)>,
    mut ctx: Ctx,
) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    retry_conflicts!({
        let acct = accounts::load(&ctx, &account).await?;
        let mut ea = load(&ctx, &account, &id).await?;
        let object = public(&ea.data);
        let mut deps = accounts::dependents(&ctx, &account).await?;
        deps.external_accounts.retain(|e| e["id"] != id.as_str());
        refuse_deleting_default(&acct.data, &object, &deps.external_accounts)?;
        let mut change = ctx.change();
        change.events.push(ctx.event_on(
            Some(account.clone()),
            "account.external_account.deleted",
            object.clone(),
            None,
        ));
        accounts::rederive(&ctx, acct, &deps, &mut change);
        ea.deleted = true;
        change
            .writes
            .push(objects::replace(&account_scope(&ctx, &account), ea));
        let kind = object["object"].clone();
        ctx.commit(change, &json!({"id": id, "object": kind, "deleted": true}))
            .await
    })
}

/// Stripe's rule: a currency's default external account can be deleted only
/// when it is the last one in that currency and that is not the account's
/// default currency; otherwise another one must be made the default first.
fn refuse_deleting_default(account: &Value, ea: &Value, others: &[Value]) -> Result<(), ApiError> {
    if ea["default_for_currency"] != true {
        return Ok(());
    }
    let noun = if ea["object"] == "card" {
        "card"
    } else {
        "bank account"
    };
    let same_currency = others.iter().any(|o| o["currency"] == ea["currency"]);
    if ea["currency"] == account["default_currency"] {
        return Err(refusal(format!(
            "You cannot delete the default {noun} for your default currency. Please make another {noun} the default using the `default_for_currency` param, and then delete this one."
        )));
    }
    if same_currency {
        return Err(refusal(format!(
            "You cannot delete the default {noun} for a currency while other external accounts exist in it. Please make another {noun} the default using the `default_for_currency` param, and then delete this one."
        )));
    }
    Ok(())
}

fn refusal(message: String) -> ApiError {
    ApiError::InvalidRequest {
        message,
        param: None,
        code: None,
    }
}

pub async fn list(Path(account): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    accounts::load(&ctx, &account).await?;
    let scope = account_scope(&ctx, &account);
    objects::list(
        &mut ctx,
        &scope,
        KIND,
        &format!("/v1/accounts/{account}/external_accounts"),
        &[objects::by("object", "object")],
    )
    .await
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route(
            "/v1/accounts/{id}/external_accounts",
            get(list).post(create),
        )
        .route(
            "/v1/accounts/{id}/external_accounts/{ea}",
            get(retrieve).post(update).delete(delete),
        )
}
