//! `/v1/account_links` and the onboarding they open. A link's `url` is
//! Switchboard's hosted onboarding page (`crate::pages::onboarding`), where
//! the developer fills the account's requirements from a form pre-filled
//! with valid test data; this module is what that page does to the
//! account. As on Stripe, a link works once and for five minutes: a second
//! visit, or a late one, goes to `refresh_url`, where the platform makes a
//! new link.
//!
//! A link is stored in the platform's scope (kind `account_link`) under a
//! random token, which is its only credential; the first visit stores a
//! second token (`session`) that the page's form posts back, so the page
//! can be submitted (and corrected) but never opened twice.

use axum::response::Response;
use serde_json::{Value, json};
use switchboard_core::form::{self, Params};
use switchboard_core::ids;
use switchboard_store::StoredObject;

use super::accounts::{self, platform_only, platform_scope};
use super::objects::{self, PRIVATE, public};
use super::patch::Patch;
use super::{external_accounts, persons};
use crate::context::{Ctx, retry_conflicts};
use crate::error::ApiError;

pub const KIND: &str = "account_link";
/// How long a link can be opened, as on Stripe.
const LINK_SECONDS: i64 = 300;
/// How long an opened onboarding form can be submitted.
const SESSION_SECONDS: i64 = 3600;
const TOKEN: &str = "alink";

fn url_param(ctx: &mut Ctx, name: &str) -> Result<Option<String>, ApiError> {
    let url = ctx.params.string(name)?;
    if let Some(u) = &url
        && !(u.starts_with("http://") || u.starts_with("https://"))
    {
        return Err(ApiError::invalid(name, format!("Not a valid URL: {u}")));
    }
    Ok(url)
}

pub async fn create(mut ctx: Ctx) -> Result<Response, ApiError> {
    platform_only(&ctx, "account links")?;
    let account = ctx.params.required_string("account")?;
    let kind = ctx.params.required_string("type")?;
    if !["account_onboarding", "account_update"].contains(&kind.as_str()) {
        return Err(ApiError::invalid(
            "type",
            format!(
                "Invalid type: must be one of account_onboarding or account_update (got {kind})"
            ),
        ));
    }
    let refresh_url = url_param(&mut ctx, "refresh_url")?;
    let return_url = url_param(&mut ctx, "return_url")?;
    let collect = ctx.params.string("collect")?;
    if let Some(c) = &collect
        && !["currently_due", "eventually_due"].contains(&c.as_str())
    {
        return Err(ApiError::invalid(
            "collect",
            format!("Invalid collect: must be one of currently_due or eventually_due (got {c})"),
        ));
    }
    if let Some(Some(mut options)) = ctx.params.nested("collection_options")? {
        options.string("fields")?;
        options.string("future_requirements")?;
        options.finish()?;
    }
    ctx.finish_params()?;
    let acct = accounts::load(&ctx, &account).await?;
    if kind == "account_update"
        && acct.data["controller"]["requirement_collection"] != "application"
    {
        return Err(ApiError::invalid(
            "type",
            "You can only create `account_update` links for accounts where your platform collects requirements (Custom accounts); use `account_onboarding`.",
        ));
    }
    let link = objects::build("account_link", json!({"object": "account_link"}));
    let (link, change) = open(
        &ctx,
        link,
        &account,
        &kind,
        (refresh_url, return_url),
        Value::Null,
    );
    ctx.commit(change, &link).await
}

/// A new link (`link`, given its `created`, `expires_at` and `url`) onto
/// the onboarding page, and the change that stores it; `v2` is what an
/// Accounts v2 link reports in `v2.core.account_link.returned`.
pub fn open(
    ctx: &Ctx,
    mut link: Value,
    account: &str,
    kind: &str,
    (refresh_url, return_url): (Option<String>, Option<String>),
    v2: Value,
) -> (Value, switchboard_store::Change) {
    let now = ctx.now();
    let token = ids::generate_secret(TOKEN, &mut rand::rng());
    link["created"] = now.into();
    link["expires_at"] = (now + LINK_SECONDS).into();
    link["url"] = crate::pages::onboarding_url(ctx, &token).into();
    let mut stored = link.clone();
    stored[PRIVATE] = json!({
        "account": account, "type": kind, "refresh_url": refresh_url, "return_url": return_url,
        "session": null, "opened_at": null, "completed": false, "v2": v2,
    });
    let mut change = ctx.change();
    change.writes.push(objects::insert(
        &platform_scope(ctx),
        KIND,
        &token,
        now,
        stored,
    ));
    (link, change)
}

/// What opening a link finds.
pub enum Visit {
    /// The onboarding form, for this account; `session` goes in the form.
    Onboard { account: Value, session: String },
    /// Used or expired: the browser goes to the platform's `refresh_url`.
    Expired { refresh_url: Option<String> },
}

async fn load(ctx: &Ctx, token: &str) -> Result<StoredObject, ApiError> {
    objects::load(ctx, &platform_scope(ctx), KIND, token, "account_link").await
}

/// The first visit of a link opens the form (and uses the link up).
pub async fn visit(ctx: &Ctx, token: &str) -> Result<Visit, ApiError> {
    retry_conflicts!(Visit, {
        let mut link = load(ctx, token).await?;
        let private = &link.data[PRIVATE];
        let expired = ctx.now() > link.data["expires_at"].as_i64().unwrap_or(0);
        if expired || !private["session"].is_null() {
            return Ok(Visit::Expired {
                refresh_url: private["refresh_url"].as_str().map(str::to_owned),
            });
        }
        let account = private["account"].as_str().unwrap_or_default().to_owned();
        let account = objects::load(
            ctx,
            &platform_scope(ctx),
            accounts::KIND,
            &account,
            "account",
        )
        .await?
        .data;
        let session = ids::generate_secret("alsess", &mut rand::rng());
        link.data[PRIVATE]["session"] = session.clone().into();
        link.data[PRIVATE]["opened_at"] = ctx.now().into();
        let mut change = ctx.change();
        change
            .writes
            .push(objects::replace(&platform_scope(ctx), link));
        ctx.commit_unanswered(change).await?;
        Ok(Visit::Onboard { account, session })
    })
}

/// The opened link `token` whose form carries `session`, and its account.
pub async fn session(ctx: &Ctx, token: &str, session: &str) -> Result<Value, ApiError> {
    let link = load(ctx, token).await?;
    let private = &link.data[PRIVATE];
    let opened = private["opened_at"].as_i64().unwrap_or(0);
    let valid = private["session"].as_str() == Some(session)
        && private["completed"] == false
        && ctx.now() <= opened + SESSION_SECONDS;
    if !valid {
        return Err(ApiError::invalid(
            "session",
            "This onboarding session has ended: ask the platform for a new link.",
        ));
    }
    let account = private["account"].as_str().unwrap_or_default();
    Ok(objects::load(
        ctx,
        &platform_scope(ctx),
        accounts::KIND,
        account,
        "account",
    )
    .await?
    .data)
}

/// What the onboarding form sends; empty fields are left unset (so their
/// requirements stay due).
#[derive(Debug, Default, Clone)]
pub struct Onboarding {
    pub business_type: String,
    pub first_name: String,
    pub last_name: String,
    /// `YYYY-MM-DD`.
    pub dob: String,
    pub email: String,
    pub company_name: String,
    pub url: String,
    pub mcc: String,
    pub routing_number: String,
    pub account_number: String,
    pub accept_tos: bool,
    pub ip: String,
    pub user_agent: String,
}

impl Onboarding {
    /// The form's fields (unknown ones are ignored: it is a browser form).
    pub fn from_form(p: &mut Params) -> Result<Onboarding, ApiError> {
        let mut get = |k: &str| -> Result<String, ApiError> {
            Ok(p.string(k)?.unwrap_or_default().trim().to_owned())
        };
        Ok(Onboarding {
            business_type: get("business_type")?,
            first_name: get("first_name")?,
            last_name: get("last_name")?,
            dob: get("dob")?,
            email: get("email")?,
            company_name: get("company_name")?,
            url: get("url")?,
            mcc: get("mcc")?,
            routing_number: get("routing_number")?,
            account_number: get("account_number")?,
            accept_tos: get("accept_tos")? == "on",
            ..Default::default()
        })
    }

    fn dob(&self) -> Result<Option<(i64, i64, i64)>, ApiError> {
        if self.dob.is_empty() {
            return Ok(None);
        }
        let bad = || ApiError::invalid("dob", "Date of birth must be YYYY-MM-DD");
        let mut parts = self.dob.splitn(3, '-').map(|s| s.parse::<i64>());
        let (Some(Ok(y)), Some(Ok(m)), Some(Ok(d))) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if !(1900..=2100).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
            return Err(bad());
        }
        Ok(Some((d, m, y)))
    }
}

/// Test data that completes onboarding in one submit.
pub fn prefill(account: &Value) -> Onboarding {
    let existing = |v: &Value, default: &str| v.as_str().unwrap_or(default).to_owned();
    let dob = &account["individual"]["dob"];
    let dob = match (
        dob["year"].as_i64(),
        dob["month"].as_i64(),
        dob["day"].as_i64(),
    ) {
        (Some(y), Some(m), Some(d)) => format!("{y:04}-{m:02}-{d:02}"),
        _ => "1990-01-01".into(),
    };
    Onboarding {
        business_type: existing(&account["business_type"], "individual"),
        first_name: existing(&account["individual"]["first_name"], "Jenny"),
        last_name: existing(&account["individual"]["last_name"], "Rosen"),
        dob,
        email: existing(&account["email"], "jenny.rosen@example.com"),
        company_name: existing(&account["company"]["name"], "Rosen Test Shop"),
        url: existing(&account["business_profile"]["url"], "https://example.com"),
        mcc: existing(&account["business_profile"]["mcc"], "5734"),
        routing_number: "110000000".into(),
        account_number: "000123456789".into(),
        accept_tos: true,
        ..Default::default()
    }
}

/// Submits the onboarding form of link `token`: the account gets what was
/// filled in (the individual, or the company and its representative, a
/// bank account, the terms of service), its requirements and capabilities
/// follow, with the events a platform hears on Stripe (`person.*`,
/// `account.external_account.created`, `capability.updated`,
/// `account.updated`). Answers where the browser goes next.
pub async fn submit(
    ctx: &Ctx,
    token: &str,
    session: &str,
    form: &Onboarding,
) -> Result<Option<String>, ApiError> {
    let dob = form.dob()?;
    if !["individual", "company"].contains(&form.business_type.as_str()) {
        return Err(ApiError::invalid(
            "business_type",
            "Choose individual or company",
        ));
    }
    retry_conflicts!(Option<String>, {
        self::session(ctx, token, session).await?;
        let mut link = load(ctx, token).await?;
        let id = link.data[PRIVATE]["account"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut acct =
            objects::load(ctx, &platform_scope(ctx), accounts::KIND, &id, "account").await?;
        let before = acct.data.clone();
        let now = ctx.now();
        let mut deps = accounts::dependents(ctx, &id).await?;
        let mut change = ctx.change();
        let scope = accounts::account_scope(ctx, &id);

        let mut patch = Patch::default();
        let set = |patch: &mut Patch, at: &[&str], v: &str| {
            if !v.is_empty() {
                patch.set(at, v);
            }
        };
        patch.set(&["business_type"], form.business_type.as_str());
        set(&mut patch, &["email"], &form.email);
        set(&mut patch, &["business_profile", "url"], &form.url);
        set(&mut patch, &["business_profile", "mcc"], &form.mcc);
        let individual = form.business_type == "individual";
        if individual {
            set(&mut patch, &["individual", "first_name"], &form.first_name);
            set(&mut patch, &["individual", "last_name"], &form.last_name);
            set(&mut patch, &["individual", "email"], &form.email);
            if let Some((d, m, y)) = dob {
                for (f, v) in [("day", d), ("month", m), ("year", y)] {
                    patch.set(&["individual", "dob", f], v);
                }
            }
        } else {
            set(&mut patch, &["company", "name"], &form.company_name);
        }
        if form.accept_tos {
            patch.set(&["tos_acceptance", "date"], now);
            patch.set(&["tos_acceptance", "ip"], form.ip.as_str());
            set(
                &mut patch,
                &["tos_acceptance", "user_agent"],
                &form.user_agent,
            );
        }
        accounts::apply(&patch, &mut acct.data);

        if !individual {
            representative(ctx, &id, form, dob, &mut deps, &mut change).await?;
        }
        if deps.external_accounts.is_empty()
            && !(form.routing_number.is_empty() && form.account_number.is_empty())
        {
            let bank = form::Map::from([
                ("object".into(), form::Value::Str("bank_account".into())),
                ("country".into(), form::Value::Str("US".into())),
                ("currency".into(), form::Value::Str("usd".into())),
                (
                    "routing_number".into(),
                    form::Value::Str(form.routing_number.clone()),
                ),
                (
                    "account_number".into(),
                    form::Value::Str(form.account_number.clone()),
                ),
            ]);
            let mut p = Params::from_map(form::Map::from([(
                "external_account".into(),
                form::Value::Map(bank),
            )]));
            let mut ea = external_accounts::build(&mut p, &id, now)?;
            ea["default_for_currency"] = true.into();
            let ea_id = ea["id"].as_str().unwrap_or_default().to_owned();
            change.events.push(ctx.event_on(
                Some(id.clone()),
                "account.external_account.created",
                public(&ea),
                None,
            ));
            deps.external_accounts.push(public(&ea));
            change.writes.push(objects::insert(
                &scope,
                external_accounts::KIND,
                &ea_id,
                now,
                ea,
            ));
        }
        accounts::derive(&mut acct.data, &deps);
        if accounts::updated(ctx, &before, &acct.data, &mut change) {
            change
                .writes
                .push(objects::replace(&platform_scope(ctx), acct));
        }
        // An Accounts v2 link tells the platform its user came back.
        let v2 = &link.data[PRIVATE]["v2"];
        if v2.is_object() {
            let mut ev = ctx.event_on(None, "v2.core.account_link.returned", Value::Null, None);
            ev.draft.data = Some(json!({
                "account_id": id, "configurations": v2["configurations"],
                "use_case": link.data[PRIVATE]["type"],
            }));
            change.events.push(ev);
        }
        link.data[PRIVATE]["completed"] = true.into();
        let return_url = link.data[PRIVATE]["return_url"].as_str().map(str::to_owned);
        change
            .writes
            .push(objects::replace(&platform_scope(ctx), link));
        ctx.commit_unanswered(change).await?;
        Ok(return_url)
    })
}

/// A company's representative: the one it has, named as the form says, or
/// a new one (`person.created`).
async fn representative(
    ctx: &Ctx,
    account: &str,
    form: &Onboarding,
    dob: Option<(i64, i64, i64)>,
    deps: &mut accounts::Dependents,
    change: &mut switchboard_store::Change,
) -> Result<(), ApiError> {
    let now = ctx.now();
    let existing = deps
        .persons
        .iter()
        .find(|p| p["relationship"]["representative"] == true);
    let (mut person, event) = match existing {
        Some(p) => (p.clone(), "person.updated"),
        None => {
            let id = ids::generate(ids::Prefix::Person, &mut rand::rng());
            let mut p = persons::blank(&id, account, now);
            p["relationship"]["representative"] = true.into();
            (p, "person.created")
        }
    };
    let before = person.clone();
    for (f, v) in [
        ("first_name", &form.first_name),
        ("last_name", &form.last_name),
    ] {
        if !v.is_empty() {
            person[f] = v.as_str().into();
        }
    }
    if let Some((d, m, y)) = dob {
        person["dob"] = json!({"day": d, "month": m, "year": y});
    }
    persons::derive(&mut person);
    if event == "person.updated" && person == before {
        return Ok(());
    }
    let prev = (event == "person.updated")
        .then(|| switchboard_core::object::previous_attributes(&before, &person));
    let id = person["id"].as_str().unwrap_or_default().to_owned();
    change
        .events
        .push(ctx.event_on(Some(account.to_owned()), event, person.clone(), prev));
    let scope = accounts::account_scope(ctx, account);
    if event == "person.created" {
        change.writes.push(objects::insert(
            &scope,
            persons::KIND,
            &id,
            now,
            person.clone(),
        ));
        deps.persons.push(person);
    } else {
        let mut stored = objects::load(ctx, &scope, persons::KIND, &id, "person").await?;
        stored.data = person.clone();
        change.writes.push(objects::replace(&scope, stored));
        if let Some(p) = deps.persons.iter_mut().find(|p| p["id"] == id.as_str()) {
            *p = person;
        }
    }
    Ok(())
}

/// `POST /v2/core/account_links`: the same onboarding page for an
/// Accounts v2 account, which says `v2.core.account_link.returned` when
/// its user comes back.
pub async fn create_v2(mut ctx: Ctx) -> Result<Response, ApiError> {
    platform_only(&ctx, "account links")?;
    let account = ctx.params.required_string("account")?;
    let Some(mut use_case) = ctx.params.nested("use_case")?.flatten() else {
        return Err(ApiError::missing("use_case"));
    };
    let kind = use_case
        .string("type")?
        .ok_or_else(|| ApiError::missing("use_case[type]"))?;
    if !["account_onboarding", "account_update"].contains(&kind.as_str()) {
        return Err(ApiError::invalid(
            "use_case[type]",
            format!(
                "Invalid type: must be one of account_onboarding or account_update (got {kind})"
            ),
        ));
    }
    let Some(mut options) = use_case.nested(&kind)?.flatten() else {
        return Err(ApiError::missing(&format!("use_case[{kind}]")));
    };
    let mut url = |name: &str| -> Result<Option<String>, ApiError> {
        let u = options.string(name)?;
        if let Some(u) = &u
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(ApiError::invalid(
                &format!("use_case[{kind}][{name}]"),
                format!("Not a valid URL: {u}"),
            ));
        }
        Ok(u)
    };
    let refresh_url = url("refresh_url")?
        .ok_or_else(|| ApiError::missing(&format!("use_case[{kind}][refresh_url]")))?;
    let return_url = url("return_url")?;
    let configurations = options.string_list("configurations")?;
    let mut collection = serde_json::Map::new();
    if let Some(Some(mut c)) = options.nested("collection_options")? {
        for f in ["fields", "future_requirements"] {
            if let Some(v) = c.string(f)? {
                collection.insert(f.into(), v.into());
            }
        }
        c.finish()?;
    }
    options.finish()?;
    use_case.finish()?;
    ctx.finish_params()?;
    let acct = accounts::load(&ctx, &account).await?;
    let configurations = configurations.unwrap_or_else(|| {
        let caps = &acct.data["capabilities"];
        [("card_payments", "merchant"), ("transfers", "recipient")]
            .into_iter()
            .filter(|(cap, _)| caps.get(cap).is_some())
            .map(|(_, config)| config.to_owned())
            .collect()
    });
    let mut options = json!({"refresh_url": refresh_url});
    if let Some(r) = &return_url {
        options["return_url"] = r.clone().into();
    }
    if !collection.is_empty() {
        options["collection_options"] = Value::Object(collection);
    }
    let link = json!({
        "object": "v2.core.account_link", "account": account, "livemode": ctx.livemode(),
        "use_case": {"type": kind, kind.clone(): options},
    });
    let (mut link, change) = open(
        &ctx,
        link,
        &account,
        &kind,
        (Some(refresh_url), return_url),
        json!({"configurations": configurations}),
    );
    for f in ["created", "expires_at"] {
        let secs = link[f].as_i64().unwrap_or_default();
        link[f] = switchboard_core::rfc3339::format_ms(secs * 1000).into();
    }
    ctx.commit(change, &link).await
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::post;
    axum::Router::new()
        .route("/v1/account_links", post(create))
        .route("/v2/core/account_links", post(create_v2))
}
