//! API v2 over HTTP: event destinations' routing matrix (`@self` /
//! `@accounts` / both × snapshot / thin × test / live), thin payloads, and
//! v2 errors. The official SDKs' view is in `compat/python/test_v2.py`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

async fn v2(t: &TestNode, key: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let (status, _, json) = t
        .request(method, path, Some(key), &body.to_string(), &[])
        .await;
    (status, json)
}

/// Everything a receiver gets until quiet: (type, account or context, livemode).
async fn heard(rx: &mut Receiver) -> Vec<(String, Option<String>, bool)> {
    let mut out = Vec::new();
    while let Ok(Some(r)) = tokio::time::timeout(Duration::from_millis(400), rx.rx.recv()).await {
        let e = r.json();
        let who = e["account"]
            .as_str()
            .or(e["context"].as_str())
            .map(String::from);
        out.push((
            e["type"].as_str().unwrap().into(),
            who,
            e["livemode"].as_bool().unwrap(),
        ));
    }
    out.sort();
    out
}

#[tokio::test]
async fn destinations_route_by_events_from_payload_and_mode() {
    let t = TestNode::start().await;
    let mut receivers = Vec::new();
    for key in [TEST_KEY, LIVE_KEY] {
        for from in [
            json!(["@self"]),
            json!(["@accounts"]),
            json!(["@self", "@accounts"]),
        ] {
            for payload in ["snapshot", "thin"] {
                let rx = Receiver::start().await;
                let event = if payload == "thin" {
                    "v1.customer.created"
                } else {
                    "customer.created"
                };
                let (status, ed) = v2(
                    &t,
                    key,
                    "POST",
                    "/v2/core/event_destinations",
                    json!({
                        "name": "matrix", "type": "webhook_endpoint", "event_payload": payload,
                        "enabled_events": [event], "events_from": from,
                        "webhook_endpoint": {"url": rx.url},
                    }),
                )
                .await;
                assert_eq!(status, 200, "{ed:#}");
                assert_eq!(ed["livemode"], key == LIVE_KEY);
                receivers.push((key == LIVE_KEY, from.clone(), payload, rx));
            }
        }
    }
    let mut accounts = Vec::new();
    for key in [TEST_KEY, LIVE_KEY] {
        let (status, _, acct) = t
            .request("POST", "/v1/accounts", Some(key), "type=custom", &[])
            .await;
        assert_eq!(status, 200, "{acct:#}");
        let acct = acct["id"].as_str().unwrap().to_owned();
        for headers in [vec![], vec![("Stripe-Account", acct.as_str())]] {
            let (status, _, _) = t
                .request("POST", "/v1/customers", Some(key), "name=x", &headers)
                .await;
            assert_eq!(status, 200);
        }
        accounts.push(acct);
    }
    let (test_acct, live_acct) = (Some(accounts[0].clone()), Some(accounts[1].clone()));
    for (live, from, payload, rx) in &mut receivers {
        let name = if *payload == "thin" {
            "v1.customer.created"
        } else {
            "customer.created"
        };
        let ev = |who: &Option<String>, mode: bool| (name.to_owned(), who.clone(), mode);
        let (own, theirs) = (
            from.to_string().contains("@self"),
            from.to_string().contains("@accounts"),
        );
        let mut expected = Vec::new();
        if own {
            expected.push(ev(&None, *live));
        }
        if theirs {
            // Connect's rule: a live destination hears test accounts too.
            expected.push(ev(&test_acct, false));
            if *live {
                expected.push(ev(&live_acct, true));
            }
        }
        expected.sort();
        // (The accounts' own account.* events are not enabled here.)
        assert_eq!(
            heard(rx).await,
            expected,
            "live={live} from={from} payload={payload}"
        );
    }
}

#[tokio::test]
async fn thin_payloads_are_v2_notifications_the_receiver_crate_reads() {
    let t = TestNode::start().await;
    let mut rx = Receiver::start().await;
    let (status, ed) = v2(
        &t,
        TEST_KEY,
        "POST",
        "/v2/core/event_destinations",
        json!({
            "name": "thin", "type": "webhook_endpoint", "event_payload": "thin",
            "enabled_events": ["v1.customer.created"], "events_from": ["@accounts"],
            "webhook_endpoint": {"url": rx.url},
            "include": ["webhook_endpoint.signing_secret"],
        }),
    )
    .await;
    assert_eq!(status, 200, "{ed:#}");
    let secret = ed["webhook_endpoint"]["signing_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, _, acct) = t
        .request("POST", "/v1/accounts", Some(TEST_KEY), "type=custom", &[])
        .await;
    let acct = acct["id"].as_str().unwrap().to_owned();
    let (_, _, cus) = t
        .request(
            "POST",
            "/v1/customers",
            Some(TEST_KEY),
            "name=Thin",
            &[("Idempotency-Key", "thin-1"), ("Stripe-Account", &acct)],
        )
        .await;
    let got = tokio::time::timeout(Duration::from_secs(10), rx.rx.recv())
        .await
        .unwrap()
        .unwrap();
    let body = got.json();
    assert!(
        body.get("data").is_none() && body.get("account").is_none(),
        "{body:#}"
    );
    let created = body["created"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 24, "{created}");
    let sig = got
        .headers
        .get("stripe-signature")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Signed as v1 events are; v1's construct_event refuses it, as the SDKs do.
    assert!(switchboard_receiver::construct_event_at(&got.body, &sig, &secret, 300, now).is_err());
    let n = switchboard_receiver::parse_event_notification_at(&got.body, &sig, &secret, 300, now)
        .expect("a verified thin notification");
    assert_eq!(n.event_type, "v1.customer.created");
    assert_eq!(n.context.as_deref(), Some(acct.as_str()));
    let reason = n.reason.as_ref().unwrap().request.as_ref().unwrap();
    assert_eq!(reason.idempotency_key.as_deref(), Some("thin-1"));
    // What fetch_event() and fetch_related_object() send, sent.
    let fetch = |f: switchboard_receiver::FetchRequest| {
        let t = &t;
        async move {
            let headers: Vec<(&str, &str)> =
                f.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            t.request("GET", &f.path, Some(TEST_KEY), "", &headers)
                .await
        }
    };
    let (status, _, full) = fetch(n.fetch_event()).await;
    assert_eq!(status, 200, "{full:#}");
    assert_eq!(
        (full["id"].as_str(), full["snapshot_event"].as_str()),
        (Some(n.id.as_str()), Some(n.id.as_str()))
    );
    let (status, _, related) = fetch(n.fetch_related_object().unwrap()).await;
    assert_eq!(status, 200, "{related:#}");
    assert_eq!(related["id"], cus["id"]);
    assert_eq!(related["name"], "Thin");
}

#[tokio::test]
async fn bad_v2_input_is_a_400_naming_the_parameter() {
    let t = TestNode::start().await;
    let (status, _, err) = t
        .request(
            "POST",
            "/v2/core/event_destinations",
            Some(TEST_KEY),
            "{not json",
            &[],
        )
        .await;
    assert_eq!(status, 400, "{err:#}");
    assert_eq!(err["error"]["type"], "invalid_request_error");
    let (status, err) = v2(
        &t,
        TEST_KEY,
        "POST",
        "/v2/core/event_destinations",
        json!(["an", "array"]),
    )
    .await;
    assert_eq!(
        (status, err["error"]["param"].as_str()),
        (400, Some("body")),
        "{err:#}"
    );
    let (status, err) = v2(&t, TEST_KEY, "POST", "/v2/core/event_destinations", json!({
        "name": "x", "type": "webhook_endpoint", "event_payload": "snapshot",
        "enabled_events": ["customer.created"], "webhook_endpoint": {"url": "http://127.0.0.1:9/"},
        "unexpected": 1,
    })).await;
    assert_eq!(
        (status, err["error"]["param"].as_str()),
        (400, Some("unexpected")),
        "{err:#}"
    );
    let (status, err) = v2(
        &t,
        TEST_KEY,
        "GET",
        "/v2/core/event_destinations?page=bogus",
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, err["error"]["param"].as_str()),
        (400, Some("page")),
        "{err:#}"
    );
    let (status, err) = v2(
        &t,
        TEST_KEY,
        "GET",
        "/v2/core/events?created[gte]=yesterday",
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, err["error"]["param"].as_str()),
        (400, Some("created[gte]")),
        "{err:#}"
    );
    let (status, err) = v2(
        &t,
        TEST_KEY,
        "GET",
        "/v2/core/events?types[0]=customer.created",
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, err["error"]["param"].as_str()),
        (400, Some("types")),
        "{err:#}"
    );
}

/// Accounts v2's events exist only as thin events: an `@self` thin
/// destination hears them (they are the platform's, without `context`);
/// an `@accounts` one, a v1 endpoint enabling `*` and `/v1/events` never
/// see them; `/v2/core/events` lists them with their `changes`.
#[tokio::test]
async fn v2_account_events_reach_thin_self_destinations_only() {
    let t = TestNode::start().await;
    let v2_types = json!(["v2.core.account.created", "v2.core.account.updated"]);
    let mut own = Receiver::start().await;
    let mut theirs = Receiver::start().await;
    for (rx, from) in [(&own, "@self"), (&theirs, "@accounts")] {
        let (status, ed) = v2(
            &t,
            TEST_KEY,
            "POST",
            "/v2/core/event_destinations",
            json!({
                "name": from, "type": "webhook_endpoint", "event_payload": "thin",
                "enabled_events": v2_types, "events_from": [from],
                "webhook_endpoint": {"url": rx.url},
            }),
        )
        .await;
        assert_eq!(status, 200, "{ed:#}");
    }
    let mut v1 = Receiver::start().await;
    let (status, _, we) = t
        .request(
            "POST",
            "/v1/webhook_endpoints",
            Some(TEST_KEY),
            &format!("url={}&enabled_events[]=*&connect=true", v1.url),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{we:#}");
    let (status, acct) = v2(
        &t,
        TEST_KEY,
        "POST",
        "/v2/core/accounts",
        json!({"display_name": "Before", "identity": {"country": "us"}}),
    )
    .await;
    assert_eq!(status, 200, "{acct:#}");
    let id = acct["id"].as_str().unwrap();
    let (status, _) = v2(
        &t,
        TEST_KEY,
        "POST",
        &format!("/v2/core/accounts/{id}"),
        json!({"display_name": "After"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        heard(&mut own).await,
        vec![
            ("v2.core.account.created".to_owned(), None, false),
            ("v2.core.account.updated".to_owned(), None, false),
        ]
    );
    assert_eq!(heard(&mut theirs).await, vec![]);
    let v1_heard = heard(&mut v1).await;
    assert!(
        v1_heard.iter().all(|(kind, ..)| !kind.starts_with("v2.")),
        "{v1_heard:?}"
    );

    let (_, _, listed) = t
        .request("GET", "/v1/events?limit=100", Some(TEST_KEY), "", &[])
        .await;
    let types: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(types.iter().all(|t| !t.starts_with("v2.")), "{types:?}");
    let (status, _, v2_events) = t
        .request(
            "GET",
            // A bare key repeated is an array in v2 queries, as `types[0]=…` is.
            &format!(
                "/v2/core/events?object_id={id}&types=v2.core.account.created&types=v2.core.account.updated"
            ),
            Some(TEST_KEY),
            "",
            &[],
        )
        .await;
    assert_eq!(status, 200, "{v2_events:#}");
    let data = v2_events["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{v2_events:#}");
    let updated = data
        .iter()
        .find(|e| e["type"] == "v2.core.account.updated")
        .expect("the update is listed");
    assert_eq!(updated["changes"]["before"]["display_name"], "Before");
    assert_eq!(updated["changes"]["after"]["display_name"], "After");
    let (status, _, _) = t
        .request(
            "GET",
            &format!("/v1/events/{}", updated["id"].as_str().unwrap()),
            Some(TEST_KEY),
            "",
            &[],
        )
        .await;
    assert_eq!(status, 404, "a v2 event is not a v1 event");
}
