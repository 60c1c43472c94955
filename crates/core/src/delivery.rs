//! The delivery state machine: what an attempt's outcome does to its
//! delivery, its event's `pending_webhooks` and its endpoint's failure
//! streak. Pure decisions; every store backend applies them the same way.

use crate::attempt::NextAction;

/// Where a delivery stands. Stored as its [`DeliveryState::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Due at its `next_at`, or leased to a dispatcher until then.
    Pending,
    Succeeded,
    /// The retry schedule ran out (or a resend's one attempt failed).
    Failed,
    /// Its endpoint was disabled or deleted before it succeeded.
    Cancelled,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 4] = [
        DeliveryState::Pending,
        DeliveryState::Succeeded,
        DeliveryState::Failed,
        DeliveryState::Cancelled,
    ];

    /// The stored integer (small, indexed; a partial index covers `Pending`).
    pub const fn code(self) -> i16 {
        match self {
            DeliveryState::Pending => 0,
            DeliveryState::Succeeded => 1,
            DeliveryState::Failed => 2,
            DeliveryState::Cancelled => 3,
        }
    }

    pub fn from_code(code: i64) -> Option<DeliveryState> {
        Self::ALL.into_iter().find(|s| i64::from(s.code()) == code)
    }
}

/// What the dispatcher decided after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing more: delivered, or a resend's single attempt is over.
    Done,
    RetryAt(i64),
    GiveUp,
}

/// How an outcome moves its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Succeed,
    /// Stays pending, due again at this unix ms.
    Retry(i64),
    Fail,
}

impl Move {
    pub const fn state(self) -> DeliveryState {
        match self {
            Move::Succeed => DeliveryState::Succeeded,
            Move::Retry(_) => DeliveryState::Pending,
            Move::Fail => DeliveryState::Failed,
        }
    }
}

/// One attempt's consequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// What the attempt log says happens next.
    pub action: NextAction,
    pub next_at_ms: Option<i64>,
    pub to: Move,
    /// The endpoint's failure streak ends (a success) or starts (a failure,
    /// if it is not already failing).
    pub streak: Streak,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streak {
    Ends,
    Continues,
}

/// The consequences of an attempt that `succeeded` (or not), given what the
/// dispatcher decided next.
pub fn step(succeeded: bool, next: Next) -> Step {
    if succeeded {
        return Step {
            action: NextAction::Done,
            next_at_ms: None,
            to: Move::Succeed,
            streak: Streak::Ends,
        };
    }
    let (action, next_at_ms, to) = match next {
        // A failed attempt that is "done" is a resend's one shot.
        Next::Done => (NextAction::OneShot, None, Move::Fail),
        Next::RetryAt(t) => (NextAction::Retry, Some(t), Move::Retry(t)),
        Next::GiveUp => (NextAction::GiveUp, None, Move::Fail),
    };
    Step {
        action,
        next_at_ms,
        to,
        streak: Streak::Continues,
    }
}

/// Whether a delivery that moved counts towards its event's
/// `pending_webhooks`: resends (one-shot) never did.
pub const fn settles_pending(one_shot: bool, to: Move) -> bool {
    !one_shot && matches!(to, Move::Succeed)
}

/// The disable rule: when a delivery gives up, its endpoint is disabled if
/// it has been failing since at or before this unix ms (Stripe disables
/// endpoints that fail for days). Resends never disable.
pub const fn disable_cutoff(
    one_shot: bool,
    to: Move,
    now_ms: i64,
    disable_after_ms: i64,
) -> Option<i64> {
    match (one_shot, to) {
        (false, Move::Fail) => Some(now_ms - disable_after_ms),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for s in DeliveryState::ALL {
            assert_eq!(DeliveryState::from_code(s.code().into()), Some(s));
        }
        assert_eq!(DeliveryState::from_code(9), None);
    }

    #[test]
    fn a_success_ends_the_streak_whatever_was_planned() {
        for next in [Next::Done, Next::RetryAt(5), Next::GiveUp] {
            let s = step(true, next);
            assert_eq!(
                (s.action, s.to, s.streak),
                (NextAction::Done, Move::Succeed, Streak::Ends)
            );
        }
    }

    #[test]
    fn failures_retry_give_up_or_end_a_one_shot() {
        assert_eq!(step(false, Next::RetryAt(7)).to, Move::Retry(7));
        assert_eq!(step(false, Next::RetryAt(7)).next_at_ms, Some(7));
        assert_eq!(step(false, Next::GiveUp).action, NextAction::GiveUp);
        assert_eq!(step(false, Next::Done).action, NextAction::OneShot);
        assert_eq!(step(false, Next::Done).to, Move::Fail);
    }

    #[test]
    fn only_regular_deliveries_settle_and_disable() {
        assert!(settles_pending(false, Move::Succeed));
        assert!(!settles_pending(true, Move::Succeed));
        assert!(!settles_pending(false, Move::Fail));
        assert_eq!(disable_cutoff(false, Move::Fail, 100, 30), Some(70));
        assert_eq!(disable_cutoff(true, Move::Fail, 100, 30), None);
        assert_eq!(disable_cutoff(false, Move::Retry(5), 100, 30), None);
    }
}
