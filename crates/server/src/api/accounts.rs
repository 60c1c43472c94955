//! `/v1/accounts`, `/v1/account` and OAuth deauthorization: connected accounts.
//!
//! A connected account is stored in its platform's scope (kind `account`);
//! objects it owns (persons, external accounts, customers, payouts, …) live in
//! the account's own scope. Deleting or deauthorizing marks the account
//! deleted, which is what makes later `Stripe-Account` requests fail.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use switchboard_core::connect::{CAPABILITIES, currently_due};
use switchboard_core::form::Params;
use switchboard_core::ids;
use switchboard_core::object::previous_attributes;
use switchboard_store::{Change, PageRequest, Scope, StoredObject};

use super::objects::{self, public};
use super::patch::Patch;
use crate::context::{Ctx, Path, retry_conflicts};
use crate::error::ApiError;

pub const KIND: &str = "account";

/// The platform scope (no `Stripe-Account`), where connected accounts live.
pub fn platform_scope(ctx: &Ctx) -> Scope {
    Scope {
        platform: ctx.platform.id.clone(),
        livemode: ctx.livemode(),
        account: None,
    }
}

/// The platform scope, for resources only the platform has (`what`:
/// "transfers"); a request acting as a connected account is refused.
pub fn platform_only(ctx: &Ctx, what: &str) -> Result<Scope, ApiError> {
    if ctx.scope.account.is_some() {
        return Err(ApiError::Permission(format!(
            "Only the platform has {what}: send this request without the Stripe-Account header."
        )));
    }
    Ok(platform_scope(ctx))
}

pub fn account_scope(ctx: &Ctx, account: &str) -> Scope {
    Scope {
        account: Some(account.to_owned()),
        ..platform_scope(ctx)
    }
}

/// A connected account of the caller's platform, by id.
pub async fn load(ctx: &Ctx, id: &str) -> Result<StoredObject, ApiError> {
    if let Some(acting) = &ctx.scope.account
        && acting != id
    {
        return Err(ApiError::Permission(format!(
            "You cannot access account '{id}' while acting as '{acting}'."
        )));
    }
    // Like Stripe: an account the platform cannot reach (unknown, deleted,
    // disconnected) is a permission error, not a 404.
    objects::load(ctx, &platform_scope(ctx), KIND, id, "account")
        .await
        .map_err(|_| crate::context::no_access(ctx, id))
}

/// Everything an account's requirements depend on.
pub struct Dependents {
    pub persons: Vec<Value>,
    pub external_accounts: Vec<Value>,
}

pub async fn dependents(ctx: &Ctx, account: &str) -> Result<Dependents, ApiError> {
    let scope = account_scope(ctx, account);
    let all = PageRequest {
        limit: 100,
        ..Default::default()
    };
    let persons = ctx.state.store.objects(&scope, "person", &all).await?.data;
    let external = ctx
        .state
        .store
        .objects(&scope, "external_account", &all)
        .await?
        .data;
    Ok(Dependents {
        persons: persons.into_iter().map(|o| o.data).collect(),
        external_accounts: external.into_iter().map(|o| public(&o.data)).collect(),
    })
}

/// Recomputes requirements and the flags that follow from them, and embeds
/// the external accounts list, as Stripe renders an account.
pub fn derive(account: &mut Value, deps: &Dependents) {
    let due = currently_due(account, &deps.persons, deps.external_accounts.len());
    let enabled = due.is_empty();
    let id = account["id"].as_str().unwrap_or_default().to_owned();
    account["requirements"] = json!({
        "alternatives": [], "current_deadline": null, "currently_due": due, "errors": [],
        "disabled_reason": if enabled { Value::Null } else { "requirements.past_due".into() },
        "eventually_due": due, "past_due": due, "pending_verification": [],
    });
    account["charges_enabled"] = enabled.into();
    account["payouts_enabled"] = enabled.into();
    account["details_submitted"] = enabled.into();
    if let Some(caps) = account["capabilities"].as_object_mut() {
        for status in caps.values_mut() {
            *status = if enabled { "active" } else { "inactive" }.into();
        }
    }
    account["external_accounts"] = json!({
        "object": "list", "data": deps.external_accounts, "has_more": false,
        "url": format!("/v1/accounts/{id}/external_accounts"),
    });
}

/// After a change to something an account depends on: the account write and,
/// if anything visible changed, its `account.updated` event.
pub fn rederive(ctx: &Ctx, mut account: StoredObject, deps: &Dependents, change: &mut Change) {
    let before = account.data.clone();
    derive(&mut account.data, deps);
    if updated(ctx, &before, &account.data, change) {
        change
            .writes
            .push(objects::replace(&platform_scope(ctx), account));
    }
}

/// The events of an account that went from `before` to `after`: its v1
/// events ([`v1_events`]) and its v2 ones (`super::accounts_v2::events`),
/// as every account is both. `false` when nothing visible changed.
pub fn updated(ctx: &Ctx, before: &Value, after: &Value, change: &mut Change) -> bool {
    super::accounts_v2::events(ctx, (before, &Value::Null), (after, &Value::Null), change);
    v1_events(ctx, before, after, change)
}

/// Each capability whose status changed, then `account.updated` with its
/// `previous_attributes`. `false` when nothing visible changed.
pub fn v1_events(ctx: &Ctx, before: &Value, after: &Value, change: &mut Change) -> bool {
    let prev = previous_attributes(before, after);
    if prev.is_empty() {
        return false;
    }
    super::capabilities::events(ctx, before, after, change);
    change.events.push(ctx.event_on(
        after["id"].as_str().map(str::to_owned),
        "account.updated",
        after.clone(),
        Some(prev),
    ));
    true
}

pub(super) fn blank(id: &str, kind: &str, controller: Value, created: i64) -> Value {
    objects::build(
        "account",
        json!({
            "id": id, "object": "account",
            "business_profile": {"mcc": null, "name": null, "product_description": null, "support_email": null, "support_phone": null, "url": null},
            "business_type": null, "capabilities": {}, "charges_enabled": false, "controller": controller,
            "country": "US", "created": created, "default_currency": "usd", "details_submitted": false, "email": null,
            "future_requirements": {"alternatives": [], "current_deadline": null, "currently_due": [], "disabled_reason": null,
                "errors": [], "eventually_due": [], "past_due": [], "pending_verification": []},
            "metadata": {}, "payouts_enabled": false,
            "settings": {"payouts": {"debit_negative_balances": true, "schedule": {"delay_days": 2, "interval": "daily"}, "statement_descriptor": null}},
            "tos_acceptance": {"date": null, "ip": null, "user_agent": null}, "type": kind,
        }),
    )
}

/// A Standard account that connected through OAuth: it controls itself
/// (Stripe collects its requirements, it pays its fees and losses).
pub fn standard(id: &str, created: i64) -> Value {
    let controller = json!({
        "is_controller": false, "type": "account", "fees": {"payer": "account"},
        "losses": {"payments": "stripe"}, "requirement_collection": "stripe",
        "stripe_dashboard": {"type": "full"},
    });
    let mut acct = blank(id, "standard", controller, created);
    acct["capabilities"] = json!({"card_payments": "inactive", "transfers": "inactive"});
    derive(
        &mut acct,
        &Dependents {
            persons: Vec::new(),
            external_accounts: Vec::new(),
        },
    );
    acct
}

/// `type`, or the `controller[...]` form that replaces it.
fn account_type(ctx: &mut Ctx) -> Result<(String, Value), ApiError> {
    let kind = ctx.params.string("type")?;
    let controller = ctx.params.nested("controller")?.flatten();
    let mut ctl = json!({"is_controller": true, "type": "application"});
    let dashboard = match controller {
        None => None,
        Some(mut c) => {
            let mut sub = |name: &str, key: &str| -> Result<Option<String>, ApiError> {
                Ok(match c.nested(name)?.flatten() {
                    Some(mut n) => {
                        let v = n.string(key)?;
                        n.finish()?;
                        v
                    }
                    None => None,
                })
            };
            let fees = sub("fees", "payer")?;
            let losses = sub("losses", "payments")?;
            let dash = sub("stripe_dashboard", "type")?;
            let collection = c.string("requirement_collection")?;
            c.finish()?;
            ctl["fees"] = json!({"payer": fees.unwrap_or_else(|| "application".into())});
            ctl["losses"] = json!({"payments": losses.unwrap_or_else(|| "application".into())});
            ctl["requirement_collection"] = collection.unwrap_or_else(|| "stripe".into()).into();
            ctl["stripe_dashboard"] =
                json!({"type": dash.clone().unwrap_or_else(|| "full".into())});
            Some(dash.unwrap_or_else(|| "full".into()))
        }
    };
    let kind = match (kind, dashboard) {
        (Some(k), _) if ["standard", "express", "custom"].contains(&k.as_str()) => k,
        (Some(k), _) => {
            return Err(ApiError::invalid(
                "type",
                format!("Invalid type: must be one of standard, express, or custom (got {k})"),
            ));
        }
        (None, Some(d)) => match d.as_str() {
            "full" => "standard".into(),
            "express" => "express".into(),
            "none" => "custom".into(),
            other => {
                return Err(ApiError::invalid(
                    "controller[stripe_dashboard][type]",
                    format!("Invalid dashboard type: {other}"),
                ));
            }
        },
        // No type and no controller: Stripe's default controller (full
        // Dashboard, Stripe collects requirements) is a Standard account.
        (None, None) => "standard".into(),
    };
    if ctl.get("stripe_dashboard").is_none() {
        let (dash, collection) = match kind.as_str() {
            "standard" => ("full", "stripe"),
            "express" => ("express", "stripe"),
            _ => ("none", "application"),
        };
        ctl["stripe_dashboard"] = json!({"type": dash});
        ctl["requirement_collection"] = collection.into();
        ctl["fees"] = json!({"payer": if kind == "standard" { "account" } else { "application" }});
        ctl["losses"] =
            json!({"payments": if kind == "standard" { "stripe" } else { "application" }});
    }
    Ok((kind, ctl))
}

/// The settable fields of an account, read once.
fn parse(p: &mut Params) -> Result<Patch, ApiError> {
    let mut patch = Patch::default();
    patch.strings(p, &[], &["email", "default_currency"])?;
    if let Some(t) = p.clearable_string("business_type")? {
        if let Some(t) = &t
            && !["individual", "company", "non_profit", "government_entity"].contains(&t.as_str())
        {
            return Err(ApiError::invalid(
                "business_type",
                format!("Invalid business_type: {t}"),
            ));
        }
        patch.set(&["business_type"], t.map_or(Value::Null, Value::String));
    }
    if let Some(c) = p.string("country")? {
        patch.set(&["country"], c.to_ascii_uppercase());
    }
    patch.nested_strings(
        p,
        "business_profile",
        &[
            "mcc",
            "name",
            "product_description",
            "support_email",
            "support_phone",
            "url",
        ],
    )?;
    patch.nested_strings(p, "company", &["name", "phone", "tax_id", "structure"])?;
    if let Some(Some(mut ind)) = p.nested("individual")? {
        patch.strings(
            &mut ind,
            &["individual"],
            &["first_name", "last_name", "email", "phone"],
        )?;
        if let Some(n) = ind.string("id_number")? {
            patch.set(&["individual", "id_number_provided"], !n.is_empty());
        }
        if let Some(Some(mut dob)) = ind.nested("dob")? {
            patch.ints(&mut dob, &["individual", "dob"], &["day", "month", "year"])?;
            dob.finish()?;
        }
        ind.finish()?;
    }
    if let Some(Some(mut tos)) = p.nested("tos_acceptance")? {
        patch.ints(&mut tos, &["tos_acceptance"], &["date"])?;
        for f in ["ip", "user_agent", "service_agreement"] {
            if let Some(v) = tos.string(f)? {
                patch.set(&["tos_acceptance", f], v);
            }
        }
        tos.finish()?;
    }
    if let Some(Some(mut caps)) = p.nested("capabilities")? {
        for &cap in CAPABILITIES {
            if let Some(Some(mut c)) = caps.nested(cap)? {
                match c.bool("requested")? {
                    Some(true) => patch.set(&["capabilities", cap], "inactive"),
                    Some(false) => patch.remove(&["capabilities", cap]),
                    None => {}
                }
                c.finish()?;
            }
        }
        caps.finish()?;
    }
    patch.metadata(p)?;
    Ok(patch)
}

/// `patch` on an account. The individual is a Person of the account, as on
/// Stripe: the first time it is given, it gets its id.
pub(super) fn apply(patch: &Patch, acct: &mut Value) {
    patch.apply(acct);
    if patch.touches(&["individual"]) {
        let mut person = acct["individual"].take();
        if person["id"].is_null() {
            person["id"] = ids::generate(ids::Prefix::Person, &mut rand::rng()).into();
            person["account"] = acct["id"].clone();
            person["created"] = acct["created"].clone();
            person["relationship"]["representative"] = true.into();
        }
        acct["individual"] = objects::build("person", person);
    }
}

pub async fn create(mut ctx: Ctx) -> Result<Response, ApiError> {
    if ctx.scope.account.is_some() {
        return Err(ApiError::Permission(
            "Connected accounts cannot create connected accounts.".into(),
        ));
    }
    let (kind, controller) = account_type(&mut ctx)?;
    let id = ids::generate(ids::Prefix::Account, &mut rand::rng());
    let now = ctx.now();
    let mut acct = blank(&id, &kind, controller, now);
    apply(&parse(&mut ctx.params)?, &mut acct);
    // A bank account (or debit card) given at creation, as on Stripe.
    let external = if ctx.params.contains("external_account") {
        let mut ea = super::external_accounts::build(&mut ctx.params, &id, now)?;
        ea["default_for_currency"] = true.into();
        Some(ea)
    } else {
        None
    };
    ctx.finish_params()?;
    let mut change = ctx.change();
    let mut deps = Dependents {
        persons: Vec::new(),
        external_accounts: Vec::new(),
    };
    if let Some(ea) = external {
        let ea_id = ea["id"].as_str().unwrap_or_default().to_owned();
        deps.external_accounts.push(public(&ea));
        change.events.push(ctx.event_on(
            Some(id.clone()),
            "account.external_account.created",
            public(&ea),
            None,
        ));
        change.writes.push(objects::insert(
            &account_scope(&ctx, &id),
            super::external_accounts::KIND,
            &ea_id,
            now,
            ea,
        ));
    }
    derive(&mut acct, &deps);
    change.writes.push(objects::insert(
        &platform_scope(&ctx),
        KIND,
        &id,
        now,
        acct.clone(),
    ));
    ctx.commit(change, &acct).await
}

pub async fn retrieve(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    if id == ctx.platform.id && ctx.scope.account.is_none() {
        return ctx.respond(platform_account(&ctx)).await;
    }
    let acct = load(&ctx, &id).await?;
    ctx.respond(acct.data).await
}

/// `GET /v1/account`: the caller's own account.
pub async fn me(mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    if let Some(id) = ctx.scope.account.clone() {
        return ctx.respond(load(&ctx, &id).await?.data).await;
    }
    ctx.respond(platform_account(&ctx)).await
}

/// The platform's own account object.
fn platform_account(ctx: &Ctx) -> Value {
    let p = &ctx.platform;
    objects::build(
        "account",
        json!({
            "id": p.id, "business_profile": {"name": "Switchboard platform"},
            "business_type": "company", "capabilities": {"card_payments": "active", "transfers": "active"},
            "charges_enabled": true, "country": "US", "created": p.created, "default_currency": "usd",
            "details_submitted": true, "email": null, "metadata": {}, "payouts_enabled": true, "type": "standard",
            "settings": {"dashboard": {"display_name": "Switchboard platform", "timezone": "Etc/UTC"},
                "payouts": {"debit_negative_balances": true, "schedule": {"delay_days": 2, "interval": "daily"}, "statement_descriptor": null}},
            "tos_acceptance": {"date": p.created},
        }),
    )
}

pub async fn update(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let patch = parse(&mut ctx.params)?;
    ctx.finish_params()?;
    retry_conflicts!({
        let mut acct = load(&ctx, &id).await?;
        let before = acct.data.clone();
        apply(&patch, &mut acct.data);
        derive(&mut acct.data, &dependents(&ctx, &id).await?);
        let mut change = ctx.change();
        updated(&ctx, &before, &acct.data, &mut change);
        let body = acct.data.clone();
        change
            .writes
            .push(objects::replace(&platform_scope(&ctx), acct));
        ctx.commit(change, &body).await
    })
}

pub async fn list(mut ctx: Ctx) -> Result<Response, ApiError> {
    if ctx.scope.account.is_some() {
        return Err(ApiError::Permission(
            "Connected accounts cannot list accounts.".into(),
        ));
    }
    let scope = platform_scope(&ctx);
    objects::list(&mut ctx, &scope, KIND, "/v1/accounts", &[]).await
}

/// The platform's Connect application, as `account.application.*` events show it.
pub fn application(ctx: &Ctx) -> Value {
    json!({"id": ctx.platform.client_id, "object": "application", "name": "Switchboard platform"})
}

/// Disconnects an account from the platform: later `Stripe-Account` requests
/// fail, and Connect endpoints hear `account.application.deauthorized`.
fn disconnect(ctx: &Ctx, mut acct: StoredObject, change: &mut Change, notify: bool) {
    let id = acct.id.clone();
    if notify {
        change.events.push(ctx.event_on(
            Some(id),
            "account.application.deauthorized",
            application(ctx),
            None,
        ));
    }
    acct.deleted = true;
    change
        .writes
        .push(objects::replace(&platform_scope(ctx), acct));
}

pub async fn delete(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    retry_conflicts!({
        let acct = load(&ctx, &id).await?;
        let standard = acct.data["type"] == "standard";
        let mut change = ctx.change();
        disconnect(&ctx, acct, &mut change, standard);
        ctx.commit(
            change,
            &json!({"id": id, "object": "account", "deleted": true}),
        )
        .await
    })
}

/// `POST /oauth/deauthorize` with `client_id` and `stripe_user_id`.
pub async fn deauthorize(mut ctx: Ctx) -> Response {
    let client_id = ctx
        .params
        .string("client_id")
        .ok()
        .flatten()
        .unwrap_or_default();
    let user = ctx
        .params
        .string("stripe_user_id")
        .ok()
        .flatten()
        .unwrap_or_default();
    if client_id.is_empty() {
        return crate::error::oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "No client_id provided".into(),
        );
    }
    if client_id != ctx.platform.client_id {
        return crate::error::oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            format!("No such application: '{client_id}'"),
        );
    }
    if user.is_empty() {
        return crate::error::oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "No stripe_user_id provided".into(),
        );
    }
    let result: Result<Response, ApiError> = retry_conflicts!({
        let acct = match objects::load(&ctx, &platform_scope(&ctx), KIND, &user, "account").await {
            Ok(a) => a,
            Err(_) => {
                return Ok(crate::error::oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    format!(
                        "Application {client_id} is not connected to stripe account {user}, or that account does not exist."
                    ),
                ));
            }
        };
        let mut change = ctx.change();
        disconnect(&ctx, acct, &mut change, true);
        ctx.commit(change, &json!({"stripe_user_id": user})).await
    });
    result.unwrap_or_else(IntoResponse::into_response)
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/v1/account", get(me))
        .route("/v1/accounts", get(list).post(create))
        .route(
            "/v1/accounts/{id}",
            get(retrieve).post(update).delete(delete),
        )
        .route("/oauth/deauthorize", post(deauthorize))
}
