//! One module per resource. Every handler takes a [`Ctx`], consumes its
//! parameters (so leftovers are reported as unknown), and writes through one
//! `Change` so that objects, events and deliveries commit together.

pub mod account_links;
pub mod account_persons_v2;
pub mod account_sessions;
pub mod accounts;
pub mod accounts_v2;
pub mod application_fees;
pub mod balance;
pub mod balance_transactions;
pub mod capabilities;
pub mod cash_balance;
pub mod customers;
pub mod disputes;
pub mod event_destinations;
pub mod events;
pub mod events_v2;
pub mod external_accounts;
pub mod login_links;
pub mod oauth;
pub mod objects;
pub mod patch;
pub mod payment_methods;
pub mod payments;
pub mod payouts;
pub mod persons;
pub mod refunds;
pub mod setup_intents;
pub mod sources;
pub mod switchboard;
pub mod topups;
pub mod transfers;
pub mod v2;
pub mod webhook_endpoints;

use serde_json::{Value, json};
use switchboard_core::form::Params;
use switchboard_store::{Page, PageRequest};

use crate::context::Ctx;
use crate::error::ApiError;

/// A list's `limit`: 1–100, `default` when absent.
pub fn limit(params: &mut Params, default: i64) -> Result<usize, ApiError> {
    let limit = params.int("limit")?.unwrap_or(default);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("Invalid limit: must be between 1 and 100, got {limit}"),
        ));
    }
    Ok(limit as usize)
}

/// `limit`, `starting_after` and `ending_before`.
pub fn page_request(ctx: &mut Ctx) -> Result<PageRequest, ApiError> {
    let limit = limit(&mut ctx.params, 10)?;
    let starting_after = ctx
        .params
        .string("starting_after")?
        .filter(|s| !s.is_empty());
    let ending_before = ctx
        .params
        .string("ending_before")?
        .filter(|s| !s.is_empty());
    if starting_after.is_some() && ending_before.is_some() {
        return Err(ApiError::invalid(
            "ending_before",
            "You may only specify one of these parameters: starting_after, ending_before.",
        ));
    }
    Ok(PageRequest {
        limit,
        starting_after,
        ending_before,
        filters: Vec::new(),
    })
}

/// Stripe's list object; `url` is what SDKs re-request for the next page.
pub fn list_json<T>(url: &str, page: Page<T>, render: impl Fn(T) -> Value) -> Value {
    json!({
        "object": "list",
        "data": page.data.into_iter().map(render).collect::<Vec<_>>(),
        "has_more": page.has_more,
        "url": url,
    })
}

/// Maps a store cursor miss to the parameter the caller used.
pub fn cursor_param(page: &PageRequest, e: ApiError) -> ApiError {
    let param = if page.ending_before.is_some() {
        "ending_before"
    } else {
        "starting_after"
    };
    cursor_named(param, e)
}

/// A store cursor miss (`resource_missing`) as an error of `param`.
pub fn cursor_named(param: &str, e: ApiError) -> ApiError {
    match e {
        ApiError::InvalidRequest { message, code, .. } if code == Some("resource_missing") => {
            ApiError::InvalidRequest {
                message,
                code,
                param: Some(param.into()),
            }
        }
        other => other,
    }
}
