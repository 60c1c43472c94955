//! `/v1/payment_methods`: card PaymentMethods. Stripe's test aliases
//! (`pm_card_visa`, `tok_chargeDeclined`, a test card number) become a real
//! `pm_…` object the moment a PaymentIntent names them, as on Stripe; the
//! alias is kept privately because it decides the card's outcome.

use axum::response::Response;
use serde_json::{Value, json};
use switchboard_core::connect::{self, CardOutcome};
use switchboard_core::ids;
use switchboard_store::{Change, StoredObject};

use super::objects::{self, PRIVATE};
use super::patch::Patch;
use crate::context::{Ctx, Path};
use crate::error::ApiError;

pub const KIND: &str = "payment_method";

/// Brand, last four digits and funding of a test card alias or number.
fn card_details(alias: &str) -> (&'static str, &'static str) {
    match alias {
        "pm_card_mastercard" | "tok_mastercard" | "5555555555554444" => ("mastercard", "4444"),
        "pm_card_amex" => ("amex", "8431"),
        "pm_card_bypassPending" | "tok_bypassPending" | "4000000000000077" => ("visa", "0077"),
        "pm_card_chargeDeclined"
        | "pm_card_visa_chargeDeclined"
        | "tok_chargeDeclined"
        | "4000000000000002" => ("visa", "0002"),
        "pm_card_chargeDeclinedInsufficientFunds"
        | "tok_chargeDeclinedInsufficientFunds"
        | "4000000000009995" => ("visa", "9995"),
        _ => ("visa", "4242"),
    }
}

fn unknown(id: &str) -> ApiError {
    ApiError::NotFound {
        kind: "PaymentMethod",
        id: id.into(),
        param: "payment_method",
    }
}

/// A new card PaymentMethod for a test alias, as Stripe creates it.
fn from_alias(ctx: &Ctx, alias: &str, customer: Option<&str>) -> Result<Value, ApiError> {
    connect::card_outcome(alias).ok_or_else(|| unknown(alias))?;
    let (brand, last4) = card_details(alias);
    let id = ids::generate(ids::Prefix::PaymentMethod, &mut rand::rng());
    let fingerprint = objects::fingerprint(&format!("card/{last4}"));
    Ok(objects::build(
        KIND,
        json!({
            "id": id, "allow_redisplay": "unspecified", "created": ctx.now(), "customer": customer,
            "livemode": ctx.livemode(), "type": "card",
            "card": {
                "brand": brand, "checks": {"address_line1_check": null, "address_postal_code_check": null, "cvc_check": "pass"},
                "country": "US", "display_brand": brand, "exp_month": 12, "exp_year": 2034, "fingerprint": fingerprint,
                "funding": "credit", "last4": last4, "networks": {"available": [brand], "preferred": null},
                "regulated_status": "unregulated",
                "three_d_secure_usage": {"supported": true},
            },
            PRIVATE: {"alias": alias},
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
    let pm = from_alias(ctx, named, None)?;
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

/// What charging this PaymentMethod does.
pub fn outcome(pm: &Value) -> CardOutcome {
    let alias = pm[PRIVATE]["alias"].as_str().unwrap_or("pm_card_visa");
    connect::card_outcome(alias).unwrap_or(CardOutcome::Succeeds { available: false })
}

/// `POST /v1/payment_methods`: `type=card` with `card[token]` (`tok_visa`)
/// or a test `card[number]`.
pub async fn create(mut ctx: Ctx) -> Result<Response, ApiError> {
    let kind = ctx.params.required_string("type")?;
    if kind != "card" {
        return Err(ApiError::invalid(
            "type",
            format!("Switchboard supports type=card PaymentMethods, not {kind}."),
        ));
    }
    let mut card = ctx
        .params
        .nested("card")?
        .flatten()
        .ok_or_else(|| ApiError::Param(switchboard_core::form::ParamError::missing("card")))?;
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
    let mut pm = from_alias(&ctx, &alias, None)?;
    let mut patch = Patch::default();
    patch.metadata(&mut ctx.params)?;
    if let Some(Some(mut billing)) = ctx.params.nested("billing_details")? {
        patch.strings(
            &mut billing,
            &["billing_details"],
            &["email", "name", "phone"],
        )?;
        billing.finish()?;
    }
    patch.apply(&mut pm);
    ctx.finish_params()?;
    let mut change = ctx.change();
    store(&ctx, &mut change, &pm);
    ctx.commit(change, &objects::public(&pm)).await
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
    use axum::routing::get;
    axum::Router::new()
        .route("/v1/payment_methods", get(list).post(create))
        .route("/v1/payment_methods/{id}", get(retrieve))
}
