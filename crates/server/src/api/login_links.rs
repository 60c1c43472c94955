//! `POST /v1/accounts/{account}/login_links`: a single-use link into the
//! Express Dashboard of an Express account, which Switchboard serves as a
//! simple hosted page (`crate::pages::express`). Refused, as on Stripe, for
//! accounts without the Express Dashboard and before onboarding is done.

use axum::response::Response;
use serde_json::{Value, json};
use switchboard_core::ids;

use super::accounts::{self, platform_only};
use super::objects::{self, PRIVATE};
use crate::context::{Ctx, Path, retry_conflicts};
use crate::error::ApiError;

pub const KIND: &str = "login_link";
const TOKEN: &str = "llink";
/// How long a login link can be opened.
const LINK_SECONDS: i64 = 300;

pub async fn create(Path(account): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let scope = platform_only(&ctx, "login links")?;
    ctx.finish_params()?;
    let acct = accounts::load(&ctx, &account).await?.data;
    if acct["controller"]["stripe_dashboard"]["type"] != "express" {
        return Err(ApiError::invalid(
            "account",
            "Cannot create a login link for an account that does not use the Express Dashboard.",
        ));
    }
    if acct["details_submitted"] != true {
        return Err(ApiError::invalid(
            "account",
            "Cannot create a login link for an account that has not completed onboarding.",
        ));
    }
    let now = ctx.now();
    let token = ids::generate_secret(TOKEN, &mut rand::rng());
    let link = objects::build(
        "login_link",
        json!({"object": "login_link", "created": now, "url": crate::pages::express_url(&ctx, &token)}),
    );
    let mut stored = link.clone();
    stored[PRIVATE] = json!({"account": account, "expires_at": now + LINK_SECONDS, "used": false});
    let mut change = ctx.change();
    change
        .writes
        .push(objects::insert(&scope, KIND, &token, now, stored));
    ctx.commit(change, &link).await
}

/// Opens a login link once: the account it logs into.
pub async fn open(ctx: &Ctx, token: &str) -> Result<Value, ApiError> {
    let scope = accounts::platform_scope(ctx);
    retry_conflicts!(Value, {
        let mut link = objects::load(ctx, &scope, KIND, token, "login_link").await?;
        let private = &link.data[PRIVATE];
        if private["used"] == true || ctx.now() > private["expires_at"].as_i64().unwrap_or(0) {
            return Err(ApiError::invalid(
                "login_link",
                "This login link has expired: ask the platform for a new one.",
            ));
        }
        let account = private["account"].as_str().unwrap_or_default().to_owned();
        link.data[PRIVATE]["used"] = true.into();
        let mut change = ctx.change();
        change.writes.push(objects::replace(&scope, link));
        ctx.commit_unanswered(change).await?;
        Ok(
            objects::load(ctx, &scope, accounts::KIND, &account, "account")
                .await?
                .data,
        )
    })
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::post;
    axum::Router::new().route("/v1/accounts/{account}/login_links", post(create))
}
