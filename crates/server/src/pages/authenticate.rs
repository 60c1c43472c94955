//! The 3-D Secure page a PaymentIntent's `next_action.redirect_to_url.url`
//! opens, where the developer completes or fails the authentication; the
//! PaymentIntent then proceeds as Stripe's would and the browser goes back
//! to the `return_url`. The PaymentIntent's `client_secret` is the credential.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{escape, page};
use crate::context::Ctx;
use crate::error::ApiError;
use crate::state::AppState;

/// The page a PaymentIntent of `ctx`'s scope waiting for 3-D Secure links to.
pub fn authenticate_url(ctx: &Ctx, pi: &str, client_secret: &str) -> String {
    let account = ctx.scope.account.as_deref().unwrap_or("");
    format!(
        "{}/switchboard/pages/authenticate?{}&account={account}&payment_intent={pi}&client_secret={client_secret}",
        ctx.origin(),
        super::link_query(ctx),
    )
}

#[derive(Deserialize)]
pub struct AuthLink {
    platform: String,
    livemode: bool,
    #[serde(default)]
    account: String,
    payment_intent: String,
    client_secret: String,
}

async fn context(state: AppState, link: &AuthLink, headers: HeaderMap) -> Result<Ctx, ApiError> {
    super::context(
        state,
        &link.platform,
        link.livemode,
        (!link.account.is_empty()).then(|| link.account.clone()),
        headers,
        ApiError::not_found("payment_intent", &link.payment_intent),
    )
    .await
}

fn failed(e: ApiError) -> Response {
    super::failed("Authentication link not valid", e)
}

async fn show(
    State(state): State<AppState>,
    Query(link): Query<AuthLink>,
    headers: HeaderMap,
) -> Response {
    let ctx = match context(state, &link, headers).await {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    let pi = match crate::api::objects::load(
        &ctx,
        &ctx.scope,
        "payment_intent",
        &link.payment_intent,
        "payment_intent",
    )
    .await
    {
        Ok(pi) if pi.data["client_secret"] == link.client_secret.as_str() => pi.data,
        Ok(_) => return failed(ApiError::not_found("payment_intent", &link.payment_intent)),
        Err(e) => return failed(e),
    };
    let amount = pi["amount"].as_i64().unwrap_or(0);
    let currency = pi["currency"].as_str().unwrap_or("usd").to_uppercase();
    let status = pi["status"].as_str().unwrap_or_default();
    let body = if status == "requires_action" {
        format!(
            "<p>Switchboard test 3-D Secure page: the bank asks the customer to confirm this payment.</p>\
             <dl><dt>Payment</dt><dd><code>{id}</code></dd><dt>Amount</dt><dd>{amount} {currency} (minor units)</dd></dl>\
             <form method=post><button name=outcome value=complete class=primary>Complete authentication</button> \
             <button name=outcome value=fail>Fail authentication</button></form>",
            id = escape(&link.payment_intent),
            currency = escape(&currency),
        )
    } else {
        format!(
            "<p>This payment no longer needs authentication (status <code>{}</code>).</p>",
            escape(status)
        )
    };
    page(StatusCode::OK, "Authenticate payment", &body)
}

async fn answer(
    State(state): State<AppState>,
    Query(link): Query<AuthLink>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let outcome = switchboard_core::form::Params::parse(&body)
        .ok()
        .and_then(|mut p| p.string("outcome").ok().flatten())
        .unwrap_or_default();
    let complete = match outcome.as_str() {
        "complete" => true,
        "fail" => false,
        _ => {
            return failed(ApiError::invalid(
                "outcome",
                "outcome must be complete or fail",
            ));
        }
    };
    let ctx = match context(state, &link, headers).await {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    let scope = ctx.scope.clone();
    match crate::api::payments::authenticate(
        &ctx,
        &scope,
        &link.payment_intent,
        &link.client_secret,
        complete,
    )
    .await
    {
        Ok(pi) => {
            let status = if pi["status"] == "succeeded" || pi["status"] == "requires_capture" {
                "succeeded"
            } else {
                "failed"
            };
            match pi[crate::api::objects::PRIVATE]["return_url"].as_str() {
                Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                    let sep = if url.contains('?') { '&' } else { '?' };
                    Redirect::to(&format!(
                        "{url}{sep}payment_intent={}&payment_intent_client_secret={}&redirect_status={status}",
                        link.payment_intent, link.client_secret
                    ))
                    .into_response()
                }
                _ => page(
                    StatusCode::OK,
                    if status == "succeeded" {
                        "Authentication complete"
                    } else {
                        "Authentication failed"
                    },
                    &format!(
                        "<p>The payment is now <code>{}</code>. You can close this page.</p>",
                        escape(pi["status"].as_str().unwrap_or_default())
                    ),
                ),
            }
        }
        Err(e) => failed(e),
    }
}

/// This module's routes.
pub fn routes() -> axum::Router<AppState> {
    use axum::routing::get;
    axum::Router::new().route("/switchboard/pages/authenticate", get(show).post(answer))
}
