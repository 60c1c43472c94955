//! `/v1/customers/{id}/sources`: cards saved on a customer from test
//! tokens (`tok_visa`, …), the pre-PaymentMethods way. The first one
//! becomes the customer's `default_source` (`customer.updated`).

use axum::response::Response;
use serde_json::{Value, json};
use switchboard_core::connect;
use switchboard_core::ids;
use switchboard_core::object::previous_attributes;

use super::objects::{self, PRIVATE};
use super::patch::Patch;
use crate::context::{Ctx, Path, retry_conflicts};
use crate::error::ApiError;

const KIND: &str = "customer_source";

fn parse(p: &mut switchboard_core::form::Params) -> Result<Patch, ApiError> {
    let mut patch = Patch::default();
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
    patch.metadata(p)?;
    Ok(patch)
}

async fn load(
    ctx: &Ctx,
    customer: &str,
    id: &str,
) -> Result<switchboard_store::StoredObject, ApiError> {
    let card = objects::load(ctx, &ctx.scope, KIND, id, "source").await?;
    if card.data["customer"] != customer {
        return Err(ApiError::not_found("source", id));
    }
    Ok(card)
}

pub async fn create(Path(customer): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let token = ctx.params.required_string("source")?;
    let patch = parse(&mut ctx.params)?;
    ctx.params.take("validate");
    ctx.finish_params()?;
    let card = connect::test_card(&token).ok_or_else(|| ApiError::InvalidRequest {
        message: format!("No such token: '{token}'"),
        param: Some("source".into()),
        code: Some("resource_missing"),
    })?;
    retry_conflicts!({
        let mut cust = super::customers::load(&ctx, &customer).await?;
        let id = ids::generate(ids::Prefix::Card, &mut rand::rng());
        let now = ctx.now();
        let mut source = objects::build(
            "card",
            json!({
                "id": id, "brand": match card.brand { "visa" => "Visa", "mastercard" => "MasterCard", "amex" => "American Express", "discover" => "Discover", other => other },
                "country": "US", "customer": customer, "cvc_check": "pass", "exp_month": 12, "exp_year": 2034,
                "fingerprint": objects::fingerprint(&format!("card/{}", card.last4)), "funding": card.funding,
                "last4": card.last4, "metadata": {}, "tokenization_method": null, "allow_redisplay": "unspecified",
                "regulated_status": "unregulated",
                PRIVATE: {"alias": token},
            }),
        );
        patch.apply(&mut source);
        if let Some(m) = source.as_object_mut() {
            // Fields only a connected account's cards have.
            for f in [
                "account",
                "available_payout_methods",
                "currency",
                "default_for_currency",
                "deleted",
                "status",
            ] {
                m.shift_remove(f);
            }
        }
        let public = objects::public(&source);
        let mut change = ctx.change();
        change
            .events
            .push(ctx.event("customer.source.created", public.clone(), None));
        change
            .writes
            .push(objects::insert(&ctx.scope, KIND, &id, now, source));
        if cust.data["default_source"].is_null() {
            let before = cust.data.clone();
            cust.data["default_source"] = id.clone().into();
            change.events.push(ctx.event(
                "customer.updated",
                cust.data.clone(),
                Some(previous_attributes(&before, &cust.data)),
            ));
            change.writes.push(objects::replace(&ctx.scope, cust));
        }
        ctx.commit(change, &public).await
    })
}

pub async fn retrieve(
    Path((customer, id)): Path<(String, String)>,
    mut ctx: Ctx,
) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    ctx.respond(objects::public(&load(&ctx, &customer, &id).await?.data))
        .await
}

pub async fn update(
    Path((customer, id)): Path<(String, String)>,
    mut ctx: Ctx,
) -> Result<Response, ApiError> {
    let patch = parse(&mut ctx.params)?;
    ctx.finish_params()?;
    retry_conflicts!({
        let mut card = load(&ctx, &customer, &id).await?;
        let before = objects::public(&card.data);
        patch.apply(&mut card.data);
        let after = objects::public(&card.data);
        let mut change = ctx.change();
        if after != before {
            change.events.push(ctx.event(
                "customer.source.updated",
                after.clone(),
                Some(previous_attributes(&before, &after)),
            ));
        }
        change.writes.push(objects::replace(&ctx.scope, card));
        ctx.commit(change, &after).await
    })
}

pub async fn delete(
    Path((customer, id)): Path<(String, String)>,
    mut ctx: Ctx,
) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    retry_conflicts!({
        let mut card = load(&ctx, &customer, &id).await?;
        let public = objects::public(&card.data);
        card.deleted = true;
        let mut change = ctx.change();
        change
            .events
            .push(ctx.event("customer.source.deleted", public.clone(), None));
        change.writes.push(objects::replace(&ctx.scope, card));
        let mut cust = super::customers::load(&ctx, &customer).await?;
        if cust.data["default_source"] == id.as_str() {
            let before = cust.data.clone();
            cust.data["default_source"] = Value::Null;
            change.events.push(ctx.event(
                "customer.updated",
                cust.data.clone(),
                Some(previous_attributes(&before, &cust.data)),
            ));
            change.writes.push(objects::replace(&ctx.scope, cust));
        }
        ctx.commit(
            change,
            &json!({"id": id, "object": "card", "deleted": true}),
        )
        .await
    })
}

pub async fn list(Path(customer): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    super::customers::load(&ctx, &customer).await?;
    ctx.params.take("object");
    let scope = ctx.scope.clone();
    objects::list_where(
        &mut ctx,
        &scope,
        KIND,
        &format!("/v1/customers/{customer}/sources"),
        &[],
        vec![("customer", customer.clone().into())],
    )
    .await
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/v1/customers/{id}/sources", get(list).post(create))
        .route(
            "/v1/customers/{id}/sources/{source}",
            get(retrieve).post(update).delete(delete),
        )
}
