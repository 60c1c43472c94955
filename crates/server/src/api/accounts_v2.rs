//! `/v2/core/accounts`: Accounts v2, the same connected accounts as
//! `/v1/accounts` seen through API v2.
//!
//! A v2 account *is* the v1 account (kind `account` in the platform's
//! scope), so `Stripe-Account` and every v1 resource work on it as on
//! Stripe; this module maps v2's sections onto its fields (`identity` →
//! `business_type`, `individual`, `company`; `defaults` → `default_currency`,
//! `business_profile`, `controller`; `configuration.merchant` → the
//! `card_payments` capability, `configuration.recipient` → `transfers`).
//! What v1 has no field for (the customer configuration, `closed`) is kept
//! beside it, kind [`EXTRAS`]. Every change emits the thin-only
//! `v2.core.account*` events (see [`events`]), whichever API made it.

use axum::response::Response;
use serde_json::{Map, Value, json};
use switchboard_core::form::Params;
use switchboard_core::{ids, rfc3339};
use switchboard_store::{Change, Scope, StoredObject};

use super::accounts::{self, Dependents, platform_scope};
use super::patch::Patch;
use super::{objects, v2};
use crate::context::{Ctx, Path, retry_conflicts};
use crate::error::ApiError;

const PATH: &str = "/v2/core/accounts";
/// What a v2 account has that its v1 account has no field for.
pub const EXTRAS: &str = "v2_account";

/// The extras' object id (object ids are unique across kinds).
const EXTRAS_PREFIX: &str = "v2x_";

fn extras_id(account: &str) -> String {
    format!("{EXTRAS_PREFIX}{account}")
}

/// The sections `include` asks for (absent from the response otherwise).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Include {
    pub customer: bool,
    pub merchant: bool,
    pub recipient: bool,
    pub defaults: bool,
    pub identity: bool,
    pub requirements: bool,
    pub future_requirements: bool,
}

impl Include {
    /// Every section: what events compare and `changes` show.
    pub const ALL: Include = Include {
        customer: true,
        merchant: true,
        recipient: true,
        defaults: true,
        identity: true,
        requirements: true,
        future_requirements: true,
    };

    fn parse(p: &mut Params) -> Result<Include, ApiError> {
        let mut inc = Include::default();
        for name in p.string_list("include")?.unwrap_or_default() {
            let flag = match name.as_str() {
                "configuration.customer" => &mut inc.customer,
                "configuration.merchant" => &mut inc.merchant,
                "configuration.recipient" => &mut inc.recipient,
                "defaults" => &mut inc.defaults,
                "identity" => &mut inc.identity,
                "requirements" => &mut inc.requirements,
                "future_requirements" => &mut inc.future_requirements,
                other => {
                    return Err(ApiError::invalid(
                        "include",
                        format!(
                            "Invalid include: {other} (one of configuration.customer, configuration.merchant, configuration.recipient, defaults, future_requirements, identity, requirements)"
                        ),
                    ));
                }
            };
            *flag = true;
        }
        Ok(inc)
    }
}

/// v1's capability status as a v2 capability.
fn capability(v1_status: &Value) -> Value {
    match v1_status.as_str() {
        Some("active") => json!({"status": "active", "status_details": []}),
        Some("pending") => json!({"status": "pending", "status_details": [
            {"code": "requirements_pending_verification", "resolution": "no_resolution"}]}),
        _ => json!({"status": "restricted", "status_details": [
            {"code": "requirements_past_due", "resolution": "provide_info"}]}),
    }
}

/// A v1 requirement (`individual.first_name`) by its v2 name.
fn v2_requirement(v1: &str) -> String {
    let mapped = [
        ("business_type", "identity.entity_type"),
        ("individual.first_name", "identity.individual.given_name"),
        ("individual.last_name", "identity.individual.surname"),
        ("individual.email", "identity.individual.email"),
        ("individual.dob.", "identity.individual.date_of_birth."),
        ("company.name", "identity.business_details.registered_name"),
        ("business_profile.url", "defaults.profile.business_url"),
        ("business_profile.mcc", "configuration.merchant.mcc"),
        (
            "tos_acceptance.",
            "identity.attestations.terms_of_service.account.",
        ),
        (
            "external_account",
            "configuration.recipient.default_outbound_destination",
        ),
        ("representative.", "identity.persons.representative."),
    ];
    for (from, to) in mapped {
        if let Some(rest) = v1.strip_prefix(from) {
            return format!("{to}{rest}");
        }
    }
    v1.to_owned()
}

/// The configurations an account has, from its capabilities (and the
/// customer configuration kept in its extras).
fn applied(a: &Value, extras: &Value) -> (bool, bool, bool) {
    let caps = &a["capabilities"];
    (
        extras["customer"]["applied"] == true,
        caps.get("card_payments").is_some(),
        caps.get("transfers").is_some(),
    )
}

/// [`applied`] as `applied_configurations` names them.
fn applied_names(a: &Value, extras: &Value) -> Vec<&'static str> {
    let (customer, merchant, recipient) = applied(a, extras);
    [
        (customer, "customer"),
        (merchant, "merchant"),
        (recipient, "recipient"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect()
}

fn set_str(m: &mut Map<String, Value>, key: &str, v: &Value) {
    if let Some(s) = v.as_str() {
        m.insert(key.into(), s.into());
    }
}

/// The v2 account of v1 account `a`, with the sections `inc` names.
pub fn render(a: &Value, extras: &Value, closed: bool, inc: Include, livemode: bool) -> Value {
    let (customer, merchant, recipient) = applied(a, extras);
    let id = a["id"].as_str().unwrap_or_default();
    let mut m = Map::new();
    m.insert("id".into(), id.into());
    m.insert("object".into(), "v2.core.account".into());
    m.insert(
        "applied_configurations".into(),
        json!(applied_names(a, extras)),
    );
    m.insert("closed".into(), closed.into());
    // Include-dependent sections are null unless included, as on Stripe
    // ("maintaining the basic response structure"); so is a configuration
    // not asked for when others are.
    let mut configuration = Map::new();
    if inc.customer || inc.merchant || inc.recipient {
        for name in ["customer", "merchant", "recipient"] {
            configuration.insert(name.into(), Value::Null);
        }
    }
    if inc.customer && customer {
        let mut c = json!({"applied": true});
        if let Some(tax) = extras["customer"]["automatic_indirect_tax"].as_bool() {
            c["capabilities"] = json!({"automatic_indirect_tax": if tax {
                json!({"status": "active", "status_details": []})
            } else {
                Value::Null
            }});
        }
        configuration.insert("customer".into(), c);
    }
    if inc.merchant && merchant {
        let mut c = json!({"applied": true,
            "capabilities": {"card_payments": capability(&a["capabilities"]["card_payments"])}});
        if let Some(mcc) = a["business_profile"]["mcc"].as_str() {
            c["mcc"] = mcc.into();
        }
        configuration.insert("merchant".into(), c);
    }
    if inc.recipient && recipient {
        configuration.insert(
            "recipient".into(),
            json!({"applied": true, "capabilities": {"stripe_balance": {
                "stripe_transfers": capability(&a["capabilities"]["transfers"])}}}),
        );
    }
    m.insert(
        "configuration".into(),
        if configuration.is_empty() {
            Value::Null
        } else {
            Value::Object(configuration)
        },
    );
    set_str(&mut m, "contact_email", &a["email"]);
    set_str(
        &mut m,
        "contact_phone",
        &a["business_profile"]["support_phone"],
    );
    m.insert(
        "created".into(),
        rfc3339::format_ms(a["created"].as_i64().unwrap_or_default() * 1000).into(),
    );
    let dashboard = a["controller"]["stripe_dashboard"]["type"]
        .as_str()
        .unwrap_or(match a["type"].as_str() {
            Some("express") => "express",
            Some("custom") => "none",
            _ => "full",
        });
    m.insert("dashboard".into(), dashboard.into());
    if inc.defaults {
        let mut profile = Map::new();
        let bp = &a["business_profile"];
        set_str(&mut profile, "business_url", &bp["url"]);
        set_str(
            &mut profile,
            "product_description",
            &bp["product_description"],
        );
        let ctl = &a["controller"];
        let fees = match ctl["fees"]["payer"].as_str() {
            Some("account") => "stripe",
            Some("application_express") => "application_express",
            Some("application_custom") => "application_custom",
            _ => "application",
        };
        let losses = match ctl["losses"]["payments"].as_str() {
            Some("stripe") => "stripe",
            _ => "application",
        };
        let requirements = match ctl["requirement_collection"].as_str() {
            Some("application") => "application",
            _ => "stripe",
        };
        let mut d = json!({
            "locales": ["en-US"], "profile": profile,
            "responsibilities": {"fees_collector": fees, "losses_collector": losses,
                "requirements_collector": requirements},
        });
        if let Some(c) = a["default_currency"].as_str() {
            d["currency"] = c.into();
        }
        m.insert("defaults".into(), d);
    } else {
        m.insert("defaults".into(), Value::Null);
    }
    set_str(&mut m, "display_name", &a["business_profile"]["name"]);
    m.insert(
        "future_requirements".into(),
        if inc.future_requirements {
            json!({"entries": [], "summary": {}})
        } else {
            Value::Null
        },
    );
    m.insert(
        "identity".into(),
        if inc.identity {
            identity(a)
        } else {
            Value::Null
        },
    );
    m.insert("livemode".into(), livemode.into());
    m.insert("metadata".into(), a["metadata"].clone());
    m.insert(
        "requirements".into(),
        if inc.requirements {
            requirements(a, merchant, recipient)
        } else {
            Value::Null
        },
    );
    Value::Object(m)
}

fn identity(a: &Value) -> Value {
    let mut id = Map::new();
    set_str(&mut id, "country", &a["country"]);
    set_str(&mut id, "entity_type", &a["business_type"]);
    let tos = &a["tos_acceptance"];
    if let Some(date) = tos["date"].as_i64() {
        let mut accepted = json!({"date": rfc3339::format_ms(date * 1000)});
        for f in ["ip", "user_agent"] {
            if let Some(v) = tos[f].as_str() {
                accepted[f] = v.into();
            }
        }
        id.insert(
            "attestations".into(),
            json!({"terms_of_service": {"account": accepted}}),
        );
    }
    let company = &a["company"];
    if company.is_object() {
        let mut b = Map::new();
        set_str(&mut b, "registered_name", &company["name"]);
        set_str(&mut b, "phone", &company["phone"]);
        id.insert("business_details".into(), Value::Object(b));
    }
    let ind = &a["individual"];
    if ind.is_object() {
        let mut individual = person(ind, false);
        // An identity's individual has no `livemode` of its own.
        if let Some(m) = individual.as_object_mut() {
            m.remove("livemode");
        }
        id.insert("individual".into(), individual);
    }
    Value::Object(id)
}

/// A v1 person as `v2.core.account_person` (and an identity's individual).
pub fn person(p: &Value, livemode: bool) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), p["id"].clone());
    m.insert("object".into(), "v2.core.account_person".into());
    m.insert("account".into(), p["account"].clone());
    let created = rfc3339::format_ms(p["created"].as_i64().unwrap_or_default() * 1000);
    m.insert("created".into(), created.clone().into());
    let dob = &p["dob"];
    if let (Some(d), Some(mo), Some(y)) = (
        dob["day"].as_i64(),
        dob["month"].as_i64(),
        dob["year"].as_i64(),
    ) {
        m.insert(
            "date_of_birth".into(),
            json!({"day": d, "month": mo, "year": y}),
        );
    }
    set_str(&mut m, "email", &p["email"]);
    set_str(&mut m, "given_name", &p["first_name"]);
    m.insert("livemode".into(), livemode.into());
    m.insert(
        "metadata".into(),
        p.get("metadata").cloned().unwrap_or_else(|| json!({})),
    );
    set_str(&mut m, "phone", &p["phone"]);
    let rel = &p["relationship"];
    if rel.is_object() {
        let mut r = Map::new();
        for f in ["director", "executive", "owner", "representative"] {
            if let Some(b) = rel[f].as_bool() {
                r.insert(f.into(), b.into());
            }
        }
        set_str(&mut r, "title", &rel["title"]);
        if let Some(pct) = rel["percent_ownership"].as_f64() {
            r.insert("percent_ownership".into(), pct.to_string().into());
        }
        m.insert("relationship".into(), Value::Object(r));
    }
    set_str(&mut m, "surname", &p["last_name"]);
    m.insert("updated".into(), created.into());
    Value::Object(m)
}

/// v1's `requirements.currently_due` as v2 entries, each restricting the
/// capabilities of the configurations the account has.
fn requirements(a: &Value, merchant: bool, recipient: bool) -> Value {
    let mut restricts = Vec::new();
    if merchant {
        restricts.push(
            json!({"capability": "card_payments", "configuration": "merchant",
            "deadline": {"status": "currently_due"}}),
        );
    }
    if recipient {
        restricts.push(json!({"capability": "stripe_balance.stripe_transfers",
            "configuration": "recipient", "deadline": {"status": "currently_due"}}));
    }
    let entries: Vec<Value> = a["requirements"]["currently_due"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_str)
        .map(|due| {
            json!({
                "awaiting_action_from": "user", "description": v2_requirement(due), "errors": [],
                "impact": {"restricts_capabilities": restricts},
                "minimum_deadline": {"status": "currently_due"},
                "requested_reasons": [{"code": "routine_onboarding"}],
            })
        })
        .collect();
    let summary = if entries.is_empty() {
        json!({})
    } else {
        json!({"minimum_deadline": {"status": "currently_due"}})
    };
    json!({"entries": entries, "summary": summary})
}

/// The account's extras (`Value::Null` when it has none).
async fn extras(ctx: &Ctx, id: &str) -> Result<Option<StoredObject>, ApiError> {
    Ok(ctx
        .state
        .store
        .object(&platform_scope(ctx), EXTRAS, &extras_id(id))
        .await?)
}

/// The v2 events of an account that went from `before` to `after` (v1
/// accounts and their extras): `v2.core.account.updated` with `changes`,
/// then one per section that changed and per configuration whose
/// capability statuses did. Nothing when nothing visible changed.
pub fn events(ctx: &Ctx, before: (&Value, &Value), after: (&Value, &Value), change: &mut Change) {
    let live = ctx.livemode();
    let old = render(before.0, before.1, false, Include::ALL, live);
    let new = render(after.0, after.1, false, Include::ALL, live);
    let prev = switchboard_core::object::previous_attributes(&old, &new);
    if prev.is_empty() {
        return;
    }
    let related = json!({"id": new["id"], "object": "v2.core.account"});
    // `v2.core.account.updated` carries the whole account (its `changes`
    // come from it); the section events name the account only.
    let mut push = |kind: &str, prev: Option<Map<String, Value>>, object: &Value| {
        change
            .events
            .push(ctx.event_on(None, kind, object.clone(), prev));
    };
    push("v2.core.account.updated", Some(prev.clone()), &new);
    for section in [
        "identity",
        "defaults",
        "requirements",
        "future_requirements",
    ] {
        if prev.contains_key(section) {
            push(
                &format!("v2.core.account[{section}].updated"),
                None,
                &related,
            );
        }
    }
    for config in ["customer", "merchant", "recipient"] {
        let (o, n) = (&old["configuration"][config], &new["configuration"][config]);
        if o == n {
            continue;
        }
        push(
            &format!("v2.core.account[configuration.{config}].updated"),
            None,
            &related,
        );
        if o["capabilities"] != n["capabilities"] && !n["capabilities"].is_null() {
            push(
                &format!("v2.core.account[configuration.{config}].capability_status_updated"),
                None,
                &related,
            );
        }
    }
}

/// A clearable string param stored under another name.
fn renamed(p: &mut Params, patch: &mut Patch, param: &str, at: &[&str]) -> Result<(), ApiError> {
    if let Some(v) = p.clearable_string(param)? {
        patch.set(at, v.map_or(Value::Null, Value::String));
    }
    Ok(())
}

/// `requested` of a capability at `path` (`["card_payments"]`).
fn requested(p: &mut Params, path: &[&str]) -> Result<Option<bool>, ApiError> {
    let Some(Some(mut caps)) = p.nested("capabilities")? else {
        return Ok(None);
    };
    let mut found = None;
    let mut nested: Vec<Params> = Vec::new();
    let mut cur = caps.nested(path[0])?.flatten();
    for name in &path[1..] {
        let Some(mut level) = cur else { break };
        cur = level.nested(name)?.flatten();
        nested.push(level);
    }
    if let Some(mut leaf) = cur {
        found = leaf.bool("requested")?;
        leaf.finish()?;
    }
    for level in nested {
        level.finish()?;
    }
    caps.finish()?;
    Ok(found)
}

/// What a create or update sets: the v1 account's patch, the customer
/// configuration's `automatic_indirect_tax` request (v1 has no field),
/// and whether the customer configuration was named.
struct Changes {
    patch: Patch,
    customer: Option<Option<bool>>,
}

fn parse(p: &mut Params) -> Result<Changes, ApiError> {
    let mut patch = Patch::default();
    renamed(p, &mut patch, "contact_email", &["email"])?;
    renamed(p, &mut patch, "display_name", &["business_profile", "name"])?;
    renamed(
        p,
        &mut patch,
        "contact_phone",
        &["business_profile", "support_phone"],
    )?;
    patch.metadata(p)?;
    if let Some(Some(mut id)) = p.nested("identity")? {
        if let Some(c) = id.string("country")? {
            patch.set(&["country"], c.to_ascii_uppercase());
        }
        if let Some(t) = id.clearable_string("entity_type")? {
            if let Some(t) = &t
                && !["individual", "company", "non_profit", "government_entity"]
                    .contains(&t.as_str())
            {
                return Err(ApiError::invalid(
                    "identity[entity_type]",
                    format!("Invalid entity_type: {t}"),
                ));
            }
            patch.set(&["business_type"], t.map_or(Value::Null, Value::String));
        }
        if let Some(Some(mut b)) = id.nested("business_details")? {
            renamed(&mut b, &mut patch, "registered_name", &["company", "name"])?;
            renamed(&mut b, &mut patch, "phone", &["company", "phone"])?;
            b.finish()?;
        }
        if let Some(Some(mut ind)) = id.nested("individual")? {
            renamed(
                &mut ind,
                &mut patch,
                "given_name",
                &["individual", "first_name"],
            )?;
            renamed(
                &mut ind,
                &mut patch,
                "surname",
                &["individual", "last_name"],
            )?;
            renamed(&mut ind, &mut patch, "email", &["individual", "email"])?;
            renamed(&mut ind, &mut patch, "phone", &["individual", "phone"])?;
            if let Some(Some(mut dob)) = ind.nested("date_of_birth")? {
                patch.ints(&mut dob, &["individual", "dob"], &["day", "month", "year"])?;
                dob.finish()?;
            }
            ind.finish()?;
        }
        if let Some(Some(mut att)) = id.nested("attestations")? {
            if let Some(Some(mut tos)) = att.nested("terms_of_service")? {
                if let Some(Some(mut acc)) = tos.nested("account")? {
                    if let Some(date) = acc.string("date")? {
                        let ms = rfc3339::parse_ms(&date).ok_or_else(|| {
                            ApiError::invalid(
                                "identity[attestations][terms_of_service][account][date]",
                                format!("Invalid timestamp: {date}"),
                            )
                        })?;
                        patch.set(&["tos_acceptance", "date"], ms.div_euclid(1000));
                    }
                    for f in ["ip", "user_agent"] {
                        if let Some(v) = acc.string(f)? {
                            patch.set(&["tos_acceptance", f], v);
                        }
                    }
                    acc.finish()?;
                }
                tos.finish()?;
            }
            att.finish()?;
        }
        id.finish()?;
    }
    if let Some(Some(mut d)) = p.nested("defaults")? {
        if let Some(c) = d.string("currency")? {
            patch.set(&["default_currency"], c.to_ascii_lowercase());
        }
        d.string_list("locales")?;
        if let Some(Some(mut prof)) = d.nested("profile")? {
            renamed(
                &mut prof,
                &mut patch,
                "business_url",
                &["business_profile", "url"],
            )?;
            renamed(
                &mut prof,
                &mut patch,
                "doing_business_as",
                &["business_profile", "name"],
            )?;
            renamed(
                &mut prof,
                &mut patch,
                "product_description",
                &["business_profile", "product_description"],
            )?;
            prof.finish()?;
        }
        if let Some(Some(mut r)) = d.nested("responsibilities")? {
            if let Some(f) = r.string("fees_collector")? {
                let payer = match f.as_str() {
                    "stripe" => "account",
                    "application" | "application_custom" | "application_express" => f.as_str(),
                    other => {
                        return Err(ApiError::invalid(
                            "defaults[responsibilities][fees_collector]",
                            format!("Invalid fees_collector: {other}"),
                        ));
                    }
                };
                patch.set(&["controller", "fees", "payer"], payer);
            }
            if let Some(l) = r.string("losses_collector")? {
                if !["stripe", "application"].contains(&l.as_str()) {
                    return Err(ApiError::invalid(
                        "defaults[responsibilities][losses_collector]",
                        format!("Invalid losses_collector: {l}"),
                    ));
                }
                patch.set(&["controller", "losses", "payments"], l);
            }
            r.finish()?;
        }
        d.finish()?;
    }
    let mut customer = None;
    if let Some(Some(mut c)) = p.nested("configuration")? {
        if let Some(m) = c.nested("merchant")? {
            let Some(mut m) = m else {
                return Err(ApiError::invalid(
                    "configuration[merchant]",
                    "A configuration is removed by closing it (POST /v2/core/accounts/{id}/close with applied_configurations).",
                ));
            };
            match requested(&mut m, &["card_payments"])? {
                Some(false) => patch.remove(&["capabilities", "card_payments"]),
                _ => patch.set(&["capabilities", "card_payments"], "inactive"),
            }
            renamed(&mut m, &mut patch, "mcc", &["business_profile", "mcc"])?;
            m.finish()?;
        }
        if let Some(Some(mut r)) = c.nested("recipient")? {
            match requested(&mut r, &["stripe_balance", "stripe_transfers"])? {
                Some(false) => patch.remove(&["capabilities", "transfers"]),
                _ => patch.set(&["capabilities", "transfers"], "inactive"),
            }
            r.finish()?;
        }
        if let Some(Some(mut cu)) = c.nested("customer")? {
            customer = Some(requested(&mut cu, &["automatic_indirect_tax"])?);
            cu.finish()?;
        }
        c.finish()?;
    }
    Ok(Changes { patch, customer })
}

/// The extras after a change to the customer configuration.
fn apply_extras(extras: &mut Value, customer: Option<Option<bool>>) {
    if let Some(tax) = customer {
        if !extras.is_object() {
            *extras = json!({});
        }
        extras["customer"]["applied"] = true.into();
        if let Some(t) = tax {
            extras["customer"]["automatic_indirect_tax"] = t.into();
        }
    }
}

/// `dashboard` as the v1 account type and its controller.
fn controller(dashboard: Option<&str>) -> Result<(&'static str, Value), ApiError> {
    let (kind, collection) = match dashboard.unwrap_or("full") {
        "full" => ("standard", "stripe"),
        "express" => ("express", "stripe"),
        "none" => ("custom", "application"),
        other => {
            return Err(ApiError::invalid(
                "dashboard",
                format!("Invalid dashboard: {other} (one of express, full, none)"),
            ));
        }
    };
    let standard = kind == "standard";
    Ok((
        kind,
        json!({
            "is_controller": true, "type": "application",
            "fees": {"payer": if standard { "account" } else { "application" }},
            "losses": {"payments": if standard { "stripe" } else { "application" }},
            "requirement_collection": collection,
            "stripe_dashboard": {"type": dashboard.unwrap_or("full")},
        }),
    ))
}

fn respond_account(ctx: &Ctx, a: &Value, extras: &Value, closed: bool, inc: Include) -> Value {
    render(a, extras, closed, inc, ctx.livemode())
}

fn platform(ctx: &Ctx, what: &str) -> Result<Scope, ApiError> {
    accounts::platform_only(ctx, what)
}

pub async fn create(mut ctx: Ctx) -> Result<Response, ApiError> {
    platform(&ctx, "Accounts v2")?;
    let inc = Include::parse(&mut ctx.params)?;
    let dashboard = ctx.params.string("dashboard")?;
    let (kind, ctl) = controller(dashboard.as_deref())?;
    let changes = parse(&mut ctx.params)?;
    ctx.finish_params()?;
    let id = ids::generate(ids::Prefix::Account, &mut rand::rng());
    let now = ctx.now();
    let mut acct = accounts::blank(&id, kind, ctl, now);
    acct["capabilities"] = json!({});
    accounts::apply(&changes.patch, &mut acct);
    accounts::derive(
        &mut acct,
        &Dependents {
            persons: Vec::new(),
            external_accounts: Vec::new(),
        },
    );
    let mut extras = Value::Null;
    apply_extras(&mut extras, changes.customer);
    let scope = platform_scope(&ctx);
    let mut change = ctx.change();
    let full = render(&acct, &extras, false, Include::ALL, ctx.livemode());
    change
        .events
        .push(ctx.event_on(None, "v2.core.account.created", full, None));
    if extras.is_object() {
        change.writes.push(objects::insert(
            &scope,
            EXTRAS,
            &extras_id(&id),
            now,
            extras.clone(),
        ));
    }
    change.writes.push(objects::insert(
        &scope,
        accounts::KIND,
        &id,
        now,
        acct.clone(),
    ));
    let body = respond_account(&ctx, &acct, &extras, false, inc);
    ctx.commit(change, &body).await
}

/// The account `id` (closed ones too: v2 shows them `closed: true`).
async fn load(ctx: &Ctx, id: &str) -> Result<(StoredObject, Option<StoredObject>), ApiError> {
    if ctx.scope.account.as_deref().is_some_and(|a| a != id) {
        return Err(crate::context::no_access(ctx, id));
    }
    let acct = ctx
        .state
        .store
        .object(&platform_scope(ctx), accounts::KIND, id)
        .await?
        .ok_or_else(|| ApiError::not_found("account", id))?;
    let extras = extras(ctx, id).await?;
    let closed = extras.as_ref().is_some_and(|e| e.data["closed"] == true);
    if acct.deleted && !closed {
        // Deleted or disconnected through v1: gone for v2 too.
        return Err(crate::context::no_access(ctx, id));
    }
    Ok((acct, extras))
}

fn extras_data(e: &Option<StoredObject>) -> Value {
    e.as_ref().map_or(Value::Null, |e| e.data.clone())
}

pub async fn retrieve(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let inc = Include::parse(&mut ctx.params)?;
    ctx.finish_params()?;
    let (acct, extras) = load(&ctx, &id).await?;
    let body = respond_account(&ctx, &acct.data, &extras_data(&extras), acct.deleted, inc);
    ctx.respond(body).await
}

pub async fn update(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let inc = Include::parse(&mut ctx.params)?;
    if ctx.params.contains("dashboard") {
        return Err(ApiError::invalid(
            "dashboard",
            "An account's dashboard is set when it is created.",
        ));
    }
    let changes = parse(&mut ctx.params)?;
    ctx.finish_params()?;
    retry_conflicts!({
        let (mut acct, stored_extras) = load(&ctx, &id).await?;
        if acct.deleted {
            return Err(ApiError::invalid(
                "id",
                format!("Account {id} is closed and can no longer be updated."),
            ));
        }
        let before = acct.data.clone();
        let before_extras = extras_data(&stored_extras);
        let mut extras = before_extras.clone();
        apply_extras(&mut extras, changes.customer);
        accounts::apply(&changes.patch, &mut acct.data);
        accounts::derive(&mut acct.data, &accounts::dependents(&ctx, &id).await?);
        let mut change = ctx.change();
        accounts::v1_events(&ctx, &before, &acct.data, &mut change);
        events(
            &ctx,
            (&before, &before_extras),
            (&acct.data, &extras),
            &mut change,
        );
        let scope = platform_scope(&ctx);
        if extras != before_extras {
            change.writes.push(match stored_extras {
                Some(mut e) => {
                    e.data = extras.clone();
                    objects::replace(&scope, e)
                }
                None => objects::insert(&scope, EXTRAS, &extras_id(&id), ctx.now(), extras.clone()),
            });
        }
        let body = respond_account(&ctx, &acct.data, &extras, false, inc);
        change.writes.push(objects::replace(&scope, acct));
        ctx.commit(change, &body).await
    })
}

pub async fn list(mut ctx: Ctx) -> Result<Response, ApiError> {
    let scope = platform(&ctx, "Accounts v2")?;
    let mut page = v2::page_request(&mut ctx.params)?;
    let configs = ctx
        .params
        .string_list("applied_configurations")?
        .unwrap_or_default();
    for c in &configs {
        if !["customer", "merchant", "recipient"].contains(&c.as_str()) {
            return Err(ApiError::invalid(
                "applied_configurations",
                format!("Invalid applied_configurations: {c}"),
            ));
        }
    }
    // Open accounts unless `closed=true`, as Stripe lists them.
    let closed = ctx.params.bool("closed")?.unwrap_or(false);
    ctx.finish_params()?;
    // (cursor, account): open accounts page by their own ids; closed ones
    // (deleted for v1) by their extras, which say `closed`.
    let mut rows: Vec<(String, Value)> = Vec::new();
    let has_more = if closed {
        page.filters
            .push((switchboard_store::Field("closed"), json!(true)));
        let found = ctx
            .state
            .store
            .objects(&scope, EXTRAS, &page)
            .await
            .map_err(|e| v2::cursor_error(e.into()))?;
        for e in found.data {
            let id = e.id.trim_start_matches(EXTRAS_PREFIX);
            if let Some(a) = ctx.state.store.object(&scope, accounts::KIND, id).await? {
                let body = respond_account(&ctx, &a.data, &e.data, true, Include::default());
                rows.push((e.id, body));
            }
        }
        found.has_more
    } else {
        let found = ctx
            .state
            .store
            .objects(&scope, accounts::KIND, &page)
            .await
            .map_err(|e| v2::cursor_error(e.into()))?;
        for a in found.data {
            let extras = extras_data(&extras(&ctx, &a.id).await?);
            let body = respond_account(&ctx, &a.data, &extras, false, Include::default());
            rows.push((a.id, body));
        }
        found.has_more
    };
    // Accounts with all the configurations asked for (a filter over the
    // page: a page can come back shorter than `limit`, its cursors stay).
    let has_all = |a: &Value| {
        configs.iter().all(|c| {
            a["applied_configurations"]
                .as_array()
                .is_some_and(|l| l.contains(&json!(c)))
        })
    };
    let mut extra = switchboard_core::form::Map::new();
    if !configs.is_empty() {
        extra.insert("applied_configurations".into(), v2::list(&configs));
    }
    if closed {
        extra.insert(
            "closed".into(),
            switchboard_core::form::Value::Str("true".into()),
        );
    }
    let mut body = v2::list_json(
        PATH,
        &page,
        &extra,
        switchboard_store::Page {
            data: rows,
            has_more,
        },
        |(_, a)| a,
        |(cursor, _)| cursor.clone(),
    );
    if let Some(data) = body["data"].as_array_mut() {
        data.retain(has_all);
    }
    ctx.respond(body).await
}

/// `POST /v2/core/accounts/{id}/close`: the account is closed (v1 sees it
/// deleted: `Stripe-Account` stops working), `v2.core.account.closed`.
pub async fn close(Path(id): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    platform(&ctx, "Accounts v2")?;
    let configs = ctx.params.string_list("applied_configurations")?;
    ctx.finish_params()?;
    retry_conflicts!({
        let (mut acct, stored_extras) = load(&ctx, &id).await?;
        if acct.deleted {
            return Err(ApiError::invalid(
                "id",
                format!("Account {id} is already closed."),
            ));
        }
        let mut extras = extras_data(&stored_extras);
        if !extras.is_object() {
            extras = json!({});
        }
        let have = applied_names(&acct.data, &extras);
        if let Some(list) = &configs
            && let Some(bad) = list.iter().find(|c| !have.contains(&c.as_str()))
        {
            return Err(ApiError::invalid(
                "applied_configurations",
                format!("The account has no {bad} configuration to close."),
            ));
        }
        extras["closed"] = true.into();
        let scope = platform_scope(&ctx);
        let mut change = ctx.change();
        let body = respond_account(&ctx, &acct.data, &extras, true, Include::default());
        change.events.push(ctx.event_on(
            None,
            "v2.core.account.closed",
            json!({"id": id, "object": "v2.core.account"}),
            None,
        ));
        change.writes.push(match stored_extras {
            Some(mut e) => {
                e.data = extras;
                objects::replace(&scope, e)
            }
            None => objects::insert(&scope, EXTRAS, &extras_id(&id), ctx.now(), extras),
        });
        acct.deleted = true;
        change.writes.push(objects::replace(&scope, acct));
        ctx.commit(change, &body).await
    })
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route(PATH, get(list).post(create))
        .route("/v2/core/accounts/{id}", get(retrieve).post(update))
        .route("/v2/core/accounts/{id}/close", post(close))
}
