//! `/v1/customers`: the first objects that emit events.

use axum::response::Response;
use serde_json::{Map, Value, json};
use switchboard_core::form::Params;
use switchboard_core::ids;
use switchboard_store::{ObjectWrite, StoredObject, Write};

use super::objects;
use super::patch::Patch;
use crate::context::{Ctx, Path, retry_conflicts};
use crate::error::ApiError;

const KIND: &str = "customer";
const ADDRESS_FIELDS: [&str; 6] = ["city", "country", "line1", "line2", "postal_code", "state"];

/// Settable fields, parsed once and applied to a new or existing customer.
fn parse(ctx: &mut Ctx) -> Result<Patch, ApiError> {
    let p = &mut ctx.params;
    let mut patch = Patch::default();
    patch.strings(p, &[], &["name", "email", "description", "phone"])?;
    match p.nested("address")? {
        None => {}
        Some(None) => patch.set(&["address"], Value::Null),
        // A new address replaces the old one whole, as on Stripe.
        Some(Some(nested)) => patch.set(&["address"], Value::Object(address(nested)?)),
    }
    patch.ints(p, &[], &["balance"])?;
    if let Some(locales) = p.string_list("preferred_locales")? {
        patch.set(&["preferred_locales"], json!(locales));
    }
    patch.metadata(p)?;
    ctx.finish_params()?;
    Ok(patch)
}

fn address(mut nested: Params) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    for f in ADDRESS_FIELDS {
        out.insert(
            f.into(),
            nested
                .clearable_string(f)?
                .flatten()
                .map_or(Value::Null, Value::String),
        );
    }
    nested.finish()?;
    Ok(out)
}

fn blank(id: &str, created: i64, livemode: bool) -> Value {
    let prefix: String = id[4..].chars().take(8).collect::<String>().to_uppercase();
    objects::build(
        "customer",
        json!({
            "id": id, "address": null, "balance": 0, "created": created, "currency": null,
            "default_source": null, "delinquent": false, "description": null, "discount": null, "email": null,
            "invoice_prefix": prefix,
            "invoice_settings": {"custom_fields": null, "default_payment_method": null, "footer": null, "rendering_options": null},
            "livemode": livemode, "metadata": {}, "name": null, "next_invoice_sequence": 1, "phone": null,
            "preferred_locales": [], "shipping": null, "tax_exempt": "none", "test_clock": null,
        }),
    )
}

pub async fn create(mut ctx: Ctx) -> Result<Response, ApiError> {
    let params = parse(&mut ctx)?;
    let id = ids::generate(ids::Prefix::Customer, &mut rand::rng());
    let created = ctx.now();
    let mut data = blank(&id, created, ctx.livemode());
    params.apply(&mut data);
    let mut change = ctx.change();
    change
        .events
        .push(ctx.event("customer.created", data.clone(), None));
    change.writes.push(Write::Object(ObjectWrite {
        scope: ctx.scope.clone(),
        object: StoredObject {
            id: id.clone(),
            kind: KIND.into(),
            version: 1,
            created,
            deleted: false,
            data,
        },
        expected_version: None,
    }));
    ctx.commit_staged(change, &id).await
}

pub async fn load(ctx: &Ctx, id: &str) -> Result<StoredObject, ApiError> {
    match ctx.state.store.object(&ctx.scope, KIND, id).await? {
        Some(o) if !o.deleted => Ok(o),
        _ => Err(ApiError::not_found("customer", id)),
    }
}

/// Like Stripe, a deleted customer is still retrievable, as a stub.
pub async fn retrieve(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    match ctx.state.store.object(&ctx.scope, KIND, &id).await? {
        Some(o) if o.deleted => {
            ctx.respond(json!({"id": o.id, "object": "customer", "deleted": true}))
                .await
        }
        Some(o) => ctx.respond(o.data).await,
        None => Err(ApiError::not_found("customer", id)),
    }
}

pub async fn update(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let params = parse(&mut ctx)?;
    let scope = ctx.scope.clone();
    objects::update(
        &ctx,
        &scope,
        KIND,
        &id,
        "customer",
        &params,
        &["customer.updated"],
    )
    .await
}

pub async fn delete(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    retry_conflicts!({
        let mut obj = load(&ctx, &id).await?;
        let mut change = ctx.change();
        change
            .events
            .push(ctx.event("customer.deleted", obj.data.clone(), None));
        let expected = obj.version;
        obj.version += 1;
        obj.deleted = true;
        let body = json!({"id": obj.id, "object": "customer", "deleted": true});
        change.writes.push(Write::Object(ObjectWrite {
            scope: ctx.scope.clone(),
            object: obj,
            expected_version: Some(expected),
        }));
        ctx.commit(change, &body).await
    })
}

pub async fn list(mut ctx: Ctx) -> Result<Response, ApiError> {
    let scope = ctx.scope.clone();
    super::objects::list(
        &mut ctx,
        &scope,
        KIND,
        "/v1/customers",
        &[super::objects::by("email", "email")],
    )
    .await
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/v1/customers", get(list).post(create))
        .route(
            "/v1/customers/{id}",
            get(retrieve).post(update).delete(delete),
        )
}
