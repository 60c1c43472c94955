//! What the platform knows about its connected accounts, and which events it
//! has already applied. Kept in memory: a real platform keeps this in its
//! database, with the processed event ids under a unique constraint.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;
use switchboard_receiver::Payout;

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
    pub fn update_account(&mut self, account: &AccountStatus) {
        let entry = self.accounts.entry(account.id.clone()).or_default();
        entry.charges_enabled = account.charges_enabled;
        entry.payouts_enabled = account.payouts_enabled;
        entry.currently_due = account.currently_due.clone();
        entry.disabled_reason = account.disabled_reason.clone();
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

/// What the platform keeps of an account it fetched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountStatus {
    pub id: String,
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    pub currently_due: Vec<String>,
    pub disabled_reason: Option<String>,
}

impl From<&stripe_connect::Account> for AccountStatus {
    fn from(a: &stripe_connect::Account) -> Self {
        let requirements = a.requirements.as_ref();
        AccountStatus {
            id: a.id.to_string(),
            charges_enabled: a.charges_enabled.unwrap_or(false),
            payouts_enabled: a.payouts_enabled.unwrap_or(false),
            currently_due: requirements
                .and_then(|r| r.currently_due.clone())
                .unwrap_or_default(),
            disabled_reason: requirements
                .and_then(|r| r.disabled_reason.as_ref())
                .map(|d| d.as_str().to_owned()),
        }
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
