//! `/oauth/authorize`: Stripe's Connect OAuth page for Standard accounts.
//! The developer approves (a new Standard test account connects to the
//! platform) or denies; the browser goes back to `redirect_uri` with
//! `code` and `state`, or with `error=access_denied`, as on Stripe.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::{escape, page};
use crate::api::oauth::{self, Approval};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize, Debug)]
pub struct Authorize {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    state: String,
    #[serde(rename = "stripe_user[email]")]
    email: Option<String>,
    #[serde(rename = "stripe_user[country]")]
    country: Option<String>,
}

fn refuse(message: String) -> Response {
    super::failed(
        "Authorization request not valid",
        ApiError::invalid("client_id", message),
    )
}

/// What is wrong with the request, checked before showing or acting on it.
fn problem(q: &Authorize) -> Option<String> {
    let web = |u: &str| u.starts_with("http://") || u.starts_with("https://");
    if q.client_id.is_empty() {
        Some("No client_id provided".into())
    } else if q.response_type != "code" {
        Some(format!(
            "Invalid response_type: must be code (got '{}')",
            q.response_type
        ))
    } else if !["", "read_write", "read_only"].contains(&q.scope.as_str()) {
        Some(format!("Invalid scope: {}", q.scope))
    } else if !(q.redirect_uri.is_empty() || web(&q.redirect_uri)) {
        Some(format!("Invalid redirect_uri: {}", q.redirect_uri))
    } else {
        None
    }
}

async fn show(State(state): State<AppState>, Query(q): Query<Authorize>) -> Response {
    if let Some(why) = problem(&q) {
        return refuse(why);
    }
    let Ok(Some(platform)) = state.store.platform(&q.client_id).await else {
        return refuse(format!("No such application: '{}'", q.client_id));
    };
    let hidden: String = [
        ("client_id", &q.client_id),
        ("response_type", &q.response_type),
        ("scope", &q.scope),
        ("redirect_uri", &q.redirect_uri),
        ("state", &q.state),
    ]
    .iter()
    .map(|(k, v)| format!("<input type=hidden name={k} value=\"{}\">", escape(v)))
    .collect();
    let body = format!(
        "<p>The platform <code>{platform}</code> (<code>{client}</code>) asks to connect to a Stripe account with \
         <code>{scope}</code> access. Approving creates a new Standard test account connected to it.</p>\
         <form method=post class=card>{hidden}\
         <label>Email<br><input name=email type=email value=\"{email}\" data-testid=email></label>\
         <button name=decision value=approve class=primary data-testid=approve>Connect my account</button> \
         <button name=decision value=deny data-testid=deny>Deny</button></form>",
        platform = escape(&platform.id),
        client = escape(&platform.client_id),
        scope = escape(if q.scope.is_empty() {
            "read_write"
        } else {
            &q.scope
        }),
        email = escape(q.email.as_deref().unwrap_or("owner@example.com")),
    );
    page(StatusCode::OK, "Connect with Stripe", &body)
}

async fn answer(State(state): State<AppState>, headers: HeaderMap, body: String) -> Response {
    let Ok(mut form) = switchboard_core::form::Params::parse(&body) else {
        return refuse("The form could not be read".into());
    };
    let mut get = |k: &str| form.string(k).ok().flatten().unwrap_or_default();
    let q = Authorize {
        client_id: get("client_id"),
        response_type: get("response_type"),
        scope: get("scope"),
        redirect_uri: get("redirect_uri"),
        state: get("state"),
        email: Some(get("email")).filter(|e| !e.is_empty()),
        country: Some(get("country")).filter(|c| !c.is_empty()),
    };
    let decision = get("decision");
    if let Some(why) = problem(&q) {
        return refuse(why);
    }
    let scope = if q.scope.is_empty() {
        "read_write".to_owned()
    } else {
        q.scope.clone()
    };
    let sep = if q.redirect_uri.contains('?') {
        '&'
    } else {
        '?'
    };
    let state_param = if q.state.is_empty() {
        String::new()
    } else {
        format!("&state={}", encode(&q.state))
    };
    if decision != "approve" {
        let url = format!(
            "{}{sep}error=access_denied&error_description=The+user+denied+your+request{state_param}",
            q.redirect_uri
        );
        return super::redirect(&url).unwrap_or_else(|| {
            page(
                StatusCode::OK,
                "Access denied",
                "<p>You denied the platform's request.</p>",
            )
        });
    }
    let ctx = match super::context(
        state,
        &q.client_id,
        false,
        None,
        headers,
        ApiError::invalid(
            "client_id",
            format!("No such application: '{}'", q.client_id),
        ),
    )
    .await
    {
        Ok(c) => c,
        Err(e) => return super::failed("Authorization request not valid", e),
    };
    let approval = Approval {
        scope: scope.clone(),
        email: q.email.clone(),
        country: q.country.clone(),
    };
    match oauth::approve(&ctx, &approval).await {
        Ok(code) => {
            let url = format!(
                "{}{sep}code={code}&scope={scope}{state_param}",
                q.redirect_uri
            );
            super::redirect(&url).unwrap_or_else(|| {
                page(
                    StatusCode::OK,
                    "Account connected",
                    &format!(
                        "<p>Authorization code: <code data-testid=code>{}</code></p>",
                        escape(&code)
                    ),
                )
            })
        }
        Err(e) => super::failed("Authorization failed", e),
    }
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// This module's routes.
pub fn routes() -> axum::Router<AppState> {
    use axum::routing::get;
    // Express accounts' variant of the page (`authorize_url(express=True)`).
    axum::Router::new()
        .route("/oauth/authorize", get(show).post(answer))
        .route("/express/oauth/authorize", get(show).post(answer))
}
