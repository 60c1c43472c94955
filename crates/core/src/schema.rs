//! Stripe's object shapes for the pinned API version, extracted from the
//! TypeScript declarations stripe-node generates from Stripe's OpenAPI spec
//! (`compat/schema/extract.mjs` writes `schema/objects.json`; a test checks
//! that file is what the pinned package declares).
//!
//! The server builds every object on a [`Schema::skeleton`] (so fields Stripe
//! always sends are there, `null` when unset), and the tests hold everything
//! Switchboard emits to [`Schema::check`]: no missing field, no unknown field,
//! every value of a declared type and enum.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Map, Value};

/// One alternative of a field's type (a field's type is a union of these).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Alt {
    /// `"string"`, `"number"`, `"boolean"`, `"null"` or `"any"`.
    Simple(Simple),
    Lit {
        lit: Value,
    },
    Ref {
        #[serde(rename = "ref")]
        target: String,
    },
    Array {
        array: Vec<Alt>,
    },
    Map {
        map: Vec<Alt>,
    },
    /// A list object (`{object: "list", data, has_more, url}`) of these.
    List {
        list: Vec<Alt>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Simple {
    String,
    Number,
    Boolean,
    Null,
    Any,
}

#[derive(Debug, Deserialize)]
pub struct Field {
    #[serde(rename = "t")]
    pub alts: Vec<Alt>,
    #[serde(default, rename = "opt")]
    pub optional: bool,
}

impl Field {
    pub fn nullable(&self) -> bool {
        self.alts.contains(&Alt::Simple(Simple::Null))
    }

    /// The resource an id in this field names, when Stripe can expand it
    /// (`string | Customer | null`).
    pub fn expandable(&self) -> Option<&str> {
        if !self.alts.contains(&Alt::Simple(Simple::String)) {
            return None;
        }
        self.alts.iter().find_map(|a| match a {
            Alt::Ref { target } => Some(target.as_str()),
            _ => None,
        })
    }
}

#[derive(Debug, Deserialize)]
pub struct TypeDef {
    fields: BTreeMap<String, Field>,
}

impl TypeDef {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.get(name)
    }
    pub fn fields(&self) -> impl Iterator<Item = (&str, &Field)> {
        self.fields.iter().map(|(n, f)| (n.as_str(), f))
    }
}

#[derive(Debug, Deserialize)]
pub struct Schema {
    pub source: String,
    pub api_version: String,
    /// Event type → what its `data.object` holds.
    events: HashMap<String, Vec<Alt>>,
    /// `object` literal (`account`, or `account#deleted`) → type name.
    objects: HashMap<String, String>,
    types: HashMap<String, TypeDef>,
}

/// The schema of the pinned API version, parsed once.
pub fn stripe() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        serde_json::from_str(include_str!("../schema/objects.json"))
            .expect("schema/objects.json is generated and checked by the test suite")
    })
}

/// The type name behind an `object` value (`"charge"` → `"Charge"`).
fn object_key(object: &str, deleted: bool) -> String {
    if deleted {
        format!("{object}#deleted")
    } else {
        object.to_owned()
    }
}

impl Schema {
    pub fn type_def(&self, name: &str) -> Option<&TypeDef> {
        self.types.get(name)
    }

    /// The type of objects whose `object` is `object`.
    pub fn type_of(&self, object: &str) -> Option<&str> {
        self.objects.get(object).map(String::as_str)
    }

    /// The `object` value of a type (`"Charge"` → `"charge"`).
    pub fn object_of(&self, type_name: &str) -> Option<&str> {
        self.objects
            .iter()
            .find(|(k, t)| *t == type_name && !k.ends_with("#deleted"))
            .map(|(k, _)| k.as_str())
    }

    /// Whether `event_type` is one of Stripe's event types.
    pub fn is_event_type(&self, event_type: &str) -> bool {
        self.events.contains_key(event_type)
    }

    /// An object of `object` kind with every field Stripe always sends that
    /// has an obvious value: `null` where nullable, empty arrays and maps,
    /// single-literal fields, and required nested objects built the same way.
    /// Required scalars are left out: the caller must supply them, and
    /// [`Schema::check`] reports any it forgot.
    pub fn skeleton(&self, object: &str) -> Value {
        self.build(object, Value::Object(Map::new()))
    }

    /// `values` completed with the skeleton of `object`, at every level the
    /// values reach (an optional `settings` given in part gets the rest of
    /// its fields too), in Stripe's key order: `id`, `object`, then
    /// alphabetical.
    pub fn build(&self, object: &str, mut values: Value) -> Value {
        if let Some(t) = self.type_of(object) {
            self.complete(t, &mut values);
        }
        crate::object::stripe_order(values)
    }

    fn complete(&self, type_name: &str, value: &mut Value) {
        let (Some(def), Some(map)) = (self.types.get(type_name), value.as_object_mut()) else {
            return;
        };
        for (name, field) in def.fields() {
            // The one non-null alternative, if it is a reference (no
            // collecting: this runs for every field of every object built).
            let mut non_null = field
                .alts
                .iter()
                .filter(|a| !matches!(a, Alt::Simple(Simple::Null)));
            let single_ref = match (non_null.next(), non_null.next()) {
                (Some(Alt::Ref { target }), None) => Some(target.as_str()),
                _ => None,
            };
            match map.get_mut(name) {
                Some(present) => {
                    if let Some(t) = single_ref {
                        self.complete(t, present);
                    } else if let (Some(items), [Alt::Array { array }]) =
                        (present.as_array_mut(), field.alts.as_slice())
                        && let [Alt::Ref { target }] = array.as_slice()
                    {
                        for item in items {
                            self.complete(target, item);
                        }
                    }
                }
                None if field.optional => {}
                None => {
                    let value = if field.nullable() {
                        Some(Value::Null)
                    } else {
                        match field.alts.as_slice() {
                            [Alt::Array { .. }] => Some(Value::Array(Vec::new())),
                            [Alt::Map { .. }] => Some(Value::Object(Map::new())),
                            [Alt::Lit { lit }] => Some(lit.clone()),
                            [Alt::Ref { target }] => {
                                let mut nested = Value::Object(Map::new());
                                self.complete(target, &mut nested);
                                Some(nested)
                            }
                            _ => None,
                        }
                    };
                    if let Some(v) = value {
                        map.insert(name.to_owned(), v);
                    }
                }
            }
        }
    }

    /// Everything wrong with an API response body or webhook payload, as
    /// `path: problem` lines (empty when the body is what Stripe sends).
    pub fn check(&self, body: &Value) -> Vec<String> {
        let mut errs = Vec::new();
        if let Some(err) = body.get("error") {
            if let Some(extra) = body.as_object().filter(|m| m.len() != 1) {
                errs.push(format!("error body: unexpected keys {:?}", extra.keys()));
            }
            self.check_type("StripeRawError", err, "error", &mut errs);
        } else {
            self.check_object(body, "", &mut errs);
        }
        errs
    }

    fn check_object(&self, value: &Value, path: &str, errs: &mut Vec<String>) {
        let object = value.get("object").and_then(Value::as_str).unwrap_or("");
        // An API v2 list: `{data, next_page_url, previous_page_url}`.
        let v2_list = object.is_empty() && value.get("next_page_url").is_some();
        if object == "list" || object == "search_result" || v2_list {
            let Some(items) = value.get("data").and_then(Value::as_array) else {
                errs.push(format!("{path}: list without data"));
                return;
            };
            for (i, item) in items.iter().enumerate() {
                self.check_object(item, &format!("{path}data[{i}]."), errs);
            }
            return;
        }
        // API v2 answers a delete with `{id, object}` (its DeletedObject).
        if object.starts_with("v2.") && value.as_object().is_some_and(|m| m.len() == 2) {
            if value.get("id").and_then(Value::as_str).is_none() {
                errs.push(format!("{path}id: a v2 deleted object without an id"));
            }
            return;
        }
        // A v2 event: its type's own fields (`related_object`, `data`) are
        // declared per event type; the rest is EventBase.
        if object == "v2.core.event"
            && let Some(m) = value.as_object()
        {
            let mut base = m.clone();
            if let Some(r) = base.remove("related_object")
                && !(r["type"].is_string() && r["url"].is_string())
            {
                errs.push(format!("{path}related_object: {r} lacks type or url"));
            }
            base.remove("data");
            self.check_type("V2.Core.EventBase", &Value::Object(base), path, errs);
            return;
        }
        let deleted = value.get("deleted") == Some(&Value::Bool(true));
        match self.objects.get(&object_key(object, deleted)) {
            Some(t) => self.check_type(t, value, path.trim_end_matches('.'), errs),
            None => errs.push(format!("{path}object: unknown object type {object:?}")),
        }
    }

    fn check_type(&self, type_name: &str, value: &Value, path: &str, errs: &mut Vec<String>) {
        let Some(def) = self.types.get(type_name) else {
            errs.push(format!("{path}: no type {type_name} in the schema"));
            return;
        };
        let Some(map) = value.as_object() else {
            errs.push(format!(
                "{path}: expected a {type_name} object, got {value}"
            ));
            return;
        };
        let at = |name: &str| {
            if path.is_empty() {
                name.to_owned()
            } else {
                format!("{path}.{name}")
            }
        };
        for (name, field) in def.fields() {
            match map.get(name) {
                None if !field.optional => errs.push(format!("{}: missing", at(name))),
                None => {}
                Some(_) if field.alts.is_empty() => {
                    errs.push(format!("{}: Stripe never sends this field", at(name)))
                }
                // An event's data.object is typed by the event's type.
                Some(data) if type_name == "EventBase" && name == "data" => {
                    self.check_event_data(map, data, &at(name), errs)
                }
                // stripe-node declares v2's nullable fields optional
                // (`snapshot_api_version?: string`); Stripe's v2 responses
                // send them as null (and include-dependent ones too).
                Some(Value::Null) if field.optional && type_name.starts_with("V2.") => {}
                Some(v) => self.check_alts(&field.alts, v, &at(name), errs),
            }
        }
        for name in map.keys() {
            if def.field(name).is_none() {
                errs.push(format!("{}: not a field of {type_name}", at(name)));
            }
        }
    }

    fn check_event_data(
        &self,
        event: &Map<String, Value>,
        data: &Value,
        path: &str,
        errs: &mut Vec<String>,
    ) {
        let event_type = event.get("type").and_then(Value::as_str).unwrap_or("");
        let Some(alts) = self.events.get(event_type) else {
            return; // the `type` field itself is reported as not an event type
        };
        match data.get("object") {
            Some(object) => self.check_alts(alts, object, &format!("{path}.object"), errs),
            None => errs.push(format!("{path}.object: missing")),
        }
        for key in data.as_object().into_iter().flat_map(|m| m.keys()) {
            if key != "object" && key != "previous_attributes" {
                errs.push(format!("{path}.{key}: not a field of Event.Data"));
            }
        }
    }

    fn check_alts(&self, alts: &[Alt], value: &Value, path: &str, errs: &mut Vec<String>) {
        use Simple as S;
        if alts.contains(&Alt::Simple(S::Any)) {
            return;
        }
        let has = |s: Simple| alts.contains(&Alt::Simple(s));
        let lit_ok = |v: &Value| {
            alts.iter()
                .any(|a| matches!(a, Alt::Lit { lit } if lit == v))
        };
        let fine = match value {
            Value::Null => has(S::Null),
            Value::String(_) => has(S::String) || lit_ok(value),
            Value::Number(_) => has(S::Number) || lit_ok(value),
            Value::Bool(_) => has(S::Boolean) || lit_ok(value),
            Value::Array(items) => {
                let Some(inner) = alts.iter().find_map(|a| match a {
                    Alt::Array { array } => Some(array),
                    _ => None,
                }) else {
                    errs.push(format!("{path}: unexpected array, expected {}", show(alts)));
                    return;
                };
                for (i, item) in items.iter().enumerate() {
                    self.check_alts(inner, item, &format!("{path}[{i}]"), errs);
                }
                true
            }
            Value::Object(map) => return self.check_map(alts, map, value, path, errs),
        };
        if !fine {
            errs.push(format!("{path}: {value} is not {}", show(alts)));
        }
    }

    fn check_map(
        &self,
        alts: &[Alt],
        map: &Map<String, Value>,
        value: &Value,
        path: &str,
        errs: &mut Vec<String>,
    ) {
        let object = map.get("object").and_then(Value::as_str);
        for alt in alts {
            if let Alt::List { list } = alt
                && object == Some("list")
            {
                for key in map.keys() {
                    if !["object", "data", "has_more", "url"].contains(&key.as_str()) {
                        errs.push(format!("{path}.{key}: not a field of a list object"));
                    }
                }
                for (i, item) in map
                    .get("data")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    self.check_alts(list, item, &format!("{path}.data[{i}]"), errs);
                }
                return;
            }
        }
        let refs: Vec<&str> = alts
            .iter()
            .filter_map(|a| match a {
                Alt::Ref { target } => Some(target.as_str()),
                _ => None,
            })
            .collect();
        // Several object types (BankAccount | Card, Customer | DeletedCustomer):
        // the `object` and `deleted` fields say which one this is.
        let deleted = map.get("deleted") == Some(&Value::Bool(true));
        let chosen = match refs.as_slice() {
            [] => None,
            [only] => Some(*only),
            many => {
                let wanted = object.map(|o| self.objects.get(&object_key(o, deleted)));
                many.iter()
                    .find(|r| wanted.flatten().is_some_and(|w| w == *r))
                    .or(many.first())
                    .copied()
            }
        };
        if let Some(t) = chosen {
            return self.check_type(t, value, path, errs);
        }
        if let Some(inner) = alts.iter().find_map(|a| match a {
            Alt::Map { map } => Some(map),
            _ => None,
        }) {
            for (k, v) in map {
                self.check_alts(inner, v, &format!("{path}[{k}]"), errs);
            }
            return;
        }
        errs.push(format!(
            "{path}: unexpected object, expected {}",
            show(alts)
        ));
    }
}

fn show(alts: &[Alt]) -> String {
    let parts: Vec<String> = alts
        .iter()
        .map(|a| match a {
            Alt::Simple(s) => format!("{s:?}").to_lowercase(),
            Alt::Lit { lit } => lit.to_string(),
            Alt::Ref { target } => target.clone(),
            Alt::Array { array } => format!("[{}]", show(array)),
            Alt::Map { map } => format!("{{{}}}", show(map)),
            Alt::List { list } => format!("list of {}", show(list)),
        })
        .collect();
    parts.join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_schema_is_the_pinned_api_version() {
        let s = stripe();
        assert_eq!(s.api_version, crate::DEFAULT_API_VERSION);
        assert!(s.is_event_type("account.updated"));
        assert!(!s.is_event_type("payment_intent.updated"));
        assert_eq!(s.type_of("charge"), Some("Charge"));
        assert_eq!(s.type_of("customer#deleted"), Some("DeletedCustomer"));
    }

    #[test]
    fn stripe_python_and_stripe_node_agree_on_the_event_types() {
        let schema = stripe();
        let python: std::collections::BTreeSet<&str> = crate::catalog::event_types().collect();
        let node: std::collections::BTreeSet<&str> =
            schema.events.keys().map(String::as_str).collect();
        assert_eq!(python, node);
    }

    #[test]
    fn skeletons_carry_nulls_and_nested_required_objects() {
        let charge = stripe().skeleton("charge");
        assert_eq!(charge["object"], "charge");
        assert_eq!(charge["application"], Value::Null);
        assert!(
            charge["billing_details"]["address"].is_null()
                || charge["billing_details"]["address"].is_object()
        );
        assert!(
            charge.get("amount").is_none(),
            "required scalars are the caller's"
        );
        assert!(
            charge.get("authorization_code").is_none(),
            "optional fields stay out"
        );
    }

    #[test]
    fn check_reports_missing_unknown_and_wrong_types() {
        let s = stripe();
        let mut customer = s.build(
            "customer",
            json!({"id": "cus_1", "created": 1, "livemode": false, "balance": 0, "delinquent": false,
                   "invoice_prefix": "ABC", "invoice_settings": {"custom_fields": null, "default_payment_method": null,
                   "footer": null, "rendering_options": null}}),
        );
        let errs = s.check(&customer);
        assert!(errs.is_empty(), "{errs:#?}");
        customer["bogus"] = json!(1);
        customer["livemode"] = json!("no");
        customer.as_object_mut().unwrap().shift_remove("created");
        let errs = s.check(&customer).join("\n");
        assert!(errs.contains("bogus: not a field of Customer"), "{errs}");
        assert!(errs.contains("livemode: \"no\" is not boolean"), "{errs}");
        assert!(errs.contains("created: missing"), "{errs}");
    }

    #[test]
    fn check_follows_event_types_and_enums() {
        let s = stripe();
        let event = json!({"id": "evt_1", "object": "event", "api_version": "x", "created": 1,
            "data": {"object": {"id": "po_1", "object": "customer"}}, "livemode": false,
            "pending_webhooks": 0, "request": null, "type": "payout.failed"});
        let errs = s.check(&event).join("\n");
        assert!(errs.contains("data.object"), "{errs}");
        let bad_type = json!({"error": {"type": "nonsense_error", "message": "x"}});
        assert!(!s.check(&bad_type).is_empty());
        let null_field =
            json!({"error": {"type": "invalid_request_error", "request_log_url": null}});
        assert!(s.check(&null_field).join("").contains("request_log_url"));
    }
}
