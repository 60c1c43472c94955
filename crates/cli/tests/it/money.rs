//! Connect money movement end to end over HTTP: destination and direct
//! charges with application fees, transfers and reversals, refunds,
//! manual capture, disputes, 3-D Secure through the hosted page, and
//! pending funds becoming available as the clock passes. Every flow is
//! reconciled to the cent against the balance transactions of each account.

use serde_json::Value;

use crate::support::*;

async fn call(t: &TestNode, method: &str, path: &str, body: &str, acct: Option<&str>) -> Value {
    let headers: Vec<(&str, &str)> = acct.map(|a| ("Stripe-Account", a)).into_iter().collect();
    let (status, _, json) = t
        .request(method, path, Some(TEST_KEY), body, &headers)
        .await;
    assert_eq!(status, 200, "{method} {path} {body} as {acct:?}: {json:#}");
    json
}

/// (available, pending) in usd.
async fn balance(t: &TestNode, acct: Option<&str>) -> (i64, i64) {
    let b = call(t, "GET", "/v1/balance", "", acct).await;
    let usd = |k: &str| {
        b[k].as_array()
            .unwrap()
            .iter()
            .filter(|e| e["currency"] == "usd")
            .map(|e| e["amount"].as_i64().unwrap())
            .sum::<i64>()
    };
    (usd("available"), usd("pending"))
}

/// Every balance transaction of an account.
async fn transactions(t: &TestNode, acct: Option<&str>) -> Vec<Value> {
    call(t, "GET", "/v1/balance_transactions?limit=100", "", acct).await["data"]
        .as_array()
        .unwrap()
        .clone()
}

/// The account's balance is exactly the sum of its balance transactions.
async fn reconcile(t: &TestNode, acct: Option<&str>) -> i64 {
    let (available, pending) = balance(t, acct).await;
    let txns = transactions(t, acct).await;
    let net: i64 = txns.iter().map(|x| x["net"].as_i64().unwrap()).sum();
    for x in &txns {
        assert_eq!(
            x["net"].as_i64().unwrap(),
            x["amount"].as_i64().unwrap() - x["fee"].as_i64().unwrap(),
            "{x:#}"
        );
    }
    assert_eq!(available + pending, net, "{acct:?}: {txns:#?}");
    available + pending
}

async fn custom_account(t: &TestNode) -> String {
    call(t, "POST", "/v1/accounts", "type=custom&country=US", None).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

async fn events_until(rx: &mut Receiver, last: &str) -> Vec<Value> {
    let mut got = Vec::new();
    loop {
        let e = rx.next().await.json();
        let done = e["type"] == last;
        got.push(e);
        if done {
            return got;
        }
    }
}

#[tokio::test]
async fn destination_charge_with_fee_then_refund_reconciles_to_the_cent() {
    let t = TestNode::start().await;
    let acct = custom_account(&t).await;
    let mut platform_rx = Receiver::start().await;
    let mut connect_rx = Receiver::start().await;
    t.post(
        "/v1/webhook_endpoints",
        &format!("url={}&enabled_events[]=*", platform_rx.url),
    )
    .await;
    t.post(
        "/v1/webhook_endpoints",
        &format!("url={}&enabled_events[]=*&connect=true", connect_rx.url),
    )
    .await;

    let pi = t
        .post(
            "/v1/payment_intents",
            &format!("amount=10000&currency=usd&payment_method=pm_card_bypassPending&confirm=true&application_fee_amount=1230&transfer_data[destination]={acct}"),
        )
        .await;
    assert_eq!(pi["status"], "succeeded");
    let charge = t
        .get(&format!(
            "/v1/charges/{}",
            pi["latest_charge"].as_str().unwrap()
        ))
        .await;
    let transfer_id = charge["transfer"].as_str().unwrap().to_owned();
    let transfer = t.get(&format!("/v1/transfers/{transfer_id}")).await;
    assert_eq!(transfer["amount"], 8770, "amount minus the application fee");
    assert_eq!(transfer["destination"], acct.as_str());
    assert_eq!(transfer["source_transaction"], charge["id"]);
    let fee = t
        .get(&format!(
            "/v1/application_fees/{}",
            charge["application_fee"].as_str().unwrap()
        ))
        .await;
    assert_eq!(fee["amount"], 1230);
    assert_eq!(fee["account"], acct.as_str());
    // The connected account's payment for the transfer, in its own scope.
    let payment = call(
        &t,
        "GET",
        &format!(
            "/v1/charges/{}",
            transfer["destination_payment"].as_str().unwrap()
        ),
        "",
        Some(&acct),
    )
    .await;
    assert_eq!(payment["source_transfer"], transfer_id.as_str());
    let (status, _, _) = t
        .request(
            "GET",
            &format!("/v1/charges/{}", payment["id"].as_str().unwrap()),
            Some(TEST_KEY),
            "",
            &[],
        )
        .await;
    assert_eq!(
        status, 404,
        "the payment is the connected account's, not the platform's"
    );

    // Stripe's fee is 2.9 % + 30¢ = 320; the platform keeps 1230 - 320.
    assert_eq!(balance(&t, None).await, (910, 0));
    assert_eq!(balance(&t, Some(&acct)).await, (8770, 0));
    assert_eq!(reconcile(&t, None).await, 910);
    assert_eq!(reconcile(&t, Some(&acct)).await, 8770);
    let platform = events_until(&mut platform_rx, "payment_intent.succeeded").await;
    for expected in [
        "payment_intent.created",
        "transfer.created",
        "application_fee.created",
        "charge.succeeded",
    ] {
        assert!(
            types(&platform).contains(&expected),
            "{expected}: {:?}",
            types(&platform)
        );
    }
    let connect = connect_rx.next().await.json();
    assert_eq!(
        (connect["type"].as_str(), connect["account"].as_str()),
        (Some("balance.available"), Some(acct.as_str()))
    );

    // A full refund taking the transfer back: the customer gets 10000, the
    // connected account gives back its 8770, the platform is out Stripe's fee.
    let refund = t
        .post(
            "/v1/refunds",
            &format!(
                "payment_intent={}&reverse_transfer=true&refund_application_fee=true",
                pi["id"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(refund["status"], "succeeded");
    assert_eq!(refund["amount"], 10000);
    let reversal = refund["transfer_reversal"].as_str().unwrap();
    let transfer = t.get(&format!("/v1/transfers/{transfer_id}")).await;
    assert_eq!(transfer["amount_reversed"], 8770);
    assert_eq!(transfer["reversed"], true);
    assert_eq!(transfer["reversals"]["data"][0]["id"], reversal);
    let charge = t
        .get(&format!("/v1/charges/{}", charge["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        (
            charge["refunded"].as_bool(),
            charge["amount_refunded"].as_i64()
        ),
        (Some(true), Some(10000))
    );
    assert_eq!(reconcile(&t, None).await, -320);
    assert_eq!(reconcile(&t, Some(&acct)).await, 0);
    let after = events_until(&mut platform_rx, "charge.refunded").await;
    assert!(
        types(&after).contains(&"transfer.reversed"),
        "{:?}",
        types(&after)
    );
    assert!(
        types(&after).contains(&"refund.created"),
        "{:?}",
        types(&after)
    );
    // Refunding again is Stripe's error, not a second refund.
    let (status, _, err) = t
        .request(
            "POST",
            "/v1/refunds",
            Some(TEST_KEY),
            &format!("charge={}", charge["id"].as_str().unwrap()),
            &[],
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("charge_already_refunded"))
    );
}

#[tokio::test]
async fn direct_charge_fee_and_pending_funds_that_become_available() {
    let t = TestNode::with(Options {
        manual_clock: true,
        ..Default::default()
    })
    .await;
    let acct = custom_account(&t).await;
    let pi = call(
        &t,
        "POST",
        "/v1/payment_intents",
        "amount=2000&currency=usd&payment_method=pm_card_visa&confirm=true&application_fee_amount=200",
        Some(&acct),
    )
    .await;
    assert_eq!(pi["status"], "succeeded");
    assert!(
        pi["application"].as_str().unwrap().starts_with("ca_"),
        "{pi:#}"
    );
    let charge = call(
        &t,
        "GET",
        &format!("/v1/charges/{}", pi["latest_charge"].as_str().unwrap()),
        "",
        Some(&acct),
    )
    .await;
    let txn = call(
        &t,
        "GET",
        &format!(
            "/v1/balance_transactions/{}",
            charge["balance_transaction"].as_str().unwrap()
        ),
        "",
        Some(&acct),
    )
    .await;
    assert_eq!(
        (
            txn["fee"].as_i64(),
            txn["net"].as_i64(),
            txn["status"].as_str()
        ),
        (Some(288), Some(1712), Some("pending"))
    );
    let kinds: Vec<&str> = txn["fee_details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["stripe_fee", "application_fee"]);
    // Card funds wait two days, on both sides.
    assert_eq!(balance(&t, Some(&acct)).await, (0, 1712));
    assert_eq!(balance(&t, None).await, (0, 200));
    t.advance(2 * 86_400 * 1000 - 1000);
    assert_eq!(balance(&t, Some(&acct)).await, (0, 1712), "not yet");
    t.advance(1000);
    assert_eq!(balance(&t, Some(&acct)).await, (1712, 0));
    assert_eq!(balance(&t, None).await, (200, 0));
    let txn = call(
        &t,
        "GET",
        &format!("/v1/balance_transactions/{}", txn["id"].as_str().unwrap()),
        "",
        Some(&acct),
    )
    .await;
    assert_eq!(txn["status"], "available");
    let announced = call(
        &t,
        "GET",
        "/v1/events?type=balance.available",
        "",
        Some(&acct),
    )
    .await;
    assert_eq!(
        announced["data"].as_array().unwrap().len(),
        1,
        "{announced:#}"
    );

    // A partial refund returns the fee's share to the connected account.
    let refund = call(
        &t,
        "POST",
        "/v1/refunds",
        &format!(
            "charge={}&amount=1000&refund_application_fee=true",
            charge["id"].as_str().unwrap()
        ),
        Some(&acct),
    )
    .await;
    assert_eq!(refund["amount"], 1000);
    let fee = t
        .get(&format!(
            "/v1/application_fees/{}",
            charge["application_fee"].as_str().unwrap()
        ))
        .await;
    assert_eq!(fee["amount_refunded"], 100);
    assert_eq!(reconcile(&t, Some(&acct)).await, 1712 - 1000 + 100);
    assert_eq!(reconcile(&t, None).await, 100);
}

#[tokio::test]
async fn transfers_need_available_funds_and_reversals_give_them_back() {
    let t = TestNode::start().await;
    let acct = custom_account(&t).await;
    let (status, _, err) = t
        .request(
            "POST",
            "/v1/transfers",
            Some(TEST_KEY),
            &format!("amount=500&currency=usd&destination={acct}"),
            &[],
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("balance_insufficient"))
    );
    t.post(
        "/v1/payment_intents",
        "amount=1000&currency=usd&payment_method=pm_card_bypassPending&confirm=true",
    )
    .await;
    let tr = t
        .post(
            "/v1/transfers",
            &format!("amount=500&currency=usd&destination={acct}&metadata[order]=42"),
        )
        .await;
    assert_eq!(tr["metadata"]["order"], "42");
    let r = t
        .post(
            &format!("/v1/transfers/{}/reversals", tr["id"].as_str().unwrap()),
            "amount=200",
        )
        .await;
    assert_eq!(r["amount"], 200);
    let (status, _, err) = t
        .request(
            "POST",
            &format!("/v1/transfers/{}/reversals", tr["id"].as_str().unwrap()),
            Some(TEST_KEY),
            "amount=400",
            &[],
        )
        .await;
    assert_eq!(
        (status, err["error"]["param"].as_str()),
        (400, Some("amount"))
    );
    let listed = t
        .get(&format!(
            "/v1/transfers/{}/reversals",
            tr["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(reconcile(&t, Some(&acct)).await, 300);
    assert_eq!(reconcile(&t, None).await, 1000 - 59 - 500 + 200);
    // A connected account cannot transfer, nor see the platform's transfers.
    let (status, _, _) = t
        .request(
            "GET",
            &format!("/v1/transfers/{}", tr["id"].as_str().unwrap()),
            Some(TEST_KEY),
            "",
            &[("Stripe-Account", &acct)],
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn manual_capture_disputes_and_three_d_secure() {
    let t = TestNode::start().await;
    // Authorize, then capture part of it.
    let pi = t
        .post("/v1/payment_intents", "amount=3000&currency=usd&payment_method=pm_card_visa&confirm=true&capture_method=manual")
        .await;
    assert_eq!(
        (pi["status"].as_str(), pi["amount_capturable"].as_i64()),
        (Some("requires_capture"), Some(3000))
    );
    assert_eq!(
        balance(&t, None).await,
        (0, 0),
        "nothing moves before capture"
    );
    let id = pi["id"].as_str().unwrap();
    let pi = t
        .post(
            &format!("/v1/payment_intents/{id}/capture"),
            "amount_to_capture=2000",
        )
        .await;
    assert_eq!(
        (pi["status"].as_str(), pi["amount_received"].as_i64()),
        (Some("succeeded"), Some(2000))
    );
    let charge = t
        .get(&format!(
            "/v1/charges/{}",
            pi["latest_charge"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        (
            charge["amount_captured"].as_i64(),
            charge["amount_refunded"].as_i64()
        ),
        (Some(2000), Some(1000))
    );
    assert_eq!(reconcile(&t, None).await, 2000 - 88);

    // A chargeback withdraws the amount and the dispute fee; winning evidence reinstates the amount.
    let pi = t
        .post(
            "/v1/payment_intents",
            "amount=1000&currency=usd&payment_method=pm_card_createDispute&confirm=true",
        )
        .await;
    let disputes = t
        .get(&format!(
            "/v1/disputes?payment_intent={}",
            pi["id"].as_str().unwrap()
        ))
        .await;
    let dispute = &disputes["data"][0];
    assert_eq!(dispute["status"], "needs_response");
    assert_eq!(
        reconcile(&t, None).await,
        2000 - 88 + 1000 - 59 - 1000 - 1500
    );
    let won = t
        .post(
            &format!("/v1/disputes/{}", dispute["id"].as_str().unwrap()),
            "evidence[uncategorized_text]=winning_evidence",
        )
        .await;
    assert_eq!(won["status"], "won");
    assert_eq!(reconcile(&t, None).await, 2000 - 88 + 1000 - 59 - 1500);
    let closed = t.get("/v1/events?type=charge.dispute.closed").await;
    assert_eq!(closed["data"].as_array().unwrap().len(), 1);

    // 3-D Secure: the PaymentIntent waits for the hosted page.
    let pi = t
        .post(
            "/v1/payment_intents",
            "amount=1500&currency=usd&payment_method=pm_card_authenticationRequired&confirm=true&return_url=https://example.com/done",
        )
        .await;
    assert_eq!(pi["status"], "requires_action");
    let url = pi["next_action"]["redirect_to_url"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(url.starts_with(&t.base), "{url}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("Complete authentication") && page.contains(pi["id"].as_str().unwrap()),
        "{page}"
    );
    // A wrong client secret is refused.
    let forged = url.replace("client_secret=", "client_secret=x");
    assert_eq!(http.get(&forged).send().await.unwrap().status(), 404);
    let done = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("outcome=complete")
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    let location = done.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("https://example.com/done?payment_intent=pi_")
            && location.ends_with("redirect_status=succeeded"),
        "{location}"
    );
    let pi = t
        .get(&format!(
            "/v1/payment_intents/{}",
            pi["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(pi["status"], "succeeded");
    assert!(pi.get("_private").is_none());

    // Failing authentication returns it to requires_payment_method.
    let pi = t
        .post(
            "/v1/payment_intents",
            "amount=1500&currency=usd&payment_method=pm_card_authenticationRequired&confirm=true",
        )
        .await;
    let url = pi["next_action"]["redirect_to_url"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let failed = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("outcome=fail")
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 200);
    let pi = t
        .get(&format!(
            "/v1/payment_intents/{}",
            pi["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(pi["status"], "requires_payment_method");
    assert_eq!(
        pi["last_payment_error"]["code"],
        "payment_intent_authentication_failure"
    );
}

/// The balance of `acct` in one currency: (available, pending).
async fn balance_in(t: &TestNode, acct: Option<&str>, currency: &str) -> (i64, i64) {
    let b = call(t, "GET", "/v1/balance", "", acct).await;
    let sum = |k: &str| {
        b[k].as_array()
            .unwrap()
            .iter()
            .filter(|e| e["currency"] == currency)
            .map(|e| e["amount"].as_i64().unwrap())
            .sum::<i64>()
    };
    (sum("available"), sum("pending"))
}

async fn next_of(rx: &mut Receiver, kind: &str) -> Value {
    loop {
        let e = rx.next().await.json();
        if e["type"] == kind {
            return e;
        }
    }
}

#[tokio::test]
async fn bank_debits_settle_as_their_test_iban_says() {
    let t = TestNode::start().await;
    let mut rx = Receiver::start().await;
    t.endpoint(&rx.url).await;
    let debit = |iban: &'static str| {
        let t = &t;
        async move {
            let pm = t.post("/v1/payment_methods", &format!("type=sepa_debit&sepa_debit[iban]={iban}&billing_details[name]=Jenny&billing_details[email]=jenny%40example.com")).await;
            t.post(
                "/v1/payment_intents",
                &format!("amount=10000&currency=eur&payment_method_types[]=sepa_debit&payment_method={}&confirm=true", pm["id"].as_str().unwrap()),
            )
            .await
        }
    };
    // …3201 succeeds: processing, then the bank's answer a moment later.
    let ok = debit("AT611904300234573201").await;
    assert_eq!(ok["status"], "processing");
    let e = next_of(&mut rx, "payment_intent.succeeded").await;
    assert_eq!(e["data"]["object"]["id"], ok["id"]);
    assert!(
        e["request"]["id"].is_null(),
        "the bank's answer is no request"
    );
    let charge = t
        .get(&format!(
            "/v1/charges/{}?expand[]=balance_transaction",
            e["data"]["object"]["latest_charge"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        (charge["status"].as_str(), charge["paid"].as_bool()),
        (Some("succeeded"), Some(true))
    );
    assert_eq!(charge["balance_transaction"]["fee"], 80, "SEPA's 0.8 %");
    assert_eq!(balance_in(&t, None, "eur").await, (0, 10_000 - 80));

    // …3202 fails.
    let bad = debit("AT861904300235473202").await;
    assert_eq!(bad["status"], "processing");
    let failed = next_of(&mut rx, "payment_intent.payment_failed").await;
    assert_eq!(failed["data"]["object"]["id"], bad["id"]);
    assert_eq!(
        failed["data"]["object"]["status"],
        "requires_payment_method"
    );
    assert_eq!(
        failed["data"]["object"]["last_payment_error"]["code"],
        "generic_could_not_process"
    );

    // …3204 answers after three minutes, which the test clock brings now.
    let slow = debit("AT321904300235473204").await;
    let pi = t
        .get(&format!(
            "/v1/payment_intents/{}",
            slow["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(pi["status"], "processing");
    t.advance_clock(180).await;
    let pi = t
        .get(&format!(
            "/v1/payment_intents/{}",
            slow["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(pi["status"], "succeeded");
    assert_eq!(balance_in(&t, None, "eur").await, (0, 2 * (10_000 - 80)));
    let net: i64 = transactions(&t, None)
        .await
        .iter()
        .filter(|x| x["currency"] == "eur")
        .map(|x| x["net"].as_i64().unwrap())
        .sum();
    assert_eq!(net, 2 * (10_000 - 80), "the balance is its transactions");
}

#[tokio::test]
async fn a_customer_balance_payment_reaches_the_merchant_when_funded() {
    let t = TestNode::start().await;
    let mut rx = Receiver::start().await;
    t.endpoint(&rx.url).await;
    let cus = t.post("/v1/customers", "name=Wire").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pi = t
        .post(
            "/v1/payment_intents",
            &format!("amount=10000&currency=usd&customer={cus}&payment_method_types[]=customer_balance&payment_method_data[type]=customer_balance&payment_method_options[customer_balance][funding_type]=bank_transfer&confirm=true"),
        )
        .await;
    assert_eq!(pi["status"], "requires_action");
    t.post(
        &format!("/v1/test_helpers/customers/{cus}/fund_cash_balance"),
        "amount=4000&currency=usd",
    )
    .await;
    assert_eq!(
        balance_in(&t, None, "usd").await,
        (0, 0),
        "partly funded: nothing for the merchant yet"
    );
    t.post(
        &format!("/v1/test_helpers/customers/{cus}/fund_cash_balance"),
        "amount=6000&currency=usd",
    )
    .await;
    let charge = next_of(&mut rx, "charge.succeeded").await;
    assert_eq!(
        charge["data"]["object"]["payment_method_details"]["type"],
        "customer_balance"
    );
    let paid = next_of(&mut rx, "payment_intent.succeeded").await;
    assert_eq!(paid["data"]["object"]["id"], pi["id"]);
    assert_eq!(
        paid["data"]["object"]["latest_charge"],
        charge["data"]["object"]["id"]
    );
    // Bank transfers are available at once, less 0.5 %.
    assert_eq!(balance_in(&t, None, "usd").await, (10_000 - 50, 0));
    reconcile(&t, None).await;
}
