//! Hosted pages: what Stripe shows a customer or a connected account outside
//! the API, served by Switchboard so the flows that go through them can be
//! tested end to end:
//!
//! - `authenticate`: the 3-D Secure page of a PaymentIntent's
//!   `next_action.redirect_to_url.url`;
//! - `onboarding`: the page an Account Link's `url` opens, where the
//!   account's requirements are filled in;
//! - `express`: the Express Dashboard a login link opens;
//! - `oauth`: `/oauth/authorize`, where a Standard account approves the
//!   platform.
//!
//! Pages carry no API key: a link names its platform and mode, and a random
//! token (a link's, a PaymentIntent's `client_secret`) is its credential, as
//! on Stripe. They are server-rendered HTML with the dashboard's stylesheet;
//! every value is escaped, and no script runs (the CSP forbids it). What a
//! page does to the account or payment lives in the API module of that
//! resource; a page only renders and redirects.

mod authenticate;
mod express;
mod oauth;
mod onboarding;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use switchboard_store::Scope;

pub use authenticate::authenticate_url;
pub use express::express_url;
pub use onboarding::onboarding_url;

use crate::context::Ctx;
use crate::error::ApiError;
use crate::state::AppState;

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'";

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A hosted page: `body` (already escaped HTML) under `title`.
pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
         <title>{t}</title><link rel=stylesheet href=\"/dashboard/app.css\"></head>\
         <body><main class=hosted><p class=muted>Switchboard · test page</p><h1>{t}</h1>{body}</main></body></html>",
        t = escape(title)
    );
    let mut resp = (status, html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// The page a link that cannot be used shows: what is wrong with it.
pub(crate) fn failed(title: &str, e: ApiError) -> Response {
    let status = if matches!(e, ApiError::NotFound { .. }) {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::BAD_REQUEST
    };
    page(
        status,
        title,
        &format!("<p class=error>{}</p>", escape(&e.to_string())),
    )
}

/// `?platform=…&livemode=…` of a link, so its page finds what it names.
pub(crate) fn link_query(ctx: &Ctx) -> String {
    format!("platform={}&livemode={}", ctx.platform.id, ctx.livemode())
}

/// The context a page acts in: `platform`'s, in one mode, optionally as one
/// of its connected accounts. `missing` is the error an unknown platform
/// gets (the link names something that does not exist).
pub(crate) async fn context(
    state: AppState,
    platform: &str,
    livemode: bool,
    account: Option<String>,
    headers: HeaderMap,
    missing: ApiError,
) -> Result<Ctx, ApiError> {
    let platform = state.store.platform(platform).await?.ok_or(missing)?;
    let scope = Scope {
        platform: platform.id.clone(),
        livemode,
        account,
    };
    Ctx::hosted(state, platform, scope, headers).await
}

/// Where the browser goes after a page: only http(s) URLs the platform gave.
pub(crate) fn redirect(url: &str) -> Option<Response> {
    (url.starts_with("http://") || url.starts_with("https://"))
        .then(|| axum::response::Redirect::to(url).into_response())
}

/// Every hosted page's routes.
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .merge(authenticate::routes())
        .merge(onboarding::routes())
        .merge(express::routes())
        .merge(oauth::routes())
}
