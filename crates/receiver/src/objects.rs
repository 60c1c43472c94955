//! Typed views of `data.object` for the objects of Stripe's Connect webhooks.
//!
//! Each struct holds the fields platforms act on, not the whole API object:
//! every field has a default, unknown fields are ignored, and a field that
//! Stripe may expand (`destination`, `customer`, …) is read as its id whether
//! it arrives as an id or as an expanded object. For anything else, read
//! `data.object` yourself ([`crate::EventData::object_as`] or the JSON value).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// `data.object` of an event, by its `object` field.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Object {
    /// `account.updated`
    Account(Box<Account>),
    /// `account.application.authorized` / `.deauthorized`
    Application(Application),
    /// `account.external_account.*` for a bank account
    BankAccount(BankAccount),
    /// `account.external_account.*` for a debit card, `customer.source.*`
    Card(Card),
    /// `balance.available`
    Balance(Balance),
    /// `payment_intent.*`
    PaymentIntent(Box<PaymentIntent>),
    /// `payout.*`
    Payout(Payout),
    /// `person.*`
    Person(Box<Person>),
    /// `customer.*`
    Customer(Customer),
    /// Any other object, as received.
    Other(Value),
}

/// `Object`'s variant for an `object` field, each parsed by `$parse` (an
/// expression whose type each arm infers).
macro_rules! by_kind {
    ($kind:expr, $parse:expr, $other:expr) => {
        match $kind {
            "account" => Object::Account(Box::new($parse?)),
            "application" => Object::Application($parse?),
            "bank_account" => Object::BankAccount($parse?),
            "card" => Object::Card($parse?),
            "balance" => Object::Balance($parse?),
            "payment_intent" => Object::PaymentIntent(Box::new($parse?)),
            "payout" => Object::Payout($parse?),
            "person" => Object::Person(Box::new($parse?)),
            "customer" => Object::Customer($parse?),
            _ => $other,
        }
    };
}

impl Object {
    /// Reads JSON text by its `object` field (read first, without parsing
    /// the rest), then parses it once as that object.
    pub fn from_json(json: &str) -> Result<Object, serde_json::Error> {
        #[derive(Deserialize)]
        struct Kind<'a> {
            #[serde(default, borrow)]
            object: Option<std::borrow::Cow<'a, str>>,
        }
        let kind: Kind<'_> = serde_json::from_str(json)?;
        Ok(by_kind!(
            kind.object.as_deref().unwrap_or(""),
            serde_json::from_str(json),
            Object::Other(serde_json::from_str(json)?)
        ))
    }

    /// Reads a JSON object by its `object` field.
    pub fn from_value(value: &Value) -> Result<Object, serde_json::Error> {
        let kind = value.get("object").and_then(Value::as_str).unwrap_or("");
        Ok(by_kind!(
            kind,
            Deserialize::deserialize(value),
            Object::Other(value.clone())
        ))
    }

    /// The object's `id`, if it has one (a balance has none).
    pub fn id(&self) -> Option<&str> {
        let id = match self {
            Object::Account(o) => &o.id,
            Object::Application(o) => &o.id,
            Object::BankAccount(o) => &o.id,
            Object::Card(o) => &o.id,
            Object::Balance(_) => return None,
            Object::PaymentIntent(o) => &o.id,
            Object::Payout(o) => &o.id,
            Object::Person(o) => &o.id,
            Object::Customer(o) => &o.id,
            Object::Other(v) => return v.get("id").and_then(Value::as_str),
        };
        Some(id)
    }
}

/// Keys and values a platform attached to an object.
pub type Metadata = BTreeMap<String, String>;

/// Reads an expandable field (an id, an expanded object with an `id`, or
/// null) as the id.
fn expandable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IdOrObject {
        Id(String),
        Object { id: String },
    }
    Ok(Option::<IdOrObject>::deserialize(d)?.map(|v| match v {
        IdOrObject::Id(id) | IdOrObject::Object { id } => id,
    }))
}

/// Reads null as the type's default (Stripe sends `null` for many lists and
/// maps that are simply empty).
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A connected account (`account.updated`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Account {
    pub id: String,
    /// `standard`, `express`, `custom` or `none`.
    #[serde(rename = "type")]
    pub account_type: Option<String>,
    pub business_type: Option<String>,
    pub country: Option<String>,
    pub default_currency: Option<String>,
    pub email: Option<String>,
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    pub details_submitted: bool,
    /// Capability name → `active`, `inactive` or `pending`.
    #[serde(deserialize_with = "null_default")]
    pub capabilities: BTreeMap<String, String>,
    pub requirements: Option<Requirements>,
    pub future_requirements: Option<Requirements>,
    pub created: Option<i64>,
    #[serde(deserialize_with = "null_default")]
    pub metadata: Metadata,
}

/// What Stripe still needs: an account's or a person's `requirements`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Requirements {
    #[serde(deserialize_with = "null_default")]
    pub currently_due: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub eventually_due: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub past_due: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub pending_verification: Vec<String>,
    /// Unix time by which `currently_due` must be provided.
    pub current_deadline: Option<i64>,
    /// Why charges or payouts are disabled (`requirements.past_due`, …).
    pub disabled_reason: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub errors: Vec<RequirementError>,
}

/// A requirement whose information was rejected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RequirementError {
    pub code: String,
    pub reason: String,
    pub requirement: String,
}

/// The platform's application (`account.application.authorized` and
/// `.deauthorized`; the connected account is the event's `account`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Application {
    pub id: String,
    pub name: Option<String>,
}

/// A bank account that receives a connected account's payouts.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
#[non_exhaustive]
pub struct BankAccount {
    pub id: String,
    #[serde(deserialize_with = "expandable")]
    pub account: Option<String>,
    #[serde(deserialize_with = "expandable")]
    pub customer: Option<String>,
    pub account_holder_name: Option<String>,
    pub account_holder_type: Option<String>,
    pub bank_name: Option<String>,
    pub country: Option<String>,
    pub currency: Option<String>,
    pub default_for_currency: Option<bool>,
    pub fingerprint: Option<String>,
    pub last4: Option<String>,
    pub routing_number: Option<String>,
    /// `new`, `validated`, `verified`, `verification_failed` or `errored`.
    pub status: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub metadata: Metadata,
}

/// A debit card (a connected account's external account) or a customer's card.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Card {
    pub id: String,
    #[serde(deserialize_with = "expandable")]
    pub account: Option<String>,
    #[serde(deserialize_with = "expandable")]
    pub customer: Option<String>,
    pub brand: Option<String>,
    pub country: Option<String>,
    pub currency: Option<String>,
    pub default_for_currency: Option<bool>,
    pub exp_month: Option<i64>,
    pub exp_year: Option<i64>,
    pub fingerprint: Option<String>,
    pub funding: Option<String>,
    pub last4: Option<String>,
    pub name: Option<String>,
    pub status: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub metadata: Metadata,
}

/// A connected account's balance (`balance.available`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Balance {
    pub livemode: bool,
    #[serde(deserialize_with = "null_default")]
    pub available: Vec<BalanceAmount>,
    #[serde(deserialize_with = "null_default")]
    pub pending: Vec<BalanceAmount>,
    #[serde(deserialize_with = "null_default")]
    pub connect_reserved: Vec<BalanceAmount>,
    #[serde(deserialize_with = "null_default")]
    pub instant_available: Vec<BalanceAmount>,
}

/// One currency's amount in a [`Balance`], in the currency's minor unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
#[non_exhaustive]
pub struct BalanceAmount {
    pub amount: i64,
    pub currency: String,
    /// `card`, `bank_account`, `fpx` → amount.
    #[serde(deserialize_with = "null_default")]
    pub source_types: BTreeMap<String, i64>,
}

/// A payment on a connected account, or a destination charge's intent.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PaymentIntent {
    pub id: String,
    pub amount: i64,
    pub amount_capturable: i64,
    pub amount_received: i64,
    pub application_fee_amount: Option<i64>,
    pub currency: String,
    /// `requires_payment_method`, `processing`, `succeeded`, `canceled`, …
    pub status: String,
    #[serde(deserialize_with = "expandable")]
    pub customer: Option<String>,
    #[serde(deserialize_with = "expandable")]
    pub latest_charge: Option<String>,
    #[serde(deserialize_with = "expandable")]
    pub on_behalf_of: Option<String>,
    #[serde(deserialize_with = "expandable")]
    pub payment_method: Option<String>,
    pub transfer_data: Option<TransferData>,
    pub transfer_group: Option<String>,
    pub description: Option<String>,
    pub cancellation_reason: Option<String>,
    pub last_payment_error: Option<PaymentError>,
    pub created: Option<i64>,
    pub livemode: bool,
    #[serde(deserialize_with = "null_default")]
    pub metadata: Metadata,
}

/// Where a destination charge's funds go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
#[non_exhaustive]
pub struct TransferData {
    #[serde(deserialize_with = "expandable")]
    pub destination: Option<String>,
    pub amount: Option<i64>,
}

/// A payment intent's `last_payment_error`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PaymentError {
    #[serde(rename = "type")]
    pub error_type: Option<String>,
    pub code: Option<String>,
    pub decline_code: Option<String>,
    pub message: Option<String>,
}

/// A payout from a connected account's balance to its external account.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Payout {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    /// `paid`, `pending`, `in_transit`, `canceled` or `failed`.
    pub status: String,
    pub arrival_date: Option<i64>,
    pub automatic: bool,
    /// The external account (`ba_…` or `card_…`) paid to.
    #[serde(deserialize_with = "expandable")]
    pub destination: Option<String>,
    /// `account_closed`, `no_account`, `insufficient_funds`, …
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    #[serde(deserialize_with = "expandable")]
    pub balance_transaction: Option<String>,
    #[serde(deserialize_with = "expandable")]
    pub failure_balance_transaction: Option<String>,
    /// `standard` or `instant`.
    pub method: Option<String>,
    /// `bank_account` or `card`.
    #[serde(rename = "type")]
    pub payout_type: Option<String>,
    pub source_type: Option<String>,
    pub statement_descriptor: Option<String>,
    pub description: Option<String>,
    pub created: Option<i64>,
    pub livemode: bool,
    #[serde(deserialize_with = "null_default")]
    pub metadata: Metadata,
}

/// A person behind a connected account (`person.*`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Person {
    pub id: String,
    /// The connected account the person belongs to.
    pub account: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub relationship: Option<Relationship>,
    pub requirements: Option<Requirements>,
    pub future_requirements: Option<Requirements>,
    pub created: Option<i64>,
    #[serde(deserialize_with = "null_default")]
    pub metadata: Metadata,
}

/// How a [`Person`] relates to the account.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Relationship {
    pub representative: Option<bool>,
    pub director: Option<bool>,
    pub executive: Option<bool>,
    pub owner: Option<bool>,
    pub percent_ownership: Option<f64>,
    pub title: Option<String>,
}

/// A customer (`customer.*`), on the platform or on a connected account.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Customer {
    pub id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub balance: i64,
    pub currency: Option<String>,
    pub delinquent: Option<bool>,
    #[serde(deserialize_with = "expandable")]
    pub default_source: Option<String>,
    pub created: Option<i64>,
    pub livemode: bool,
    #[serde(deserialize_with = "null_default")]
    pub metadata: Metadata,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_each_object_by_its_object_field() {
        let account = json!({
            "id": "acct_1", "object": "account", "type": "express", "charges_enabled": true,
            "payouts_enabled": false, "capabilities": {"transfers": "pending"},
            "requirements": {"currently_due": ["external_account", "tos_acceptance.date"],
                "eventually_due": null, "disabled_reason": "requirements.past_due",
                "errors": [{"code": "invalid_value_other", "reason": "no", "requirement": "email"}]},
            "metadata": null, "settings": {"payouts": {"schedule": {"interval": "daily"}}}
        });
        let Object::Account(a) = Object::from_value(&account).unwrap() else {
            panic!("not an account")
        };
        assert_eq!(a.account_type.as_deref(), Some("express"));
        assert!(a.charges_enabled && !a.payouts_enabled);
        let r = a.requirements.unwrap();
        assert_eq!(r.currently_due, ["external_account", "tos_acceptance.date"]);
        assert!(r.eventually_due.is_empty());
        assert_eq!(r.disabled_reason.as_deref(), Some("requirements.past_due"));
        assert_eq!(r.errors[0].requirement, "email");
        assert_eq!(a.capabilities["transfers"], "pending");

        let payout = json!({
            "id": "po_1", "object": "payout", "amount": 1100, "currency": "usd", "status": "failed",
            "destination": {"id": "ba_1", "object": "bank_account"}, "failure_code": "account_closed",
            "failure_message": "closed", "type": "bank_account", "livemode": true,
            "metadata": {"order": "42"}
        });
        let Object::Payout(p) = Object::from_value(&payout).unwrap() else {
            panic!("not a payout")
        };
        assert_eq!(p.destination.as_deref(), Some("ba_1"));
        assert_eq!(p.failure_code.as_deref(), Some("account_closed"));
        assert_eq!(
            (p.amount, p.currency.as_str(), p.livemode),
            (1100, "usd", true)
        );
        assert_eq!(p.metadata["order"], "42");

        let pi = json!({"id": "pi_1", "object": "payment_intent", "amount": 500, "currency": "eur",
            "status": "succeeded", "customer": "cus_1", "transfer_data": {"destination": "acct_2"},
            "last_payment_error": null});
        let Object::PaymentIntent(pi) = Object::from_value(&pi).unwrap() else {
            panic!("not a payment intent")
        };
        assert_eq!(pi.customer.as_deref(), Some("cus_1"));
        assert_eq!(
            pi.transfer_data.unwrap().destination.as_deref(),
            Some("acct_2")
        );

        let cases = [
            (
                json!({"id": "ca_1", "object": "application", "name": "Platform"}),
                "ca_1",
            ),
            (
                json!({"id": "ba_1", "object": "bank_account", "account": "acct_1", "last4": "6789"}),
                "ba_1",
            ),
            (
                json!({"id": "card_1", "object": "card", "exp_month": 12}),
                "card_1",
            ),
            (
                json!({"id": "person_1", "object": "person", "relationship": {"owner": true, "percent_ownership": 50.5}}),
                "person_1",
            ),
            (
                json!({"id": "cus_1", "object": "customer", "balance": -100}),
                "cus_1",
            ),
            (json!({"id": "tr_1", "object": "transfer"}), "tr_1"),
        ];
        for (value, id) in cases {
            let o = Object::from_value(&value).unwrap();
            assert_eq!(o.id(), Some(id));
            assert_eq!(matches!(o, Object::Other(_)), value["object"] == "transfer");
        }
        let balance = json!({"object": "balance", "livemode": false,
            "available": [{"amount": 10, "currency": "usd", "source_types": {"card": 10}}]});
        let Object::Balance(b) = Object::from_value(&balance).unwrap() else {
            panic!("not a balance")
        };
        assert_eq!(b.available[0].source_types["card"], 10);
        assert!(b.pending.is_empty());
    }

    #[test]
    fn a_wrongly_typed_field_is_an_error_not_a_guess() {
        let bad = json!({"id": "po_1", "object": "payout", "amount": "lots"});
        assert!(Object::from_value(&bad).is_err());
    }
}
