//! Thin events (API v2 event destinations with `event_payload: thin`): the
//! counterpart of the SDKs' `parse_event_notification`, and the requests
//! their `fetch_event()` / `fetch_related_object()` make, so a Rust platform
//! handles thin Connect events the way stripe-python does.
//!
//! ```
//! use switchboard_receiver::{generate_test_header, parse_event_notification_at};
//! let body = br#"{"id": "evt_1", "object": "v2.core.event", "type": "v1.customer.created",
//!   "created": "2026-12-03T07:00:00.000Z", "livemode": false, "context": "acct_1",
//!   "related_object": {"id": "cus_1", "type": "customer", "url": "/v1/customers/cus_1"}}"#;
//! let header = generate_test_header(body, "whsec_x", 1_700_000_000);
//! let n = parse_event_notification_at(body, &header, "whsec_x", 300, 1_700_000_010).unwrap();
//! assert_eq!(n.context.as_deref(), Some("acct_1"));
//! let fetch = n.fetch_related_object().unwrap();
//! assert_eq!(fetch.path, "/v1/customers/cus_1");
//! assert!(fetch.headers.contains(&("Stripe-Context", "acct_1".to_owned())));
//! ```

use serde::Deserialize;

use crate::{WebhookError, now, verify_header_at};

/// A thin event notification (`object: "v2.core.event"`): what happened,
/// on which account (`context`), and about what (`related_object`); no data.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct EventNotification {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// RFC 3339, as API v2 writes time.
    pub created: String,
    #[serde(default)]
    pub livemode: bool,
    /// The account the event happened on (`acct_…`, or a `/`-joined path of
    /// accounts); `None` for the platform's own events.
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub reason: Option<Reason>,
    #[serde(default)]
    pub related_object: Option<RelatedObject>,
}

/// Why the event happened: an API request, when `kind` is `request`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Reason {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub request: Option<ReasonRequest>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ReasonRequest {
    pub id: String,
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// What the event is about; `url` is a path on the API (`/v1/customers/…`),
/// `id` absent for singletons such as the balance.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct RelatedObject {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
}

/// A `GET` the SDKs make for a notification: send it to your API base (with
/// your key as `Authorization: Bearer`) with any HTTP client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// Path and query, e.g. `/v2/core/events/evt_…`.
    pub path: String,
    /// `Stripe-Context` (when the event has one) and `Stripe-Request-Trigger`.
    pub headers: Vec<(&'static str, String)>,
}

impl EventNotification {
    fn fetch(&self, path: String) -> FetchRequest {
        let mut headers = Vec::with_capacity(2);
        if let Some(c) = self.context.as_ref().filter(|c| !c.is_empty()) {
            headers.push(("Stripe-Context", c.clone()));
        }
        headers.push(("Stripe-Request-Trigger", format!("event={}", self.id)));
        FetchRequest { path, headers }
    }

    /// The full event (`fetch_event()`): `GET /v2/core/events/{id}` as the
    /// event's account.
    pub fn fetch_event(&self) -> FetchRequest {
        self.fetch(format!("/v2/core/events/{}", encode_segment(&self.id)))
    }

    /// The related object as it is now (`fetch_related_object()`), as the
    /// event's account; `None` when the event names none.
    pub fn fetch_related_object(&self) -> Option<FetchRequest> {
        let url = &self.related_object.as_ref()?.url;
        // The SDKs refuse anything but a path on the API base.
        (url.starts_with('/') && !url.starts_with("//")).then(|| self.fetch(url.clone()))
    }
}

/// Percent-encodes a path segment, as the SDKs encode the id.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Verifies the header against the raw body and parses a thin event
/// notification; a v1 (snapshot) event is refused, as the SDKs refuse it.
pub fn parse_event_notification(
    payload: &[u8],
    signature_header: &str,
    secret: &str,
) -> Result<EventNotification, WebhookError> {
    parse_event_notification_at(
        payload,
        signature_header,
        secret,
        crate::DEFAULT_TOLERANCE,
        now(),
    )
}

/// [`parse_event_notification`] with an explicit tolerance and "now".
pub fn parse_event_notification_at(
    payload: &[u8],
    signature_header: &str,
    secret: &str,
    tolerance: i64,
    now: i64,
) -> Result<EventNotification, WebhookError> {
    verify_header_at(payload, signature_header, secret, tolerance, now)?;
    let text = crate::utf8(payload)?;
    #[derive(Deserialize)]
    struct Kind<'a> {
        #[serde(default, borrow)]
        object: Option<std::borrow::Cow<'a, str>>,
    }
    let kind: Kind<'_> =
        serde_json::from_str(text).map_err(|e| WebhookError::InvalidPayload(e.to_string()))?;
    match kind.object.as_deref() {
        None | Some("v2.core.event") => {}
        Some("event") => {
            return Err(WebhookError::InvalidPayload(
                "a v1 event, not a thin event notification: use construct_event".into(),
            ));
        }
        Some(other) => {
            return Err(WebhookError::InvalidPayload(format!(
                "unexpected object {other:?}; a thin event notification is v2.core.event"
            )));
        }
    }
    let n: EventNotification =
        serde_json::from_str(text).map_err(|e| WebhookError::InvalidPayload(e.to_string()))?;
    // As stripe-python: a request reason names its request.
    if let Some(r) = &n.reason
        && r.kind == "request"
        && r.request.is_none()
    {
        return Err(WebhookError::InvalidPayload(
            "reason.type is request but reason.request is missing".into(),
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{construct_event_at, generate_test_header};

    const THIN: &[u8] = br#"{"id":"evt_1","object":"v2.core.event","type":"v1.customer.created","created":"2026-12-03T07:00:00.000Z","livemode":false,"context":null,"reason":{"type":"request","request":{"id":"req_1","idempotency_key":null}},"related_object":{"id":"cus_1","type":"customer","url":"/v1/customers/cus_1"}}"#;

    fn header(body: &[u8]) -> String {
        generate_test_header(body, "whsec_x", 1_700_000_000)
    }

    #[test]
    fn parses_verified_notifications_and_refuses_the_other_kind() {
        let n = parse_event_notification_at(THIN, &header(THIN), "whsec_x", 300, 1_700_000_001)
            .unwrap();
        assert_eq!(n.event_type, "v1.customer.created");
        assert_eq!(n.context, None);
        assert_eq!(
            n.reason.as_ref().unwrap().request.as_ref().unwrap().id,
            "req_1"
        );
        let fetch = n.fetch_event();
        assert_eq!(fetch.path, "/v2/core/events/evt_1");
        assert_eq!(
            fetch.headers,
            [("Stripe-Request-Trigger", "event=evt_1".to_owned())]
        );
        // Tampered, or the wrong secret: refused.
        let err = parse_event_notification_at(THIN, &header(THIN), "whsec_y", 300, 1_700_000_001);
        assert_eq!(err, Err(WebhookError::SignatureMismatch));
        // A v1 event is for construct_event, and a thin one not for it.
        let v1 = br#"{"id":"evt_2","object":"event","type":"customer.created","created":1,"livemode":false,"data":{"object":{}}}"#;
        let err = parse_event_notification_at(v1, &header(v1), "whsec_x", 300, 1_700_000_001);
        assert!(
            matches!(err, Err(WebhookError::InvalidPayload(m)) if m.contains("construct_event"))
        );
        let err = construct_event_at(THIN, &header(THIN), "whsec_x", 300, 1_700_000_001);
        assert!(
            matches!(err, Err(WebhookError::InvalidPayload(m)) if m.contains("parse_event_notification"))
        );
    }

    #[test]
    fn related_objects_are_fetched_only_as_paths() {
        let mut n = parse_event_notification_at(THIN, &header(THIN), "whsec_x", 300, 1_700_000_001)
            .unwrap();
        n.context = Some("acct_1".into());
        let fetch = n.fetch_related_object().unwrap();
        assert_eq!(fetch.path, "/v1/customers/cus_1");
        assert_eq!(fetch.headers[0], ("Stripe-Context", "acct_1".to_owned()));
        n.related_object.as_mut().unwrap().url = "https://evil.example/x".into();
        assert_eq!(n.fetch_related_object(), None);
        n.related_object = None;
        assert_eq!(n.fetch_related_object(), None);
        n.id = "evt/../x".into();
        assert_eq!(n.fetch_event().path, "/v2/core/events/evt%2F..%2Fx");
    }
}
