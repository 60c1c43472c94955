//! Stripe's object shapes: one tour through every object Switchboard emits,
//! each held to stripe-node's generated types (every request of the whole
//! suite is too, in `support::TestNode::request`), and one snapshot per
//! object type pinning its bytes.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// Every `object` value anywhere in `v` (nested objects, lists, event data).
fn object_types(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(o)) = m.get("object") {
                let deleted = m.get("deleted") == Some(&Value::Bool(true));
                out.insert(if deleted {
                    format!("{o}#deleted")
                } else {
                    o.clone()
                });
            }
            m.values().for_each(|x| object_types(x, out));
        }
        Value::Array(items) => items.iter().for_each(|x| object_types(x, out)),
        _ => {}
    }
}

/// Ids, secrets and fingerprints vary per run; their shape does not.
fn normalized(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| match k.as_str() {
                    // Derived from the random customer id.
                    "invoice_prefix" => (k.clone(), Value::String("[prefix]".into())),
                    _ => (k.clone(), normalized(x)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalized).collect()),
        Value::String(s) => Value::String(
            s.split('/')
                .map(|part| {
                    if let Some(port) = part.strip_prefix("127.0.0.1:") {
                        return format!("127.0.0.1:{}", "[port]".repeat(port.len().min(1)));
                    }
                    match part.split_once('_') {
                        Some((prefix, rest))
                            if rest.len() >= 14
                                && prefix.len() <= 6
                                && prefix.chars().all(|c| c.is_ascii_lowercase())
                                && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                        {
                            format!("{prefix}_[id]")
                        }
                        _ => part.to_owned(),
                    }
                })
                .collect::<Vec<_>>()
                .join("/"),
        ),
        _ => v.clone(),
    }
}

#[tokio::test]
async fn every_emitted_object_matches_stripe_and_is_pinned() {
    let t = TestNode::with(Options {
        manual_clock: true,
        ..Options::default()
    })
    .await;
    let mut seen = BTreeSet::new();
    let snap = |name: &str, v: &Value, seen: &mut BTreeSet<String>| {
        object_types(v, seen);
        insta::assert_json_snapshot!(format!("object_{name}"), normalized(v));
    };
    let mut hooks = Receiver::start().await;
    let we = t
        .post(
            "/v1/webhook_endpoints",
            &format!("url={}&enabled_events[]=*&connect=true", hooks.url),
        )
        .await;
    snap("webhook_endpoint", &we, &mut seen);

    let acct = t.post("/v1/accounts", "type=custom&country=US&business_type=individual&capabilities[card_payments][requested]=true&capabilities[transfers][requested]=true").await;
    snap("account", &acct, &mut seen);
    let acct_id = acct["id"].as_str().unwrap().to_owned();
    let person = t
        .post(
            &format!("/v1/accounts/{acct_id}/persons"),
            "first_name=Jo&last_name=Lee&relationship[representative]=true&dob[day]=1&dob[month]=1&dob[year]=1901",
        )
        .await;
    snap("person", &person, &mut seen);
    let bank = t
        .post(
            &format!("/v1/accounts/{acct_id}/external_accounts"),
            "external_account=btok_us_verified",
        )
        .await;
    snap("bank_account", &bank, &mut seen);
    let card = t
        .post(
            &format!("/v1/accounts/{acct_id}/external_accounts"),
            "external_account=tok_visa_debit",
        )
        .await;
    snap("card", &card, &mut seen);
    let deleted_card = t
        .request(
            "DELETE",
            &format!(
                "/v1/accounts/{acct_id}/external_accounts/{}",
                card["id"].as_str().unwrap()
            ),
            Some(TEST_KEY),
            "",
            &[],
        )
        .await
        .2;
    object_types(&deleted_card, &mut seen);

    let customer = t
        .post(
            "/v1/customers",
            "name=Jane&email=jane%40example.com&metadata[order]=6735",
        )
        .await;
    snap("customer", &customer, &mut seen);
    let pm = t
        .post("/v1/payment_methods", "type=card&card[token]=tok_visa")
        .await;
    snap("payment_method", &pm, &mut seen);
    let as_acct = [("Stripe-Account", acct_id.as_str())];
    let (status, _, pi) = t
        .request(
            "POST",
            "/v1/payment_intents",
            Some(TEST_KEY),
            "amount=2000&currency=usd&payment_method=pm_card_bypassPending&confirm=true",
            &as_acct,
        )
        .await;
    assert_eq!(status, 200, "{pi:#}");
    snap("payment_intent", &pi, &mut seen);
    let (_, _, charge) = t
        .request(
            "GET",
            &format!("/v1/charges/{}", pi["latest_charge"].as_str().unwrap()),
            Some(TEST_KEY),
            "",
            &as_acct,
        )
        .await;
    snap("charge", &charge, &mut seen);
    let (_, _, txn) = t
        .request(
            "GET",
            &format!(
                "/v1/balance_transactions/{}",
                charge["balance_transaction"].as_str().unwrap()
            ),
            Some(TEST_KEY),
            "",
            &as_acct,
        )
        .await;
    snap("balance_transaction", &txn, &mut seen);
    let (_, _, method) = t
        .request(
            "GET",
            &format!(
                "/v1/payment_methods/{}",
                pi["payment_method"].as_str().unwrap()
            ),
            Some(TEST_KEY),
            "",
            &as_acct,
        )
        .await;
    assert_eq!(method["card"]["last4"], "0077", "{method:#}");
    let (status, _, declined) = t
        .request(
            "POST",
            "/v1/payment_intents",
            Some(TEST_KEY),
            "amount=500&currency=usd&payment_method=pm_card_chargeDeclined&confirm=true",
            &[],
        )
        .await;
    assert_eq!(status, 402);
    snap("card_error", &declined, &mut seen);
    let (_, _, balance) = t
        .request("GET", "/v1/balance", Some(TEST_KEY), "", &as_acct)
        .await;
    snap("balance", &balance, &mut seen);
    let (status, _, payout) = t
        .request(
            "POST",
            "/v1/payouts",
            Some(TEST_KEY),
            "amount=1000&currency=usd",
            &as_acct,
        )
        .await;
    assert_eq!(status, 200, "{payout:#}");
    snap("payout", &payout, &mut seen);

    // Every event the tour caused, as delivered and as listed.
    let mut deliveries = Vec::new();
    while let Ok(Some(r)) = tokio::time::timeout(Duration::from_millis(500), hooks.rx.recv()).await
    {
        let event = r.json();
        assert_stripe_shape(&event, "webhook payload");
        object_types(&event, &mut seen);
        deliveries.push(event);
    }
    let account_updated = deliveries
        .iter()
        .find(|e| e["type"] == "account.updated")
        .expect("account.updated was delivered");
    snap("event", account_updated, &mut seen);
    let (_, _, events) = t
        .request("GET", "/v1/events?limit=100", Some(TEST_KEY), "", &as_acct)
        .await;
    object_types(&events, &mut seen);

    for want in [
        "account",
        "balance",
        "bank_account",
        "card",
        "card#deleted",
        "charge",
        "customer",
        "event",
        "list",
        "payment_intent",
        "payment_method",
        "payout",
        "person",
        "webhook_endpoint",
    ] {
        assert!(seen.contains(want), "the tour never saw a {want}: {seen:?}");
    }
}

/// `compat/schema/extract.mjs --check`: the schema the server builds on is
/// what the pinned stripe-node declares (skipped only where npm is absent).
#[test]
fn schema_is_extracted_from_the_pinned_stripe_node() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if !root.join("compat/schema/node_modules/stripe").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "scripts/test.sh installs compat/schema; CI must run it"
        );
        eprintln!("skipped: compat/schema/node_modules is not installed");
        return;
    }
    let out = std::process::Command::new("node")
        .arg("compat/schema/extract.mjs")
        .arg("--check")
        .current_dir(&root)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
