//! Helpers for Stripe-shaped JSON objects.

use serde_json::{Map, Value};

/// Stripe's key order, at every level: `id`, `object`, then the rest
/// alphabetically (map-like fields such as `metadata` too). Responses and
/// event payloads are rendered through it, however a handler built them.
pub fn stripe_order(mut value: Value) -> Value {
    order_in_place(&mut value);
    value
}

/// Stripe's order of an object's keys: `id`, `object`, then alphabetical.
fn stripe_key_order(a: &str, b: &str) -> std::cmp::Ordering {
    let rank = |k: &str| match k {
        "id" => 0,
        "object" => 1,
        _ => 2,
    };
    rank(a).cmp(&rank(b)).then_with(|| a.cmp(b))
}

/// `value` serialized in Stripe's key order without reordering (or copying)
/// it: each map's entries are visited sorted, `id` and `object` first. The
/// same bytes as serializing `stripe_order(value.clone())`, for a fraction
/// of the allocations (a response is rendered once per request).
pub struct StripeOrdered<'a>(pub &'a Value);

/// [`StripeOrdered`] for a map on its own (`data.previous_attributes`).
pub struct StripeOrderedMap<'a>(pub &'a serde_json::Map<String, Value>);

impl serde::Serialize for StripeOrderedMap<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut entries: Vec<(&String, &Value)> = self.0.iter().collect();
        entries.sort_unstable_by(|a, b| stripe_key_order(a.0, b.0));
        let mut m = s.serialize_map(Some(entries.len()))?;
        for (k, v) in entries {
            m.serialize_entry(k, &StripeOrdered(v))?;
        }
        m.end()
    }
}

impl serde::Serialize for StripeOrdered<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        match self.0 {
            Value::Object(map) => StripeOrderedMap(map).serialize(s),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(&StripeOrdered(v))?;
                }
                seq.end()
            }
            other => other.serialize(s),
        }
    }
}

/// In place: sorting each map where it is costs a fraction of taking every
/// map apart and building it again (the renderer's largest cost per event).
fn order_in_place(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.sort_keys();
            for first in ["object", "id"] {
                if let Some((k, v)) = map.shift_remove_entry(first) {
                    map.shift_insert(0, k, v);
                }
            }
            map.values_mut().for_each(order_in_place);
        }
        Value::Array(items) => items.iter_mut().for_each(order_in_place),
        _ => {}
    }
}

/// The attributes of `before` whose values differ in `after`: Stripe's
/// `data.previous_attributes` (nested objects compared one level down, arrays whole).
pub fn previous_attributes(before: &Value, after: &Value) -> Map<String, Value> {
    let (Value::Object(b), Value::Object(a)) = (before, after) else {
        return Map::new();
    };
    let mut out = Map::new();
    for (k, old) in b {
        let new = a.get(k).unwrap_or(&Value::Null);
        if old == new {
            continue;
        }
        match (old, new) {
            (Value::Object(_), Value::Object(_)) => {
                let inner = previous_attributes(old, new);
                // Keys newly added under the object were previously absent: Stripe shows them as null.
                let mut inner = inner;
                if let Value::Object(nm) = new {
                    for nk in nm.keys() {
                        if old.get(nk).is_none() {
                            inner.insert(nk.clone(), Value::Null);
                        }
                    }
                }
                out.insert(k.clone(), Value::Object(inner));
            }
            _ => {
                out.insert(k.clone(), old.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ordered_serialization_matches_reordering() {
        let v = json!({
            "zeta": 1, "object": "charge", "amount": [{"b": 1, "id": "x", "a": null}],
            "id": "ch_1", "Upper": true, "nested": {"object": "o", "c": {"y": 1, "x": 2}},
            "_private": {"k": "v"}, "metadata": {}
        });
        let reordered = serde_json::to_string_pretty(&stripe_order(v.clone())).unwrap();
        let ordered = serde_json::to_string_pretty(&StripeOrdered(&v)).unwrap();
        assert_eq!(ordered, reordered);
    }

    #[test]
    fn orders_id_object_then_alphabetical() {
        let v = stripe_order(json!({"zeta": 1, "object": "customer", "alpha": 2, "id": "cus_1"}));
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "object", "alpha", "zeta"]);
    }

    #[test]
    fn orders_nested_maps_and_maps_in_arrays() {
        let v = stripe_order(json!({"b": {"z": 1, "id": "x", "a": 2},
            "a": [{"object": "card", "n": 1, "id": "card_1"}], "id": "cus_1"}));
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"id":"cus_1","a":[{"id":"card_1","object":"card","n":1}],"b":{"id":"x","a":2,"z":1}}"#
        );
    }

    #[test]
    fn previous_attributes_lists_changed_values_only() {
        let before =
            json!({"id": "cus_1", "email": "a@x", "name": null, "metadata": {"a": "1", "b": "2"}});
        let after =
            json!({"id": "cus_1", "email": "b@x", "name": null, "metadata": {"a": "1", "c": "3"}});
        assert_eq!(
            Value::Object(previous_attributes(&before, &after)),
            json!({"email": "a@x", "metadata": {"b": "2", "c": null}})
        );
    }
}
