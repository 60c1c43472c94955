//! Time that passes, driven by the platform's test clock over HTTP: funds
//! become available at their `available_on`, payouts arrive at their
//! `arrival_date`, uncaptured authorizations expire after seven days, and
//! webhook retries come due, each with the events a platform hears, when
//! `POST /switchboard/v1/clock/advance` answers. Live mode keeps real time.

use serde_json::Value;
use switchboard_core::retry::RetrySchedule;

use crate::support::*;

const DAY: i64 = 86_400;

async fn call(
    t: &TestNode,
    method: &str,
    path: &str,
    body: &str,
    acct: Option<&str>,
) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = acct.map(|a| ("Stripe-Account", a)).into_iter().collect();
    let (status, _, json) = t
        .request(method, path, Some(TEST_KEY), body, &headers)
        .await;
    (status, json)
}

async fn ok(t: &TestNode, method: &str, path: &str, body: &str, acct: Option<&str>) -> Value {
    let (status, json) = call(t, method, path, body, acct).await;
    assert_eq!(status, 200, "{method} {path} {body}: {json:#}");
    json
}

fn usd(balance: &Value, key: &str) -> i64 {
    balance[key]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["currency"] == "usd")
        .map(|e| e["amount"].as_i64().unwrap())
        .sum()
}

/// The next event of `kind` (skipping others).
async fn next_of(rx: &mut Receiver, kind: &str) -> Value {
    loop {
        let e = rx.next().await.json();
        if e["type"] == kind {
            return e;
        }
    }
}

#[tokio::test]
async fn the_test_clock_makes_funds_available_and_pays_payouts_out() {
    let t = TestNode::start().await;
    let mut connect = Receiver::start().await;
    t.post(
        "/v1/webhook_endpoints",
        &format!("url={}&enabled_events[]=*&connect=true", connect.url),
    )
    .await;
    let acct = t.post("/v1/accounts", "type=custom&country=US").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    t.post(
        &format!("/v1/accounts/{acct}/external_accounts"),
        "external_account=btok_us_verified",
    )
    .await;
    let clock = t.get("/switchboard/v1/clock").await;
    assert_eq!(
        (
            clock["offset_seconds"].as_i64(),
            clock["livemode"].as_bool()
        ),
        (Some(0), Some(false))
    );
    let start = clock["now"].as_i64().unwrap();

    let pi = ok(
        &t,
        "POST",
        "/v1/payment_intents",
        "amount=10000&currency=usd&payment_method=pm_card_visa&confirm=true",
        Some(&acct),
    )
    .await;
    let charge = ok(
        &t,
        "GET",
        &format!(
            "/v1/charges/{}?expand[]=balance_transaction",
            pi["latest_charge"].as_str().unwrap()
        ),
        "",
        Some(&acct),
    )
    .await;
    let txn = &charge["balance_transaction"];
    let net = txn["net"].as_i64().unwrap();
    let available_on = txn["available_on"].as_i64().unwrap();
    assert_eq!(
        (txn["status"].as_str(), available_on - start >= 2 * DAY - 1),
        (Some("pending"), true),
        "{txn:#}"
    );
    let bal = ok(&t, "GET", "/v1/balance", "", Some(&acct)).await;
    assert_eq!((usd(&bal, "available"), usd(&bal, "pending")), (0, net));

    // A day later the funds are still on their way.
    let moved = t.advance_clock(DAY).await;
    assert_eq!(moved["offset_seconds"], DAY);
    assert!(moved["now"].as_i64().unwrap() >= start + DAY);
    let bal = ok(&t, "GET", "/v1/balance", "", Some(&acct)).await;
    assert_eq!(usd(&bal, "available"), 0);
    // The second day makes them available: balance.available arrives without
    // anyone reading the balance, and the transaction says so.
    let moved = t.advance_clock(DAY).await;
    assert!(moved["timers_fired"].as_u64().unwrap() >= 1, "{moved:#}");
    let e = next_of(&mut connect, "balance.available").await;
    assert_eq!(e["account"], acct.as_str());
    assert_eq!(usd(&e["data"]["object"], "available"), net);
    assert!(
        e["request"]["id"].is_null(),
        "time passing is no request: {e:#}"
    );
    assert!(
        e["created"].as_i64().unwrap() >= available_on,
        "the event is dated on the test clock"
    );
    let txn = ok(
        &t,
        "GET",
        &format!("/v1/balance_transactions/{}", txn["id"].as_str().unwrap()),
        "",
        Some(&acct),
    )
    .await;
    assert_eq!(txn["status"], "available");

    // A payout is pending for two days, then paid.
    let po = ok(
        &t,
        "POST",
        "/v1/payouts",
        &format!("amount={net}&currency=usd"),
        Some(&acct),
    )
    .await;
    assert_eq!(po["status"], "pending");
    assert_eq!(
        po["arrival_date"].as_i64().unwrap() - po["created"].as_i64().unwrap(),
        2 * DAY
    );
    let (status, err) = call(
        &t,
        "POST",
        "/v1/payouts",
        "amount=1&currency=usd",
        Some(&acct),
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("balance_insufficient"))
    );
    t.advance_clock(2 * DAY).await;
    let paid = next_of(&mut connect, "payout.paid").await;
    assert_eq!(
        (
            paid["account"].as_str(),
            paid["data"]["object"]["id"].as_str()
        ),
        (Some(acct.as_str()), po["id"].as_str())
    );
    assert_eq!(paid["data"]["previous_attributes"]["status"], "pending");
    let po = ok(
        &t,
        "GET",
        &format!("/v1/payouts/{}", po["id"].as_str().unwrap()),
        "",
        Some(&acct),
    )
    .await;
    assert_eq!(po["status"], "paid");
    // Nothing is left to happen: another advance fires nothing.
    let moved = t.advance_clock(3 * DAY).await;
    assert_eq!(moved["timers_fired"], 0, "{moved:#}");
    // An instant payout arrives at once.
    ok(
        &t,
        "POST",
        "/v1/payment_intents",
        "amount=3000&currency=usd&payment_method=pm_card_bypassPending&confirm=true",
        Some(&acct),
    )
    .await;
    let instant = ok(
        &t,
        "POST",
        "/v1/payouts",
        "amount=1000&currency=usd&method=instant",
        Some(&acct),
    )
    .await;
    let instant = ok(
        &t,
        "GET",
        &format!("/v1/payouts/{}", instant["id"].as_str().unwrap()),
        "",
        Some(&acct),
    )
    .await;
    assert_eq!(instant["status"], "paid");
}

#[tokio::test]
async fn an_uncaptured_authorization_expires_after_seven_days() {
    let t = TestNode::start().await;
    let mut rx = Receiver::start().await;
    t.endpoint(&rx.url).await;
    let pi = t
        .post("/v1/payment_intents", "amount=2500&currency=usd&payment_method=pm_card_visa&capture_method=manual&confirm=true")
        .await;
    assert_eq!(pi["status"], "requires_capture");
    let captured_in_time = t
        .post("/v1/payment_intents", "amount=1500&currency=usd&payment_method=pm_card_visa&capture_method=manual&confirm=true")
        .await;
    t.advance_clock(6 * DAY).await;
    t.post(
        &format!(
            "/v1/payment_intents/{}/capture",
            captured_in_time["id"].as_str().unwrap()
        ),
        "",
    )
    .await;
    let still = t
        .get(&format!(
            "/v1/payment_intents/{}",
            pi["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(still["status"], "requires_capture");
    t.advance_clock(DAY).await;
    let expired = next_of(&mut rx, "charge.expired").await;
    assert_eq!(expired["data"]["object"]["id"], pi["latest_charge"]);
    let canceled = next_of(&mut rx, "payment_intent.canceled").await;
    assert_eq!(canceled["data"]["object"]["id"], pi["id"]);
    assert_eq!(
        canceled["data"]["object"]["cancellation_reason"],
        "automatic"
    );
    let pi = t
        .get(&format!(
            "/v1/payment_intents/{}",
            pi["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        (pi["status"].as_str(), pi["amount_capturable"].as_i64()),
        (Some("canceled"), Some(0))
    );
    let charge = t
        .get(&format!(
            "/v1/charges/{}",
            pi["latest_charge"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        (charge["captured"].as_bool(), charge["refunded"].as_bool()),
        (Some(false), Some(true))
    );
    // The one captured in time is untouched.
    let captured = t
        .get(&format!(
            "/v1/payment_intents/{}",
            captured_in_time["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(captured["status"], "succeeded");
}

#[tokio::test]
async fn advancing_the_clock_brings_webhook_retries_forward() {
    // Stripe's sandbox schedule: the first retry is ten minutes later.
    let t = TestNode::with(Options {
        retry: RetrySchedule::test(),
        ..Default::default()
    })
    .await;
    let mut rx = Receiver::scripted(vec![Reply::Status(500)]).await;
    t.endpoint(&rx.url).await;
    let cus = t.post("/v1/customers", "name=Retry").await;
    let first = rx.next().await;
    assert_eq!(first.json()["data"]["object"]["id"], cus["id"]);
    rx.assert_quiet(std::time::Duration::from_millis(300)).await;
    t.advance_clock(11 * 60).await;
    let retry = rx.next().await;
    assert_eq!(
        retry.json()["id"],
        first.json()["id"],
        "the same event, retried"
    );
}

#[tokio::test]
async fn only_the_test_clock_moves_and_only_forward() {
    let t = TestNode::start().await;
    let (status, _, err) = t
        .request(
            "POST",
            "/switchboard/v1/clock/advance",
            Some(LIVE_KEY),
            "seconds=60",
            &[],
        )
        .await;
    assert_eq!(
        (status, err["error"]["param"].as_str()),
        (400, Some("seconds")),
        "{err:#}"
    );
    let (_, _, live) = t
        .request("GET", "/switchboard/v1/clock", Some(LIVE_KEY), "", &[])
        .await;
    assert_eq!(
        (live["livemode"].as_bool(), live["offset_seconds"].as_i64()),
        (Some(true), Some(0))
    );
    for bad in [
        "",
        "seconds=0",
        "seconds=-5",
        "seconds=soon",
        "seconds=999999999999",
    ] {
        let (status, err) = call(&t, "POST", "/switchboard/v1/clock/advance", bad, None).await;
        assert_eq!(
            (status, err["error"]["param"].as_str()),
            (400, Some("seconds")),
            "{bad}: {err:#}"
        );
    }
    // A live object keeps real time while the test clock runs ahead.
    t.advance_clock(30 * DAY).await;
    let test_cus = t.post("/v1/customers", "").await;
    let (_, _, live_cus) = t
        .request("POST", "/v1/customers", Some(LIVE_KEY), "", &[])
        .await;
    assert!(
        test_cus["created"].as_i64().unwrap()
            >= live_cus["created"].as_i64().unwrap() + 30 * DAY - 5
    );
    // A connected account shares its platform's clock.
    let acct = t.post("/v1/accounts", "type=custom").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let clock = ok(&t, "GET", "/switchboard/v1/clock", "", Some(&acct)).await;
    assert_eq!(clock["offset_seconds"], 30 * DAY);
}
