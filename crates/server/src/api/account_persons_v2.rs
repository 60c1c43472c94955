//! `/v2/core/accounts/{account}/persons`: Accounts v2's persons, the v1
//! persons of the account (`super::persons`) seen through API v2. Each
//! change emits `v2.core.account_person.*` (and the v1 `person.*` of the
//! account), then the account's own events if its requirements moved.

use axum::response::Response;
use serde_json::{Value, json};
use switchboard_core::form::Params;
use switchboard_core::ids;

use super::accounts::{self, account_scope};
use super::accounts_v2::person as render;
use super::patch::Patch;
use super::persons::{self, KIND};
use super::{objects, v2};
use crate::context::{Ctx, Path, retry_conflicts};
use crate::error::ApiError;

fn renamed(p: &mut Params, patch: &mut Patch, param: &str, at: &[&str]) -> Result<(), ApiError> {
    if let Some(v) = p.clearable_string(param)? {
        patch.set(at, v.map_or(Value::Null, Value::String));
    }
    Ok(())
}

/// The settable fields of a v2 person, as a patch of its v1 person.
fn parse(p: &mut Params) -> Result<Patch, ApiError> {
    let mut patch = Patch::default();
    renamed(p, &mut patch, "given_name", &["first_name"])?;
    renamed(p, &mut patch, "surname", &["last_name"])?;
    patch.strings(p, &[], &["email", "phone"])?;
    patch.nested_strings(
        p,
        "address",
        &["city", "country", "line1", "line2", "postal_code", "state"],
    )?;
    if let Some(Some(mut dob)) = p.nested("date_of_birth")? {
        patch.ints(&mut dob, &["dob"], &["day", "month", "year"])?;
        dob.finish()?;
    }
    persons::relationship(p, &mut patch)?;
    patch.metadata(p)?;
    Ok(patch)
}

fn path(account: &str) -> String {
    format!("/v2/core/accounts/{account}/persons")
}

pub async fn create(Path(account): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let patch = parse(&mut ctx.params)?;
    ctx.finish_params()?;
    let id = ids::generate(ids::Prefix::Person, &mut rand::rng());
    retry_conflicts!({
        let acct = accounts::load(&ctx, &account).await?;
        let now = ctx.now();
        let mut person = persons::blank(&id, &account, now);
        patch.apply(&mut person);
        persons::derive(&mut person);
        let mut deps = accounts::dependents(&ctx, &account).await?;
        deps.persons.push(person.clone());
        let mut change = ctx.change();
        let body = render(&person, ctx.livemode());
        persons::push_events(&ctx, &account, "created", None, &person, &mut change);
        change.writes.push(objects::insert(
            &account_scope(&ctx, &account),
            KIND,
            &id,
            now,
            person,
        ));
        accounts::rederive(&ctx, acct, &deps, &mut change);
        ctx.commit(change, &body).await
    })
}

pub async fn retrieve(
    Path((account, id)): Path<(String, String)>,
    mut ctx: Ctx,
) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    accounts::load(&ctx, &account).await?;
    let person = objects::load(&ctx, &account_scope(&ctx, &account), KIND, &id, "person").await?;
    ctx.respond(render(&person.data, ctx.livemode())).await
}

pub async fn update(
    Path((account, id)): Path<(String, String)>,
    mut ctx: Ctx,
) -> Result<Response, ApiError> {
    let patch = parse(&mut ctx.params)?;
    ctx.finish_params()?;
    let live = ctx.livemode();
    persons::apply_update(&ctx, &account, &id, &patch, |p| render(p, live)).await
}

pub async fn delete(
    Path((account, id)): Path<(String, String)>,
    mut ctx: Ctx,
) -> Result<Response, ApiError> {
    ctx.finish_params()?;
    let body = json!({"id": id, "object": "v2.core.account_person"});
    persons::remove(&ctx, &account, &id, &body).await
}

pub async fn list(Path(account): Path<String>, mut ctx: Ctx) -> Result<Response, ApiError> {
    let page = v2::page_request(&mut ctx.params)?;
    ctx.finish_params()?;
    accounts::load(&ctx, &account).await?;
    let found = ctx
        .state
        .store
        .objects(&account_scope(&ctx, &account), KIND, &page)
        .await
        .map_err(|e| v2::cursor_error(e.into()))?;
    let live = ctx.livemode();
    let body = v2::list_json(
        &path(&account),
        &page,
        &switchboard_core::form::Map::new(),
        found,
        |p| render(&p.data, live),
        |p| p.id.clone(),
    );
    ctx.respond(body).await
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/v2/core/accounts/{id}/persons", get(list).post(create))
        .route(
            "/v2/core/accounts/{id}/persons/{person}",
            get(retrieve).post(update).delete(delete),
        )
}
