//! The hosted onboarding page an Account Link opens: a form pre-filled with
//! valid test data (one submit completes onboarding; clearing a field
//! leaves its requirement due), then back to the platform's `return_url`.
//! A used or expired link goes to `refresh_url`, as on Stripe.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::{escape, page};
use crate::api::account_links::{self, Onboarding, Visit};
use crate::context::Ctx;
use crate::error::ApiError;
use crate::state::AppState;

const PATH: &str = "/switchboard/pages/onboarding";

/// The `url` of an Account Link whose token is `token`.
pub fn onboarding_url(ctx: &Ctx, token: &str) -> String {
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

async fn context(state: AppState, link: &Link, headers: HeaderMap) -> Result<Ctx, ApiError> {
    super::context(
        state,
        &link.platform,
        link.livemode,
        None,
        headers,
        ApiError::not_found("account_link", &link.link),
    )
    .await
}

fn failed(e: ApiError) -> Response {
    super::failed("Onboarding link not valid", e)
}

fn field(name: &str, label: &str, value: &str, kind: &str) -> String {
    format!(
        "<label>{label}<br><input name={name} type={kind} value=\"{}\" data-testid={name}></label>",
        escape(value)
    )
}

/// The onboarding form for `account`, filled with `values`.
fn form(session: &str, account: &Value, values: &Onboarding, error: Option<&str>) -> Response {
    let id = account["id"].as_str().unwrap_or_default();
    let due = account["requirements"]["currently_due"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let selected = |t: &str| {
        if values.business_type == t {
            " selected"
        } else {
            ""
        }
    };
    let has_bank = account["external_accounts"]["data"]
        .as_array()
        .is_some_and(|d| !d.is_empty());
    let bank = if has_bank {
        "<p class=muted>Payouts go to the bank account on file.</p>".to_owned()
    } else {
        format!(
            "<fieldset><legend>Bank account for payouts</legend>{}{}</fieldset>",
            field(
                "routing_number",
                "Routing number",
                &values.routing_number,
                "text"
            ),
            field(
                "account_number",
                "Account number",
                &values.account_number,
                "text"
            ),
        )
    };
    let body = format!(
        "<p>Onboarding <code data-testid=account>{id}</code> for the platform. The form is filled with test data that \
         satisfies every requirement; clear a field to leave its requirement due.</p>\
         {error}<p class=muted>Currently due: <span data-testid=currently-due>{due}</span></p>\
         <form method=post class=card>\
         <input type=hidden name=session value=\"{session}\">\
         <label>Business type<br><select name=business_type data-testid=business_type>\
         <option value=individual{ind}>Individual</option><option value=company{com}>Company</option></select></label>\
         <fieldset><legend>Person (the individual, or the company's representative)</legend>{first}{last}{dob}{email}</fieldset>\
         <fieldset><legend>Company</legend>{company}</fieldset>\
         <fieldset><legend>Business</legend>{url}{mcc}</fieldset>\
         {bank}\
         <label><input type=checkbox name=accept_tos data-testid=accept_tos{tos}> I accept the Stripe Services Agreement (test)</label>\
         <button class=primary data-testid=submit>Submit</button></form>",
        id = escape(id),
        error = error.map_or(String::new(), |e| format!(
            "<p class=error data-testid=error>{}</p>",
            escape(e)
        )),
        due = escape(&due),
        session = escape(session),
        ind = selected("individual"),
        com = selected("company"),
        first = field("first_name", "First name", &values.first_name, "text"),
        last = field("last_name", "Last name", &values.last_name, "text"),
        dob = field("dob", "Date of birth", &values.dob, "date"),
        email = field("email", "Email", &values.email, "email"),
        company = field("company_name", "Company name", &values.company_name, "text"),
        url = field("url", "Website", &values.url, "url"),
        mcc = field("mcc", "Merchant category code", &values.mcc, "text"),
        tos = if values.accept_tos { " checked" } else { "" },
    );
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    page(status, "Set up your account", &body)
}

async fn show(
    State(state): State<AppState>,
    Query(link): Query<Link>,
    headers: HeaderMap,
) -> Response {
    let ctx = match context(state, &link, headers).await {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    match account_links::visit(&ctx, &link.link).await {
        Ok(Visit::Onboard { account, session }) => {
            let values = account_links::prefill(&account);
            form(&session, &account, &values, None)
        }
        Ok(Visit::Expired { refresh_url }) => refresh_url
            .as_deref()
            .and_then(super::redirect)
            .unwrap_or_else(|| {
                page(
                    StatusCode::GONE,
                    "This link has expired",
                    "<p>Account links work once and for five minutes. Ask the platform for a new one.</p>",
                )
            }),
        Err(e) => failed(e),
    }
}

async fn submit(
    State(state): State<AppState>,
    Query(link): Query<Link>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let user_agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let ctx = match context(state, &link, headers).await {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    let mut params = match switchboard_core::form::Params::parse(&body) {
        Ok(p) => p,
        Err(e) => return failed(e.into()),
    };
    let session = params.string("session").ok().flatten().unwrap_or_default();
    let values = match Onboarding::from_form(&mut params) {
        Ok(v) => Onboarding {
            // The page is served on loopback: the address a person accepting
            // the terms comes from is the test machine's.
            ip: "127.0.0.1".into(),
            user_agent,
            ..v
        },
        Err(e) => return failed(e),
    };
    match account_links::submit(&ctx, &link.link, &session, &values).await {
        Ok(return_url) => return_url
            .as_deref()
            .and_then(super::redirect)
            .unwrap_or_else(|| {
                page(
                    StatusCode::OK,
                    "Onboarding submitted",
                    "<p>The account's details were submitted. You can close this page.</p>",
                )
            }),
        Err(e @ ApiError::InvalidRequest { .. }) | Err(e @ ApiError::Param(_)) => {
            // A mistake in the form: show it again with what was typed.
            match account_links::session(&ctx, &link.link, &session).await {
                Ok(account) => form(&session, &account, &values, Some(&e.to_string())),
                Err(_) => failed(e),
            }
        }
        Err(e) => failed(e),
    }
}

/// This module's routes.
pub fn routes() -> axum::Router<AppState> {
    use axum::routing::get;
    axum::Router::new().route(PATH, get(show).post(submit))
}
