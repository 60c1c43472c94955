//! [`WebhookSecrets`]: one or more signing secrets and how to check with them.

use std::fmt;
use std::sync::Arc;

use crate::{DEFAULT_TOLERANCE, Event, WebhookError};

/// The `whsec_…` secrets a receiver accepts, with the tolerance and body limit
/// to check with. A header verifies if **any** secret signed it: keep the old
/// and the new secret while an endpoint's secret is rolled, or list the
/// secrets of several endpoints that deliver to the same URL.
///
/// Cheap to clone (the secrets are shared), and its `Debug` never shows them.
///
/// ```
/// use switchboard_receiver::{WebhookSecrets, generate_test_header};
/// let secrets = WebhookSecrets::parse_list("whsec_new, whsec_old");
/// let body = br#"{"id":"evt_1","type":"payout.paid","created":1,"livemode":false,"data":{"object":{}}}"#;
/// let header = generate_test_header(body, "whsec_old", 1_700_000_000);
/// let event = secrets.construct_event_at(body, &header, 1_700_000_001).unwrap();
/// assert_eq!(event.id, "evt_1");
/// assert_eq!(format!("{secrets:?}"), "WebhookSecrets { secrets: 2, tolerance: 300, body_limit: 1048576 }");
/// ```
#[derive(Clone)]
pub struct WebhookSecrets {
    secrets: Arc<[String]>,
    /// HMAC state keyed with each secret, prepared once.
    keys: Arc<[crate::Key]>,
    tolerance: i64,
    body_limit: usize,
}

impl WebhookSecrets {
    /// The largest body the axum extractor reads by default: 1 MiB. Stripe's
    /// events are far smaller.
    pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

    /// The given secrets (blank ones are ignored), [`DEFAULT_TOLERANCE`] and
    /// [`Self::DEFAULT_BODY_LIMIT`].
    pub fn new<I>(secrets: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let secrets: Arc<[String]> = secrets
            .into_iter()
            .map(Into::into)
            .filter(|s: &String| !s.trim().is_empty())
            .collect();
        WebhookSecrets {
            keys: secrets.iter().map(|s| crate::Key::new(s)).collect(),
            secrets,
            tolerance: DEFAULT_TOLERANCE,
            body_limit: Self::DEFAULT_BODY_LIMIT,
        }
    }

    /// Secrets from a comma-separated list such as an environment variable
    /// (`whsec_a,whsec_b`); whitespace around each is trimmed.
    pub fn parse_list(list: &str) -> Self {
        Self::new(list.split(',').map(str::trim))
    }

    /// The maximum age of a signature, in seconds; `<= 0` disables the check.
    pub fn with_tolerance(mut self, seconds: i64) -> Self {
        self.tolerance = seconds;
        self
    }

    /// The largest request body the axum extractor reads, in bytes.
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    pub fn tolerance(&self) -> i64 {
        self.tolerance
    }

    pub fn body_limit(&self) -> usize {
        self.body_limit
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    /// Checks the header at `now` (unix seconds) against every secret.
    /// Without secrets this is [`WebhookError::MissingSecret`].
    pub fn verify_at(&self, payload: &[u8], header: &str, now: i64) -> Result<(), WebhookError> {
        crate::verify_keys_at(payload, header, &self.keys, self.tolerance, now)
    }

    /// [`Self::verify_at`] now, then parses the event.
    pub fn construct_event(&self, payload: &[u8], header: &str) -> Result<Event, WebhookError> {
        self.construct_event_at(payload, header, crate::now())
    }

    /// [`Self::verify_at`], then parses the event.
    pub fn construct_event_at(
        &self,
        payload: &[u8],
        header: &str,
        now: i64,
    ) -> Result<Event, WebhookError> {
        self.verify_at(payload, header, now)?;
        crate::parse_event(payload)
    }
}

impl PartialEq for WebhookSecrets {
    fn eq(&self, other: &Self) -> bool {
        self.secrets == other.secrets
            && self.tolerance == other.tolerance
            && self.body_limit == other.body_limit
    }
}

impl Eq for WebhookSecrets {}

impl fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSecrets")
            .field("secrets", &self.secrets.len())
            .field("tolerance", &self.tolerance)
            .field("body_limit", &self.body_limit)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate_test_header;

    const BODY: &[u8] =
        br#"{"id":"evt_1","type":"payout.paid","created":1,"livemode":false,"data":{"object":{}}}"#;

    #[test]
    fn any_secret_may_sign() {
        let s = WebhookSecrets::parse_list(" whsec_a ,, whsec_b,");
        assert_eq!(s.len(), 2);
        for secret in ["whsec_a", "whsec_b"] {
            let h = generate_test_header(BODY, secret, 100);
            assert_eq!(s.verify_at(BODY, &h, 100), Ok(()));
        }
        let h = generate_test_header(BODY, "whsec_c", 100);
        assert_eq!(
            s.verify_at(BODY, &h, 100),
            Err(WebhookError::SignatureMismatch)
        );
    }

    #[test]
    fn tolerance_and_empty_lists() {
        let s = WebhookSecrets::new(["whsec_a"]).with_tolerance(10);
        let h = generate_test_header(BODY, "whsec_a", 100);
        assert_eq!(
            s.verify_at(BODY, &h, 111),
            Err(WebhookError::TimestampOutsideTolerance(100))
        );
        assert_eq!(
            s.clone().with_tolerance(0).verify_at(BODY, &h, 10_000),
            Ok(())
        );
        let none = WebhookSecrets::parse_list(" , ");
        assert!(none.is_empty());
        assert_eq!(
            none.verify_at(BODY, &h, 100),
            Err(WebhookError::MissingSecret)
        );
    }
}
