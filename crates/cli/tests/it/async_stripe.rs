//! The third official client: async-stripe (Rust, generated from Stripe's
//! OpenAPI spec) driving Switchboard unmodified. Its responses deserialize
//! into strictly typed structs, so every object it reads is also a check of
//! Switchboard's shapes; its webhook module verifies a real delivery.

use std::time::Duration;

use stripe::ClientBuilder;
use stripe::StripeRequest as _;
use stripe_connect::account::{CreateAccount, CreateAccountType, RetrieveForMyAccountAccount};
use stripe_connect::account_link::{CreateAccountLink, CreateAccountLinkType};
use stripe_connect::account_session::{
    CreateAccountSession, CreateAccountSessionComponents, CreateAccountSessionComponentsPayments,
};
use stripe_connect::capability::{ListAccountCapability, RetrieveCapability, UpdateCapability};
use stripe_connect::external_account::CreateAccountExternalAccount;
use stripe_connect::login_link::CreateAccountLoginLink;
use stripe_connect::transfer::CreateTransfer;
use stripe_connect::transfer_reversal::{CreateIdTransferReversal, ListIdTransferReversal};
use stripe_core::balance::RetrieveForMyAccountBalance;
use stripe_core::balance_transaction::ListBalanceTransaction;
use stripe_core::customer::CreateCustomer;
use stripe_core::event::ListEvent;
use stripe_core::payment_intent::{CreatePaymentIntent, RetrievePaymentIntent};
use stripe_core::payout::{CreatePayout, RetrievePayout};
use stripe_core::refund::CreateRefund;
use stripe_types::Currency;
use stripe_webhook::{EventObject, Webhook};

use crate::support::*;

#[tokio::test]
async fn async_stripe_drives_connect_payments_and_verifies_a_delivery() {
    let t = TestNode::start().await;
    let client = ClientBuilder::new(TEST_KEY)
        .url(t.base.clone())
        .build()
        .expect("client");
    let mut hooks = Receiver::start().await;
    let we = t
        .post(
            "/v1/webhook_endpoints",
            &format!("url={}&enabled_events[]=*&connect=true", hooks.url),
        )
        .await;
    let secret = we["secret"].as_str().unwrap().to_owned();

    let account = CreateAccount::new()
        .type_(CreateAccountType::Express)
        .send(&client)
        .await
        .expect("accounts.create");
    assert!(account.id.as_str().starts_with("acct_"));
    let fetched = RetrieveForMyAccountAccount::new()
        .customize()
        .account_id(account.id.clone())
        .send(&client)
        .await
        .expect("GET /v1/account as the connected account");
    assert_eq!(fetched.id, account.id);
    CreateAccountExternalAccount::new(account.id.clone(), "btok_us_verified")
        .send(&client)
        .await
        .expect("external_accounts.create");

    let customer = CreateCustomer::new()
        .name("Jane")
        .customize()
        .account_id(account.id.clone())
        .send(&client)
        .await
        .expect("customers.create as the account");
    assert_eq!(customer.name.as_deref(), Some("Jane"));

    let pi = CreatePaymentIntent::new(2000, Currency::USD)
        .payment_method("pm_card_bypassPending")
        .confirm(true)
        .customize()
        .account_id(account.id.clone())
        .send(&client)
        .await
        .expect("payment_intents.create");
    assert_eq!(pi.status.as_str(), "succeeded");
    let expanded = RetrievePaymentIntent::new(pi.id.clone())
        .expand(vec!["latest_charge.balance_transaction".to_owned()])
        .customize()
        .account_id(account.id.clone())
        .send(&client)
        .await
        .expect("payment_intents.retrieve with expand");
    let charge = expanded
        .latest_charge
        .as_ref()
        .and_then(|c| c.as_object())
        .expect("latest_charge expanded");
    let txn = charge
        .balance_transaction
        .as_ref()
        .and_then(|b| b.as_object())
        .expect("balance_transaction expanded");
    assert_eq!((txn.amount, txn.fee, txn.net), (2000, 88, 1912));

    let balance = RetrieveForMyAccountBalance::new()
        .customize()
        .account_id(account.id.clone())
        .send(&client)
        .await
        .expect("balance.retrieve");
    assert_eq!(balance.available[0].amount, 1912);
    let payout = CreatePayout::new(1000, Currency::USD)
        .customize()
        .account_id(account.id.clone())
        .send(&client)
        .await
        .expect("payouts.create");
    assert_eq!(payout.status.as_str(), "pending");
    // It arrives two days later: the test clock gets there now.
    t.advance_clock(2 * 86_400).await;
    let payout = RetrievePayout::new(payout.id.clone())
        .expand(vec![
            "balance_transaction".to_owned(),
            "destination".to_owned(),
        ])
        .customize()
        .account_id(account.id.clone())
        .send(&client)
        .await
        .expect("payouts.retrieve with expand");
    assert_eq!(payout.status.as_str(), "paid");
    assert_eq!(
        payout
            .balance_transaction
            .as_ref()
            .and_then(|b| b.as_object())
            .map(|b| b.amount),
        Some(-1000)
    );
    let txns = ListBalanceTransaction::new()
        .customize()
        .account_id(account.id.clone())
        .send(&client)
        .await
        .expect("balance_transactions.list");
    assert_eq!(txns.data.len(), 2, "the charge and the payout");

    let events = ListEvent::new()
        .customize()
        .account_id(account.id.clone())
        .send(&client)
        .await
        .expect("events.list as the account");
    assert!(
        events
            .data
            .iter()
            .any(|e| e.type_.as_str() == "payment_intent.succeeded"),
        "{:?}",
        events
            .data
            .iter()
            .map(|e| e.type_.as_str())
            .collect::<Vec<_>>()
    );

    // A delivery, verified and parsed by async-stripe's webhook module.
    let mut typed_customer = None;
    while typed_customer.is_none() {
        let got = tokio::time::timeout(Duration::from_secs(20), hooks.next())
            .await
            .expect("deliveries keep coming");
        let payload = std::str::from_utf8(&got.body).unwrap();
        let event = Webhook::construct_event(payload, got.signature(), &secret)
            .unwrap_or_else(|e| panic!("async-stripe rejects a delivery: {e:?}\n{payload}"));
        assert_eq!(event.account.as_deref(), Some(account.id.as_str()));
        if let EventObject::CustomerCreated(c) = event.data.object {
            typed_customer = Some(c);
        }
    }
    assert_eq!(typed_customer.unwrap().id, customer.id);
}

/// Transfers and their reversals, refunds, Account Links, capabilities,
/// login links and account sessions, each deserialized into async-stripe's
/// strict types (a missing or mistyped field fails the call).
#[tokio::test]
async fn async_stripe_drives_transfers_refunds_links_and_capabilities() {
    let t = TestNode::start().await;
    let client = ClientBuilder::new(TEST_KEY)
        .url(t.base.clone())
        .build()
        .expect("client");
    let acct = t
        .post(
            "/v1/accounts",
            "type=custom&country=US&external_account=btok_us_verified",
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pi = CreatePaymentIntent::new(10_000, Currency::USD)
        .payment_method("pm_card_bypassPending")
        .confirm(true)
        .send(&client)
        .await
        .expect("payment_intents.create");
    let charge = pi
        .latest_charge
        .as_ref()
        .expect("latest_charge")
        .id()
        .clone();
    let transfer = CreateTransfer::new(Currency::USD, acct.clone())
        .amount(3_000)
        .send(&client)
        .await
        .expect("transfers.create");
    assert_eq!(
        (
            transfer.amount,
            transfer.destination.as_ref().map(|d| d.id().to_string())
        ),
        (3_000, Some(acct.clone()))
    );
    let reversal = CreateIdTransferReversal::new(transfer.id.clone())
        .amount(1_000)
        .send(&client)
        .await
        .expect("transfer reversals.create");
    assert_eq!(reversal.amount, 1_000);
    let reversals = ListIdTransferReversal::new(transfer.id.clone())
        .send(&client)
        .await
        .expect("transfer reversals.list");
    assert_eq!(reversals.data.len(), 1);
    let refund = CreateRefund::new()
        .charge(charge.to_string())
        .amount(2_000)
        .send(&client)
        .await
        .expect("refunds.create");
    assert_eq!(
        (
            refund.amount,
            refund.charge.as_ref().map(|c| c.id().to_string())
        ),
        (2_000, Some(charge.to_string()))
    );

    let link = CreateAccountLink::new(acct.clone(), CreateAccountLinkType::AccountOnboarding)
        .refresh_url("https://platform.example/refresh")
        .return_url("https://platform.example/return")
        .send(&client)
        .await
        .expect("account_links.create");
    assert!(link.url.starts_with(&t.base), "{}", link.url);
    assert_eq!(link.expires_at - link.created, 300);
    let cap = UpdateCapability::new(acct.clone(), "card_payments")
        .requested(true)
        .send(&client)
        .await
        .expect("capabilities.update");
    assert!(cap.requested);
    let caps = ListAccountCapability::new(acct.clone())
        .send(&client)
        .await
        .expect("capabilities.list");
    assert_eq!(caps.data.len(), 1);
    let cap = RetrieveCapability::new(acct.clone(), "card_payments")
        .send(&client)
        .await
        .expect("capabilities.retrieve");
    assert_eq!(
        cap.status.as_str(),
        "inactive",
        "a Custom account with nothing provided yet"
    );
    // A Custom account has no Express Dashboard to log in to.
    assert!(
        CreateAccountLoginLink::new(acct.clone())
            .send(&client)
            .await
            .is_err()
    );
    let mut components = CreateAccountSessionComponents::new();
    components.payments = Some(CreateAccountSessionComponentsPayments::new(true));
    let session = CreateAccountSession::new(acct.clone(), components)
        .send(&client)
        .await
        .expect("account_sessions.create");
    assert!(session.components.payments.enabled);
    assert_eq!(session.account, acct);
}
