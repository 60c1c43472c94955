//! `/v1/topups`: adding funds to the platform's balance from its bank
//! account. In test mode a top-up succeeds at once (`topup.created`,
//! `topup.succeeded`); its funds are pending until their `available_on`.

use axum::response::Response;
use serde_json::json;
use switchboard_core::ids;

use super::balance::Ledger;
use super::balance_transactions::Movement;
use super::objects;
use super::patch::Patch;
use crate::context::{Ctx, Path, retry_conflicts};
use crate::error::ApiError;

const KIND: &str = "topup";

pub async fn create(mut ctx: Ctx) -> Result<Response, ApiError> {
    let amount = objects::amount(&mut ctx, "amount")?;
    let currency = objects::currency(&mut ctx, None)?;
    let mut extra = json!({"description": null, "statement_descriptor": null, "transfer_group": null, "metadata": {}});
    let mut patch = Patch::default();
    patch.strings(
        &mut ctx.params,
        &[],
        &["description", "statement_descriptor", "transfer_group"],
    )?;
    patch.metadata(&mut ctx.params)?;
    patch.apply(&mut extra);
    ctx.params.take("source");
    ctx.finish_params()?;
    let id = ids::generate(ids::Prefix::Topup, &mut rand::rng());
    retry_conflicts!({
        let scope = ctx.scope.clone();
        let mut ledger = Ledger::default();
        ledger.open(&ctx, &scope).await?;
        let mut change = ctx.change();
        let now = ctx.now();
        let txn = ledger.record(
            &ctx,
            &mut change,
            &scope,
            Movement {
                amount,
                currency: &currency,
                kind: "topup",
                reporting_category: "topup",
                source: &id,
                description: extra["description"].as_str(),
                available_now: false,
                ..Default::default()
            },
        );
        let mut topup = objects::build(
            KIND,
            json!({
                "id": id, "amount": amount, "balance_transaction": txn, "created": now, "currency": currency,
                "description": extra["description"], "expected_availability_date": now + 2 * 86_400,
                "livemode": ctx.livemode(), "metadata": extra["metadata"], "source": null,
                "statement_descriptor": extra["statement_descriptor"], "status": "pending",
                "transfer_group": extra["transfer_group"],
            }),
        );
        change
            .events
            .push(ctx.event("topup.created", topup.clone(), None));
        let created = topup.clone();
        topup["status"] = "succeeded".into();
        change
            .events
            .push(ctx.event("topup.succeeded", topup.clone(), None));
        change
            .writes
            .push(objects::insert(&scope, KIND, &id, now, topup));
        ledger.close(&ctx, &mut change).await?;
        ctx.commit(change, &created).await
    })
}

pub async fn retrieve(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    ctx.respond(
        objects::load(&ctx, &ctx.scope, KIND, &id, "topup")
            .await?
            .data,
    )
    .await
}

/// `POST /v1/topups/{id}`: description and metadata (Stripe emits nothing).
pub async fn update(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let mut patch = Patch::default();
    patch.strings(&mut ctx.params, &[], &["description"])?;
    patch.metadata(&mut ctx.params)?;
    ctx.finish_params()?;
    let scope = ctx.scope.clone();
    objects::update(&ctx, &scope, KIND, &id, "topup", &patch, &[]).await
}

/// `POST /v1/topups/{id}/cancel`: only pending top-ups; test-mode ones
/// have already succeeded.
pub async fn cancel(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    let stored = objects::load(&ctx, &ctx.scope, KIND, &id, "topup").await?;
    Err(ApiError::InvalidRequest {
        message: format!(
            "This top-up cannot be canceled because its status is {}.",
            stored.data["status"].as_str().unwrap_or("?")
        ),
        param: None,
        code: Some("topup_not_cancelable"),
    })
}

pub async fn list(mut ctx: Ctx) -> Result<Response, ApiError> {
    let scope = ctx.scope.clone();
    objects::list(
        &mut ctx,
        &scope,
        KIND,
        "/v1/topups",
        &[objects::by("status", "status")],
    )
    .await
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/v1/topups", get(list).post(create))
        .route("/v1/topups/{id}", get(retrieve).post(update))
        .route("/v1/topups/{id}/cancel", post(cancel))
}
