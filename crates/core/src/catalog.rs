//! The catalogue of event types (`enabled_events` enum of stripe-python 16.1.0).

use std::collections::HashSet;
use std::sync::OnceLock;

const EVENT_TYPES: &str = include_str!("event_types.txt");

/// Every known event type, without the `*` wildcard.
pub fn event_types() -> impl Iterator<Item = &'static str> {
    EVENT_TYPES
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "*")
}

fn set() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| event_types().collect())
}

/// Whether `name` may appear in `enabled_events` (a known type or `*`).
pub fn is_enableable(name: &str) -> bool {
    name == "*" || set().contains(name)
}

pub fn is_event_type(name: &str) -> bool {
    set().contains(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_has_connect_events_and_wildcard() {
        assert_eq!(event_types().count(), 275);
        for t in [
            "account.updated",
            "account.application.deauthorized",
            "account.external_account.updated",
            "balance.available",
            "payment_intent.succeeded",
            "payout.failed",
            "person.updated",
            "customer.created",
        ] {
            assert!(is_event_type(t), "{t}");
        }
        assert!(is_enableable("*"));
        assert!(!is_event_type("*"));
        assert!(!is_enableable("customer.exploded"));
    }
}
