//! Stripe-style identifiers: a prefix, an underscore, and base62 characters.

use rand::Rng;
use rand::distr::Alphanumeric;

/// Declares the id kinds: each a variant of [`Prefix`] with its prefix, so
/// no id is ever made from a string literal and a typo cannot compile.
macro_rules! prefixes {
    ($($(#[$doc:meta])* $variant:ident = $prefix:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Prefix {
            $($(#[$doc])* $variant,)*
        }

        impl Prefix {
            pub const ALL: &'static [Prefix] = &[$(Prefix::$variant,)*];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Prefix::$variant => $prefix,)*
                }
            }
        }
    };
}

prefixes! {
    Account = "acct",
    /// A Connect embedded components session (its client secret's stem).
    AccountSession = "accs",
    /// A Standard account's OAuth authorization code.
    AuthorizationCode = "ac",
    /// A platform's Connect application (`ca_…`).
    Application = "ca",
    ApplicationFee = "fee",
    BalanceTransaction = "txn",
    BankAccount = "ba",
    Card = "card",
    /// A customer's cash balance transaction.
    CashBalanceTransaction = "ccsbtxn",
    Charge = "ch",
    Customer = "cus",
    Dispute = "du",
    Event = "evt",
    FeeRefund = "fr",
    /// A mandate (SEPA Debit and other bank debits).
    Mandate = "mandate",
    /// What a connected account receives for a transfer (a charge object).
    Payment = "py",
    /// A connected account's refund of a transfer's payment.
    PaymentRefund = "pyr",
    PaymentIntent = "pi",
    PaymentMethod = "pm",
    Payout = "po",
    Person = "person",
    Refund = "re",
    SetupIntent = "seti",
    SetupAttempt = "setatt",
    Topup = "tu",
    Transfer = "tr",
    TransferReversal = "trr",
    WebhookEndpoint = "we",
    /// An API v2 event destination.
    EventDestination = "ed",
    /// The id of one event sent to a `stripe listen` session.
    ListenWebhook = "wh",
    /// One running Switchboard process (names its claims and listener holds).
    Node = "node",
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Prefixes of secrets and of ids that are not objects.
pub const WEBHOOK_SECRET: &str = "whsec";
pub const REQUEST: &str = "req";
pub const SECRET_KEY_TEST: &str = "sk_test";
pub const SECRET_KEY_LIVE: &str = "sk_live";
/// A `stripe listen` WebSocket session.
pub const WEBSOCKET: &str = "wsid";

/// How a live secret key is kept at rest: `sha256:<hex digest>:<last four>`,
/// never the key itself. Looking a key up hashes the presented key the same
/// way and compares digests, so the comparison never depends on how much of
/// a secret matches; the last four are what a person recognises a key by
/// (as in Stripe's Dashboard).
pub fn live_key_at_rest(key: &str) -> String {
    use sha2::Digest as _;
    if is_at_rest(key) {
        return key.to_owned();
    }
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!(
        "sha256:{}:{tail}",
        hex::encode(sha2::Sha256::digest(key.as_bytes()))
    )
}

/// Whether `stored` is a key at rest ([`live_key_at_rest`]), not a key.
pub fn is_at_rest(stored: &str) -> bool {
    stored.starts_with("sha256:")
}

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
pub fn generate(prefix: Prefix, rng: &mut impl Rng) -> String {
    format!("{prefix}_{}", tail(rng, ID_TAIL))
}

/// A new secret such as `whsec_…` or `sk_test_…`.
pub fn generate_secret(prefix: &str, rng: &mut impl Rng) -> String {
    format!("{prefix}_{}", tail(rng, SECRET_TAIL))
}

pub fn generate_request_id(rng: &mut impl Rng) -> String {
    format!("{REQUEST}_{}", tail(rng, REQUEST_TAIL))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_keys_are_kept_as_digests() {
        let stored = live_key_at_rest("sk_live_abcdefghijklmnop1234");
        assert!(
            stored.starts_with("sha256:") && stored.ends_with(":1234"),
            "{stored}"
        );
        assert!(!stored.contains("abcdefgh"));
        // A stored key written again stays as it is (stores never hash twice);
        // stores refuse a digest presented as a key (`is_at_rest`).
        assert_eq!(live_key_at_rest(&stored), stored);
        assert!(is_at_rest(&stored) && !is_at_rest("sk_live_abc"));
        assert_ne!(live_key_at_rest("sk_live_abcdefghijklmnop1235"), stored);
    }
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn ids_have_prefix_and_base62_tail() {
        let mut rng = StdRng::seed_from_u64(7);
        let id = generate(Prefix::Event, &mut rng);
        assert!(id.starts_with("evt_"));
        assert_eq!(id.len(), 4 + ID_TAIL);
        assert!(id[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(id, generate(Prefix::Event, &mut rng));
    }

    #[test]
    fn prefixes_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for p in Prefix::ALL {
            assert!(seen.insert(p.as_str()), "{p:?} repeats a prefix");
        }
    }
}
