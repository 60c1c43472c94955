//! `/v1/accounts/{account}/capabilities[/{capability}]`: what a connected
//! account may do. Capabilities are not stored on their own: the account's
//! `capabilities` map (name → status) is the one truth, and a capability
//! object is rendered from it and the account's requirements. Every change
//! of a status, whatever caused it (an update, a person, a bank account,
//! the onboarding page), is a `capability.updated` event.

use axum::response::Response;
use serde_json::{Value, json};
use switchboard_core::connect::CAPABILITIES;
use switchboard_store::Change;

use super::accounts::{self, platform_scope};
use super::objects;
use crate::context::{Ctx, Path, retry_conflicts};
use crate::error::ApiError;

/// The capability `name` of `account` (the account's stored JSON).
pub fn render(account: &Value, name: &str) -> Value {
    let status = account["capabilities"][name]
        .as_str()
        .unwrap_or("unrequested");
    let due: Vec<Value> = if status == "active" {
        Vec::new()
    } else {
        account["requirements"]["currently_due"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let disabled = if status == "active" {
        Value::Null
    } else {
        "requirements.fields_needed".into()
    };
    let requested = status != "unrequested";
    objects::build(
        "capability",
        json!({
            "id": name, "object": "capability", "account": account["id"],
            "future_requirements": {"alternatives": [], "current_deadline": null, "currently_due": [],
                "disabled_reason": null, "errors": [], "eventually_due": [], "past_due": [], "pending_verification": []},
            "requested": requested,
            "requested_at": if requested { account["created"].clone() } else { Value::Null },
            "requirements": {"alternatives": [], "current_deadline": null, "currently_due": due, "disabled_reason": disabled,
                "errors": [], "eventually_due": due, "past_due": due, "pending_verification": []},
            "status": status,
        }),
    )
}

/// A `capability.updated` event for every capability whose status differs
/// between `before` and `after` (the same account, before and after a change).
pub fn events(ctx: &Ctx, before: &Value, after: &Value, change: &mut Change) {
    let Some(caps) = after["capabilities"].as_object() else {
        return;
    };
    let account = after["id"].as_str().map(str::to_owned);
    for (name, status) in caps {
        let was = &before["capabilities"][name];
        if was == status {
            continue;
        }
        let prev = serde_json::Map::from_iter([(
            "status".to_owned(),
            if was.is_null() {
                "unrequested".into()
            } else {
                was.clone()
            },
        )]);
        change.events.push(ctx.event_on(
            account.clone(),
            "capability.updated",
            render(after, name),
            Some(prev),
        ));
    }
}

fn known(name: &str) -> Result<(), ApiError> {
    if CAPABILITIES.contains(&name) {
        Ok(())
    } else {
        Err(ApiError::not_found("capability", name))
    }
}

pub async fn list(Path(account): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    let acct = accounts::load(&ctx, &account).await?.data;
    let data: Vec<Value> = acct["capabilities"]
        .as_object()
        .map(|caps| caps.keys().map(|name| render(&acct, name)).collect())
        .unwrap_or_default();
    ctx.respond(json!({
        "object": "list", "data": data, "has_more": false,
        "url": format!("/v1/accounts/{account}/capabilities"),
    }))
    .await
}

pub async fn retrieve(
    Path((account, name)): Path<(String, String)>,
    mut ctx: Ctx,
) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    known(&name)?;
    let acct = accounts::load(&ctx, &account).await?.data;
    ctx.respond(render(&acct, &name)).await
}

/// `requested=true` asks for the capability (it is `active` once the
/// account's requirements are met); `requested=false` gives it up.
pub async fn update(
    Path((account, name)): Path<(String, String)>,
    mut ctx: Ctx,
) -> Result<Response, ApiError> {
    let requested = ctx.params.bool("requested")?;
    ctx.finish_params()?;
    known(&name)?;
    retry_conflicts!({
        let mut acct = accounts::load(&ctx, &account).await?;
        let before = acct.data.clone();
        let caps = acct.data["capabilities"]
            .as_object_mut()
            .ok_or_else(|| ApiError::Internal("an account without capabilities".into()))?;
        match requested {
            Some(true) if !caps.contains_key(&name) => {
                caps.insert(name.clone(), "inactive".into());
            }
            Some(false) => {
                caps.remove(&name);
            }
            _ => {}
        }
        accounts::derive(&mut acct.data, &accounts::dependents(&ctx, &account).await?);
        let body = render(&acct.data, &name);
        let mut change = ctx.change();
        accounts::updated(&ctx, &before, &acct.data, &mut change);
        change
            .writes
            .push(objects::replace(&platform_scope(&ctx), acct));
        ctx.commit(change, &body).await
    })
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/v1/accounts/{account}/capabilities", get(list))
        .route(
            "/v1/accounts/{account}/capabilities/{capability}",
            get(retrieve).post(update),
        )
}
