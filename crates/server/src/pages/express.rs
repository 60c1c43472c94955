//! The Express Dashboard a login link opens: a connected account's view of
//! its details, balance and payouts. Read-only; the link works once.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use switchboard_store::PageRequest;

use super::{escape, page};
use crate::api::{accounts, balance, login_links};
use crate::context::Ctx;
use crate::error::ApiError;
use crate::state::AppState;

const PATH: &str = "/switchboard/pages/express";

/// The `url` of a login link whose token is `token`.
pub fn express_url(ctx: &Ctx, token: &str) -> String {
    format!(
        "{}{PATH}?{}&link={token}",
        ctx.origin(),
        super::link_query(ctx)
    )
}

#[derive(Deserialize)]
pub struct Link {
    platform: String,
    livemode: bool,
    link: String,
}

fn amounts(list: &Value) -> String {
    list.as_array()
        .map(|l| {
            l.iter()
                .map(|e| {
                    format!(
                        "{} {}",
                        e["amount"].as_i64().unwrap_or(0),
                        e["currency"].as_str().unwrap_or_default().to_uppercase()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

async fn render(ctx: &Ctx, account: &Value) -> Result<String, ApiError> {
    let id = account["id"].as_str().unwrap_or_default();
    let scope = accounts::account_scope(ctx, id);
    let bal = balance::current(ctx, &scope).await?;
    let page_req = PageRequest {
        limit: 10,
        ..Default::default()
    };
    let payouts = ctx
        .state
        .store
        .objects(&scope, "payout", &page_req)
        .await?
        .data;
    let rows: String = payouts
        .iter()
        .map(|p| {
            format!(
                "<tr data-testid=payout-row><td><code>{}</code></td><td>{} {}</td><td>{}</td></tr>",
                escape(&p.id),
                p.data["amount"].as_i64().unwrap_or(0),
                escape(
                    &p.data["currency"]
                        .as_str()
                        .unwrap_or_default()
                        .to_uppercase()
                ),
                escape(p.data["status"].as_str().unwrap_or_default()),
            )
        })
        .collect();
    let name = account["business_profile"]["name"]
        .as_str()
        .or(account["email"].as_str())
        .unwrap_or(id);
    Ok(format!(
        "<p>Signed in as <strong>{name}</strong> (<code data-testid=account>{id}</code>).</p>\
         <div class=card><dl><dt>Available</dt><dd data-testid=available>{avail}</dd>\
         <dt>Pending</dt><dd data-testid=pending>{pending}</dd>\
         <dt>Payouts</dt><dd>{payouts_enabled}</dd></dl></div>\
         <h2>Recent payouts</h2><table><tr><th>Payout</th><th>Amount</th><th>Status</th></tr>{rows}</table>",
        name = escape(name),
        id = escape(id),
        avail = escape(&amounts(&bal["available"])),
        pending = escape(&amounts(&bal["pending"])),
        payouts_enabled = if account["payouts_enabled"] == true {
            "enabled"
        } else {
            "paused"
        },
    ))
}

async fn show(
    State(state): State<AppState>,
    Query(link): Query<Link>,
    headers: HeaderMap,
) -> Response {
    let opened = async {
        let ctx = super::context(
            state,
            &link.platform,
            link.livemode,
            None,
            headers,
            ApiError::not_found("login_link", &link.link),
        )
        .await?;
        let account = login_links::open(&ctx, &link.link).await?;
        render(&ctx, &account).await
    };
    match opened.await {
        Ok(body) => page(StatusCode::OK, "Express Dashboard", &body),
        Err(e) => super::failed("Login link not valid", e),
    }
}

/// This module's routes.
pub fn routes() -> axum::Router<AppState> {
    use axum::routing::get;
    axum::Router::new().route(PATH, get(show))
}
