//! Verify `Stripe-Signature` headers and parse webhook events, with the
//! semantics of the official SDKs' `construct_event`:
//!
//! - the signed payload is `"{t}.{raw body}"`, HMAC-SHA256 keyed by the whole
//!   `whsec_…` string, lowercase hex;
//! - any `v1` entry may match (several appear while a secret is rolled);
//! - the signature is checked before the timestamp; only timestamps older
//!   than the tolerance (300 s by default) are rejected, future ones pass;
//! - comparison is constant-time.
//!
//! ```
//! use switchboard_receiver::{construct_event_at, generate_test_header};
//! let body = br#"{"id": "evt_1", "object": "event", "type": "customer.created", "created": 1, "livemode": false, "data": {"object": {}}}"#;
//! let header = generate_test_header(body, "whsec_x", 1_700_000_000);
//! let event = construct_event_at(body, &header, "whsec_x", 300, 1_700_000_010).unwrap();
//! assert_eq!(event.event_type, "customer.created");
//! ```

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The SDKs' default tolerance, in seconds.
pub const DEFAULT_TOLERANCE: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    #[error("No Stripe-Signature header value was provided.")]
    MissingHeader,
    #[error("No webhook secret value was provided. It should start with `whsec_`")]
    MissingSecret,
    #[error("Unable to extract timestamp and signatures from header")]
    MalformedHeader,
    #[error("No signatures found with expected scheme v1")]
    NoSignatures,
    #[error(
        "No signatures found matching the expected signature for payload. Are you passing the raw request body you received?"
    )]
    SignatureMismatch,
    #[error("Timestamp outside the tolerance zone ({0})")]
    TimestampOutsideTolerance(i64),
    #[error("The payload is not a valid event: {0}")]
    InvalidPayload(String),
}

/// A webhook event (the v1 "snapshot" event).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The connected account the event happened on (Connect events only).
    #[serde(default)]
    pub account: Option<String>,
    pub livemode: bool,
    pub created: i64,
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub pending_webhooks: Option<i64>,
    pub data: EventData,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct EventData {
    pub object: serde_json::Value,
    #[serde(default)]
    pub previous_attributes: Option<serde_json::Value>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Verifies the header against the raw body and parses the event.
pub fn construct_event(
    payload: &[u8],
    signature_header: &str,
    secret: &str,
) -> Result<Event, WebhookError> {
    construct_event_at(payload, signature_header, secret, DEFAULT_TOLERANCE, now())
}

/// [`construct_event`] with an explicit tolerance and "now" (unix seconds).
pub fn construct_event_at(
    payload: &[u8],
    signature_header: &str,
    secret: &str,
    tolerance: i64,
    now: i64,
) -> Result<Event, WebhookError> {
    verify_header_at(payload, signature_header, secret, tolerance, now)?;
    serde_json::from_slice(payload).map_err(|e| WebhookError::InvalidPayload(e.to_string()))
}

/// Checks a `Stripe-Signature` header; `tolerance <= 0` disables the age check.
pub fn verify_header_at(
    payload: &[u8],
    header: &str,
    secret: &str,
    tolerance: i64,
    now: i64,
) -> Result<(), WebhookError> {
    if header.is_empty() {
        return Err(WebhookError::MissingHeader);
    }
    if secret.trim().is_empty() {
        return Err(WebhookError::MissingSecret);
    }
    let parsed = parse_header(header)?;
    let expected = sign(secret, parsed.timestamp, payload);
    let matched = parsed
        .v1
        .iter()
        .any(|candidate| candidate.as_bytes().ct_eq(expected.as_bytes()).into());
    if !matched {
        return Err(WebhookError::SignatureMismatch);
    }
    if tolerance > 0 && parsed.timestamp < now - tolerance {
        return Err(WebhookError::TimestampOutsideTolerance(parsed.timestamp));
    }
    Ok(())
}

/// A parsed `Stripe-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader<'a> {
    pub timestamp: i64,
    pub v1: Vec<&'a str>,
}

/// Splits `t=…,v1=…[,v1=…]` exactly as stripe-python does: on `,` then the
/// first `=`, no whitespace trimming, the first `t` wins.
pub fn parse_header(header: &str) -> Result<SignatureHeader<'_>, WebhookError> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for item in header.split(',') {
        let Some((k, v)) = item.split_once('=') else {
            continue;
        };
        match k {
            "t" if timestamp.is_none() => {
                timestamp = Some(
                    v.parse::<i64>()
                        .map_err(|_| WebhookError::MalformedHeader)?,
                )
            }
            "v1" => v1.push(v),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(WebhookError::MalformedHeader)?;
    if v1.is_empty() {
        return Err(WebhookError::NoSignatures);
    }
    Ok(SignatureHeader { timestamp, v1 })
}

fn sign(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    hex::encode(mac.finalize().into_bytes())
}

/// A valid header for `payload` at `timestamp`, for tests of your handler.
pub fn generate_test_header(payload: &[u8], secret: &str, timestamp: i64) -> String {
    format!("t={timestamp},v1={}", sign(secret, timestamp, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"{\n  \"id\": \"evt_test_webhook\",\n  \"object\": \"event\"\n}";
    const SIG: &str = "4f1cd7feda9826e746b7d482c4badebb657398df1099e1046364f6196a230150";

    #[test]
    fn accepts_the_spec_vector() {
        let h = format!("t=1700000000,v1={SIG}");
        assert_eq!(
            verify_header_at(BODY, &h, "whsec_test_secret", 300, 1_700_000_100),
            Ok(())
        );
        assert_eq!(
            generate_test_header(BODY, "whsec_test_secret", 1_700_000_000),
            h
        );
    }

    #[test]
    fn rejects_like_the_sdks() {
        let secret = "whsec_test_secret";
        let check = |h: &str, now| verify_header_at(BODY, h, secret, 300, now);
        assert_eq!(check("", 0), Err(WebhookError::MissingHeader));
        assert_eq!(check("v1=abc", 0), Err(WebhookError::MalformedHeader));
        assert_eq!(check("t=abc,v1=abc", 0), Err(WebhookError::MalformedHeader));
        assert_eq!(check("t=1700000000", 0), Err(WebhookError::NoSignatures));
        assert_eq!(
            check("t=1700000000,v1=deadbeef", 1_700_000_000),
            Err(WebhookError::SignatureMismatch)
        );
        // Uppercase hex and a space after the comma both fail, as in both SDKs.
        assert!(
            check(
                &format!("t=1700000000,v1={}", SIG.to_uppercase()),
                1_700_000_000
            )
            .is_err()
        );
        assert!(check(&format!("t=1700000000, v1={SIG}"), 1_700_000_000).is_err());
        assert_eq!(
            check(&format!("t=1700000000,v1={SIG}"), 1_700_000_301),
            Err(WebhookError::TimestampOutsideTolerance(1_700_000_000))
        );
        // Future timestamps are accepted; any matching v1 is enough.
        assert_eq!(
            check(&format!("t=1700000000,v1=00,v1={SIG}"), 1_600_000_000),
            Ok(())
        );
        assert_eq!(
            verify_header_at(BODY, &format!("t=1700000000,v1={SIG}"), " ", 300, 0),
            Err(WebhookError::MissingSecret)
        );
    }

    #[test]
    fn parses_events_with_and_without_account() {
        let body = br#"{"id":"evt_1","object":"event","account":"acct_1","type":"payout.failed","created":5,"livemode":true,"data":{"object":{"id":"po_1"},"previous_attributes":{"status":"paid"}}}"#;
        let h = generate_test_header(body, "whsec_a", 10);
        let e = construct_event_at(body, &h, "whsec_a", 300, 10).unwrap();
        assert_eq!(e.account.as_deref(), Some("acct_1"));
        assert_eq!(e.data.object["id"], "po_1");
        assert_eq!(e.data.previous_attributes.unwrap()["status"], "paid");
        let bad = b"not json";
        let h = generate_test_header(bad, "whsec_a", 10);
        assert!(matches!(
            construct_event_at(bad, &h, "whsec_a", 300, 10),
            Err(WebhookError::InvalidPayload(_))
        ));
    }
}
