//! Tenant isolation across every route. Two platforms on one server (the
//! second made through the admin API): platform A fills its test mode with
//! one object of every kind (connected account, customers, payments,
//! refunds, transfers, payouts, fees, disputes, setup intents, endpoints,
//! events…); then every API route — read from the routers' source, so a new
//! route is covered without touching this test — is called with platform
//! B's keys, A's live key, B acting as A's connected account, and A acting
//! as B's. No answer may carry any of A's ids (beyond echoing the one asked
//! for in an error), and afterwards A's objects are exactly as they were.

use serde_json::Value;

use crate::support::*;

const ADMIN_KEY: &str = "admin_isolation_0000000000";

/// What platform A owns, by the path segment that names it.
struct Owned {
    by_segment: Vec<(&'static str, String)>,
    account: String,
}

impl Owned {
    fn id_after(&self, segment: &str) -> String {
        self.by_segment
            .iter()
            .find(|(s, _)| *s == segment)
            .map_or_else(|| self.account.clone(), |(_, id)| id.clone())
    }

    fn all(&self) -> Vec<&str> {
        self.by_segment
            .iter()
            .map(|(_, id)| id.as_str())
            .filter(|id| id.len() > 20)
            .collect()
    }

    /// The template with each `{param}` replaced by A's object of the kind
    /// the segment before it names.
    fn fill(&self, template: &str) -> String {
        let mut out = Vec::new();
        let mut previous = "";
        for seg in template.split('/') {
            if seg.starts_with('{') {
                out.push(self.id_after(previous));
            } else {
                out.push(seg.to_owned());
            }
            previous = seg;
        }
        out.join("/")
    }
}

async fn ok(
    t: &TestNode,
    key: &str,
    method: &str,
    path: &str,
    body: &str,
    acct: Option<&str>,
) -> Value {
    let headers: Vec<(&str, &str)> = acct.map(|a| ("Stripe-Account", a)).into_iter().collect();
    let (status, _, json) = t.request(method, path, Some(key), body, &headers).await;
    assert_eq!(status, 200, "{method} {path} {body}: {json:#}");
    json
}

/// Platform A's test mode, one object of every kind.
async fn populate(t: &TestNode) -> Owned {
    let k = TEST_KEY;
    let acct = ok(
        t,
        k,
        "POST",
        "/v1/accounts",
        "type=custom&country=US&external_account=btok_us_verified",
        None,
    )
    .await;
    let account = acct["id"].as_str().unwrap().to_owned();
    let ea = acct["external_accounts"]["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let person = ok(
        t,
        k,
        "POST",
        &format!("/v1/accounts/{account}/persons"),
        "first_name=Iso",
        None,
    )
    .await;
    let cus = ok(t, k, "POST", "/v1/customers", "name=Isolated", None).await;
    let cus_id = cus["id"].as_str().unwrap().to_owned();
    let card = ok(
        t,
        k,
        "POST",
        &format!("/v1/customers/{cus_id}/sources"),
        "source=tok_visa",
        None,
    )
    .await;
    let pm = ok(
        t,
        k,
        "POST",
        "/v1/payment_methods",
        "type=card&card[token]=tok_visa",
        None,
    )
    .await;
    // Funds on the platform for its transfers and payouts.
    ok(
        t,
        k,
        "POST",
        "/v1/payment_intents",
        "amount=50000&currency=usd&payment_method=pm_card_bypassPending&confirm=true",
        None,
    )
    .await;
    let pi = ok(t, k, "POST", "/v1/payment_intents", &format!("amount=20000&currency=usd&payment_method=pm_card_bypassPending&confirm=true&application_fee_amount=500&transfer_data[destination]={account}"), None).await;
    let charge = pi["latest_charge"].as_str().unwrap().to_owned();
    let refund = ok(
        t,
        k,
        "POST",
        "/v1/refunds",
        &format!("charge={charge}&amount=1000"),
        None,
    )
    .await;
    let tr = ok(
        t,
        k,
        "POST",
        "/v1/transfers",
        &format!("amount=1000&currency=usd&destination={account}"),
        None,
    )
    .await;
    let tr_id = tr["id"].as_str().unwrap().to_owned();
    let trr = ok(
        t,
        k,
        "POST",
        &format!("/v1/transfers/{tr_id}/reversals"),
        "amount=100",
        None,
    )
    .await;
    let fees = ok(t, k, "GET", "/v1/application_fees", "", None).await;
    let fee = fees["data"][0]["id"].as_str().unwrap().to_owned();
    let fr = ok(
        t,
        k,
        "POST",
        &format!("/v1/application_fees/{fee}/refunds"),
        "amount=10",
        None,
    )
    .await;
    let po = ok(t, k, "POST", "/v1/payouts", "amount=100&currency=usd", None).await;
    let disputed = ok(
        t,
        k,
        "POST",
        "/v1/payment_intents",
        "amount=3000&currency=usd&payment_method=pm_card_createDispute&confirm=true",
        None,
    )
    .await;
    let disputes = ok(
        t,
        k,
        "GET",
        &format!(
            "/v1/disputes?charge={}",
            disputed["latest_charge"].as_str().unwrap()
        ),
        "",
        None,
    )
    .await;
    let seti = ok(
        t,
        k,
        "POST",
        "/v1/setup_intents",
        &format!("customer={cus_id}&payment_method=pm_card_visa&confirm=true"),
        None,
    )
    .await;
    let topup = ok(t, k, "POST", "/v1/topups", "amount=1000&currency=usd", None).await;
    let we = ok(
        t,
        k,
        "POST",
        "/v1/webhook_endpoints",
        "url=http://127.0.0.1:9/hook&enabled_events[]=*",
        None,
    )
    .await;
    let events = ok(t, k, "GET", "/v1/events?limit=1", "", None).await;
    let txns = ok(t, k, "GET", "/v1/balance_transactions?limit=1", "", None).await;
    let id = |v: &Value| v["id"].as_str().unwrap().to_owned();
    Owned {
        by_segment: vec![
            ("accounts", account.clone()),
            ("external_accounts", ea),
            ("persons", id(&person)),
            ("customers", cus_id),
            ("sources", id(&card)),
            ("payment_methods", id(&pm)),
            ("payment_intents", id(&pi)),
            ("charges", charge),
            ("refunds", id(&refund)),
            ("transfers", tr_id),
            ("reversals", id(&trr)),
            ("application_fees", fee),
            ("fee_refunds", id(&fr)),
            ("payouts", id(&po)),
            (
                "disputes",
                disputes["data"][0]["id"].as_str().unwrap().to_owned(),
            ),
            ("setup_intents", id(&seti)),
            ("topups", id(&topup)),
            ("webhook_endpoints", id(&we)),
            (
                "events",
                events["data"][0]["id"].as_str().unwrap().to_owned(),
            ),
            (
                "balance_transactions",
                txns["data"][0]["id"].as_str().unwrap().to_owned(),
            ),
            ("capabilities", "card_payments".into()),
        ],
        account,
    }
}

/// What A's objects look like, to prove nothing was changed by others.
async fn snapshot(t: &TestNode, owned: &Owned) -> Vec<Value> {
    let mut out = Vec::new();
    for seg in [
        "customers",
        "payment_intents",
        "charges",
        "refunds",
        "transfers",
        "payouts",
        "disputes",
        "setup_intents",
        "topups",
        "webhook_endpoints",
        "payment_methods",
    ] {
        out.push(
            ok(
                t,
                TEST_KEY,
                "GET",
                &format!("/v1/{seg}/{}", owned.id_after(seg)),
                "",
                None,
            )
            .await,
        );
    }
    out.push(
        ok(
            t,
            TEST_KEY,
            "GET",
            &format!("/v1/accounts/{}", owned.account),
            "",
            None,
        )
        .await,
    );
    out.push(ok(t, TEST_KEY, "GET", "/v1/balance", "", None).await);
    out.push(
        ok(t, TEST_KEY, "GET", "/switchboard/v1/clock", "", None).await["offset_seconds"].clone(),
    );
    out
}

#[tokio::test]
async fn no_route_lets_one_tenant_or_mode_reach_another() {
    let t = TestNode::with(Options {
        admin_key: Some(ADMIN_KEY.into()),
        ..Default::default()
    })
    .await;
    let routes = server_routes();
    assert!(routes.len() > 80, "the routers were read: {routes:?}");
    assert!(routes.contains(&("POST".into(), "/v1/refunds".into())));

    // Platform B, made by the operator.
    let (status, _, b) = t
        .request(
            "POST",
            "/switchboard/admin/v1/platforms",
            Some(ADMIN_KEY),
            "",
            &[],
        )
        .await;
    assert_eq!(status, 200, "{b:#}");
    let (b_test, b_live) = (
        b["test_key"].as_str().unwrap().to_owned(),
        b["live_key"].as_str().unwrap().to_owned(),
    );
    let b_acct = ok(&t, &b_test, "POST", "/v1/accounts", "type=custom", None).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let owned = populate(&t).await;
    let before = snapshot(&t, &owned).await;
    let secrets = owned.all();

    let callers: [(&str, &str, Option<&str>); 5] = [
        ("platform B, test", &b_test, None),
        ("platform B, live", &b_live, None),
        ("platform A, live", LIVE_KEY, None),
        (
            "platform B as A's connected account",
            &b_test,
            Some(&owned.account),
        ),
        (
            "platform A as B's connected account",
            TEST_KEY,
            Some(&b_acct),
        ),
    ];
    let mut calls = 0;
    for (method, template) in &routes {
        let key_authed = template.starts_with("/v1/")
            || template.starts_with("/switchboard/v1/")
            || template.starts_with("/oauth/");
        if !key_authed {
            continue;
        }
        let path = owned.fill(template);
        for (who, key, acct) in &callers {
            let headers: Vec<(&str, &str)> =
                acct.map(|a| ("Stripe-Account", a)).into_iter().collect();
            let (status, _, body) = t.request(method, &path, Some(key), "", &headers).await;
            calls += 1;
            let text = body.to_string();
            if template == "/switchboard/v1/request_logs" {
                // A caller's own log echoes the ids it asked for; A's own
                // requests (one created the customer "Isolated") never show.
                assert!(
                    !text.contains("Isolated"),
                    "{who}: A's requests in another's log: {text}"
                );
                continue;
            }
            for id in &secrets {
                // An error may name what was asked for (Stripe's messages do).
                let asked = path.contains(id) || *acct == Some(id);
                let echoed = asked && !(200..300).contains(&status);
                assert!(
                    echoed || !text.contains(id),
                    "{who}: {method} {path} answered {status} with platform A's {id}: {text}"
                );
            }
            assert!(
                status < 500,
                "{who}: {method} {path} answered {status}: {text}"
            );
        }
    }
    assert!(calls > 400, "{calls} calls");
    assert_eq!(
        snapshot(&t, &owned).await,
        before,
        "platform A's objects changed"
    );

    // Platform B's own view is its own: its accounts (the matrix's POSTs
    // made more) and none of A's.
    let b_accounts = ok(&t, &b_test, "GET", "/v1/accounts?limit=100", "", None).await;
    let ids: Vec<&str> = b_accounts["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&b_acct.as_str()) && !ids.contains(&owned.account.as_str()),
        "{ids:?}"
    );
}

#[tokio::test]
async fn the_operator_lists_platforms_and_rotates_their_keys() {
    let t = TestNode::with(Options {
        admin_key: Some(ADMIN_KEY.into()),
        ..Default::default()
    })
    .await;
    let admin =
        |method: &'static str, path: &'static str, body: &'static str, key: &'static str| {
            let t = &t;
            async move { t.request(method, path, Some(key), body, &[]).await }
        };
    let (status, _, err) = admin("GET", "/switchboard/admin/v1/platforms", "", TEST_KEY).await;
    assert_eq!(
        (status, err["error"]["type"].as_str()),
        (401, Some("invalid_request_error")),
        "a platform key is no admin key: {err:#}"
    );
    let (_, _, created) = admin("POST", "/switchboard/admin/v1/platforms", "", ADMIN_KEY).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let old = created["test_key"].as_str().unwrap().to_owned();
    ok(&t, &old, "POST", "/v1/customers", "name=B", None).await;
    let (_, _, list) = admin("GET", "/switchboard/admin/v1/platforms", "", ADMIN_KEY).await;
    let listed = list["data"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{list:#}");
    assert!(
        !list.to_string().contains(&old),
        "lists show hints, never keys: {list:#}"
    );
    assert!(listed.iter().any(|p| {
        p["id"] == id.as_str()
            && p["test_key_hint"]
                .as_str()
                .unwrap()
                .ends_with(&old[old.len() - 4..])
    }));

    let (status, _, rotated) = t
        .request(
            "POST",
            &format!("/switchboard/admin/v1/platforms/{id}/rotate_keys"),
            Some(ADMIN_KEY),
            "mode=test",
            &[],
        )
        .await;
    assert_eq!(status, 200, "{rotated:#}");
    let new = rotated["test_key"].as_str().unwrap().to_owned();
    assert!(
        rotated["live_key"].is_null(),
        "only the test key was rotated"
    );
    assert_ne!(new, old);
    let (status, _, _) = t.request("GET", "/v1/customers", Some(&old), "", &[]).await;
    assert_eq!(status, 401, "the old key stopped working");
    let customers = ok(&t, &new, "GET", "/v1/customers", "", None).await;
    assert_eq!(
        customers["data"].as_array().unwrap().len(),
        1,
        "same platform, same data"
    );
    let (status, _, _) = t
        .request(
            "POST",
            "/switchboard/admin/v1/platforms/acct_nobody/rotate_keys",
            Some(ADMIN_KEY),
            "",
            &[],
        )
        .await;
    assert_eq!(status, 404);
    let (status, _, err) = t
        .request(
            "POST",
            &format!("/switchboard/admin/v1/platforms/{id}/rotate_keys"),
            Some(ADMIN_KEY),
            "mode=all",
            &[],
        )
        .await;
    assert_eq!(
        (status, err["error"]["param"].as_str()),
        (400, Some("mode"))
    );
}
