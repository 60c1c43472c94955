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

/// The API v2 event types Switchboard emits (thin only, with Accounts v2;
/// the `V2Core*EventNotification` classes of stripe-python 16.1.0).
pub const V2_EVENT_TYPES: &[&str] = &[
    "v2.core.account.created",
    "v2.core.account.updated",
    "v2.core.account.closed",
    "v2.core.account[requirements].updated",
    "v2.core.account[future_requirements].updated",
    "v2.core.account[identity].updated",
    "v2.core.account[defaults].updated",
    "v2.core.account[configuration.customer].updated",
    "v2.core.account[configuration.merchant].updated",
    "v2.core.account[configuration.recipient].updated",
    "v2.core.account[configuration.customer].capability_status_updated",
    "v2.core.account[configuration.merchant].capability_status_updated",
    "v2.core.account[configuration.recipient].capability_status_updated",
    "v2.core.account_person.created",
    "v2.core.account_person.updated",
    "v2.core.account_person.deleted",
    "v2.core.account_link.returned",
];

/// The event `POST /v2/core/event_destinations/{id}/ping` sends to that
/// destination alone: not enableable, so it routes nowhere else.
pub const PING_EVENT_TYPE: &str = "v2.core.event_destination.ping";

/// A thin event type: `v1.<type>` of a v1 event, or a v2 event type.
pub fn is_thin_event_type(name: &str) -> bool {
    match name.strip_prefix("v1.") {
        Some(v1) => is_event_type(v1),
        None => V2_EVENT_TYPES.contains(&name),
    }
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
