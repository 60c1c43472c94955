//! Stripe-style identifiers: a prefix, an underscore, and base62 characters.

use rand::Rng;
use rand::distr::Alphanumeric;

pub const EVENT: &str = "evt";
pub const WEBHOOK_ENDPOINT: &str = "we";
pub const WEBHOOK_SECRET: &str = "whsec";
pub const ACCOUNT: &str = "acct";
pub const APPLICATION: &str = "ca";
pub const CUSTOMER: &str = "cus";
pub const REQUEST: &str = "req";
pub const SECRET_KEY_TEST: &str = "sk_test";
pub const SECRET_KEY_LIVE: &str = "sk_live";

/// Length of the random tail of object ids (≈143 bits of entropy).
const ID_TAIL: usize = 24;
/// Length of secrets' random tail (`whsec_…`, `sk_…`).
const SECRET_TAIL: usize = 32;
/// Stripe's request ids are shorter (`req_jqtL1Q6CPaNx8x`).
const REQUEST_TAIL: usize = 14;

fn tail(rng: &mut impl Rng, len: usize) -> String {
    rng.sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A new object id such as `evt_1a2B…`.
pub fn generate(prefix: &str, rng: &mut impl Rng) -> String {
    format!("{prefix}_{}", tail(rng, ID_TAIL))
}

/// A new secret such as `whsec_…` or `sk_test_…`.
pub fn generate_secret(prefix: &str, rng: &mut impl Rng) -> String {
    format!("{prefix}_{}", tail(rng, SECRET_TAIL))
}

pub fn generate_request_id(rng: &mut impl Rng) -> String {
    format!("{REQUEST}_{}", tail(rng, REQUEST_TAIL))
}

/// Whether `id` looks like an id of the given prefix (`prefix_` + something).
pub fn has_prefix(id: &str, prefix: &str) -> bool {
    id.len() > prefix.len() + 1 && id.starts_with(prefix) && id.as_bytes()[prefix.len()] == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn ids_have_prefix_and_base62_tail() {
        let mut rng = StdRng::seed_from_u64(7);
        let id = generate(EVENT, &mut rng);
        assert!(has_prefix(&id, EVENT));
        assert_eq!(id.len(), 4 + ID_TAIL);
        assert!(id[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(id, generate(EVENT, &mut rng));
    }

    #[test]
    fn prefix_check_requires_underscore_and_tail() {
        assert!(has_prefix("we_123", "we"));
        assert!(!has_prefix("we_", "we"));
        assert!(!has_prefix("wex_123", "we"));
        assert!(!has_prefix("evt_123", "we"));
    }
}
