//! Connect rules as pure functions: what an account still has to provide, and
//! what Stripe's test-mode magic values (cards, bank account numbers, tokens) do.

use serde_json::Value;

/// The capabilities an account may request (a subset of Stripe's list: the
/// ones Connect platforms in the US and EU request most).
pub const CAPABILITIES: &[&str] = &[
    "acss_debit_payments",
    "affirm_payments",
    "afterpay_clearpay_payments",
    "bancontact_payments",
    "card_issuing",
    "card_payments",
    "cartes_bancaires_payments",
    "ideal_payments",
    "klarna_payments",
    "legacy_payments",
    "link_payments",
    "sepa_debit_payments",
    "tax_reporting_us_1099_k",
    "tax_reporting_us_1099_misc",
    "transfers",
    "treasury",
    "us_bank_account_ach_payments",
];

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
    /// The charge succeeds; `available` funds skip the pending balance; a
    /// `dispute` follows at once for Stripe's dispute test cards.
    Succeeds {
        available: bool,
        dispute: Option<DisputeKind>,
    },
    /// The bank asks for 3-D Secure: the payment waits in `requires_action`.
    RequiresAction,
    /// The card is declined: `code` is the error code (`card_declined`,
    /// `expired_card`, …), `decline_code` the bank's reason.
    Declined {
        code: &'static str,
        decline_code: &'static str,
        message: &'static str,
    },
}

/// The disputes Stripe's test cards open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisputeKind {
    /// A chargeback: funds are withdrawn with the dispute fee.
    Fraudulent,
    /// An inquiry (`warning_needs_response`): no funds move.
    Inquiry,
}

/// How a SEPA Direct Debit from one of Stripe's test IBANs settles: after
/// how long (seconds) it leaves `processing`, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebitOutcome {
    pub after_secs: i64,
    pub settles: DebitSettles,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebitSettles {
    /// `payment_intent.succeeded`; `disputed` opens a dispute at once.
    Succeeds { disputed: bool },
    /// `payment_intent.payment_failed` with this charge `failure_code`.
    Fails {
        code: &'static str,
        message: &'static str,
    },
}

/// What debiting an IBAN ending in `last4` does (Stripe's test IBANs: `…3201`
/// succeeds, `…3204` after three minutes, `…3202` fails, `…3205` after
/// three minutes, `…3203` succeeds and is disputed, `…2227` has
/// insufficient funds; any other IBAN succeeds).
pub fn debit_outcome(last4: &str) -> DebitOutcome {
    const LATER: i64 = 180;
    let fails = DebitSettles::Fails {
        code: "generic_could_not_process",
        message: "The payment could not be processed.",
    };
    let (after_secs, settles) = match last4 {
        "3204" => (LATER, DebitSettles::Succeeds { disputed: false }),
        "3202" => (0, fails),
        "3205" => (LATER, fails),
        "3203" => (0, DebitSettles::Succeeds { disputed: true }),
        "2227" => (
            0,
            DebitSettles::Fails {
                code: "insufficient_funds",
                message: "The customer's account has insufficient funds to cover this payment.",
            },
        ),
        _ => (0, DebitSettles::Succeeds { disputed: false }),
    };
    DebitOutcome {
        after_secs,
        settles,
    }
}

/// A test card: what it looks like and what charging it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestCard {
    pub brand: &'static str,
    pub last4: &'static str,
    pub funding: &'static str,
    pub outcome: CardOutcome,
}

const fn card(brand: &'static str, last4: &'static str, outcome: CardOutcome) -> TestCard {
    TestCard {
        brand,
        last4,
        funding: "credit",
        outcome,
    }
}

const OK: CardOutcome = CardOutcome::Succeeds {
    available: false,
    dispute: None,
};

const fn declined(
    code: &'static str,
    decline_code: &'static str,
    message: &'static str,
) -> CardOutcome {
    CardOutcome::Declined {
        code,
        decline_code,
        message,
    }
}

/// Stripe's test payment methods (`pm_card_*`, `tok_*`, raw test card
/// numbers, from Stripe's testing docs). `None` for values that are not one.
pub fn test_card(payment_method: &str) -> Option<TestCard> {
    let name = payment_method
        .strip_prefix("pm_card_")
        .or_else(|| payment_method.strip_prefix("tok_"))
        .unwrap_or(payment_method);
    const DECLINED: &str = "Your card was declined.";
    Some(match name {
        "visa" | "us" | "4242424242424242" => card("visa", "4242", OK),
        "visa_debit" | "4000056655665556" => TestCard {
            funding: "debit",
            ..card("visa", "5556", OK)
        },
        "mastercard" | "5555555555554444" => card("mastercard", "4444", OK),
        "mastercard_debit" | "5200828282828210" => TestCard {
            funding: "debit",
            ..card("mastercard", "8210", OK)
        },
        "amex" | "378282246310005" => card("amex", "0005", OK),
        "discover" | "6011111111111117" => card("discover", "1117", OK),
        "diners" | "3056930009020004" => card("diners", "0004", OK),
        "jcb" | "3566002020360505" => card("jcb", "0505", OK),
        "unionpay" | "6200000000000005" => card("unionpay", "0005", OK),
        "bypassPending" | "4000000000000077" => card(
            "visa",
            "0077",
            CardOutcome::Succeeds {
                available: true,
                dispute: None,
            },
        ),
        "createDispute" | "4000000000000259" => card(
            "visa",
            "0259",
            CardOutcome::Succeeds {
                available: false,
                dispute: Some(DisputeKind::Fraudulent),
            },
        ),
        "createDisputeInquiry" | "4000000000001976" => card(
            "visa",
            "1976",
            CardOutcome::Succeeds {
                available: false,
                dispute: Some(DisputeKind::Inquiry),
            },
        ),
        "authenticationRequired" | "threeDSecure2Required" | "4000002760003184" => {
            card("visa", "3184", CardOutcome::RequiresAction)
        }
        "authenticationRequiredOnSetup" | "4000002500003155" => card("visa", "3155", OK),
        "chargeDeclined" | "visa_chargeDeclined" | "4000000000000002" => card(
            "visa",
            "0002",
            declined("card_declined", "generic_decline", DECLINED),
        ),
        "chargeDeclinedInsufficientFunds"
        | "visa_chargeDeclinedInsufficientFunds"
        | "4000000000009995" => card(
            "visa",
            "9995",
            declined(
                "card_declined",
                "insufficient_funds",
                "Your card has insufficient funds.",
            ),
        ),
        "chargeDeclinedLostCard" | "visa_chargeDeclinedLostCard" | "4000000000009987" => card(
            "visa",
            "9987",
            declined("card_declined", "lost_card", DECLINED),
        ),
        "chargeDeclinedStolenCard" | "visa_chargeDeclinedStolenCard" | "4000000000009979" => card(
            "visa",
            "9979",
            declined("card_declined", "stolen_card", DECLINED),
        ),
        "chargeDeclinedFraudulent" | "visa_chargeDeclinedFraudulent" | "4100000000000019" => card(
            "visa",
            "0019",
            declined("card_declined", "fraudulent", DECLINED),
        ),
        "chargeDeclinedExpiredCard" | "visa_chargeDeclinedExpiredCard" | "4000000000000069" => {
            card(
                "visa",
                "0069",
                declined("expired_card", "expired_card", "Your card has expired."),
            )
        }
        "chargeDeclinedIncorrectCvc" | "visa_chargeDeclinedIncorrectCvc" | "4000000000000127" => {
            card(
                "visa",
                "0127",
                declined(
                    "incorrect_cvc",
                    "incorrect_cvc",
                    "Your card's security code is incorrect.",
                ),
            )
        }
        "chargeDeclinedProcessingError"
        | "visa_chargeDeclinedProcessingError"
        | "4000000000000119" => card(
            "visa",
            "0119",
            declined(
                "processing_error",
                "processing_error",
                "An error occurred while processing your card. Try again in a little bit.",
            ),
        ),
        "chargeCustomerFail" | "4000000000000341" => card(
            "visa",
            "0341",
            declined("card_declined", "generic_decline", DECLINED),
        ),
        _ => return None,
    })
}

/// What charging a test payment method does (see [`test_card`]).
pub fn card_outcome(payment_method: &str) -> Option<CardOutcome> {
    test_card(payment_method).map(|c| c.outcome)
}

/// Stripe's dispute fee (US), withdrawn with a chargeback's amount.
pub const DISPUTE_FEE: i64 = 1500;

/// The evidence text that decides a test dispute when it is submitted, as on
/// Stripe: `winning_evidence` wins it, `losing_evidence` loses it.
pub fn dispute_verdict(uncategorized_text: Option<&str>) -> Option<bool> {
    match uncategorized_text {
        Some("winning_evidence") => Some(true),
        Some("losing_evidence") => Some(false),
        _ => None,
    }
}

/// Stripe's US card pricing: 2.9 % + 30¢, rounded to the nearest cent.
pub fn card_fee(amount: i64) -> i64 {
    (amount * 29 + 500) / 1000 + 30
}

/// Stripe's processing fee for a payment of `amount` by `method` (the
/// PaymentMethod's type): cards 2.9 % + 30¢; SEPA Direct Debit 0.8 %
/// capped at 5.00; bank transfers into a customer balance 0.5 % capped at
/// 5.00 (Stripe's standard pricing in the US and EU, rounded to the cent).
pub fn processing_fee(method: &str, amount: i64) -> i64 {
    match method {
        "sepa_debit" => ((amount * 8 + 500) / 1000).min(500),
        "customer_balance" => ((amount * 5 + 500) / 1000).min(500),
        _ => card_fee(amount),
    }
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
    fn fees_follow_the_payment_method() {
        assert_eq!(processing_fee("card", 10_000), 320);
        assert_eq!(processing_fee("sepa_debit", 10_000), 80);
        assert_eq!(processing_fee("sepa_debit", 1_000_000), 500, "capped");
        assert_eq!(processing_fee("customer_balance", 10_000), 50);
    }

    #[test]
    fn test_ibans_settle_as_stripe_documents() {
        let ok = DebitSettles::Succeeds { disputed: false };
        assert_eq!(
            debit_outcome("3201"),
            DebitOutcome {
                after_secs: 0,
                settles: ok
            }
        );
        assert_eq!(debit_outcome("3204").after_secs, 180);
        assert!(matches!(
            debit_outcome("3202").settles,
            DebitSettles::Fails { .. }
        ));
        assert_eq!(
            debit_outcome("3203").settles,
            DebitSettles::Succeeds { disputed: true }
        );
    }

    #[test]
    fn magic_values() {
        assert_eq!(
            card_outcome("pm_card_bypassPending"),
            Some(CardOutcome::Succeeds {
                available: true,
                dispute: None
            })
        );
        assert_eq!(card_outcome("pm_card_visa"), Some(OK));
        assert_eq!(card_outcome("tok_visa"), Some(OK));
        assert_eq!(
            card_outcome("pm_card_createDisputeInquiry"),
            Some(CardOutcome::Succeeds {
                available: false,
                dispute: Some(DisputeKind::Inquiry)
            })
        );
        assert_eq!(
            card_outcome("4000002760003184"),
            Some(CardOutcome::RequiresAction)
        );
        assert!(matches!(
            card_outcome("pm_card_visa_chargeDeclinedExpiredCard"),
            Some(CardOutcome::Declined {
                code: "expired_card",
                ..
            })
        ));
        assert_eq!(test_card("pm_card_visa_debit").unwrap().funding, "debit");
        assert_eq!(dispute_verdict(Some("winning_evidence")), Some(true));
        assert_eq!(dispute_verdict(Some("anything")), None);
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
