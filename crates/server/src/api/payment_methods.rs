//! `/v1/payment_methods`: card PaymentMethods. Stripe's test aliases
//! (`pm_card_visa`, `tok_chargeDeclined`, a test card number) become a real
//! `pm_…` object the moment a PaymentIntent names them, as on Stripe; the
//! alias is kept privately because it decides the card's outcome.

use axum::response::Response;
use serde_json::{Value, json};
use switchboard_core::connect::{self, CardOutcome};
use switchboard_core::ids;
use switchboard_core::object::previous_attributes;
use switchboard_store::{Change, StoredObject};

use super::objects::{self, PRIVATE};
use super::patch::Patch;
use crate::context::{Ctx, Path, retry_conflicts};
use crate::error::ApiError;

pub const KIND: &str = "payment_method";

fn unknown(id: &str) -> ApiError {
    ApiError::NotFound {
        kind: "PaymentMethod",
        id: id.into(),
        param: "payment_method",
    }
}

/// A new card PaymentMethod for a test alias, as Stripe creates it.
fn from_alias(ctx: &Ctx, alias: &str, customer: Option<&str>) -> Result<Value, ApiError> {
    let card = connect::test_card(alias).ok_or_else(|| unknown(alias))?;
    let id = ids::generate(ids::Prefix::PaymentMethod, &mut rand::rng());
    let fingerprint = objects::fingerprint(&format!("card/{}", card.last4));
    Ok(objects::build(
        KIND,
        json!({
            "id": id, "allow_redisplay": "unspecified", "created": ctx.now(), "customer": customer,
            "livemode": ctx.livemode(), "type": "card",
            "card": {
                "brand": card.brand, "checks": {"address_line1_check": null, "address_postal_code_check": null, "cvc_check": "pass"},
                "country": "US", "display_brand": card.brand, "exp_month": 12, "exp_year": 2034, "fingerprint": fingerprint,
                "funding": card.funding, "last4": card.last4, "networks": {"available": [card.brand], "preferred": null},
                "regulated_status": "unregulated",
                "three_d_secure_usage": {"supported": true},
            },
            PRIVATE: {"alias": alias},
        }),
    ))
}

/// Stripe's SEPA Debit test IBANs: the last digits decide the outcome.
fn sepa(ctx: &Ctx, iban: &str) -> Result<Value, ApiError> {
    let iban: String = iban.chars().filter(|c| !c.is_whitespace()).collect();
    if iban.len() < 15
        || !iban.is_char_boundary(2)
        || !iban[..2].chars().all(|c| c.is_ascii_alphabetic())
    {
        return Err(ApiError::InvalidRequest {
            message: "The IBAN you entered is invalid.".into(),
            param: Some("sepa_debit[iban]".into()),
            code: Some("invalid_bank_account_iban"),
        });
    }
    let id = ids::generate(ids::Prefix::PaymentMethod, &mut rand::rng());
    let last4 = &iban[iban.len() - 4..];
    Ok(objects::build(
        KIND,
        json!({
            "id": id, "allow_redisplay": "unspecified", "created": ctx.now(), "customer": null,
            "livemode": ctx.livemode(), "type": "sepa_debit",
            "sepa_debit": {"bank_code": &iban[4..9], "branch_code": "", "country": iban[..2].to_ascii_uppercase(),
                "fingerprint": objects::fingerprint(&format!("iban/{iban}")), "generated_from": {"charge": null, "setup_attempt": null},
                "last4": last4},
            PRIVATE: {"alias": format!("sepa_{last4}")},
        }),
    ))
}

/// The PaymentMethod a request names: a stored one of this account, or a
/// new one made from a test alias (written into `change`).
pub async fn resolve(ctx: &Ctx, named: &str, change: &mut Change) -> Result<Value, ApiError> {
    if let Some(found) = ctx.state.store.object(&ctx.scope, KIND, named).await? {
        return if found.deleted {
            Err(unknown(named))
        } else {
            Ok(found.data)
        };
    }
    let pm = if named == "customer_balance" {
        objects::build(
            KIND,
            json!({"id": ids::generate(ids::Prefix::PaymentMethod, &mut rand::rng()), "allow_redisplay": "unspecified",
                   "created": ctx.now(), "customer": null, "livemode": ctx.livemode(), "type": "customer_balance",
                   "customer_balance": {}}),
        )
    } else {
        from_alias(ctx, named, None)?
    };
    store(ctx, change, &pm);
    Ok(pm)
}

/// Writes a new PaymentMethod into `change`, in the caller's scope.
fn store(ctx: &Ctx, change: &mut Change, pm: &Value) {
    let id = pm["id"].as_str().unwrap_or_default();
    change
        .writes
        .push(objects::insert(&ctx.scope, KIND, id, ctx.now(), pm.clone()));
}

/// What charging this PaymentMethod does (bank debits are `Processing`).
pub fn outcome(pm: &Value) -> Charging {
    if pm["type"] == "sepa_debit" {
        return Charging::Processing;
    }
    let alias = pm[PRIVATE]["alias"].as_str().unwrap_or("pm_card_visa");
    Charging::Card(
        connect::card_outcome(alias).unwrap_or(CardOutcome::Succeeds {
            available: false,
            dispute: None,
        }),
    )
}

/// What confirming a payment with a PaymentMethod does.
pub enum Charging {
    Card(CardOutcome),
    /// A bank debit: `processing` until the bank answers (the PaymentIntent's timer).
    Processing,
}

/// `POST /v1/payment_methods`: `type=card` with `card[token]` (`tok_visa`)
/// or a test `card[number]`, or `type=sepa_debit` with `sepa_debit[iban]`.
pub async fn create(mut ctx: Ctx) -> Result<Response, ApiError> {
    let kind = ctx.params.required_string("type")?;
    let mut pm = match kind.as_str() {
        "card" => {
            let mut card = ctx.params.nested("card")?.flatten().ok_or_else(|| {
                ApiError::Param(switchboard_core::form::ParamError::missing("card"))
            })?;
            let alias = match (card.string("token")?, card.string("number")?) {
                (Some(token), _) => token,
                (None, Some(number)) => number,
                (None, None) => {
                    return Err(ApiError::Param(
                        switchboard_core::form::ParamError::missing("card[number]"),
                    ));
                }
            };
            for field in ["exp_month", "exp_year", "cvc"] {
                card.take(field);
            }
            card.finish()?;
            from_alias(&ctx, &alias, None)?
        }
        "sepa_debit" => {
            let mut debit = ctx.params.nested("sepa_debit")?.flatten().ok_or_else(|| {
                ApiError::Param(switchboard_core::form::ParamError::missing(
                    "sepa_debit[iban]",
                ))
            })?;
            let iban = debit.required_string("iban")?;
            debit.finish()?;
            sepa(&ctx, &iban)?
        }
        other => {
            return Err(ApiError::invalid(
                "type",
                format!("Switchboard supports card and sepa_debit PaymentMethods, not {other}."),
            ));
        }
    };
    let patch = parse(&mut ctx.params)?;
    patch.apply(&mut pm);
    ctx.finish_params()?;
    let mut change = ctx.change();
    store(&ctx, &mut change, &pm);
    ctx.commit(change, &objects::public(&pm)).await
}

/// `billing_details` and `metadata`, settable on create and update.
fn parse(p: &mut switchboard_core::form::Params) -> Result<Patch, ApiError> {
    let mut patch = Patch::default();
    patch.metadata(p)?;
    if let Some(Some(mut billing)) = p.nested("billing_details")? {
        patch.strings(
            &mut billing,
            &["billing_details"],
            &["email", "name", "phone"],
        )?;
        if let Some(Some(mut address)) = billing.nested("address")? {
            patch.strings(
                &mut address,
                &["billing_details", "address"],
                &["city", "country", "line1", "line2", "postal_code", "state"],
            )?;
            address.finish()?;
        }
        billing.finish()?;
    }
    if let Some(v) = p.string("allow_redisplay")? {
        patch.set(&["allow_redisplay"], v);
    }
    Ok(patch)
}

/// A stored PaymentMethod of this account, or a new one for a test alias
/// named in the path (`/v1/payment_methods/pm_card_visa/attach`).
async fn load_or_alias(ctx: &Ctx, id: &str, change: &mut Change) -> Result<StoredObject, ApiError> {
    if let Some(found) = ctx.state.store.object(&ctx.scope, KIND, id).await?
        && !found.deleted
    {
        return Ok(found);
    }
    let pm = from_alias(ctx, id, None).map_err(|_| ApiError::not_found("payment_method", id))?;
    store(ctx, change, &pm);
    Ok(StoredObject {
        id: pm["id"].as_str().unwrap_or_default().to_owned(),
        kind: KIND.into(),
        version: 1,
        created: ctx.now(),
        deleted: false,
        data: pm,
    })
}

/// The write for `pm` as loaded by [`load_or_alias`]: an update of a stored
/// one, or (for a new alias object already in `change`) a replacement of that insert.
fn save(ctx: &Ctx, change: &mut Change, pm: StoredObject) {
    match objects::staged(change, &pm.id) {
        Some(insert) => insert.data = pm.data,
        None => change.writes.push(objects::replace(&ctx.scope, pm)),
    }
}

/// Attaches `pm` to `customer` (a customer of this account) in `change`,
/// with `payment_method.attached`. Returns the PaymentMethod as it is now.
pub async fn attach_to(
    ctx: &Ctx,
    change: &mut Change,
    mut pm: StoredObject,
    customer: &str,
) -> Result<Value, ApiError> {
    super::customers::load(ctx, customer)
        .await
        .map_err(|_| ApiError::NotFound {
            kind: "customer",
            id: customer.into(),
            param: "customer",
        })?;
    if pm.data["customer"] == customer {
        return Ok(pm.data);
    }
    if !pm.data["customer"].is_null() {
        return Err(ApiError::InvalidRequest {
            message: "The payment method you provided has already been attached to a customer."
                .into(),
            param: Some("payment_method".into()),
            code: Some("payment_method_unexpected_state"),
        });
    }
    // Attaching checks the card, as on Stripe: declining cards fail, except
    // `chargeCustomerFail`, which attaches and declines only when charged.
    let alias = pm.data[PRIVATE]["alias"].as_str().unwrap_or_default();
    if let Some(card) = connect::test_card(alias)
        && let connect::CardOutcome::Declined {
            code,
            decline_code,
            message,
        } = card.outcome
        && card.last4 != "0341"
    {
        return Err(ApiError::Card {
            message: message.into(),
            code,
            decline_code,
            param: "payment_method",
        });
    }
    pm.data["customer"] = customer.into();
    let body = pm.data.clone();
    change
        .events
        .push(ctx.event("payment_method.attached", objects::public(&body), None));
    save(ctx, change, pm);
    Ok(body)
}

/// `POST /v1/payment_methods/{id}/attach`.
pub async fn attach(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let customer = ctx.params.required_string("customer")?;
    ctx.finish_params()?;
    retry_conflicts!({
        let mut change = ctx.change();
        let pm = load_or_alias(&ctx, &id, &mut change).await?;
        let body = attach_to(&ctx, &mut change, pm, &customer).await?;
        ctx.commit(change, &objects::public(&body)).await
    })
}

/// `POST /v1/payment_methods/{id}/detach` → `payment_method.detached`
/// (its `previous_attributes` name the customer).
pub async fn detach(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    retry_conflicts!({
        let mut pm = objects::load(&ctx, &ctx.scope, KIND, &id, "payment_method").await?;
        if pm.data["customer"].is_null() {
            return Err(ApiError::InvalidRequest {
                message: "The payment method you provided is not attached to a customer so detachment is impossible.".into(),
                param: None,
                code: Some("payment_method_unexpected_state"),
            });
        }
        let before = objects::public(&pm.data);
        pm.data["customer"] = Value::Null;
        let after = objects::public(&pm.data);
        let mut change = ctx.change();
        change.events.push(ctx.event(
            "payment_method.detached",
            after.clone(),
            Some(previous_attributes(&before, &after)),
        ));
        change.writes.push(objects::replace(&ctx.scope, pm));
        ctx.commit(change, &after).await
    })
}

/// `POST /v1/payment_methods/{id}` → `payment_method.updated`.
pub async fn update(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let patch = parse(&mut ctx.params)?;
    if let Some(Some(mut card)) = ctx.params.nested("card")? {
        // Expiry is settable on cards; our test cards keep theirs valid.
        card.int("exp_month")?;
        card.int("exp_year")?;
        card.finish()?;
    }
    ctx.finish_params()?;
    let scope = ctx.scope.clone();
    let events = ["payment_method.updated"];
    objects::update(&ctx, &scope, KIND, &id, "payment_method", &patch, &events).await
}

pub async fn retrieve(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    let pm: StoredObject = objects::load(&ctx, &ctx.scope, KIND, &id, "payment_method").await?;
    ctx.respond(objects::public(&pm.data)).await
}

pub async fn list(mut ctx: Ctx) -> Result<Response, ApiError> {
    let scope = ctx.scope.clone();
    objects::list(
        &mut ctx,
        &scope,
        KIND,
        "/v1/payment_methods",
        &[
            objects::by("customer", "customer"),
            objects::by("type", "type"),
        ],
    )
    .await
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/v1/payment_methods", get(list).post(create))
        .route("/v1/payment_methods/{id}", get(retrieve).post(update))
        .route("/v1/payment_methods/{id}/attach", post(attach))
        .route("/v1/payment_methods/{id}/detach", post(detach))
}
