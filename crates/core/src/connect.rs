//! Connect rules as pure functions: what an account still has to provide, and
//! what Stripe's test-mode magic values (cards, bank account numbers, tokens) do.

use serde_json::Value;

/// Fields a Custom or Express account must provide before charges and
/// payouts are enabled (a simplified version of Stripe's US requirements).
pub fn currently_due(account: &Value, persons: &[Value], external_accounts: usize) -> Vec<String> {
    if account["type"] == "standard" {
        // Stripe collects a Standard account's requirements itself.
        return Vec::new();
    }
    let mut due = Vec::new();
    let missing = |v: &Value| v.is_null() || v.as_str() == Some("");
    if missing(&account["business_type"]) {
        due.push("business_type".to_owned());
    }
    for f in ["date", "ip"] {
        if missing(&account["tos_acceptance"][f]) {
            due.push(format!("tos_acceptance.{f}"));
        }
    }
    if external_accounts == 0 {
        due.push("external_account".to_owned());
    }
    match account["business_type"].as_str() {
        Some("individual") => {
            for f in ["first_name", "last_name"] {
                if missing(&account["individual"][f]) {
                    due.push(format!("individual.{f}"));
                }
            }
            for f in ["day", "month", "year"] {
                if account["individual"]["dob"][f].is_null() {
                    due.push(format!("individual.dob.{f}"));
                }
            }
        }
        Some("company") => {
            if missing(&account["company"]["name"]) {
                due.push("company.name".to_owned());
            }
            let representative = persons
                .iter()
                .find(|p| p["relationship"]["representative"] == true);
            match representative {
                None => due.extend(
                    ["representative.first_name", "representative.last_name"].map(String::from),
                ),
                Some(p) => {
                    for f in ["first_name", "last_name"] {
                        if missing(&p[f]) {
                            due.push(format!("representative.{f}"));
                        }
                    }
                }
            }
        }
        _ => {}
    }
    due
}

/// What charging a test payment method does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardOutcome {
    /// The charge succeeds; `available` funds skip the pending balance.
    Succeeds { available: bool },
    /// The card is declined.
    Declined {
        decline_code: &'static str,
        message: &'static str,
    },
}

/// Test payment methods (`pm_card_*`, `tok_*`, raw test card numbers).
/// `None` for values that are not a known test payment method.
pub fn card_outcome(payment_method: &str) -> Option<CardOutcome> {
    const DECLINED: CardOutcome = CardOutcome::Declined {
        decline_code: "generic_decline",
        message: "Your card was declined.",
    };
    const NO_FUNDS: CardOutcome = CardOutcome::Declined {
        decline_code: "insufficient_funds",
        message: "Your card has insufficient funds.",
    };
    Some(match payment_method {
        "pm_card_bypassPending" | "tok_bypassPending" | "4000000000000077" => {
            CardOutcome::Succeeds { available: true }
        }
        "pm_card_visa" | "pm_card_mastercard" | "pm_card_amex" | "pm_card_us" | "tok_visa"
        | "tok_mastercard" | "4242424242424242" | "5555555555554444" => {
            CardOutcome::Succeeds { available: false }
        }
        "pm_card_chargeDeclined"
        | "pm_card_visa_chargeDeclined"
        | "tok_chargeDeclined"
        | "4000000000000002" => DECLINED,
        "pm_card_chargeDeclinedInsufficientFunds"
        | "tok_chargeDeclinedInsufficientFunds"
        | "4000000000009995" => NO_FUNDS,
        _ => return None,
    })
}

/// Stripe's US card pricing: 2.9 % + 30¢, rounded to the nearest cent.
pub fn card_fee(amount: i64) -> i64 {
    (amount * 29 + 500) / 1000 + 30
}

/// The test bank account numbers that make payouts fail, with Stripe's code and message.
pub fn payout_failure(account_number: &str) -> Option<(&'static str, &'static str)> {
    Some(match account_number {
        "000111111116" => (
            "no_account",
            "The bank account details on file are probably incorrect. No bank account could be located with those details.",
        ),
        "000111111113" => ("account_closed", "The bank account has been closed."),
        "000222222227" => (
            "insufficient_funds",
            "The bank account has insufficient funds to cover the payout.",
        ),
        "000333333335" => (
            "debit_not_authorized",
            "Debit transactions are not approved on the bank account.",
        ),
        "000444444440" => (
            "invalid_currency",
            "The bank was unable to process this payout because of its currency.",
        ),
        _ => return None,
    })
}

/// Bank account tokens that stand for the test account numbers.
pub fn bank_token_account_number(token: &str) -> Option<&'static str> {
    Some(match token {
        "btok_us_verified" | "btok_us" => "000123456789",
        "btok_us_verified_noAccount" => "000111111116",
        "btok_us_verified_accountClosed" => "000111111113",
        "btok_us_verified_insufficientFunds" => "000222222227",
        "btok_us_verified_debitNotAuthorized" => "000333333335",
        "btok_us_verified_invalidCurrency" => "000444444440",
        _ => return None,
    })
}

/// Debit-card tokens usable as external accounts for card payouts: (last4, payouts fail).
pub fn debit_card_token(token: &str) -> Option<(&'static str, bool)> {
    Some(match token {
        "tok_visa_debit" | "tok_visa_debit_us_transferSuccess" => ("5556", false),
        "tok_visa_debit_us_transferFail" => ("5572", true),
        "tok_mastercard_debit" => ("8210", false),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn custom_company_account_requirements_shrink_as_data_arrives() {
        let mut acct = json!({"type": "custom", "business_type": null, "tos_acceptance": {"date": null, "ip": null}});
        assert_eq!(
            currently_due(&acct, &[], 0),
            [
                "business_type",
                "tos_acceptance.date",
                "tos_acceptance.ip",
                "external_account"
            ]
        );
        acct["business_type"] = "company".into();
        acct["tos_acceptance"] = json!({"date": 1, "ip": "127.0.0.1"});
        acct["company"] = json!({"name": "Acme"});
        assert_eq!(
            currently_due(&acct, &[], 1),
            ["representative.first_name", "representative.last_name"]
        );
        let rep = json!({"first_name": "Jo", "last_name": null, "relationship": {"representative": true}});
        assert_eq!(
            currently_due(&acct, std::slice::from_ref(&rep), 1),
            ["representative.last_name"]
        );
        let mut done = rep;
        done["last_name"] = "Lee".into();
        assert!(currently_due(&acct, &[done], 1).is_empty());
        assert!(currently_due(&json!({"type": "standard"}), &[], 0).is_empty());
    }

    #[test]
    fn magic_values() {
        assert_eq!(
            card_outcome("pm_card_bypassPending"),
            Some(CardOutcome::Succeeds { available: true })
        );
        assert_eq!(
            card_outcome("pm_card_visa"),
            Some(CardOutcome::Succeeds { available: false })
        );
        assert!(matches!(
            card_outcome("4000000000000002"),
            Some(CardOutcome::Declined { .. })
        ));
        assert_eq!(card_outcome("pm_card_unknown"), None);
        assert_eq!(payout_failure("000111111116").unwrap().0, "no_account");
        assert_eq!(payout_failure("000123456789"), None);
        assert_eq!(
            bank_token_account_number("btok_us_verified_accountClosed"),
            Some("000111111113")
        );
        assert_eq!(card_fee(2000), 88);
        assert_eq!(card_fee(1000), 59);
    }
}
