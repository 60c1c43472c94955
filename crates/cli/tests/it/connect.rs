//! Connect: connected accounts, `Stripe-Account`, Connect endpoints, livemode
//! routing, ownership, deauthorization and the emulated money movements.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

/// A request acting as a connected account.
async fn as_account(
    t: &TestNode,
    key: &str,
    acct: &str,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, Value) {
    let (status, _, json) = t
        .request(method, path, Some(key), body, &[("Stripe-Account", acct)])
        .await;
    (status, json)
}

async fn account(t: &TestNode, key: &str, params: &str) -> String {
    let (status, _, acct) = t
        .request("POST", "/v1/accounts", Some(key), params, &[])
        .await;
    assert_eq!(status, 200, "{acct:#}");
    acct["id"].as_str().unwrap().to_owned()
}

async fn endpoint(t: &TestNode, key: &str, url: &str, connect: bool) -> String {
    let (status, _, we) = t
        .request(
            "POST",
            "/v1/webhook_endpoints",
            Some(key),
            &format!("url={url}&enabled_events[]=*&connect={connect}"),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{we:#}");
    we["secret"].as_str().unwrap().to_owned()
}

/// Collects (type, account, livemode) of everything a receiver gets until quiet.
async fn drain(rx: &mut Receiver) -> Vec<(String, Option<String>, bool)> {
    let mut out = Vec::new();
    while let Ok(Some(r)) = tokio::time::timeout(Duration::from_millis(400), rx.rx.recv()).await {
        let e = r.json();
        out.push((
            e["type"].as_str().unwrap().into(),
            e["account"].as_str().map(String::from),
            e["livemode"].as_bool().unwrap(),
        ));
    }
    out.sort();
    out
}

#[tokio::test]
async fn routing_matrix_of_account_and_connect_endpoints_across_modes() {
    let t = TestNode::start().await;
    let mut test_account = Receiver::start().await;
    let mut test_connect = Receiver::start().await;
    let mut live_account = Receiver::start().await;
    let mut live_connect = Receiver::start().await;
    endpoint(&t, TEST_KEY, &test_account.url, false).await;
    endpoint(&t, TEST_KEY, &test_connect.url, true).await;
    endpoint(&t, LIVE_KEY, &live_account.url, false).await;
    endpoint(&t, LIVE_KEY, &live_connect.url, true).await;
    let test_acct = account(&t, TEST_KEY, "type=custom").await;
    let live_acct = account(&t, LIVE_KEY, "type=express").await;

    // The platform's own events, then events on connected accounts, in both modes.
    t.request(
        "POST",
        "/v1/customers",
        Some(TEST_KEY),
        "name=platform-test",
        &[],
    )
    .await;
    t.request(
        "POST",
        "/v1/customers",
        Some(LIVE_KEY),
        "name=platform-live",
        &[],
    )
    .await;
    assert_eq!(
        as_account(&t, TEST_KEY, &test_acct, "POST", "/v1/customers", "name=c")
            .await
            .0,
        200
    );
    assert_eq!(
        as_account(&t, LIVE_KEY, &live_acct, "POST", "/v1/customers", "name=c")
            .await
            .0,
        200
    );

    let ev =
        |acct: Option<&str>, live| ("customer.created".to_string(), acct.map(String::from), live);
    assert_eq!(drain(&mut test_account).await, [ev(None, false)]);
    assert_eq!(drain(&mut live_account).await, [ev(None, true)]);
    assert_eq!(
        drain(&mut test_connect).await,
        [ev(Some(&test_acct), false)]
    );
    let mut both = vec![ev(Some(&test_acct), false), ev(Some(&live_acct), true)];
    both.sort();
    assert_eq!(
        drain(&mut live_connect).await,
        both,
        "live Connect endpoints get test and live connected events"
    );

    // A test connected account does not exist in live mode.
    assert_eq!(
        as_account(&t, LIVE_KEY, &test_acct, "GET", "/v1/customers", "")
            .await
            .0,
        403
    );
}

#[tokio::test]
async fn connected_objects_are_only_reachable_as_that_account() {
    let t = TestNode::start().await;
    let acct = account(&t, TEST_KEY, "type=standard").await;
    let (_, cus) = as_account(&t, TEST_KEY, &acct, "POST", "/v1/customers", "name=owned").await;
    let id = cus["id"].as_str().unwrap();
    let (status, _, err) = t
        .request(
            "GET",
            &format!("/v1/customers/{id}"),
            Some(TEST_KEY),
            "",
            &[],
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["message"], format!("No such customer: '{id}'"));
    assert_eq!(err["error"]["code"], "resource_missing");
    assert_eq!(
        as_account(
            &t,
            TEST_KEY,
            &acct,
            "GET",
            &format!("/v1/customers/{id}"),
            ""
        )
        .await,
        (200, cus.clone())
    );

    // The connected account's event is fetched as that account, not as the platform.
    let (_, events) = as_account(&t, TEST_KEY, &acct, "GET", "/v1/events", "").await;
    let event = &events["data"][0];
    assert_eq!(
        (event["account"].as_str(), event["type"].as_str()),
        (Some(acct.as_str()), Some("customer.created"))
    );
    let (status, _, _) = t
        .request(
            "GET",
            &format!("/v1/events/{}", event["id"].as_str().unwrap()),
            Some(TEST_KEY),
            "",
            &[],
        )
        .await;
    assert_eq!(status, 404);
    assert!(
        t.get("/v1/events").await["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // GET /v1/account answers for whoever is calling.
    assert_eq!(
        as_account(&t, TEST_KEY, &acct, "GET", "/v1/account", "")
            .await
            .1["id"],
        acct.as_str()
    );
    assert_eq!(
        t.get("/v1/account").await["id"],
        t.node().platform.id.as_str()
    );

    // Another platform cannot act as this account at all.
    let other = switchboard::new_platform(0);
    t.node().store.create_platform(other.clone()).await.unwrap();
    assert_eq!(
        as_account(
            &t,
            &other.test_key,
            &acct,
            "GET",
            &format!("/v1/customers/{id}"),
            ""
        )
        .await
        .0,
        403
    );
    let (status, _, _) = t
        .request(
            "GET",
            &format!("/v1/accounts/{acct}"),
            Some(&other.test_key),
            "",
            &[],
        )
        .await;
    assert_eq!(
        status, 403,
        "Stripe answers a permission error for accounts out of reach"
    );
}

#[tokio::test]
async fn deauthorization_notifies_connect_endpoints_and_revokes_access() {
    let t = TestNode::start().await;
    let mut connect = Receiver::start().await;
    let secret = endpoint(&t, TEST_KEY, &connect.url, true).await;
    let acct = account(&t, TEST_KEY, "type=standard").await;
    let client_id = t.node().platform.client_id.clone();

    let (status, _, err) = t
        .request(
            "POST",
            "/oauth/deauthorize",
            Some(TEST_KEY),
            &format!("client_id=ca_wrong&stripe_user_id={acct}"),
            &[],
        )
        .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (401, Some("invalid_client"))
    );

    let (status, _, resp) = t
        .request(
            "POST",
            "/oauth/deauthorize",
            Some(TEST_KEY),
            &format!("client_id={client_id}&stripe_user_id={acct}"),
            &[],
        )
        .await;
    assert_eq!((status, resp), (200, json!({"stripe_user_id": acct})));
    let got = connect.next().await;
    let event = switchboard_receiver::construct_event_at(
        &got.body,
        got.signature(),
        &secret,
        300,
        t.clock.now(),
    )
    .unwrap();
    assert_eq!(event.event_type, "account.application.deauthorized");
    assert_eq!(event.account.as_deref(), Some(acct.as_str()));
    assert_eq!(
        event.data.object_value().unwrap(),
        json!({"id": client_id, "object": "application", "name": "Switchboard platform"})
    );

    let (status, err) = as_account(&t, TEST_KEY, &acct, "GET", "/v1/customers", "").await;
    assert_eq!(status, 403, "{err}");

    // Deleting a Standard account disconnects it the same way.
    let other = account(&t, TEST_KEY, "type=standard").await;
    let (status, _, _) = t
        .request(
            "DELETE",
            &format!("/v1/accounts/{other}"),
            Some(TEST_KEY),
            "",
            &[],
        )
        .await;
    assert_eq!(status, 200);
    let got = connect.next().await.json();
    assert_eq!(
        (got["type"].as_str(), got["account"].as_str()),
        (
            Some("account.application.deauthorized"),
            Some(other.as_str())
        )
    );
}

#[tokio::test]
async fn persons_and_external_accounts_drive_requirements_and_events() {
    let t = TestNode::start().await;
    let mut connect = Receiver::start().await;
    endpoint(&t, TEST_KEY, &connect.url, true).await;
    let acct = account(
        &t,
        TEST_KEY,
        "controller[stripe_dashboard][type]=none&controller[fees][payer]=application&controller[losses][payments]=application&controller[requirement_collection]=application&business_type=company&company[name]=Acme&tos_acceptance[date]=1700000000&tos_acceptance[ip]=127.0.0.1&capabilities[card_payments][requested]=true",
    )
    .await;
    let created = t.get(&format!("/v1/accounts/{acct}")).await;
    assert_eq!(created["type"], "custom");
    assert_eq!(created["charges_enabled"], false);
    assert_eq!(
        created["requirements"]["currently_due"],
        json!([
            "external_account",
            "representative.first_name",
            "representative.last_name"
        ])
    );

    let person = t
        .post(&format!("/v1/accounts/{acct}/persons"), "first_name=Jo&relationship[representative]=true&dob[day]=1&dob[month]=1&dob[year]=1901")
        .await;
    t.post(
        &format!(
            "/v1/accounts/{acct}/persons/{}",
            person["id"].as_str().unwrap()
        ),
        "last_name=Lee",
    )
    .await;
    let ba = t
        .post(
            &format!("/v1/accounts/{acct}/external_accounts"),
            "external_account[object]=bank_account&external_account[country]=US&external_account[currency]=usd&external_account[routing_number]=110000000&external_account[account_number]=000123456789",
        )
        .await;
    assert_eq!(
        (ba["last4"].as_str(), ba["default_for_currency"].as_bool()),
        (Some("6789"), Some(true))
    );
    assert!(
        ba.get("_private").is_none(),
        "the full account number never leaves the server"
    );
    t.post(
        &format!(
            "/v1/accounts/{acct}/external_accounts/{}",
            ba["id"].as_str().unwrap()
        ),
        "account_holder_name=Acme",
    )
    .await;

    let mut seen = Vec::new();
    while let Ok(Some(r)) =
        tokio::time::timeout(Duration::from_millis(400), connect.rx.recv()).await
    {
        let e = r.json();
        assert_eq!(e["account"], acct.as_str());
        seen.push((e["type"].as_str().unwrap().to_owned(), e));
    }
    let types: Vec<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
    for want in [
        "person.created",
        "person.updated",
        "account.external_account.created",
        "account.external_account.updated",
        "account.updated",
    ] {
        assert!(types.contains(&want), "missing {want} in {types:?}");
    }
    let person_updated = &seen.iter().find(|(t, _)| t == "person.updated").unwrap().1;
    assert_eq!(
        person_updated["data"]["previous_attributes"],
        json!({"last_name": null, "requirements": {"currently_due": ["last_name"], "eventually_due": ["last_name"]}, "verification": {"status": "unverified"}})
    );
    // The update that completed the requirements enabled charges and said so.
    let enabling = seen
        .iter()
        .find(|(t, e)| {
            t == "account.updated" && e["data"]["previous_attributes"]["charges_enabled"] == false
        })
        .expect("an account.updated that enabled charges");
    assert_eq!(enabling.1["data"]["object"]["charges_enabled"], true);
    assert_eq!(
        enabling.1["data"]["object"]["requirements"]["currently_due"],
        json!([])
    );
    let now = t.get(&format!("/v1/accounts/{acct}")).await;
    assert_eq!(now["requirements"]["currently_due"], json!([]));
    assert_eq!(now["capabilities"]["card_payments"], "active");
    assert_eq!(now["external_accounts"]["data"][0]["id"], ba["id"]);
}

#[tokio::test]
async fn payments_balance_and_the_payout_failure_chain() {
    let t = TestNode::start().await;
    let mut connect = Receiver::start().await;
    endpoint(&t, TEST_KEY, &connect.url, true).await;
    let acct = account(&t, TEST_KEY, "type=express").await;
    let failing = t
        .post(
            &format!("/v1/accounts/{acct}/external_accounts"),
            "external_account=btok_us_verified_noAccount",
        )
        .await;

    // A direct charge that skips the pending balance.
    let (status, pi) = as_account(
        &t,
        TEST_KEY,
        &acct,
        "POST",
        "/v1/payment_intents",
        "amount=2000&currency=usd&payment_method=pm_card_bypassPending&confirm=true",
    )
    .await;
    assert_eq!(
        (status, pi["status"].as_str()),
        (200, Some("succeeded")),
        "{pi:#}"
    );
    let (_, bal) = as_account(&t, TEST_KEY, &acct, "GET", "/v1/balance", "").await;
    assert_eq!(bal["available"][0]["amount"], 2000 - 88);
    // Platform balance is untouched.
    assert_eq!(t.get("/v1/balance").await["available"][0]["amount"], 0);

    // A card charge lands in pending; a declined card is a 402 whose events still happen.
    let (_, pending) = as_account(
        &t,
        TEST_KEY,
        &acct,
        "POST",
        "/v1/payment_intents",
        "amount=1000&currency=usd&payment_method=pm_card_visa",
    )
    .await;
    assert_eq!(pending["status"], "requires_confirmation");
    let (status, confirmed) = as_account(
        &t,
        TEST_KEY,
        &acct,
        "POST",
        &format!(
            "/v1/payment_intents/{}/confirm",
            pending["id"].as_str().unwrap()
        ),
        "",
    )
    .await;
    assert_eq!(
        (status, confirmed["status"].as_str()),
        (200, Some("succeeded"))
    );
    let (status, declined) = as_account(
        &t,
        TEST_KEY,
        &acct,
        "POST",
        "/v1/payment_intents",
        "amount=500&currency=usd&payment_method=pm_card_chargeDeclined&confirm=true",
    )
    .await;
    assert_eq!(
        (
            status,
            declined["error"]["type"].as_str(),
            declined["error"]["decline_code"].as_str()
        ),
        (402, Some("card_error"), Some("generic_decline"))
    );
    let (_, bal) = as_account(&t, TEST_KEY, &acct, "GET", "/v1/balance", "").await;
    assert_eq!(
        (
            bal["available"][0]["amount"].as_i64(),
            bal["pending"][0]["amount"].as_i64()
        ),
        (Some(1912), Some(1000 - 59))
    );

    // Paying out to the failing bank: payout.failed, the bank account errors, later payouts are refused.
    let (status, payout) = as_account(
        &t,
        TEST_KEY,
        &acct,
        "POST",
        "/v1/payouts",
        "amount=1000&currency=usd",
    )
    .await;
    assert_eq!(
        (status, payout["status"].as_str()),
        (200, Some("pending")),
        "{payout:#}"
    );
    // The bank refuses it when it arrives, two days later.
    t.advance_clock(2 * 86_400).await;
    let (_, payout_now) = as_account(
        &t,
        TEST_KEY,
        &acct,
        "GET",
        &format!("/v1/payouts/{}", payout["id"].as_str().unwrap()),
        "",
    )
    .await;
    assert_eq!(
        (
            payout_now["status"].as_str(),
            payout_now["failure_code"].as_str()
        ),
        (Some("failed"), Some("no_account"))
    );
    let ea = t
        .get(&format!(
            "/v1/accounts/{acct}/external_accounts/{}",
            failing["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(ea["status"], "errored");
    let (status, refused) = as_account(
        &t,
        TEST_KEY,
        &acct,
        "POST",
        "/v1/payouts",
        "amount=100&currency=usd",
    )
    .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (400, Some("bank_account_unusable"))
    );
    let (_, bal) = as_account(&t, TEST_KEY, &acct, "GET", "/v1/balance", "").await;
    assert_eq!(
        (
            bal["available"][0]["amount"].as_i64(),
            bal["pending"][0]["amount"].as_i64()
        ),
        (Some(1912 + 941), Some(0)),
        "a failed payout returns the funds; the card charge's became available in the two days"
    );

    // A new default bank account makes payouts work again.
    t.post(
        &format!("/v1/accounts/{acct}/external_accounts"),
        "external_account=btok_us_verified&default_for_currency=true",
    )
    .await;
    let (status, ok) = as_account(
        &t,
        TEST_KEY,
        &acct,
        "POST",
        "/v1/payouts",
        "amount=900&currency=usd",
    )
    .await;
    assert_eq!(status, 200, "{ok:#}");
    assert_eq!(ok["status"], "pending");
    t.advance_clock(2 * 86_400).await;
    let (_, paid) = as_account(
        &t,
        TEST_KEY,
        &acct,
        "GET",
        &format!("/v1/payouts/{}", ok["id"].as_str().unwrap()),
        "",
    )
    .await;
    assert_eq!(paid["status"], "paid");
    let (status, too_much) = as_account(
        &t,
        TEST_KEY,
        &acct,
        "POST",
        "/v1/payouts",
        "amount=999999&currency=usd",
    )
    .await;
    assert_eq!(
        (status, too_much["error"]["code"].as_str()),
        (400, Some("balance_insufficient"))
    );

    let got = drain(&mut connect).await;
    let acct_s = Some(acct.clone());
    for want in [
        "account.external_account.created",
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "balance.available",
        "charge.failed",
        "payment_intent.payment_failed",
        "payout.created",
        "payout.failed",
        "account.external_account.updated",
        "payout.paid",
    ] {
        assert!(
            got.iter()
                .any(|(t, a, live)| t == want && *a == acct_s && !live),
            "missing {want} in {got:?}"
        );
    }
    assert!(got.iter().all(|(_, a, _)| *a == acct_s));
}

/// The list filters Stripe documents narrow lists (and unknown ones are refused).
#[tokio::test]
async fn list_filters() {
    let t = TestNode::start().await;
    t.post("/v1/customers", "email=a%40x.test").await;
    t.post("/v1/customers", "email=b%40x.test").await;
    let found = t.get("/v1/customers?email=b%40x.test").await;
    assert_eq!(found["data"].as_array().unwrap().len(), 1);
    assert_eq!(found["data"][0]["email"], "b@x.test");

    let acct = account(&t, TEST_KEY, "type=custom").await;
    t.post(
        &format!("/v1/accounts/{acct}/persons"),
        "first_name=Rep&relationship[representative]=true",
    )
    .await;
    t.post(
        &format!("/v1/accounts/{acct}/persons"),
        "first_name=Owner&relationship[owner]=true",
    )
    .await;
    let reps = t
        .get(&format!(
            "/v1/accounts/{acct}/persons?relationship[representative]=true"
        ))
        .await;
    let names: Vec<&str> = reps["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["first_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Rep"]);
    let (status, _, err) = t
        .request(
            "GET",
            &format!("/v1/accounts/{acct}/persons?relationship[boss]=true"),
            Some(TEST_KEY),
            "",
            &[],
        )
        .await;
    assert_eq!(
        (status, err["error"]["param"].as_str()),
        (400, Some("relationship[boss]"))
    );

    t.post(
        &format!("/v1/accounts/{acct}/external_accounts"),
        "external_account=btok_us_verified_noAccount",
    )
    .await;
    as_account(
        &t,
        TEST_KEY,
        &acct,
        "POST",
        "/v1/payment_intents",
        "amount=5000&currency=usd&payment_method=pm_card_bypassPending&confirm=true",
    )
    .await;
    as_account(
        &t,
        TEST_KEY,
        &acct,
        "POST",
        "/v1/payouts",
        "amount=100&currency=usd",
    )
    .await;
    let (_, pending) =
        as_account(&t, TEST_KEY, &acct, "GET", "/v1/payouts?status=pending", "").await;
    assert_eq!(pending["data"].as_array().unwrap().len(), 1);
    t.advance_clock(2 * 86_400).await;
    let (_, failed) = as_account(&t, TEST_KEY, &acct, "GET", "/v1/payouts?status=failed", "").await;
    assert_eq!(failed["data"].as_array().unwrap().len(), 1);
    let (_, paid) = as_account(&t, TEST_KEY, &acct, "GET", "/v1/payouts?status=paid", "").await;
    assert!(paid["data"].as_array().unwrap().is_empty());
    let (_, banks) = as_account(
        &t,
        TEST_KEY,
        &acct,
        "GET",
        &format!("/v1/accounts/{acct}/external_accounts?object=card"),
        "",
    )
    .await;
    assert!(banks["data"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn payment_intents_can_be_canceled_until_they_succeed() {
    let t = TestNode::start().await;
    let pi = t
        .post("/v1/payment_intents", "amount=700&currency=usd")
        .await;
    let id = pi["id"].as_str().unwrap();
    let canceled = t
        .post(
            &format!("/v1/payment_intents/{id}/cancel"),
            "cancellation_reason=abandoned",
        )
        .await;
    assert_eq!(
        (
            canceled["status"].as_str(),
            canceled["cancellation_reason"].as_str()
        ),
        (Some("canceled"), Some("abandoned"))
    );
    let events = t.get("/v1/events?type=payment_intent.canceled").await;
    assert_eq!(events["data"][0]["data"]["object"]["id"], id);
    let (status, _, err) = t
        .request(
            "POST",
            &format!("/v1/payment_intents/{id}/cancel"),
            Some(TEST_KEY),
            "",
            &[],
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("payment_intent_unexpected_state"))
    );
}

#[tokio::test]
async fn stripe_account_naming_the_platform_itself_means_as_myself() {
    let t = TestNode::start().await;
    let mut hooks = Receiver::start().await;
    endpoint(&t, TEST_KEY, &hooks.url, false).await;
    let own = t.node().platform.id.clone();
    let (status, created) =
        as_account(&t, TEST_KEY, &own, "POST", "/v1/customers", "name=Self").await;
    assert_eq!(status, 200, "{created:#}");
    // The platform's own object: listed without the header, and its event
    // goes to account endpoints without a top-level `account`.
    let listed = t.get("/v1/customers").await;
    assert_eq!(listed["data"][0]["id"], created["id"]);
    let event = hooks.next().await.json();
    assert_eq!(event["type"], "customer.created");
    assert!(event.get("account").is_none(), "{event:#}");

    let (status, me) = as_account(
        &t,
        TEST_KEY,
        &own,
        "GET",
        &format!("/v1/accounts/{own}"),
        "",
    )
    .await;
    assert_eq!(
        (status, me["id"].as_str()),
        (200, Some(own.as_str())),
        "{me:#}"
    );
    let plain = t.get(&format!("/v1/accounts/{own}")).await;
    assert_eq!(plain, t.get("/v1/account").await);
}

#[tokio::test]
async fn the_default_external_account_of_a_currency_cannot_be_deleted() {
    let t = TestNode::start().await;
    let acct = account(&t, TEST_KEY, "type=custom").await;
    let path = format!("/v1/accounts/{acct}/external_accounts");
    let first = t.post(&path, "external_account=btok_us_verified").await;
    assert_eq!(first["default_for_currency"], true);
    let first_path = format!("{path}/{}", first["id"].as_str().unwrap());
    let (status, _, err) = t
        .request("DELETE", &first_path, Some(TEST_KEY), "", &[])
        .await;
    assert_eq!(status, 400, "{err:#}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("You cannot delete the default bank account for your default currency"),
        "{err:#}"
    );
    // Stripe's way out (and its own fixture's): make another the default first.
    let second = t
        .post(
            &path,
            "external_account=btok_us_verified&default_for_currency=true",
        )
        .await;
    assert_eq!(second["default_for_currency"], true);
    let (status, _, deleted) = t
        .request("DELETE", &first_path, Some(TEST_KEY), "", &[])
        .await;
    assert_eq!(
        (status, deleted["deleted"].as_bool()),
        (200, Some(true)),
        "{deleted:#}"
    );
    let remaining = t.get(&path).await;
    assert_eq!(remaining["data"].as_array().unwrap().len(), 1);
    assert_eq!(remaining["data"][0]["id"], second["id"]);
}

#[tokio::test]
async fn expand_follows_references_and_balance_transactions_are_real() {
    let t = TestNode::start().await;
    let acct = account(&t, TEST_KEY, "type=express").await;
    t.post(
        &format!("/v1/accounts/{acct}/external_accounts"),
        "external_account=btok_us_verified",
    )
    .await;
    // Expanded on create, across two levels, with objects of this very request.
    let (status, pi) = as_account(
        &t,
        TEST_KEY,
        &acct,
        "POST",
        "/v1/payment_intents",
        "amount=2000&currency=usd&payment_method=pm_card_bypassPending&confirm=true&expand[]=latest_charge.balance_transaction&expand[]=payment_method",
    )
    .await;
    assert_eq!(status, 200, "{pi:#}");
    let txn = &pi["latest_charge"]["balance_transaction"];
    assert_eq!(txn["object"], "balance_transaction", "{pi:#}");
    assert_eq!(txn["amount"], 2000);
    assert_eq!(txn["fee"], 88);
    assert_eq!(txn["net"], 1912);
    assert_eq!(txn["status"], "available");
    assert!(txn["available_on"].as_i64().is_some());
    assert_eq!(txn["source"], pi["latest_charge"]["id"]);
    assert_eq!(pi["payment_method"]["object"], "payment_method");
    assert_eq!(pi["payment_method"]["card"]["last4"], "0077");

    // The ids are retrievable by their own routes, as the account that owns them.
    let txn_id = txn["id"].as_str().unwrap();
    let (status, fetched) = as_account(
        &t,
        TEST_KEY,
        &acct,
        "GET",
        &format!("/v1/balance_transactions/{txn_id}"),
        "",
    )
    .await;
    assert_eq!((status, &fetched["id"]), (200, &txn["id"]));
    let (status, _, _) = t
        .request(
            "GET",
            &format!("/v1/balance_transactions/{txn_id}"),
            Some(TEST_KEY),
            "",
            &[],
        )
        .await;
    assert_eq!(
        status, 404,
        "the platform itself does not own the connected account's funds"
    );

    // In lists, with the `data.` prefix, and with SDK-style indexed arrays on GET.
    let (_, charges) = as_account(
        &t,
        TEST_KEY,
        &acct,
        "GET",
        "/v1/charges?expand[0]=data.balance_transaction&expand[1]=data.payment_intent",
        "",
    )
    .await;
    assert_eq!(charges["data"][0]["balance_transaction"]["id"], txn["id"]);
    assert_eq!(
        charges["data"][0]["payment_intent"]["object"],
        "payment_intent"
    );

    // A payout's balance transaction and destination.
    let (status, payout) = as_account(
        &t,
        TEST_KEY,
        &acct,
        "POST",
        "/v1/payouts",
        "amount=1000&currency=usd&expand[]=balance_transaction&expand[]=destination",
    )
    .await;
    assert_eq!(status, 200, "{payout:#}");
    assert_eq!(payout["balance_transaction"]["amount"], -1000);
    assert_eq!(payout["balance_transaction"]["type"], "payout");
    assert_eq!(payout["destination"]["object"], "bank_account");
    let (_, listed) = as_account(
        &t,
        TEST_KEY,
        &acct,
        "GET",
        "/v1/balance_transactions?type=payout",
        "",
    )
    .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed:#}");

    // Stripe's refusals.
    let pi_id = pi["id"].as_str().unwrap();
    for (expand, wanted) in [
        ("amount", "This property cannot be expanded (amount)."),
        ("nonsense", "This property cannot be expanded (nonsense)."),
        (
            "latest_charge.amount",
            "This property cannot be expanded (latest_charge.amount).",
        ),
        (
            "a.b.c.d.e",
            "You cannot expand more than 4 levels of a property",
        ),
    ] {
        let (status, err) = as_account(
            &t,
            TEST_KEY,
            &acct,
            "GET",
            &format!("/v1/payment_intents/{pi_id}?expand[]={expand}"),
            "",
        )
        .await;
        assert_eq!(status, 400, "{expand}: {err:#}");
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(wanted),
            "{expand}: {err:#}"
        );
        assert_eq!(err["error"]["param"], "expand");
    }
}

#[tokio::test]
async fn card_and_bank_external_accounts_take_their_own_update_fields() {
    let t = TestNode::start().await;
    let acct = account(&t, TEST_KEY, "type=custom").await;
    let path = format!("/v1/accounts/{acct}/external_accounts");
    let card = t.post(&path, "external_account=tok_visa_debit").await;
    let card_path = format!("{path}/{}", card["id"].as_str().unwrap());
    let updated = t
        .post(
            &card_path,
            "name=Jo%20Lee&exp_month=7&exp_year=2031&address_zip=94107&metadata[k]=v",
        )
        .await;
    assert_eq!(
        (
            &updated["name"],
            &updated["exp_month"],
            &updated["exp_year"],
            &updated["address_zip"]
        ),
        (&json!("Jo Lee"), &json!(7), &json!(2031), &json!("94107"))
    );
    // A bank account's field is still unknown on a card, and the reverse.
    let (status, _, err) = t
        .request(
            "POST",
            &card_path,
            Some(TEST_KEY),
            "account_holder_type=company",
            &[],
        )
        .await;
    assert_eq!(
        (status, err["error"]["param"].as_str()),
        (400, Some("account_holder_type"))
    );
    let bank = t.post(&path, "external_account=btok_us_verified").await;
    let bank_path = format!("{path}/{}", bank["id"].as_str().unwrap());
    let (status, _, err) = t
        .request("POST", &bank_path, Some(TEST_KEY), "exp_month=7", &[])
        .await;
    assert_eq!(
        (status, err["error"]["param"].as_str()),
        (400, Some("exp_month"))
    );
    let bank = t.post(&bank_path, "account_holder_type=company").await;
    assert_eq!(bank["account_holder_type"], "company");
}

#[tokio::test]
async fn stripe_context_selects_the_connected_account_as_stripe_account_does() {
    let t = TestNode::start().await;
    let acct = account(&t, TEST_KEY, "type=custom").await;
    let (status, cus) = as_account(
        &t,
        TEST_KEY,
        &acct,
        "POST",
        "/v1/customers",
        "email=a%40b.c",
    )
    .await;
    assert_eq!(status, 200, "{cus:#}");
    let path = format!("/v1/customers/{}", cus["id"].as_str().unwrap());
    let with = |headers: Vec<(&'static str, String)>| {
        let (t, path) = (&t, path.clone());
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            t.request("GET", &path, Some(TEST_KEY), "", &h).await
        }
    };
    // What the SDKs send when they fetch a thin event's related object.
    let (status, _, got) = with(vec![("Stripe-Context", acct.clone())]).await;
    assert_eq!(status, 200, "{got:#}");
    assert_eq!(got["id"], cus["id"]);
    // The platform's own id may lead the path.
    let (platform_status, _, me) = t
        .request("GET", "/v1/account", Some(TEST_KEY), "", &[])
        .await;
    assert_eq!(platform_status, 200);
    let nested = format!("{}/{acct}", me["id"].as_str().unwrap());
    assert_eq!(with(vec![("Stripe-Context", nested)]).await.0, 200);
    // Without it the object is the connected account's, not the platform's.
    assert_eq!(with(vec![]).await.0, 404);
    // Contradictions and malformed contexts name the header.
    let other = account(&t, TEST_KEY, "type=custom").await;
    for bad in [
        vec![
            ("Stripe-Context", acct.clone()),
            ("Stripe-Account", other.clone()),
        ],
        vec![("Stripe-Context", format!("{acct}/"))],
        vec![("Stripe-Context", format!("{acct}/{other}"))],
        vec![("Stripe-Context", "org_123".to_owned())],
    ] {
        let (status, _, err) = with(bad.clone()).await;
        assert_eq!(status, 400, "{bad:?}: {err:#}");
        assert_eq!(err["error"]["param"], "Stripe-Context", "{err:#}");
    }
    // An account of another platform stays out of reach.
    let (status, _, err) = with(vec![(
        "Stripe-Context",
        "acct_1NotMine000000000".to_owned(),
    )])
    .await;
    assert_eq!(status, 403, "{err:#}");
}
