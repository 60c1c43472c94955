//! The Stripe wire format: auth, params, errors, idempotency, lists, modes, tenants.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_store::Platform;

use crate::support::*;

#[tokio::test]
async fn webhook_endpoint_lifecycle_and_secret_only_on_create() {
    let t = TestNode::start().await;
    let created = t
        .post(
            "/v1/webhook_endpoints",
            "url=https%3A%2F%2Fexample.com%2Fhook&enabled_events[0]=customer.created&enabled_events[1]=account.updated&connect=true&metadata[a]=b&description=hi",
        )
        .await;
    insta::assert_json_snapshot!("webhook_endpoint_create", created, {
        ".id" => "[id]", ".created" => "[created]", ".secret" => "[secret]", ".application" => "[ca]"
    });
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["application"], t.node().platform.client_id.as_str());
    let id = created["id"].as_str().unwrap();

    let fetched = t.get(&format!("/v1/webhook_endpoints/{id}")).await;
    assert!(
        fetched.get("secret").is_none(),
        "secret must only be in the create response"
    );

    let updated = t
        .post(
            &format!("/v1/webhook_endpoints/{id}"),
            "disabled=true&description=&metadata[a]=&metadata[c]=d",
        )
        .await;
    assert_eq!(updated["status"], "disabled");
    assert_eq!(updated["description"], Value::Null);
    assert_eq!(updated["metadata"], json!({"c": "d"}));
    assert!(updated.get("secret").is_none());

    let list = t.get("/v1/webhook_endpoints").await;
    assert_eq!(list["object"], "list");
    assert_eq!(list["url"], "/v1/webhook_endpoints");
    assert_eq!(list["data"][0]["id"], id);

    let (status, _, deleted) = t
        .request(
            "DELETE",
            &format!("/v1/webhook_endpoints/{id}"),
            Some(TEST_KEY),
            "",
            &[],
        )
        .await;
    assert_eq!(
        (status, deleted),
        (
            200,
            json!({"id": id, "object": "webhook_endpoint", "deleted": true})
        )
    );
    let (status, _, err) = t
        .request(
            "GET",
            &format!("/v1/webhook_endpoints/{id}"),
            Some(TEST_KEY),
            "",
            &[],
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["code"], "resource_missing");
    assert_eq!(
        err["error"]["message"],
        format!("No such webhook endpoint: '{id}'")
    );
}

#[tokio::test]
async fn customer_events_carry_previous_attributes_and_request() {
    let t = TestNode::start().await;
    let (_, headers, cus) = t
        .request(
            "POST",
            "/v1/customers",
            Some(TEST_KEY),
            "email=a%40x.test&name=Ann",
            &[("Idempotency-Key", "ik-1")],
        )
        .await;
    let id = cus["id"].as_str().unwrap();
    let request_id = headers["request-id"].to_str().unwrap();
    t.post(
        &format!("/v1/customers/{id}"),
        "email=b%40x.test&metadata[k]=v",
    )
    .await;
    t.request(
        "DELETE",
        &format!("/v1/customers/{id}"),
        Some(TEST_KEY),
        "",
        &[],
    )
    .await;
    assert_eq!(
        t.get(&format!("/v1/customers/{id}")).await,
        json!({"id": id, "object": "customer", "deleted": true})
    );
    let (status, _, _) = t
        .request(
            "POST",
            &format!("/v1/customers/{id}"),
            Some(TEST_KEY),
            "name=z",
            &[],
        )
        .await;
    assert_eq!(status, 404, "a deleted customer cannot be updated");

    let events = t
        .get(
            "/v1/events?types[]=customer.created&types[]=customer.updated&types[]=customer.deleted",
        )
        .await;
    let types: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["customer.deleted", "customer.updated", "customer.created"]
    );
    let created = &events["data"][2];
    assert_eq!(
        created["request"],
        json!({"id": request_id, "idempotency_key": "ik-1"})
    );
    assert_eq!(created["data"]["object"]["id"], id);
    assert!(created.get("account").is_none());
    let updated = &events["data"][1];
    assert_eq!(
        updated["data"]["previous_attributes"],
        json!({"email": "a@x.test", "metadata": {"k": null}})
    );
    assert_eq!(updated["data"]["object"]["email"], "b@x.test");

    insta::assert_json_snapshot!("customer_created_event", created, {
        ".id" => "[id]", ".created" => "[created]", ".request.id" => "[req]",
        ".data.object.id" => "[id]", ".data.object.created" => "[created]", ".data.object.invoice_prefix" => "[prefix]"
    });
}

#[tokio::test]
async fn idempotency_key_replays_and_rejects_other_params() {
    let t = TestNode::start().await;
    let key = [("Idempotency-Key", "same-key")];
    let (s1, _, first) = t
        .request("POST", "/v1/customers", Some(TEST_KEY), "name=One", &key)
        .await;
    let (s2, h2, second) = t
        .request("POST", "/v1/customers", Some(TEST_KEY), "name=One", &key)
        .await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(first, second);
    assert_eq!(h2["idempotent-replayed"], "true");
    let events = t.get("/v1/events?type=customer.created").await;
    assert_eq!(
        events["data"].as_array().unwrap().len(),
        1,
        "a replay must not emit a second event"
    );

    let (status, _, err) = t
        .request("POST", "/v1/customers", Some(TEST_KEY), "name=Two", &key)
        .await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["type"], "idempotency_error");

    // Keys are per mode: the same key in live mode is a new request.
    let (status, _, live) = t
        .request("POST", "/v1/customers", Some(LIVE_KEY), "name=One", &key)
        .await;
    assert_eq!(status, 200);
    assert_ne!(live["id"], first["id"]);
    assert_eq!(live["livemode"], true);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_create_one_object() {
    let t = std::sync::Arc::new(TestNode::start().await);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            t.request(
                "POST",
                "/v1/customers",
                Some(TEST_KEY),
                "name=Race",
                &[("Idempotency-Key", "race")],
            )
            .await
        }));
    }
    // Each racer either gets the one customer, or Stripe's 409 while the
    // first is in flight (SDKs retry it, and then get the replay).
    let mut ids = std::collections::HashSet::new();
    for task in tasks {
        let (status, _, body) = task.await.unwrap();
        match status {
            200 => {
                ids.insert(body["id"].as_str().unwrap().to_owned());
            }
            409 => {
                assert_eq!(body["error"]["type"], "idempotency_error", "{body}");
                assert!(
                    body["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("another in-progress request"),
                    "{body}"
                );
            }
            other => panic!("{other}: {body}"),
        }
    }
    let (status, headers, retried) = t
        .request(
            "POST",
            "/v1/customers",
            Some(TEST_KEY),
            "name=Race",
            &[("Idempotency-Key", "race")],
        )
        .await;
    assert_eq!(
        (status, &headers["idempotent-replayed"]),
        (200, &"true".parse::<axum::http::HeaderValue>().unwrap())
    );
    ids.insert(retried["id"].as_str().unwrap().to_owned());
    assert_eq!(ids.len(), 1);
    let list = t.get("/v1/customers").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_request_refused_before_it_ran_leaves_its_key_free() {
    let t = TestNode::start().await;
    let key = [("Idempotency-Key", "fix-and-retry")];
    let (status, _, err) = t
        .request("POST", "/v1/customers", Some(TEST_KEY), "nmae=Typo", &key)
        .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["param"], "nmae");
    // Stripe saves no answer for a request that failed validation: the
    // corrected request with the same key runs (and is then replayed).
    let (status, _, created) = t
        .request("POST", "/v1/customers", Some(TEST_KEY), "name=Fixed", &key)
        .await;
    assert_eq!(status, 200, "{created}");
    let (status, _, again) = t
        .request("POST", "/v1/customers", Some(TEST_KEY), "name=Fixed", &key)
        .await;
    assert_eq!((status, &again["id"]), (200, &created["id"]));
}

#[tokio::test]
async fn authentication_errors_are_401_with_redacted_keys() {
    let t = TestNode::start().await;
    let (status, headers, err) = t.request("GET", "/v1/customers", None, "", &[]).await;
    assert_eq!(status, 401);
    assert!(headers.contains_key("request-id"));
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did not provide an API key")
    );

    let (status, _, err) = t
        .request(
            "GET",
            "/v1/customers",
            Some("sk_test_wrongwrongwrong1234"),
            "",
            &[],
        )
        .await;
    assert_eq!(status, 401);
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(
        msg.ends_with("1234") && !msg.contains("wrongwrong"),
        "{msg}"
    );

    // Basic auth with the key as user name, as `curl -u sk_test_…:` sends.
    let resp = t
        .http
        .get(format!("{}/v1/customers", t.base))
        .basic_auth(TEST_KEY, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// Every client mistake is a Stripe-shaped 4xx naming the parameter; never a 500.
#[tokio::test]
async fn malformed_requests_get_stripe_errors_naming_the_parameter() {
    let t = TestNode::start().await;
    let cus = t.post("/v1/customers", "name=x").await;
    let cus_id = cus["id"].as_str().unwrap();
    let cases: Vec<(&str, String, &str, u16, Option<&str>)> = vec![
        (
            "POST",
            "/v1/webhook_endpoints".into(),
            "enabled_events[]=*",
            400,
            Some("url"),
        ),
        (
            "POST",
            "/v1/webhook_endpoints".into(),
            "url=http://x.test/a",
            400,
            Some("enabled_events"),
        ),
        (
            "POST",
            "/v1/webhook_endpoints".into(),
            "url=http://x.test/a&enabled_events[]=nope.nope",
            400,
            Some("enabled_events"),
        ),
        (
            "POST",
            "/v1/webhook_endpoints".into(),
            "url=ftp://x.test&enabled_events[]=*",
            400,
            Some("url"),
        ),
        (
            "POST",
            "/v1/webhook_endpoints".into(),
            "url=http://x.test&enabled_events[]=*&connect=yes",
            400,
            Some("connect"),
        ),
        (
            "POST",
            "/v1/webhook_endpoints".into(),
            "url=http://x.test&enabled_events[]=*&api_version=banana",
            400,
            Some("api_version"),
        ),
        (
            "POST",
            "/v1/webhook_endpoints".into(),
            "url=http://x.test&enabled_events[]=*&colour=red",
            400,
            Some("colour"),
        ),
        (
            "POST",
            "/v1/webhook_endpoints".into(),
            "url[x]=1&enabled_events[]=*",
            400,
            Some("url"),
        ),
        (
            "POST",
            "/v1/customers".into(),
            "metadata[a][b]=c",
            400,
            Some("metadata[a]"),
        ),
        (
            "POST",
            "/v1/customers".into(),
            "balance=lots",
            400,
            Some("balance"),
        ),
        (
            "POST",
            "/v1/customers".into(),
            "address[planet]=mars",
            400,
            Some("address[planet]"),
        ),
        (
            "POST",
            "/v1/customers".into(),
            "name=a&name[x]=b",
            400,
            Some("name[x]"),
        ),
        (
            "POST",
            "/v1/customers".into(),
            "bad[key=1",
            400,
            Some("bad[key"),
        ),
        (
            "GET",
            "/v1/customers?limit=0".into(),
            "",
            400,
            Some("limit"),
        ),
        (
            "GET",
            "/v1/customers?limit=abc".into(),
            "",
            400,
            Some("limit"),
        ),
        (
            "GET",
            "/v1/customers?starting_after=cus_missing".into(),
            "",
            400,
            Some("starting_after"),
        ),
        (
            "GET",
            "/v1/customers?ending_before=cus_missing".into(),
            "",
            400,
            Some("ending_before"),
        ),
        (
            "GET",
            "/v1/customers/cus_missing".into(),
            "",
            404,
            Some("id"),
        ),
        (
            "GET",
            "/v1/events?type=not.a.type".into(),
            "",
            400,
            Some("type"),
        ),
        (
            "GET",
            "/v1/events?created[between]=1".into(),
            "",
            400,
            Some("created[between]"),
        ),
        (
            "GET",
            "/v1/events?created[gt]=x".into(),
            "",
            400,
            Some("created[gt]"),
        ),
        (
            "GET",
            "/v1/events?delivery_success=maybe".into(),
            "",
            400,
            Some("delivery_success"),
        ),
        ("GET", "/v1/events/evt_missing".into(), "", 404, Some("id")),
        (
            "POST",
            "/v1/events/evt_missing/retry".into(),
            "webhook_endpoint=we_x",
            404,
            Some("id"),
        ),
        (
            "POST",
            "/v1/webhook_endpoints/we_missing".into(),
            "url=http://x.test",
            404,
            Some("id"),
        ),
        ("GET", "/v1/nothing_here".into(), "", 404, None),
        ("PUT", "/v1/customers".into(), "", 404, None),
        (
            "POST",
            format!("/v1/customers/{cus_id}"),
            "unknown=1",
            400,
            Some("unknown"),
        ),
    ];
    for (method, path, body, want_status, want_param) in cases {
        let (status, headers, err) = t.request(method, &path, Some(TEST_KEY), body, &[]).await;
        let ctx = format!("{method} {path} {body}: {err:#}");
        assert_eq!(status, want_status, "{ctx}");
        assert!(headers.contains_key("request-id"), "{ctx}");
        assert_eq!(err["error"]["type"], "invalid_request_error", "{ctx}");
        assert!(
            err["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{ctx}"
        );
        assert_eq!(err["error"]["param"].as_str(), want_param, "{ctx}");
    }

    // A live-mode key cannot see test-mode objects.
    let (status, _, _) = t
        .request(
            "GET",
            &format!("/v1/customers/{cus_id}"),
            Some(LIVE_KEY),
            "",
            &[],
        )
        .await;
    assert_eq!(status, 404);
    // An unknown connected account is a permission error.
    let (status, _, err) = t
        .request(
            "GET",
            "/v1/customers",
            Some(TEST_KEY),
            "",
            &[("Stripe-Account", "acct_nobody")],
        )
        .await;
    assert_eq!(status, 403, "{err}");
}

#[tokio::test]
async fn bodies_over_the_limit_are_rejected() {
    let t = TestNode::with(Options {
        max_body_bytes: 1024,
        ..Default::default()
    })
    .await;
    let big = format!("name={}", "x".repeat(2048));
    let (status, _, err) = t
        .request("POST", "/v1/customers", Some(TEST_KEY), &big, &[])
        .await;
    assert_eq!(status, 413);
    assert_eq!(err["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn pagination_visits_every_object_once_in_both_directions() {
    let t = TestNode::start().await;
    let mut created = Vec::new();
    for i in 0..23 {
        created.push(
            t.post("/v1/customers", &format!("name=c{i}")).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();

    let mut seen = Vec::new();
    let mut path = "/v1/customers?limit=5".to_string();
    loop {
        let page = t.get(&path).await;
        let ids: Vec<String> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().into())
            .collect();
        seen.extend(ids.iter().cloned());
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
        path = format!(
            "/v1/customers?limit=5&starting_after={}",
            ids.last().unwrap()
        );
    }
    assert_eq!(seen, newest_first);

    // Backwards from the oldest, as the SDKs do with ending_before.
    let mut back = Vec::new();
    let mut cursor = created[0].clone();
    loop {
        let page = t
            .get(&format!("/v1/customers?limit=4&ending_before={cursor}"))
            .await;
        let ids: Vec<String> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().into())
            .collect();
        if ids.is_empty() {
            break;
        }
        // Each page is still newest first.
        back.splice(0..0, ids.iter().cloned());
        cursor = ids[0].clone();
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(back, newest_first[..22].to_vec());
}

#[tokio::test]
async fn event_filters() {
    // A manual clock: every event is created in the same second, whatever the wall clock does.
    let t = TestNode::with(Options {
        manual_clock: true,
        ..Default::default()
    })
    .await;
    let cus = t.post("/v1/customers", "name=a").await;
    t.post(
        &format!("/v1/customers/{}", cus["id"].as_str().unwrap()),
        "name=b",
    )
    .await;
    let count = |v: &Value| v["data"].as_array().unwrap().len();
    assert_eq!(count(&t.get("/v1/events?type=customer.*").await), 2);
    assert_eq!(count(&t.get("/v1/events?type=customer.updated").await), 1);
    assert_eq!(
        count(
            &t.get("/v1/events?types%5B0%5D=customer.updated&types%5B1%5D=customer.created")
                .await
        ),
        2
    );
    let created = cus["created"].as_i64().unwrap();
    assert_eq!(
        count(&t.get(&format!("/v1/events?created[gte]={created}")).await),
        2
    );
    assert_eq!(
        count(
            &t.get(&format!("/v1/events?created[gt]={}", created + 100))
                .await
        ),
        0
    );
    assert_eq!(
        count(&t.get(&format!("/v1/events?created={created}")).await),
        2
    );
    // No endpoints: nothing pending, so every event counts as delivered.
    assert_eq!(count(&t.get("/v1/events?delivery_success=true").await), 2);
    assert_eq!(count(&t.get("/v1/events?delivery_success=false").await), 0);
    let (status, _, _) = t
        .request(
            "GET",
            "/v1/events?type=customer.created&types[]=customer.updated",
            Some(TEST_KEY),
            "",
            &[],
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn platforms_never_see_each_other() {
    let t = TestNode::start().await;
    let other = Platform {
        id: "acct_otherplatform0000000000".into(),
        client_id: "ca_otherplatform00000000000".into(),
        test_key: "sk_test_otherplatform000000".into(),
        live_key: "sk_live_otherplatform000000".into(),
        created: 0,
    };
    t.node().store.create_platform(other.clone()).await.unwrap();
    let cus = t.post("/v1/customers", "name=mine").await;
    let (we, _) = t.endpoint("http://127.0.0.1:9/x").await;
    let evt = t.get("/v1/events").await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = Some(other.test_key.as_str());
    for path in [
        format!("/v1/customers/{}", cus["id"].as_str().unwrap()),
        format!("/v1/webhook_endpoints/{we}"),
        format!("/v1/events/{evt}"),
    ] {
        let (status, _, _) = t.request("GET", &path, key, "", &[]).await;
        assert_eq!(status, 404, "{path}");
    }
    for path in ["/v1/customers", "/v1/webhook_endpoints", "/v1/events"] {
        let (status, _, list) = t.request("GET", path, key, "", &[]).await;
        assert_eq!(status, 200);
        assert_eq!(list["data"], json!([]), "{path}");
    }
    // A cursor from another tenant is "no such object", not a page of theirs.
    let (status, _, _) = t
        .request(
            "GET",
            &format!(
                "/v1/customers?starting_after={}",
                cus["id"].as_str().unwrap()
            ),
            key,
            "",
            &[],
        )
        .await;
    assert_eq!(status, 400);
}

/// With `--rate-limit`, a key over its rate gets Stripe's 429, and recovers.
#[tokio::test]
async fn requests_over_the_rate_limit_get_429() {
    let t = TestNode::with(Options {
        rate_limit: Some(2),
        manual_clock: true,
        ..Default::default()
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (status, _, body) = t
            .request("GET", "/v1/customers", Some(TEST_KEY), "", &[])
            .await;
        statuses.push(status);
        if status == 429 {
            assert_eq!(body["error"]["code"], "rate_limit");
        }
    }
    assert_eq!(statuses, [200, 200, 429]);
    // Other keys have buckets of their own.
    let (status, _, _) = t
        .request("GET", "/v1/customers", Some(LIVE_KEY), "", &[])
        .await;
    assert_eq!(status, 200);
    t.advance(500);
    let (status, _, _) = t
        .request("GET", "/v1/customers", Some(TEST_KEY), "", &[])
        .await;
    assert_eq!(status, 200, "half a second refills one request at 2/s");
}

#[tokio::test]
async fn deeply_nested_parameters_get_a_400_and_the_server_stays_up() {
    // The fault probe's request: a 10 KB key nested ~3,400 levels deep used to
    // overflow a worker's stack and abort the whole process.
    let t = TestNode::start().await;
    let deep = format!("x{}=1", "[a]".repeat(3_400));
    for (method, path, body) in [
        ("POST", "/v1/customers".to_owned(), deep.as_str()),
        ("GET", format!("/v1/customers?{deep}"), ""),
        ("POST", "/v1/webhook_endpoints".to_owned(), deep.as_str()),
    ] {
        let (status, _, err) = t.request(method, &path, Some(TEST_KEY), body, &[]).await;
        assert_eq!(status, 400, "{method} {}: {err}", &path[..20]);
        assert_eq!(err["error"]["type"], "invalid_request_error");
        assert_eq!(err["error"]["param"], "x");
        assert!(
            err["error"]["message"].as_str().unwrap().contains("nested"),
            "{err}"
        );
    }
    // Stripe's own depths still work, and the server is still there.
    let customer = t
        .post("/v1/customers", "name=Jane&metadata[a]=b&address[line1]=x")
        .await;
    assert_eq!(customer["metadata"]["a"], "b");
}

#[tokio::test]
async fn live_endpoints_must_be_https_and_never_internal() {
    // No allow-list: what a hosted Switchboard runs with.
    let t = TestNode::with(Options {
        allow_private: Vec::new(),
        ..Options::default()
    })
    .await;
    let probes = [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://localhost/hook",
        "https://2130706433/hook",
        "https://user:pw@192.168.1.1/hook",
        "https://[::ffff:10.0.0.1]/hook",
    ];
    let create = |url: &str| format!("url={}&enabled_events[]=*", urlencode(url));
    for url in probes {
        let (status, _, err) = t
            .request(
                "POST",
                "/v1/webhook_endpoints",
                Some(LIVE_KEY),
                &create(url),
                &[],
            )
            .await;
        assert_eq!(status, 400, "{url} accepted in live mode: {err}");
        assert_eq!(err["error"]["param"], "url", "{url}");
    }
    // A public HTTPS endpoint is fine, and cannot be moved onto an internal address.
    let (status, _, we) = t
        .request(
            "POST",
            "/v1/webhook_endpoints",
            Some(LIVE_KEY),
            &create("https://93.184.216.34/hook"),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{we}");
    let path = format!("/v1/webhook_endpoints/{}", we["id"].as_str().unwrap());
    for url in probes {
        let (status, _, _) = t
            .request(
                "POST",
                &path,
                Some(LIVE_KEY),
                &format!("url={}", urlencode(url)),
                &[],
            )
            .await;
        assert_eq!(status, 400, "update to {url} accepted in live mode");
    }
    // Test mode keeps loopback and plain HTTP for local development.
    t.post(
        "/v1/webhook_endpoints",
        &create("http://127.0.0.1:4242/hook"),
    )
    .await;
    t.post(
        "/v1/webhook_endpoints",
        &create("http://localhost:4242/hook"),
    )
    .await;
}

#[tokio::test]
async fn live_deliveries_never_connect_to_what_a_name_resolves_to_internally() {
    use switchboard_core::attempt::AttemptError;
    use switchboard_core::url_policy::UrlPolicy;
    // The URL passed the create-time check elsewhere; at delivery the name
    // resolves to loopback (DNS rebinding): the live client refuses to connect.
    let mut rx = Receiver::start().await;
    let url = rx.url.replace("127.0.0.1", "localhost");
    let live =
        switchboard_dispatcher::live_http_client(Duration::from_secs(5), UrlPolicy::default());
    let err = live.post(&url).body("{}").send().await.unwrap_err();
    assert_eq!(
        switchboard_dispatcher::classify(&err),
        AttemptError::InternalAddress
    );
    rx.assert_quiet(Duration::from_millis(200)).await;
    // An operator's allow-list lets it through.
    let allowed = UrlPolicy {
        allow: vec!["127.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()],
    };
    let ok = switchboard_dispatcher::live_http_client(Duration::from_secs(5), allowed)
        .post(&url)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn idempotency_keys_expire_after_24_hours() {
    let t = TestNode::with(Options {
        manual_clock: true,
        ..Options::default()
    })
    .await;
    let key = [("Idempotency-Key", "daily-job")];
    let (_, _, first) = t
        .request("POST", "/v1/customers", Some(TEST_KEY), "name=A", &key)
        .await;
    t.advance(23 * 3600 * 1000);
    let (status, headers, replay) = t
        .request("POST", "/v1/customers", Some(TEST_KEY), "name=A", &key)
        .await;
    assert_eq!((status, &replay["id"]), (200, &first["id"]));
    assert_eq!(headers["idempotent-replayed"], "true");
    let (status, _, mismatch) = t
        .request("POST", "/v1/customers", Some(TEST_KEY), "name=B", &key)
        .await;
    assert_eq!(
        status, 400,
        "still reserved for the first request: {mismatch}"
    );
    // A day later the key is free: a new request, with other parameters even.
    t.advance(3600 * 1000 + 1000);
    let (status, headers, fresh) = t
        .request("POST", "/v1/customers", Some(TEST_KEY), "name=B", &key)
        .await;
    assert_eq!(status, 200, "{fresh}");
    assert_ne!(fresh["id"], first["id"]);
    assert!(headers.get("idempotent-replayed").is_none());
    let (_, _, again) = t
        .request("POST", "/v1/customers", Some(TEST_KEY), "name=B", &key)
        .await;
    assert_eq!(again["id"], fresh["id"], "and it replays the new answer");
}

#[tokio::test]
async fn a_vanished_database_refuses_writes_and_is_not_ready() {
    let t = TestNode::start().await;
    t.post("/v1/customers", "name=Before").await;
    let ready = t
        .http
        .get(format!("{}/readyz", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    // The data dir removed under the running process (the fault probe's case:
    // writes kept returning 200 and everything was gone at restart).
    std::fs::remove_dir_all(t.data_dir()).unwrap();
    let (status, headers, err) = t
        .request("POST", "/v1/customers", Some(TEST_KEY), "name=After", &[])
        .await;
    assert_eq!(
        status, 503,
        "a write that cannot be kept is never a success: {err}"
    );
    assert_eq!(err["error"]["type"], "api_error");
    assert_eq!(headers["stripe-should-retry"], "true");
    let ready = t
        .http
        .get(format!("{}/readyz", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503, "readiness reports the storage");
    let live = t
        .http
        .get(format!("{}/healthz", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        live.status(),
        200,
        "liveness does not: restarting would not help"
    );
}
