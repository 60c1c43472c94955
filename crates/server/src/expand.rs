//! `expand[]`: replaces ids in a response by the objects they name, on every
//! route, as Stripe does. Which fields can be expanded, and into what, comes
//! from Stripe's schema (a field typed `string | Customer | null` is
//! expandable into a Customer); paths nest up to four levels
//! (`latest_charge.balance_transaction`) and lists take a `data.` prefix.

use serde_json::Value;
use switchboard_core::schema::{self, Alt};
use switchboard_store::{Scope, Write};

use crate::api::objects::public;
use crate::context::Ctx;
use crate::error::ApiError;

/// Stripe's limit on the levels of one expansion path.
const MAX_LEVELS: usize = 4;

/// Checks `paths` before anything else happens, so a bad path is a 400 for
/// the request (before its effects), not an error after them.
pub fn validate(paths: &[String]) -> Result<(), ApiError> {
    for path in paths {
        let levels = path.split('.').filter(|s| *s != "data").count();
        if path.is_empty() || path.split('.').any(str::is_empty) {
            return Err(cannot(path));
        }
        if levels > MAX_LEVELS {
            return Err(ApiError::InvalidRequest {
                message: format!(
                    "You cannot expand more than {MAX_LEVELS} levels of a property. Property: {path}"
                ),
                param: Some("expand".into()),
                code: None,
            });
        }
    }
    Ok(())
}

fn cannot(path: &str) -> ApiError {
    ApiError::InvalidRequest {
        message: format!("This property cannot be expanded ({path})."),
        param: Some("expand".into()),
        code: None,
    }
}

/// The store kind and scope an expandable field's target lives under.
fn location(ctx: &Ctx, object: &str) -> (String, Scope) {
    let kind = match object {
        "bank_account" | "card" => "external_account",
        other => other,
    };
    let scope = if kind == "account" {
        Scope {
            account: None,
            ..ctx.scope.clone()
        }
    } else {
        ctx.scope.clone()
    };
    (kind.to_owned(), scope)
}

/// The object an id names: first among the writes of the change being
/// committed (objects created by this very request), then in the store.
async fn fetch(
    ctx: &Ctx,
    type_name: &str,
    id: &str,
    pending: &[Write],
) -> Result<Option<Value>, ApiError> {
    let s = schema::stripe();
    let Some(object) = s.object_of(type_name) else {
        return Ok(None);
    };
    let (kind, scope) = location(ctx, object);
    for w in pending.iter().rev() {
        if let Write::Object(o) = w
            && o.object.id == id
            && o.object.kind == kind
        {
            return Ok(Some(stub_if_deleted(&o.object.data, o.object.deleted)));
        }
    }
    Ok(ctx
        .state
        .store
        .object(&scope, &kind, id)
        .await?
        .map(|o| stub_if_deleted(&o.data, o.deleted)))
}

fn stub_if_deleted(data: &Value, deleted: bool) -> Value {
    if deleted {
        serde_json::json!({"id": data["id"], "object": data["object"], "deleted": true})
    } else {
        public(data)
    }
}

/// A place in the response still to walk: a JSON pointer and the type of
/// the object there (None for a list object).
struct Cursor {
    pointer: String,
    type_name: Option<String>,
}

fn type_at(value: &Value) -> Option<String> {
    let object = value.get("object")?.as_str()?;
    if object == "list" || object == "search_result" {
        return None;
    }
    let deleted = value.get("deleted") == Some(&Value::Bool(true));
    let key = if deleted {
        format!("{object}#deleted")
    } else {
        object.to_owned()
    };
    schema::stripe().type_of(&key).map(str::to_owned)
}

/// Applies every path of `expand[]` to `value`.
pub async fn apply(
    ctx: &Ctx,
    mut value: Value,
    paths: &[String],
    pending: &[Write],
) -> Result<Value, ApiError> {
    let s = schema::stripe();
    for path in paths {
        let segments: Vec<&str> = path.split('.').collect();
        let mut cursors = vec![Cursor {
            pointer: String::new(),
            type_name: type_at(&value),
        }];
        for (i, segment) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            let mut next = Vec::new();
            for cursor in cursors {
                let Some(node) = value.pointer(&cursor.pointer) else {
                    continue;
                };
                let Some(type_name) = cursor.type_name else {
                    // A list object: `data` walks into each element.
                    if *segment != "data" {
                        return Err(cannot(path));
                    }
                    let count = node["data"].as_array().map_or(0, Vec::len);
                    for n in 0..count {
                        let pointer = format!("{}/data/{n}", cursor.pointer);
                        let type_name = value.pointer(&pointer).and_then(type_at);
                        next.push(Cursor { pointer, type_name });
                    }
                    continue;
                };
                let field = s
                    .type_def(&type_name)
                    .and_then(|d| d.field(segment))
                    .ok_or_else(|| cannot(path))?;
                let pointer = format!("{}/{}", cursor.pointer, escape(segment));
                let child = value.pointer(&pointer).cloned().unwrap_or(Value::Null);
                if let Some(target) = field.expandable() {
                    let expanded = match child.as_str() {
                        Some(id) => fetch(ctx, target, id, pending).await?,
                        None => None,
                    };
                    if let Some(object) = expanded {
                        let type_name = type_at(&object);
                        *value.pointer_mut(&pointer).expect("just read") = object;
                        next.push(Cursor { pointer, type_name });
                    } else if child.is_object() {
                        next.push(Cursor {
                            type_name: type_at(&child),
                            pointer,
                        });
                    }
                    continue;
                }
                if last {
                    return Err(cannot(path));
                }
                // Not expandable itself, but a nested object or list to walk through.
                match (&child, nested_type(&field.alts)) {
                    (Value::Object(_), Some(t)) => next.push(Cursor {
                        pointer,
                        type_name: Some(t),
                    }),
                    (Value::Object(m), None) if m.get("object") == Some(&"list".into()) => next
                        .push(Cursor {
                            pointer,
                            type_name: None,
                        }),
                    (Value::Null, _) => {}
                    _ => return Err(cannot(path)),
                }
            }
            cursors = next;
        }
    }
    Ok(value)
}

fn nested_type(alts: &[Alt]) -> Option<String> {
    alts.iter().find_map(|a| match a {
        Alt::Ref { target } => Some(target.clone()),
        _ => None,
    })
}

/// JSON pointer escaping (RFC 6901).
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}
