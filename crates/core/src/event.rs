//! Events, rendered once in Stripe's byte layout.
//!
//! The rendered bytes are what every delivery signs and sends, verbatim:
//! 2-space pretty JSON with `\n` newlines, `id` and `object` first, then the
//! other keys alphabetically; `account` only on events of connected accounts.

use serde_json::{Map, Value, json};

use crate::object::{StripeOrdered, StripeOrderedMap};

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
    /// An API v2 event's own `data` (`v2.core.account_link.returned`).
    pub data: Option<Value>,
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
    /// An API v2 event (`v2.core.account.created`, …): it exists only as a
    /// thin event, so only thin destinations hear it; `object` is what it
    /// is about (its `related_object`, `null` for none) and
    /// `previous_attributes` the `changes.before` of an update.
    pub fn is_v2(&self) -> bool {
        self.event_type.starts_with("v2.")
    }

    /// The event as a JSON value, keys in Stripe's order; a v2 event as
    /// `GET /v2/core/events/{id}` answers it.
    pub fn to_value(&self, stamp: EventStamp<'_>) -> Value {
        if self.is_v2() {
            return self.v2_value(stamp, true);
        }
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
        if self.is_v2() {
            return serde_json::to_vec_pretty(&self.v2_value(stamp, true))
                .expect("JSON values always serialize");
        }
        let wire = Wire {
            id: stamp.id,
            object: "event",
            account: self.account.as_deref(),
            api_version: stamp.api_version,
            created: stamp.created,
            data: WireData {
                object: StripeOrdered(&self.object),
                previous_attributes: self.previous_attributes.as_ref().map(StripeOrderedMap),
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

impl EventDraft {
    /// The event's type as a thin (API v2) event: `v1.<type>` for a v1
    /// event, a v2 event's own type.
    pub fn thin_type(&self) -> String {
        if self.is_v2() {
            return self.event_type.clone();
        }
        format!("v1.{}", self.event_type)
    }

    /// The `v2.core.event` an event destination with thin payloads gets
    /// for this event (see [`thin_of`]).
    pub fn render_thin(&self, stamp: EventStamp<'_>) -> Vec<u8> {
        let thin = if self.is_v2() {
            self.v2_value(stamp, false)
        } else {
            thin_of(&self.to_value(stamp))
        };
        serde_json::to_vec_pretty(&thin).expect("JSON values always serialize")
    }

    /// A v2 event, with its fetched attributes (`data`, `changes`) when
    /// `full`, without them as its thin notification.
    fn v2_value(&self, stamp: EventStamp<'_>, full: bool) -> Value {
        let mut map = Map::new();
        map.insert("id".into(), stamp.id.into());
        map.insert("object".into(), "v2.core.event".into());
        if full {
            let changes = match &self.previous_attributes {
                Some(before) => changes(before, &self.object),
                None if self.event_type.ends_with(".created") => {
                    json!({"before": null, "after": self.object})
                }
                None => Value::Null,
            };
            if !changes.is_null() {
                map.insert("changes".into(), changes);
            }
        }
        // Optional, not nullable, in the SDKs' types: absent for the
        // platform's own events.
        if let Some(account) = &self.account {
            map.insert("context".into(), account.clone().into());
        }
        map.insert(
            "created".into(),
            crate::rfc3339::format_ms(stamp.created * 1000).into(),
        );
        if full && let Some(data) = &self.data {
            map.insert("data".into(), data.clone());
        }
        map.insert("livemode".into(), self.livemode.into());
        map.insert(
            "reason".into(),
            v2_reason(
                self.request.id.as_deref(),
                self.request.idempotency_key.as_deref(),
            ),
        );
        if let Some(r) = related_object(&self.object, self.account.as_deref()) {
            map.insert("related_object".into(), r.to_value());
        }
        map.insert("type".into(), self.event_type.clone().into());
        Value::Object(map)
    }
}

/// A v2 event's `changes` from an update's `previous_attributes`:
/// `before` is them, `after` the same fields of the object now, nested maps
/// mirrored key by key (a `metadata` change shows the changed keys on both
/// sides, not the whole map after).
pub fn changes(before: &Map<String, Value>, object: &Value) -> Value {
    fn mirror(before: &Value, now: &Value) -> Value {
        match (before, now) {
            (Value::Object(b), Value::Object(_)) => Value::Object(
                b.iter()
                    .map(|(k, v)| (k.clone(), mirror(v, &now[k])))
                    .collect(),
            ),
            _ => now.clone(),
        }
    }
    let after = mirror(&Value::Object(before.clone()), object);
    json!({"before": before, "after": after})
}

/// A v2 event's `reason`: null for automatic events, else the request.
/// Stripe's types make `idempotency_key` a non-null string (v2 requests
/// always carry one), so a request sent without a key shows `""`.
fn v2_reason(request_id: Option<&str>, idempotency_key: Option<&str>) -> Value {
    match request_id {
        Some(id) => json!({
            "type": "request",
            "request": {"id": id, "idempotency_key": idempotency_key.unwrap_or_default()},
        }),
        None => Value::Null,
    }
}

/// A v1 event (as rendered) as API v2 notifies it: `v1.<type>`, no data,
/// the connected account as `context`, the request as `reason` (the SDKs
/// require both keys of `request` when `type` is `request`), and what it is
/// about as `related_object`, to be fetched with `Stripe-Context`. The thin
/// event shares the v1 event's id.
pub fn thin_of(v1: &Value) -> Value {
    let account = v1.get("account").and_then(Value::as_str);
    let mut map = Map::new();
    map.insert("id".into(), v1["id"].clone());
    map.insert("object".into(), "v2.core.event".into());
    if let Some(account) = account {
        map.insert("context".into(), account.into());
    }
    let created = v1["created"].as_i64().unwrap_or_default();
    map.insert(
        "created".into(),
        crate::rfc3339::format_ms(created * 1000).into(),
    );
    map.insert("livemode".into(), v1["livemode"].clone());
    map.insert(
        "reason".into(),
        v2_reason(
            v1["request"]["id"].as_str(),
            v1["request"]["idempotency_key"].as_str(),
        ),
    );
    if let Some(r) = related_object(&v1["data"]["object"], account) {
        map.insert("related_object".into(), r.to_value());
    }
    let kind = v1["type"].as_str().unwrap_or_default();
    map.insert("type".into(), format!("v1.{kind}").into());
    Value::Object(map)
}

/// What a thin event is about: `{id, type, url}` (`id` absent for
/// singletons such as the balance); `url` is a path, fetched as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelatedObject {
    pub id: Option<String>,
    pub kind: String,
    pub url: String,
}

impl RelatedObject {
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        if let Some(id) = &self.id {
            m.insert("id".into(), id.clone().into());
        }
        m.insert("type".into(), self.kind.clone().into());
        m.insert("url".into(), self.url.clone().into());
        Value::Object(m)
    }
}

/// The v1 path of `object` (a `data.object`), for `related_object.url`.
/// Objects that live under their account (persons, capabilities, external
/// accounts) are addressed through it; `account` is the event's.
pub fn related_object(object: &Value, account: Option<&str>) -> Option<RelatedObject> {
    let kind = object.get("object")?.as_str()?;
    let id = object.get("id").and_then(Value::as_str);
    let owner = object
        .get("account")
        .and_then(Value::as_str)
        .or(account)
        .unwrap_or_default();
    let (path, id) = match (kind, id) {
        ("v2.core.account", Some(id)) => (format!("/v2/core/accounts/{id}"), Some(id)),
        ("v2.core.event_destination", Some(id)) => {
            (format!("/v2/core/event_destinations/{id}"), Some(id))
        }
        ("v2.core.account_person", Some(id)) => {
            (format!("/v2/core/accounts/{owner}/persons/{id}"), Some(id))
        }
        ("balance", _) => ("/v1/balance".to_owned(), None),
        (_, None) => return None,
        ("person", Some(id)) => (format!("/v1/accounts/{owner}/persons/{id}"), Some(id)),
        ("capability", Some(id)) => (format!("/v1/accounts/{owner}/capabilities/{id}"), Some(id)),
        ("bank_account" | "card", Some(id))
            if !owner.is_empty() && object.get("customer").is_none_or(Value::is_null) =>
        {
            (
                format!("/v1/accounts/{owner}/external_accounts/{id}"),
                Some(id),
            )
        }
        ("card" | "bank_account", Some(id)) => match object.get("customer").and_then(Value::as_str)
        {
            Some(c) => (format!("/v1/customers/{c}/sources/{id}"), Some(id)),
            None => return None,
        },
        ("fee_refund", Some(id)) => match object.get("fee").and_then(Value::as_str) {
            Some(fee) => (format!("/v1/application_fees/{fee}/refunds/{id}"), Some(id)),
            None => return None,
        },
        ("transfer_reversal", Some(id)) => match object.get("transfer").and_then(Value::as_str) {
            Some(tr) => (format!("/v1/transfers/{tr}/reversals/{id}"), Some(id)),
            None => return None,
        },
        (kind, Some(id)) => (format!("/v1/{}/{id}", plural(kind)), Some(id)),
    };
    Some(RelatedObject {
        id: id.map(str::to_owned),
        kind: kind.to_owned(),
        url: path,
    })
}

/// The v1 collection of an object type (`customer` → `customers`).
fn plural(kind: &str) -> String {
    match kind {
        "application_fee" => "application_fees".into(),
        "checkout.session" => "checkout/sessions".into(),
        k if k.ends_with('s') => format!("{k}es"),
        k => format!("{}s", k.replace('.', "/")),
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
    previous_attributes: Option<StripeOrderedMap<'a>>,
}

#[derive(serde::Serialize)]
struct WireRequest<'a> {
    id: Option<&'a str>,
    idempotency_key: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_mirror_the_previous_attributes() {
        let before = json!({"name": "A", "metadata": {"foo": null}});
        let now = json!({"name": "B", "metadata": {"foo": "bar", "kept": "x"}, "email": "e"});
        assert_eq!(
            changes(before.as_object().unwrap(), &now),
            json!({"before": {"name": "A", "metadata": {"foo": null}},
                   "after": {"name": "B", "metadata": {"foo": "bar"}}})
        );
        // A field that became null, or a map that became a scalar.
        let before = json!({"address": {"city": "X"}, "phone": "1"});
        let now = json!({"address": null});
        assert_eq!(
            changes(before.as_object().unwrap(), &now)["after"],
            json!({"address": null, "phone": null})
        );
    }

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
            data: None,
        }
    }

    const STAMP: EventStamp<'static> = EventStamp {
        id: "evt_1",
        created: 1_700_000_000,
        api_version: "2026-10-28.endive",
        pending_webhooks: 2,
    };

    #[test]
    fn thin_events_name_the_related_object_and_the_account() {
        let d = draft(Some("acct_1"));
        let thin: Value = serde_json::from_slice(&d.render_thin(STAMP)).unwrap();
        assert_eq!(thin["object"], "v2.core.event");
        assert_eq!(thin["type"], "v1.customer.created");
        assert_eq!(thin["context"], "acct_1");
        assert_eq!(thin["created"], "2023-11-14T22:13:20.000Z");
        assert_eq!(thin["reason"]["request"]["id"], "req_1");
        assert!(thin["reason"]["request"].get("idempotency_key").is_some());
        assert_eq!(
            thin["related_object"],
            json!({"id": "cus_1", "type": "customer", "url": "/v1/customers/cus_1"})
        );
        assert!(thin.get("data").is_none());
        let own: Value = serde_json::from_slice(&draft(None).render_thin(STAMP)).unwrap();
        assert_eq!(own["context"], Value::Null);
        let person = related_object(
            &json!({"id": "person_1", "object": "person", "account": "acct_2"}),
            None,
        );
        assert_eq!(person.unwrap().url, "/v1/accounts/acct_2/persons/person_1");
        let balance = related_object(&json!({"object": "balance"}), Some("acct_2")).unwrap();
        assert_eq!((balance.id, balance.url.as_str()), (None, "/v1/balance"));
        let bank = related_object(
            &json!({"id": "ba_1", "object": "bank_account", "account": "acct_2"}),
            None,
        );
        assert_eq!(
            bank.unwrap().url,
            "/v1/accounts/acct_2/external_accounts/ba_1"
        );
        assert_eq!(plural("payment_intent"), "payment_intents");
        assert_eq!(plural("issuing.card"), "issuing/cards");
    }

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
