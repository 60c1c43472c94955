//! Which webhook endpoints receive an event.
//!
//! Account endpoints (`connect=false`) receive the platform's own events, in
//! their own mode. Connect endpoints receive events of connected accounts
//! (those that carry `account`): a test endpoint only test events, a live one
//! both live and test events, as Stripe sends to "production" URLs.
//! Listeners (`stripe listen` sessions) receive both kinds, in their own mode.

/// Whose events an endpoint wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// An account endpoint: the platform's own events.
    Platform,
    /// A Connect endpoint: events of every connected account.
    Connect,
    /// A `stripe listen` session: both.
    Listener,
    /// An event destination from `@self` and `@accounts`: both, each by
    /// its own rule (the platform's in its mode; connected accounts' as a
    /// Connect endpoint gets them).
    Everyone,
}

/// The parts of a webhook endpoint routing looks at.
#[derive(Debug, Clone, Copy)]
pub struct EndpointRoute<'a> {
    pub livemode: bool,
    pub audience: Audience,
    pub enabled: bool,
    pub enabled_events: &'a [String],
}

/// The parts of an event routing looks at.
#[derive(Debug, Clone, Copy)]
pub struct EventRoute<'a> {
    pub livemode: bool,
    /// The connected account the event happened on; `None` for the platform's own.
    pub account: Option<&'a str>,
    pub event_type: &'a str,
}

pub fn receives(endpoint: &EndpointRoute<'_>, event: &EventRoute<'_>) -> bool {
    endpoint.enabled
        && subscribes(endpoint.enabled_events, event.event_type)
        && mode_and_origin_match(endpoint, event)
}

fn subscribes(enabled_events: &[String], event_type: &str) -> bool {
    enabled_events.iter().any(|e| e == "*" || e == event_type)
}

fn mode_and_origin_match(endpoint: &EndpointRoute<'_>, event: &EventRoute<'_>) -> bool {
    match (event.account.is_some(), endpoint.audience) {
        (false, Audience::Platform) => endpoint.livemode == event.livemode,
        (true, Audience::Connect) => endpoint.livemode || !event.livemode,
        (_, Audience::Listener) => endpoint.livemode == event.livemode,
        (false, Audience::Everyone) => endpoint.livemode == event.livemode,
        (true, Audience::Everyone) => endpoint.livemode || !event.livemode,
        (false, Audience::Connect) | (true, Audience::Platform) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(livemode: bool, connect: bool, events: &[String]) -> EndpointRoute<'_> {
        let audience = if connect {
            Audience::Connect
        } else {
            Audience::Platform
        };
        EndpointRoute {
            livemode,
            audience,
            enabled: true,
            enabled_events: events,
        }
    }

    fn event(livemode: bool, account: Option<&str>) -> EventRoute<'_> {
        EventRoute {
            livemode,
            account,
            event_type: "customer.created",
        }
    }

    #[test]
    fn routing_matrix() {
        let all = vec!["*".to_string()];
        let acct = Some("acct_1");
        // (endpoint live, endpoint connect, event live, event on connected account) -> receives
        let table = [
            (false, false, false, false, true),
            (false, false, true, false, false),
            (true, false, true, false, true),
            (true, false, false, false, false),
            (false, false, false, true, false),
            (true, false, true, true, false),
            (false, true, false, false, false),
            (true, true, true, false, false),
            (false, true, false, true, true),
            (false, true, true, true, false),
            (true, true, true, true, true),
            (true, true, false, true, true),
        ];
        for (el, ec, vl, va, want) in table {
            let got = receives(
                &endpoint(el, ec, &all),
                &event(vl, if va { acct } else { None }),
            );
            assert_eq!(
                got, want,
                "endpoint live={el} connect={ec}, event live={vl} connected={va}"
            );
        }
    }

    #[test]
    fn listeners_hear_platform_and_connected_events_of_their_mode() {
        let all = vec!["*".to_string()];
        let listener = |livemode| EndpointRoute {
            livemode,
            audience: Audience::Listener,
            enabled: true,
            enabled_events: &all,
        };
        assert!(receives(&listener(false), &event(false, None)));
        assert!(receives(&listener(false), &event(false, Some("acct_1"))));
        assert!(!receives(&listener(false), &event(true, None)));
        assert!(!receives(&listener(true), &event(false, Some("acct_1"))));
    }

    #[test]
    fn destinations_from_self_and_accounts_hear_both_by_their_own_rules() {
        let all = vec!["*".to_string()];
        let both = |livemode| EndpointRoute {
            livemode,
            audience: Audience::Everyone,
            enabled: true,
            enabled_events: &all,
        };
        assert!(receives(&both(false), &event(false, None)));
        assert!(receives(&both(false), &event(false, Some("acct_1"))));
        assert!(!receives(&both(false), &event(true, None)));
        assert!(
            !receives(&both(true), &event(false, None)),
            "own events: own mode"
        );
        assert!(
            receives(&both(true), &event(false, Some("acct_1"))),
            "live Connect hears test"
        );
        assert!(!receives(&both(false), &event(true, Some("acct_1"))));
    }

    #[test]
    fn enabled_events_and_status_filter() {
        let some = vec![
            "customer.updated".to_string(),
            "customer.created".to_string(),
        ];
        let other = vec!["payout.failed".to_string()];
        assert!(receives(
            &endpoint(false, false, &some),
            &event(false, None)
        ));
        assert!(!receives(
            &endpoint(false, false, &other),
            &event(false, None)
        ));
        let mut disabled = endpoint(false, false, &some);
        disabled.enabled = false;
        assert!(!receives(&disabled, &event(false, None)));
    }
}
