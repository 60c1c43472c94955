//! Helpers shared by the resources stored as generic objects.

use axum::response::Response;
use serde_json::Value;
use switchboard_core::form::Params;
use switchboard_store::{Change, ObjectWrite, Scope, StoredObject, Write};

use super::patch::Patch;
use super::{cursor_param, list_json, page_request};
use crate::context::{Ctx, retry_conflicts};
use crate::error::ApiError;

/// Key under which an object keeps state that is not part of its Stripe JSON
/// (a bank account's full number, say). [`public`] strips it.
pub const PRIVATE: &str = "_private";

/// A new object of `kind` (`"charge"`): `values` laid over the skeleton of
/// every field Stripe always sends for it (null where unset), in Stripe's
/// key order. Fields a handler forgets show up in the schema test.
pub fn build(kind: &str, values: Value) -> Value {
    switchboard_core::schema::stripe().build(kind, values)
}

/// Stripe's fingerprint of a card or bank account: the same number gives the
/// same fingerprint, so integrations can detect duplicates.
pub fn fingerprint(s: &str) -> String {
    use sha2::Digest;
    let h = hex::encode(sha2::Sha256::digest(s.as_bytes()));
    h[..16].to_owned()
}

/// The object as the API and events show it.
pub fn public(data: &Value) -> Value {
    let mut v = data.clone();
    if let Some(m) = v.as_object_mut() {
        m.shift_remove(PRIVATE);
    }
    v
}

/// A live (not deleted) object, or Stripe's 404 naming it.
pub async fn load(
    ctx: &Ctx,
    scope: &Scope,
    kind: &str,
    id: &str,
    noun: &'static str,
) -> Result<StoredObject, ApiError> {
    match ctx.state.store.object(scope, kind, id).await? {
        Some(o) if !o.deleted => Ok(o),
        _ => Err(ApiError::not_found(noun, id)),
    }
}

/// The object `id` that `change` already writes (a charge being built, a
/// PaymentMethod made from a test alias, a new balance transaction), so a
/// later step of the same request reads or amends it in place.
pub fn staged<'a>(change: &'a mut Change, id: &str) -> Option<&'a mut StoredObject> {
    change.staged_mut(id)
}

pub fn insert(scope: &Scope, kind: &str, id: &str, created: i64, data: Value) -> Write {
    Write::Object(ObjectWrite {
        scope: scope.clone(),
        object: StoredObject {
            id: id.into(),
            kind: kind.into(),
            version: 1,
            created,
            deleted: false,
            data,
        },
        expected_version: None,
    })
}

/// Writes `obj` (already modified) over the version it was read at.
pub fn replace(scope: &Scope, mut obj: StoredObject) -> Write {
    let expected = obj.version;
    obj.version += 1;
    Write::Object(ObjectWrite {
        scope: scope.clone(),
        object: obj,
        expected_version: Some(expected),
    })
}

/// `POST /v1/<resource>/{id}` for fields that change nothing else: applies
/// `patch` to the object (retrying lost races) and answers with it; when it
/// changed, each of `events` (`payout.updated`, …) is emitted with its
/// `previous_attributes`.
pub async fn update(
    ctx: &Ctx,
    scope: &Scope,
    kind: &str,
    id: &str,
    noun: &'static str,
    patch: &Patch,
    events: &[&str],
) -> Result<Response, ApiError> {
    retry_conflicts!({
        let mut stored = load(ctx, scope, kind, id, noun).await?;
        let before = public(&stored.data);
        patch.apply(&mut stored.data);
        let after = public(&stored.data);
        let mut change = ctx.change();
        if after != before {
            let prev = switchboard_core::object::previous_attributes(&before, &after);
            for event in events {
                change
                    .events
                    .push(ctx.event(event, after.clone(), Some(prev.clone())));
            }
        }
        change.writes.push(replace(scope, stored));
        ctx.commit(change, &after).await
    })
}

/// A list filter: a request parameter, the field it matches, and whether it is a boolean.
pub struct Filter {
    pub param: &'static str,
    pub path: &'static str,
    pub boolean: bool,
}

/// String equality filters named like the field they match (`status` matches the field `status`).
pub const fn by(param: &'static str, path: &'static str) -> Filter {
    Filter {
        param,
        path,
        boolean: false,
    }
}

/// Lists objects of `kind`, narrowed by the `filters` the request uses.
pub async fn list(
    ctx: &mut Ctx,
    scope: &Scope,
    kind: &str,
    url: &str,
    filters: &[Filter],
) -> Result<Response, ApiError> {
    list_where(ctx, scope, kind, url, filters, Vec::new()).await
}

/// [`list`] of the objects whose fields also equal `fixed` (a sub-resource's
/// parent, say).
pub async fn list_where(
    ctx: &mut Ctx,
    scope: &Scope,
    kind: &str,
    url: &str,
    filters: &[Filter],
    fixed: Vec<(&'static str, Value)>,
) -> Result<Response, ApiError> {
    let mut page = page_request(ctx)?;
    for (path, v) in fixed {
        page.filters.push((switchboard_store::Field(path), v));
    }
    // Nested filters (`relationship[owner]`) share their parent's parameters.
    let mut nested: Vec<(&str, Params)> = Vec::new();
    for f in filters {
        let (params, key) = match f.param.split_once('[') {
            None => (&mut ctx.params, f.param),
            Some((parent, rest)) => {
                if !nested.iter().any(|(p, _)| *p == parent) {
                    let taken = ctx.params.nested(parent)?.flatten().unwrap_or_default();
                    nested.push((parent, taken));
                }
                let slot = nested
                    .iter_mut()
                    .find(|(p, _)| *p == parent)
                    .expect("just inserted");
                (&mut slot.1, rest.trim_end_matches(']'))
            }
        };
        let value = if f.boolean {
            params.bool(key)?.map(Value::Bool)
        } else {
            params.string(key)?.map(Value::String)
        };
        if let Some(v) = value {
            page.filters.push((switchboard_store::Field(f.path), v));
        }
    }
    for (_, rest) in nested {
        rest.finish()?;
    }
    ctx.finish_params()?;
    let found = ctx
        .state
        .store
        .objects(scope, kind, &page)
        .await
        .map_err(|e| cursor_param(&page, e.into()))?;
    ctx.respond(list_json(url, found, |o| public(&o.data)))
        .await
}

/// A positive integer amount in the smallest currency unit.
pub fn amount(ctx: &mut Ctx, key: &str) -> Result<i64, ApiError> {
    match ctx.params.int(key)? {
        Some(a) if a > 0 => Ok(a),
        Some(a) => Err(ApiError::invalid(
            key,
            format!("Invalid {key}: must be a positive integer, got {a}"),
        )),
        None => Err(ApiError::Param(
            switchboard_core::form::ParamError::missing(key),
        )),
    }
}

/// A three-letter lowercase ISO currency code.
pub fn currency(ctx: &mut Ctx, default: Option<&str>) -> Result<String, ApiError> {
    let c = match ctx.params.string("currency")? {
        Some(c) => c.to_ascii_lowercase(),
        None => match default {
            Some(d) => d.to_owned(),
            None => {
                return Err(ApiError::Param(
                    switchboard_core::form::ParamError::missing("currency"),
                ));
            }
        },
    };
    if c.len() == 3 && c.bytes().all(|b| b.is_ascii_lowercase()) {
        Ok(c)
    } else {
        Err(ApiError::invalid(
            "currency",
            format!("Invalid currency: {c}"),
        ))
    }
}

/// A parameter tree as JSON (all leaves strings), for free-form maps such as `shipping`.
pub fn form_json(v: switchboard_core::form::Value) -> Value {
    use switchboard_core::form::Value as F;
    match v {
        F::Str(s) if s.is_empty() => Value::Null,
        F::Str(s) => Value::String(s),
        F::List(items) => Value::Array(items.into_iter().map(form_json).collect()),
        F::Map(m) => Value::Object(m.into_iter().map(|(k, v)| (k, form_json(v))).collect()),
    }
}

/// Adds `item` in front of the inline list `parent[field]` (a transfer's
/// `reversals`, a fee's `refunds`): Stripe shows the newest ten, with
/// `has_more` beyond.
pub fn push_sublist(parent: &mut Value, field: &str, item: &Value) {
    let list = &mut parent[field];
    if let Some(data) = list["data"].as_array_mut() {
        data.insert(0, item.clone());
        let more = data.len() > 10;
        data.truncate(10);
        list["has_more"] = more.into();
    }
}
