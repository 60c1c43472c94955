//! What the platform knows about its connected accounts, and which events it
//! has already applied. Kept in memory: a real platform keeps this in its
//! database, with the processed event ids under a unique constraint.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;
use switchboard_receiver::{Account, Payout};

/// The platform's view of one connected account.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AccountState {
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    /// What the account must provide now (`requirements.currently_due`).
    pub currently_due: Vec<String>,
    pub disabled_reason: Option<String>,
    /// Set by `payout.failed`: the account's payouts need attention.
    pub payout_failed: bool,
    pub last_failed_payout: Option<FailedPayout>,
}

/// The last payout that failed, and where it was going.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedPayout {
    pub payout: String,
    /// The external account (`ba_…` or `card_…`) that refused it.
    pub destination: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
}

/// Where an event stands with respect to duplicates.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// Not seen before: apply it, then [`PlatformState::finish`] (or
    /// [`PlatformState::abandon`] if it could not be applied).
    New,
    /// Already applied: acknowledge without applying again.
    Duplicate,
    /// Another delivery of it is being applied right now.
    InFlight,
}

#[derive(Debug, Default)]
pub struct PlatformState {
    accounts: BTreeMap<String, AccountState>,
    /// Accounts that disconnected from the platform; late events about them
    /// are acknowledged and ignored until they authorize the platform again.
    deauthorized: BTreeSet<String>,
    processed: HashSet<String>,
    in_flight: HashSet<String>,
    /// Events of the other mode (live vs test), acknowledged and ignored.
    ignored_other_mode: u64,
}

/// `GET /state`.
#[derive(Debug, Serialize)]
pub struct Snapshot<'a> {
    pub accounts: &'a BTreeMap<String, AccountState>,
    pub deauthorized: &'a BTreeSet<String>,
    pub processed_events: usize,
    pub ignored_other_mode: u64,
}

impl PlatformState {
    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            accounts: &self.accounts,
            deauthorized: &self.deauthorized,
            processed_events: self.processed.len(),
            ignored_other_mode: self.ignored_other_mode,
        }
    }

    pub fn claim(&mut self, event_id: &str) -> Claim {
        if self.processed.contains(event_id) {
            Claim::Duplicate
        } else if !self.in_flight.insert(event_id.to_owned()) {
            Claim::InFlight
        } else {
            Claim::New
        }
    }

    pub fn finish(&mut self, event_id: &str) {
        self.in_flight.remove(event_id);
        self.processed.insert(event_id.to_owned());
    }

    pub fn abandon(&mut self, event_id: &str) {
        self.in_flight.remove(event_id);
    }

    pub fn ignore_other_mode(&mut self) {
        self.ignored_other_mode += 1;
    }

    pub fn is_deauthorized(&self, account: &str) -> bool {
        self.deauthorized.contains(account)
    }

    /// `account.application.authorized`: the account (re)connected.
    pub fn authorize(&mut self, account: &str) {
        self.deauthorized.remove(account);
    }

    /// `account.application.deauthorized`: forget the account.
    pub fn deauthorize(&mut self, account: &str) {
        self.accounts.remove(account);
        self.deauthorized.insert(account.to_owned());
    }

    /// `account.updated`, with the account as just fetched from the API.
    pub fn update_account(&mut self, account: &Account) {
        let entry = self.accounts.entry(account.id.clone()).or_default();
        entry.charges_enabled = account.charges_enabled;
        entry.payouts_enabled = account.payouts_enabled;
        let requirements = account.requirements.clone().unwrap_or_default();
        entry.currently_due = requirements.currently_due;
        entry.disabled_reason = requirements.disabled_reason;
    }

    /// `payout.failed` on `account`.
    pub fn payout_failed(&mut self, account: &str, payout: &Payout) {
        let entry = self.accounts.entry(account.to_owned()).or_default();
        entry.payout_failed = true;
        entry.last_failed_payout = Some(FailedPayout {
            payout: payout.id.clone(),
            destination: payout.destination.clone(),
            failure_code: payout.failure_code.clone(),
            failure_message: payout.failure_message.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_dedupe_and_release() {
        let mut s = PlatformState::default();
        assert_eq!(s.claim("evt_1"), Claim::New);
        assert_eq!(s.claim("evt_1"), Claim::InFlight);
        s.abandon("evt_1");
        assert_eq!(s.claim("evt_1"), Claim::New);
        s.finish("evt_1");
        assert_eq!(s.claim("evt_1"), Claim::Duplicate);
        assert_eq!(s.snapshot().processed_events, 1);
    }
}
