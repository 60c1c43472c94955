//! Events, rendered once in Stripe's byte layout.
//!
//! The rendered bytes are what every delivery signs and sends, verbatim:
//! 2-space pretty JSON with `\n` newlines, `id` and `object` first, then the
//! other keys alphabetically; `account` only on events of connected accounts.

use serde_json::{Map, Value, json};

use crate::object::StripeOrdered;

/// An event before it has an id, a creation time and a delivery count.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDraft {
    pub event_type: String,
    /// Snapshot of the object at event time (`data.object`).
    pub object: Value,
    /// Prior values of changed attributes, on `*.updated` events.
    pub previous_attributes: Option<Map<String, Value>>,
    pub livemode: bool,
    /// The connected account the event happened on.
    pub account: Option<String>,
    pub request: RequestInfo,
}

/// The API request that caused an event (`null` id for automatic events).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub id: Option<String>,
    pub idempotency_key: Option<String>,
}

/// What the store decides when it commits the event.
#[derive(Debug, Clone, Copy)]
pub struct EventStamp<'a> {
    pub id: &'a str,
    pub created: i64,
    pub api_version: &'a str,
    pub pending_webhooks: i64,
}

impl EventDraft {
    /// The event as a JSON value, keys in Stripe's order.
    pub fn to_value(&self, stamp: EventStamp<'_>) -> Value {
        let mut map = Map::new();
        map.insert("id".into(), stamp.id.into());
        map.insert("object".into(), "event".into());
        if let Some(account) = &self.account {
            map.insert("account".into(), account.clone().into());
        }
        map.insert("api_version".into(), stamp.api_version.into());
        map.insert("created".into(), stamp.created.into());
        let mut data = Map::new();
        data.insert(
            "object".into(),
            crate::object::stripe_order(self.object.clone()),
        );
        if let Some(prev) = &self.previous_attributes {
            data.insert(
                "previous_attributes".into(),
                crate::object::stripe_order(Value::Object(prev.clone())),
            );
        }
        map.insert("data".into(), Value::Object(data));
        map.insert("livemode".into(), self.livemode.into());
        map.insert("pending_webhooks".into(), stamp.pending_webhooks.into());
        map.insert(
            "request".into(),
            json!({"id": self.request.id, "idempotency_key": self.request.idempotency_key}),
        );
        map.insert("type".into(), self.event_type.clone().into());
        Value::Object(map)
    }

    /// The bytes every delivery of this event will carry: the same as
    /// `to_value` pretty-printed, serialized from borrows (no copy of the
    /// object's tree; a test holds the two equal).
    pub fn render(&self, stamp: EventStamp<'_>) -> Vec<u8> {
        let wire = Wire {
            id: stamp.id,
            object: "event",
            account: self.account.as_deref(),
            api_version: stamp.api_version,
            created: stamp.created,
            data: WireData {
                object: StripeOrdered(&self.object),
                previous_attributes: self.previous_attributes.as_ref().map(PreviousOrdered),
            },
            livemode: self.livemode,
            pending_webhooks: stamp.pending_webhooks,
            request: WireRequest {
                id: self.request.id.as_deref(),
                idempotency_key: self.request.idempotency_key.as_deref(),
            },
            event_type: &self.event_type,
        };
        let mut out = Vec::with_capacity(1024);
        serde_json::to_writer_pretty(&mut out, &wire).expect("JSON values always serialize");
        out
    }
}

/// An event as rendered, fields in Stripe's order (`id`, `object`, then
/// alphabetical).
#[derive(serde::Serialize)]
struct Wire<'a> {
    id: &'a str,
    object: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<&'a str>,
    api_version: &'a str,
    created: i64,
    data: WireData<'a>,
    livemode: bool,
    pending_webhooks: i64,
    request: WireRequest<'a>,
    #[serde(rename = "type")]
    event_type: &'a str,
}

/// `data.object` and `data.previous_attributes` in Stripe's key order,
/// however the handler built them.
#[derive(serde::Serialize)]
struct WireData<'a> {
    object: StripeOrdered<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_attributes: Option<PreviousOrdered<'a>>,
}

struct PreviousOrdered<'a>(&'a Map<String, Value>);

impl serde::Serialize for PreviousOrdered<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut entries: Vec<(&String, &Value)> = self.0.iter().collect();
        entries.sort_unstable_by(|a, b| crate::object::stripe_key_order(a.0, b.0));
        let mut m = s.serialize_map(Some(entries.len()))?;
        for (k, v) in entries {
            m.serialize_entry(k, &StripeOrdered(v))?;
        }
        m.end()
    }
}

#[derive(serde::Serialize)]
struct WireRequest<'a> {
    id: Option<&'a str>,
    idempotency_key: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(account: Option<&str>) -> EventDraft {
        EventDraft {
            event_type: "customer.created".into(),
            object: json!({"id": "cus_1", "object": "customer"}),
            previous_attributes: None,
            livemode: false,
            account: account.map(str::to_owned),
            request: RequestInfo {
                id: Some("req_1".into()),
                idempotency_key: None,
            },
        }
    }

    const STAMP: EventStamp<'static> = EventStamp {
        id: "evt_1",
        created: 1_700_000_000,
        api_version: "2026-10-28.endive",
        pending_webhooks: 2,
    };

    #[test]
    fn rendering_equals_the_value_pretty_printed() {
        let mut with_all = draft(Some("acct_1"));
        with_all.previous_attributes = Some(json!({"email": null}).as_object().unwrap().clone());
        with_all.request.idempotency_key = Some("k\"1".into());
        for d in [draft(None), with_all] {
            let value = serde_json::to_vec_pretty(&d.to_value(STAMP)).unwrap();
            assert_eq!(
                String::from_utf8(d.render(STAMP)).unwrap(),
                String::from_utf8(value).unwrap()
            );
        }
    }

    #[test]
    fn renders_stripe_layout() {
        let bytes = draft(None).render(STAMP);
        let text = String::from_utf8(bytes).unwrap();
        let expected = r#"{
  "id": "evt_1",
  "object": "event",
  "api_version": "2026-10-28.endive",
  "created": 1700000000,
  "data": {
    "object": {
      "id": "cus_1",
      "object": "customer"
    }
  },
  "livemode": false,
  "pending_webhooks": 2,
  "request": {
    "id": "req_1",
    "idempotency_key": null
  },
  "type": "customer.created"
}"#;
        assert_eq!(text, expected);
    }

    #[test]
    fn account_key_only_on_connect_events() {
        let platform = String::from_utf8(draft(None).render(STAMP)).unwrap();
        assert!(!platform.contains("\"account\""));
        let connect: Value = serde_json::from_slice(&draft(Some("acct_9")).render(STAMP)).unwrap();
        let keys: Vec<&String> = connect.as_object().unwrap().keys().collect();
        assert_eq!(&keys[..3], ["id", "object", "account"]);
        assert_eq!(connect["account"], "acct_9");
    }
}
