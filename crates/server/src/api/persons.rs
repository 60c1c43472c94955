//! `/v1/accounts/{account}/persons`: the people behind a connected account.
//! Each change can change the account's requirements (→ `account.updated`).

use axum::response::Response;
use serde_json::{Value, json};
use switchboard_core::form::Params;
use switchboard_core::ids;
use switchboard_core::object::previous_attributes;
use switchboard_store::Change;

use super::accounts::{self, account_scope};
use super::objects;
use super::patch::Patch;
use crate::context::{Ctx, Path, retry_conflicts};
use crate::error::ApiError;

pub const KIND: &str = "person";
const RELATIONSHIP_FLAGS: [&str; 4] = ["director", "executive", "owner", "representative"];

/// `relationship[owner]=true` and friends, on `GET …/persons`.
const RELATIONSHIP_FILTERS: [objects::Filter; 4] = [
    objects::Filter {
        param: "relationship[director]",
        path: "relationship.director",
        boolean: true,
    },
    objects::Filter {
        param: "relationship[executive]",
        path: "relationship.executive",
        boolean: true,
    },
    objects::Filter {
        param: "relationship[owner]",
        path: "relationship.owner",
        boolean: true,
    },
    objects::Filter {
        param: "relationship[representative]",
        path: "relationship.representative",
        boolean: true,
    },
];

/// The settable fields of a person, read once.
fn parse(p: &mut Params) -> Result<Patch, ApiError> {
    let mut patch = Patch::default();
    patch.strings(
        p,
        &[],
        &["first_name", "last_name", "email", "phone", "nationality"],
    )?;
    patch.nested_strings(
        p,
        "address",
        &["city", "country", "line1", "line2", "postal_code", "state"],
    )?;
    if let Some(Some(mut dob)) = p.nested("dob")? {
        patch.ints(&mut dob, &["dob"], &["day", "month", "year"])?;
        dob.finish()?;
    }
    relationship(p, &mut patch)?;
    if p.string("id_number")?.is_some_and(|s| !s.is_empty()) {
        patch.set(&["id_number_provided"], true);
    }
    if let Some(last4) = p.string("ssn_last_4")? {
        patch.set(&["ssn_last_4_provided"], !last4.is_empty());
    }
    patch.metadata(p)?;
    Ok(patch)
}

/// A person's own requirements and verification status.
pub(super) fn derive(person: &mut Value) {
    let mut due = Vec::new();
    for f in ["first_name", "last_name"] {
        if person[f].is_null() {
            due.push(f.to_owned());
        }
    }
    for f in ["day", "month", "year"] {
        if person["dob"][f].is_null() {
            due.push(format!("dob.{f}"));
        }
    }
    let verified = due.is_empty();
    person["requirements"] = json!({"alternatives": [], "currently_due": due, "errors": [], "eventually_due": due,
        "past_due": [], "pending_verification": []});
    person["verification"]["status"] = if verified { "verified" } else { "unverified" }.into();
}

pub(super) fn blank(id: &str, account: &str, created: i64) -> Value {
    objects::build(
        "person",
        json!({
            "id": id, "account": account, "created": created,
            "dob": {"day": null, "month": null, "year": null}, "email": null, "first_name": null,
            "id_number_provided": false, "last_name": null, "metadata": {}, "nationality": null, "phone": null,
            "relationship": {"director": false, "executive": false, "owner": false, "percent_ownership": null,
                "representative": false, "title": null},
            "ssn_last_4_provided": false,
            "verification": {"status": "unverified"},
        }),
    )
}

pub async fn create(Path(account): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let patch = parse(&mut ctx.params)?;
    ctx.finish_params()?;
    let id = ids::generate(ids::Prefix::Person, &mut rand::rng());
    retry_conflicts!({
        let acct = accounts::load(&ctx, &account).await?;
        let now = ctx.now();
        let mut person = blank(&id, &account, now);
        patch.apply(&mut person);
        derive(&mut person);
        let mut deps = accounts::dependents(&ctx, &account).await?;
        deps.persons.push(person.clone());
        let mut change = ctx.change();
        change.writes.push(objects::insert(
            &account_scope(&ctx, &account),
            KIND,
            &id,
            now,
            person.clone(),
        ));
        push_events(&ctx, &account, "created", None, &person, &mut change);
        accounts::rederive(&ctx, acct, &deps, &mut change);
        ctx.commit(change, &person).await
    })
}

/// `relationship[…]`, the same in both APIs' person parameters.
pub(super) fn relationship(p: &mut Params, patch: &mut Patch) -> Result<(), ApiError> {
    if let Some(Some(mut rel)) = p.nested("relationship")? {
        patch.bools(&mut rel, &["relationship"], &RELATIONSHIP_FLAGS)?;
        patch.strings(&mut rel, &["relationship"], &["title"])?;
        if let Some(pct) = rel.string("percent_ownership")? {
            let v: f64 = pct.parse().map_err(|_| {
                ApiError::invalid(
                    "relationship[percent_ownership]",
                    format!("Invalid decimal: {pct}"),
                )
            })?;
            patch.set(&["relationship", "percent_ownership"], v);
        }
        rel.finish()?;
    }
    Ok(())
}

/// A person's change as both APIs announce it: `person.<action>` on the
/// account (with `previous_attributes`) and the platform's thin
/// `v2.core.account_person.<action>` (with `changes`), whichever API made
/// it. Nothing for an update that changed nothing visible.
pub(super) fn push_events(
    ctx: &Ctx,
    account: &str,
    action: &str,
    before: Option<&Value>,
    after: &Value,
    change: &mut Change,
) {
    let v1_prev = before.map(|b| previous_attributes(b, after));
    if v1_prev.as_ref().is_some_and(|p| p.is_empty()) {
        return;
    }
    let live = ctx.livemode();
    let v2 = super::accounts_v2::person(after, live);
    let v2_prev = before.map(|b| previous_attributes(&super::accounts_v2::person(b, live), &v2));
    change.events.push(ctx.event_on(
        Some(account.to_owned()),
        &format!("person.{action}"),
        after.clone(),
        v1_prev,
    ));
    change.events.push(ctx.event_on(
        None,
        &format!("v2.core.account_person.{action}"),
        v2,
        v2_prev,
    ));
}

pub async fn retrieve(
    Path((account, id)): Path<(String, String)>,
    mut ctx: Ctx,
) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    accounts::load(&ctx, &account).await?;
    ctx.respond(
        objects::load(&ctx, &account_scope(&ctx, &account), KIND, &id, "person")
            .await?
            .data,
    )
    .await
}

pub async fn update(
    Path((account, id)): Path<(String, String)>,
    mut ctx: Ctx,
) -> Result<Response, ApiError> {
    let patch = parse(&mut ctx.params)?;
    ctx.finish_params()?;
    apply_update(&ctx, &account, &id, &patch, Value::clone).await
}

/// Applies `patch` to a person (either API's update) and answers with
/// `respond(person)`; the account's requirements follow.
pub(super) async fn apply_update(
    ctx: &Ctx,
    account: &str,
    id: &str,
    patch: &Patch,
    respond: impl Fn(&Value) -> Value,
) -> Result<Response, ApiError> {
    retry_conflicts!({
        let acct = accounts::load(ctx, account).await?;
        let scope = account_scope(ctx, account);
        let mut person = objects::load(ctx, &scope, KIND, id, "person").await?;
        let before = person.data.clone();
        patch.apply(&mut person.data);
        derive(&mut person.data);
        let mut deps = accounts::dependents(ctx, account).await?;
        for p in deps.persons.iter_mut().filter(|p| p["id"] == id) {
            *p = person.data.clone();
        }
        let mut change = ctx.change();
        push_events(
            ctx,
            account,
            "updated",
            Some(&before),
            &person.data,
            &mut change,
        );
        accounts::rederive(ctx, acct, &deps, &mut change);
        let body = respond(&person.data);
        change.writes.push(objects::replace(&scope, person));
        ctx.commit(change, &body).await
    })
}

pub async fn delete(
    Path((account, id)): Path<(String, String)>,
    mut ctx: Ctx,
) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    let body = json!({"id": id, "object": "person", "deleted": true});
    remove(&ctx, &account, &id, &body).await
}

/// Deletes a person (either API's delete), answering with `body`.
pub(super) async fn remove(
    ctx: &Ctx,
    account: &str,
    id: &str,
    body: &Value,
) -> Result<Response, ApiError> {
    retry_conflicts!({
        let acct = accounts::load(ctx, account).await?;
        let scope = account_scope(ctx, account);
        let mut person = objects::load(ctx, &scope, KIND, id, "person").await?;
        let mut deps = accounts::dependents(ctx, account).await?;
        deps.persons.retain(|p| p["id"] != id);
        let mut change = ctx.change();
        push_events(ctx, account, "deleted", None, &person.data, &mut change);
        accounts::rederive(ctx, acct, &deps, &mut change);
        person.deleted = true;
        change.writes.push(objects::replace(&scope, person));
        ctx.commit(change, body).await
    })
}

pub async fn list(Path(account): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    accounts::load(&ctx, &account).await?;
    let scope = account_scope(&ctx, &account);
    objects::list(
        &mut ctx,
        &scope,
        KIND,
        &format!("/v1/accounts/{account}/persons"),
        &RELATIONSHIP_FILTERS,
    )
    .await
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/v1/accounts/{id}/persons", get(list).post(create))
        .route(
            "/v1/accounts/{id}/persons/{person}",
            get(retrieve).post(update).delete(delete),
        )
}
