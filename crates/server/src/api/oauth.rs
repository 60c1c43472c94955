//! OAuth for Standard accounts: `/oauth/authorize` (a hosted page, see
//! `crate::pages::oauth`) where the developer approves the platform, which
//! creates a Standard test account connected to the platform
//! (`account.application.authorized`) and redirects with a one-time `code`;
//! `POST /oauth/token` trades the code for the account's id
//! (`stripe_user_id`). `POST /oauth/deauthorize` is in `accounts`.
//!
//! As on Stripe's test-mode OAuth, approving creates a new test account
//! rather than signing in to an existing one. The `access_token` is the
//! platform's own secret key: requests for the account are made, as Stripe
//! recommends, with that key and `Stripe-Account: <stripe_user_id>`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchboard_core::ids;
use switchboard_store::Scope;

use super::accounts;
use super::objects::{self, PRIVATE};
use crate::context::{Ctx, retry_conflicts};
use crate::error::{ApiError, oauth_error};

const KIND: &str = "oauth_code";
/// How long an authorization code can be exchanged, as on Stripe.
const CODE_SECONDS: i64 = 300;

/// What the developer approved on the authorize page.
#[derive(Debug, Clone, Default)]
pub struct Approval {
    /// `read_write` (default) or `read_only`.
    pub scope: String,
    /// `stripe_user[email]`, to prefill the new account.
    pub email: Option<String>,
    pub country: Option<String>,
}

/// Creates the approved Standard account in `ctx`'s (test) scope and its
/// authorization code.
pub async fn approve(ctx: &Ctx, approval: &Approval) -> Result<String, ApiError> {
    let scope = accounts::platform_scope(ctx);
    let now = ctx.now();
    let id = ids::generate(ids::Prefix::Account, &mut rand::rng());
    let mut account = accounts::standard(&id, now);
    if let Some(email) = &approval.email {
        account["email"] = email.as_str().into();
    }
    if let Some(country) = &approval.country {
        account["country"] = country.to_ascii_uppercase().into();
    }
    let code = ids::generate(ids::Prefix::AuthorizationCode, &mut rand::rng());
    let mut change = ctx.change();
    change
        .writes
        .push(objects::insert(&scope, accounts::KIND, &id, now, account));
    change.writes.push(objects::insert(
        &scope,
        KIND,
        &code,
        now,
        json!({"id": code, PRIVATE: {"account": id, "scope": approval.scope, "expires_at": now + CODE_SECONDS, "used": false}}),
    ));
    change.events.push(ctx.event_on(
        Some(id),
        "account.application.authorized",
        accounts::application(ctx),
        None,
    ));
    ctx.commit_unanswered(change).await?;
    Ok(code)
}

fn grant_error(message: String) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", message)
}

/// `POST /oauth/token` with `grant_type=authorization_code` and `code`.
pub async fn token(mut ctx: Ctx) -> Response {
    let mut param = |k: &str| ctx.params.string(k).ok().flatten().unwrap_or_default();
    let grant = param("grant_type");
    let code = param("code");
    let _client_secret = param("client_secret");
    if grant != "authorization_code" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("Unsupported grant type: {grant}"),
        );
    }
    if code.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "No authorization code provided".into(),
        );
    }
    let scope: Scope = accounts::platform_scope(&ctx);
    let result: Result<Response, ApiError> = retry_conflicts!({
        let Some(mut stored) = ctx.state.store.object(&scope, KIND, &code).await? else {
            return Ok(grant_error(format!(
                "Authorization code does not exist: {code}"
            )));
        };
        let private = &stored.data[PRIVATE];
        if private["used"] == true {
            return Ok(grant_error(format!(
                "This authorization code has already been used. All tokens issued with this code have been revoked: {code}"
            )));
        }
        if ctx.now() > private["expires_at"].as_i64().unwrap_or(0) {
            return Ok(grant_error(format!("Authorization code expired: {code}")));
        }
        let account = private["account"].as_str().unwrap_or_default().to_owned();
        let granted = private["scope"].as_str().unwrap_or("read_write").to_owned();
        stored.data[PRIVATE]["used"] = true.into();
        let mut change = ctx.change();
        change.writes.push(objects::replace(&scope, stored));
        let livemode = ctx.livemode();
        let body = json!({
            "access_token": ctx.api_key(), "livemode": livemode,
            "refresh_token": ids::generate_secret("rt", &mut rand::rng()),
            "scope": granted, "stripe_publishable_key": format!("pk_{}_{}", if livemode { "live" } else { "test" }, &account[5..]),
            "stripe_user_id": account, "token_type": "bearer",
        });
        ctx.commit(change, &body).await
    });
    result.unwrap_or_else(IntoResponse::into_response)
}

/// This module's routes (the authorize page is in `crate::pages::oauth`).
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::post;
    axum::Router::new().route("/oauth/token", post(token))
}
