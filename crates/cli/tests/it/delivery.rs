//! The delivery engine over real HTTP: signatures, retries, failures, disabling, resend, rolling.

use std::time::Duration;

use serde_json::Value;
use switchboard_core::retry::RetrySchedule;
use switchboard_receiver::{construct_event_at, verify_header_at};

use crate::support::*;

fn now_s(t: &TestNode) -> i64 {
    t.clock.now()
}

#[tokio::test]
async fn deliveries_are_signed_and_sent_verbatim_with_stripe_headers() {
    let t = TestNode::start().await;
    let mut rx = Receiver::start().await;
    let (_, secret) = t.endpoint(&rx.url).await;
    let cus = t.post("/v1/customers", "name=Signed").await;
    let got = rx.next().await;
    let event = construct_event_at(&got.body, got.signature(), &secret, 300, now_s(&t))
        .expect("signature verifies");
    assert_eq!(event.event_type, "customer.created");
    assert_eq!(event.data.object_value().unwrap()["id"], cus["id"]);
    assert_eq!(
        got.headers["content-type"],
        "application/json; charset=utf-8"
    );
    assert_eq!(
        got.headers["user-agent"],
        "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
    );
    // The body is the stored event, byte for byte: 2-space pretty JSON.
    assert!(got.body.starts_with(b"{\n  \"id\": \"evt_"));
    let id = event.id;
    let fetched = t
        .eventually(&format!("/v1/events/{id}"), |e| e["pending_webhooks"] == 0)
        .await;
    assert_eq!(fetched["type"], "customer.created");
    let delivered: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(
        delivered["pending_webhooks"], 1,
        "payload keeps the count at creation"
    );
    let attempts = t
        .get(&format!("/switchboard/v1/events/{id}/attempts"))
        .await;
    assert_eq!(attempts["data"][0]["status_code"], 200);
    assert_eq!(attempts["data"][0]["succeeded"], true);
}

#[tokio::test]
async fn only_matching_endpoints_receive_events() {
    let t = TestNode::start().await;
    let mut wanted = Receiver::start().await;
    let mut other = Receiver::start().await;
    let mut live = Receiver::start().await;
    let mut connect = Receiver::start().await;
    t.post(
        "/v1/webhook_endpoints",
        &format!(
            "url={}&enabled_events[]=customer.updated&enabled_events[]=customer.created",
            wanted.url
        ),
    )
    .await;
    t.post(
        "/v1/webhook_endpoints",
        &format!("url={}&enabled_events[]=payout.failed", other.url),
    )
    .await;
    t.post(
        "/v1/webhook_endpoints",
        &format!("url={}&enabled_events[]=*&connect=true", connect.url),
    )
    .await;
    let (s, _, _) = t
        .request(
            "POST",
            "/v1/webhook_endpoints",
            Some(LIVE_KEY),
            &format!("url={}&enabled_events[]=*", live.url),
            &[],
        )
        .await;
    assert_eq!(s, 200);
    t.post("/v1/customers", "name=x").await;
    assert_eq!(wanted.next().await.json()["type"], "customer.created");
    other.assert_quiet(Duration::from_millis(300)).await;
    live.assert_quiet(Duration::ZERO).await;
    connect.assert_quiet(Duration::ZERO).await;
}

/// A receiver that fails twice then succeeds: attempts follow the schedule exactly.
#[tokio::test]
async fn retries_follow_the_schedule_until_success() {
    let t = TestNode::with(Options {
        manual_clock: true,
        retry: RetrySchedule::parse("10s,100s,1000s").unwrap(),
        ..Default::default()
    })
    .await;
    let mut rx = Receiver::scripted(vec![Reply::Status(500), Reply::Status(503)]).await;
    let (we, secret) = t.endpoint(&rx.url).await;
    t.post("/v1/customers", "name=Retry").await;

    let first = rx.next().await;
    let id = first.json()["id"].as_str().unwrap().to_owned();
    let attempts_path = format!("/switchboard/v1/events/{id}/attempts");
    let a = t
        .eventually(&attempts_path, |a| a["data"].as_array().unwrap().len() == 1)
        .await;
    let next = a["data"][0]["next_attempt_at"].as_i64().unwrap();
    // 10 s ± 10 % jitter after the first attempt.
    assert!(
        (T0_MS / 1000 + 9..=T0_MS / 1000 + 11).contains(&next),
        "{a:#}"
    );
    assert_eq!(a["data"][0]["next_action"], "retry");

    // Not due yet: nothing is sent.
    t.advance(8_000);
    rx.assert_quiet(Duration::from_millis(200)).await;
    t.advance(4_000);
    let second = rx.next().await;
    assert_eq!(second.body, first.body, "retries resend the stored bytes");
    assert_ne!(
        second.signature(),
        first.signature(),
        "each attempt gets a fresh timestamp"
    );
    verify_header_at(&second.body, second.signature(), &secret, 300, now_s(&t)).unwrap();

    let a = t
        .eventually(&attempts_path, |a| a["data"].as_array().unwrap().len() == 2)
        .await;
    let next = a["data"][0]["next_attempt_at"].as_i64().unwrap();
    let second_at = a["data"][0]["created"].as_i64().unwrap();
    assert!((second_at + 90..=second_at + 110).contains(&next), "{a:#}");
    assert_eq!(
        t.get(&format!("/v1/events/{id}")).await["pending_webhooks"],
        1
    );

    t.advance(111_000);
    rx.next().await;
    let e = t
        .eventually(&format!("/v1/events/{id}"), |e| e["pending_webhooks"] == 0)
        .await;
    assert_eq!(e["id"], id.as_str());
    let a = t
        .get(&format!("/switchboard/v1/webhook_endpoints/{we}/attempts"))
        .await;
    let codes: Vec<i64> = a["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [200, 503, 500]);
    assert_eq!(
        t.get("/v1/events?delivery_success=true").await["data"][0]["id"],
        id.as_str()
    );
}

#[tokio::test]
async fn retry_after_on_429_postpones_the_retry() {
    let t = TestNode::with(Options {
        manual_clock: true,
        retry: RetrySchedule::parse("1s").unwrap(),
        ..Default::default()
    })
    .await;
    let mut rx = Receiver::scripted(vec![Reply::RetryAfter(429, 120)]).await;
    t.endpoint(&rx.url).await;
    t.post("/v1/customers", "name=x").await;
    let id = rx.next().await.json()["id"].as_str().unwrap().to_owned();
    let a = t
        .eventually(&format!("/switchboard/v1/events/{id}/attempts"), |a| {
            !a["data"].as_array().unwrap().is_empty()
        })
        .await;
    assert_eq!(
        a["data"][0]["next_attempt_at"].as_i64().unwrap(),
        T0_MS / 1000 + 120
    );
    t.advance(60_000);
    rx.assert_quiet(Duration::from_millis(200)).await;
    t.advance(61_000);
    rx.next().await;
}

/// 3xx, 4xx, 5xx, timeouts, refused connections and resets are all failed
/// attempts that get retried, and none of them holds up a healthy endpoint.
#[tokio::test]
async fn every_kind_of_failure_is_retried_without_blocking_others() {
    let t = TestNode::with(Options {
        timeout: Duration::from_millis(500),
        ..Default::default()
    })
    .await;
    let redirect = Receiver::scripted(vec![Reply::Redirect; 3]).await;
    let client_error = Receiver::scripted(vec![Reply::Status(400); 3]).await;
    let server_error = Receiver::scripted(vec![Reply::Status(500); 3]).await;
    let slow = Receiver::scripted(vec![Reply::Delay(Duration::from_secs(3)); 3]).await;
    let (reset_url, _) = resetting_server().await;
    let refused = refused_url().await;
    // HTTPS to a port that speaks plain HTTP.
    let plain = Receiver::start().await;
    let tls_url = plain.url.replace("http://", "https://");
    let mut healthy = Receiver::start().await;
    let mut failing = Vec::new();
    for url in [
        &redirect.url,
        &client_error.url,
        &server_error.url,
        &slow.url,
        &reset_url,
        &refused,
        &tls_url,
    ] {
        failing.push(t.endpoint(url).await.0);
    }
    t.endpoint(&healthy.url).await;

    let started = std::time::Instant::now();
    t.post("/v1/customers", "name=x").await;
    healthy.next().await;
    assert!(
        started.elapsed() < Duration::from_millis(450),
        "a slow endpoint delayed a healthy one"
    );

    let expected = [
        (Some(302), None),
        (Some(400), None),
        (Some(500), None),
        (None, Some("timeout")),
        // The status line arrived, the body was cut off: still a failure.
        (Some(200), Some("response_interrupted")),
        (None, Some("connection_failed")),
        (None, Some("tls_error")),
    ];
    for (we, (status, error)) in failing.iter().zip(expected) {
        let a = t
            .eventually(
                &format!("/switchboard/v1/webhook_endpoints/{we}/attempts"),
                |a| a["data"].as_array().unwrap().len() >= 2,
            )
            .await;
        let last = &a["data"][0];
        assert_eq!(last["succeeded"], false, "{a:#}");
        assert_eq!(
            last["status_code"].as_i64().map(|s| s as u16),
            status,
            "{a:#}"
        );
        if let Some(e) = error {
            assert_eq!(last["error"], e, "{a:#}");
        }
        if error == Some("tls_error") {
            let why = last["response_body"].as_str().unwrap();
            assert!(
                why.starts_with("TLS handshake failed: "),
                "the reason is kept: {why}"
            );
        }
        assert_eq!(a["data"][1]["next_action"], "retry");
    }
}

#[tokio::test]
async fn persistent_failure_disables_the_endpoint() {
    let t = TestNode::with(Options {
        retry: RetrySchedule::parse("none").unwrap(),
        disable_after: Duration::ZERO,
        ..Default::default()
    })
    .await;
    let mut rx = Receiver::scripted(vec![Reply::Status(500)]).await;
    let (we, _) = t.endpoint(&rx.url).await;
    t.post("/v1/customers", "name=x").await;
    rx.next().await;
    t.eventually(&format!("/v1/webhook_endpoints/{we}"), |e| {
        e["status"] == "disabled"
    })
    .await;
    let events = t.get("/v1/events?delivery_success=false").await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
    // Operators see it in the metrics.
    let metrics = t
        .http
        .get(format!("{}/metrics", t.base))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("switchboard_endpoints_disabled_total 1\n"),
        "{metrics}"
    );

    // Disabled endpoints get nothing more.
    t.post("/v1/customers", "name=y").await;
    rx.assert_quiet(Duration::from_millis(500)).await;
    // Re-enabled, they receive new events again.
    t.post(&format!("/v1/webhook_endpoints/{we}"), "disabled=false")
        .await;
    t.post("/v1/customers", "name=z").await;
    assert_eq!(rx.next().await.json()["data"]["object"]["name"], "z");
}

#[tokio::test]
async fn resend_delivers_once_more_to_the_named_endpoint() {
    let t = TestNode::start().await;
    let mut rx = Receiver::start().await;
    let (we, secret) = t.endpoint(&rx.url).await;
    t.post("/v1/customers", "name=x").await;
    let first = rx.next().await;
    let id = first.json()["id"].as_str().unwrap().to_owned();
    t.eventually(&format!("/v1/events/{id}"), |e| e["pending_webhooks"] == 0)
        .await;
    let resp = t
        .post(
            &format!("/v1/events/{id}/retry"),
            &format!("webhook_endpoint={we}"),
        )
        .await;
    assert_eq!(resp["id"], id.as_str());
    let again = rx.next().await;
    assert_eq!(again.body, first.body);
    verify_header_at(&again.body, again.signature(), &secret, 300, now_s(&t)).unwrap();
    rx.assert_quiet(Duration::from_millis(300)).await;
    let (status, _, err) = t
        .request(
            "POST",
            &format!("/v1/events/{id}/retry"),
            Some(TEST_KEY),
            "webhook_endpoint=we_nope",
            &[],
        )
        .await;
    assert_eq!(
        (status, err["error"]["param"].as_str()),
        (404, Some("webhook_endpoint"))
    );
}

#[tokio::test]
async fn rolled_secrets_sign_with_both_until_the_old_one_expires() {
    let t = TestNode::with(Options {
        manual_clock: true,
        ..Default::default()
    })
    .await;
    let mut rx = Receiver::start().await;
    let (we, old) = t.endpoint(&rx.url).await;
    let rolled = t
        .post(
            &format!("/switchboard/v1/webhook_endpoints/{we}/roll_secret"),
            "expires_in=3600",
        )
        .await;
    let new = rolled["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    t.post("/v1/customers", "name=x").await;
    let got = rx.next().await;
    assert_eq!(got.signature().matches("v1=").count(), 2);
    for s in [&old, &new] {
        verify_header_at(&got.body, got.signature(), s, 300, now_s(&t)).unwrap();
    }
    t.advance(3_601_000);
    t.post("/v1/customers", "name=y").await;
    let got = rx.next().await;
    assert_eq!(got.signature().matches("v1=").count(), 1);
    verify_header_at(&got.body, got.signature(), &new, 300, now_s(&t)).unwrap();
    assert!(verify_header_at(&got.body, got.signature(), &old, 300, now_s(&t)).is_err());
}

/// A slow endpoint gets at most its share of delivery slots: the others keep flowing.
#[tokio::test]
async fn a_slow_endpoint_cannot_take_every_delivery_slot() {
    let t = TestNode::with(Options {
        concurrency: 4,
        per_endpoint_concurrency: 2,
        timeout: Duration::from_secs(10),
        ..Default::default()
    })
    .await;
    let slow = Receiver::scripted(vec![Reply::Delay(Duration::from_secs(3)); 8]).await;
    let mut healthy = Receiver::start().await;
    t.endpoint(&slow.url).await;
    t.endpoint(&healthy.url).await;
    for i in 0..8 {
        t.post("/v1/customers", &format!("name=c{i}")).await;
    }
    let started = std::time::Instant::now();
    for _ in 0..8 {
        healthy.next().await;
    }
    // Without the per-endpoint limit the slow endpoint's 3 s holds would stall these.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "healthy deliveries waited {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_endless_body_and_a_trickling_one_are_judged_alike_by_their_status() {
    // Stripe judges an attempt by its status; the body is only recorded.
    // Before, a fast endless 200 counted as success and a trickling one as a
    // timeout: now both are read up to 4 KiB or 2 s, and both succeed.
    let t = TestNode::with(Options {
        timeout: Duration::from_secs(5),
        ..Default::default()
    })
    .await;
    let fast = endless_body_server(Duration::ZERO).await;
    let trickle = endless_body_server(Duration::from_millis(100)).await;
    let mut ids = Vec::new();
    for url in [&fast, &trickle] {
        ids.push(t.endpoint(url).await.0);
    }
    t.post("/v1/customers", "name=x").await;
    for (we, name) in ids.iter().zip(["fast endless body", "trickling body"]) {
        let a = t
            .eventually(
                &format!("/switchboard/v1/webhook_endpoints/{we}/attempts"),
                |a| !a["data"].as_array().unwrap().is_empty(),
            )
            .await;
        let first = &a["data"][0];
        assert_eq!(first["succeeded"], true, "{name}: {a:#}");
        assert_eq!(first["status_code"], 200, "{name}");
        assert!(
            first["response_body"].as_str().unwrap().starts_with('x'),
            "{name}"
        );
        assert!(
            first["response_body"].as_str().unwrap().len() <= 4096,
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_retry_fires_when_it_is_due_not_at_the_next_poll() {
    // The fallback poll is a minute: only waking at the due time can deliver
    // the retry within the receiver's patience.
    let t = TestNode::with(Options {
        retry: RetrySchedule::parse("300ms").unwrap(),
        poll_interval: Some(Duration::from_secs(60)),
        ..Default::default()
    })
    .await;
    let mut rx = Receiver::scripted(vec![Reply::Status(500)]).await;
    t.endpoint(&rx.url).await;
    t.post("/v1/customers", "name=x").await;
    let first = rx.next().await.json();
    let retried = rx.next().await.json();
    assert_eq!(first["id"], retried["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_endpoints_cannot_starve_a_healthy_one() {
    // The fault probe: 8 hanging endpoints × 64 per-endpoint slots took all
    // 512 global ones, and healthy deliveries waited for the timeouts. Here
    // ten hanging endpoints could demand 160 of 64 slots; with adaptive
    // per-endpoint limits (a new endpoint starts at 4) they hold 40.
    let t = TestNode::with(Options {
        timeout: Duration::from_secs(60),
        concurrency: 64,
        per_endpoint_concurrency: 16,
        ..Default::default()
    })
    .await;
    let mut hanging = Vec::new();
    for _ in 0..10 {
        let rx = Receiver::scripted(vec![Reply::Delay(Duration::from_secs(120)); 64]).await;
        t.endpoint(&rx.url).await;
        hanging.push(rx);
    }
    let mut healthy = Receiver::start().await;
    t.endpoint(&healthy.url).await;
    for i in 0..20 {
        t.post("/v1/customers", &format!("name=c{i}")).await;
    }
    // Every one of the healthy endpoint's deliveries arrives long before any
    // hanging attempt could time out (the receiver waits 20 s at most).
    let mut seen = std::collections::HashSet::new();
    while seen.len() < 20 {
        seen.insert(
            healthy.next().await.json()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
}

/// Chaos mode for one endpoint: `POST /switchboard/v1/webhook_endpoints/{id}`
/// with `chaos` makes that endpoint alone receive duplicates, while the
/// others get each event once; the fault shows in its attempt log.
#[tokio::test]
async fn one_endpoint_can_rehearse_chaos_alone() {
    let t = TestNode::start().await;
    let mut chaotic = Receiver::start().await;
    let mut calm = Receiver::start().await;
    let (we, _) = t.endpoint(&chaotic.url).await;
    t.endpoint(&calm.url).await;
    let (status, _, err) = t
        .request(
            "POST",
            &format!("/switchboard/v1/webhook_endpoints/{we}"),
            Some(TEST_KEY),
            "chaos=duplicate=2",
            &[],
        )
        .await;
    assert_eq!(
        (status, err["error"]["param"].as_str()),
        (400, Some("chaos")),
        "{err:#}"
    );
    let set = t
        .post(
            &format!("/switchboard/v1/webhook_endpoints/{we}"),
            "chaos=duplicate%3D1%2Cseed%3D7",
        )
        .await;
    assert_eq!(set["chaos"], "duplicate=1,seed=7");
    let cus = t.post("/v1/customers", "name=Twice").await;
    let first = chaotic.next().await.json();
    let second = chaotic.next().await.json();
    assert_eq!(first["id"], second["id"], "the same event, twice");
    assert_eq!(first["data"]["object"]["id"], cus["id"]);
    assert_eq!(calm.next().await.json()["id"], first["id"]);
    calm.assert_quiet(Duration::from_millis(300)).await;
    let attempts = t
        .eventually(
            &format!("/switchboard/v1/webhook_endpoints/{we}/attempts"),
            |a| {
                a["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x["chaos"].as_array().is_some_and(|c| !c.is_empty()))
            },
        )
        .await;
    assert!(attempts.to_string().contains("duplicate"), "{attempts:#}");
    // An empty chaos gives the endpoint back the server's (none here).
    let cleared = t
        .post(&format!("/switchboard/v1/webhook_endpoints/{we}"), "chaos=")
        .await;
    assert!(cleared["chaos"].is_null());
    assert!(
        t.get(&format!("/switchboard/v1/webhook_endpoints/{we}"))
            .await["chaos"]
            .is_null()
    );
}

/// The receiver matrix's last rows, against the real binary: bodies of a
/// gigabyte sent as fast as loopback allows, endpoints that never answer, a
/// certificate no one trusts and `410 Gone`, all at once beside a healthy
/// endpoint. Each is classified and retried; the healthy endpoint gets every
/// event; the node's descriptors stay within its delivery slots and its
/// memory does not grow with what the receivers send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_receivers_keep_memory_and_descriptors_bounded() {
    const EVENTS: usize = 20;
    const SLOTS: usize = 32;
    let dir = tempfile::tempdir().unwrap();
    let (child, base) = spawn(
        dir.path(),
        &[
            "--concurrency",
            &SLOTS.to_string(),
            "--delivery-timeout",
            "1s",
            "--retry-schedule",
            "1s,1s",
        ],
    );
    let pid = child.0.id();
    let http = switchboard_dispatcher::http_client(Duration::from_secs(30));
    let seen: Seen = Default::default();
    let healthy = counting_receivers(1, &seen, Duration::ZERO).await;
    create_endpoint(&http, &base, &healthy[0]).await;
    let mut huge = Vec::new();
    for _ in 0..4 {
        huge.push(create_endpoint(&http, &base, &endless_body_server(Duration::ZERO).await).await);
    }
    for _ in 0..10 {
        create_endpoint(&http, &base, &hanging_server().await).await;
    }
    let untrusted = create_endpoint(&http, &base, &untrusted_tls_server().await).await;
    let gone_rx = Receiver::scripted(vec![Reply::Status(410); 3 * EVENTS]).await;
    let gone = create_endpoint(&http, &base, &gone_rx.url).await;
    let (fds0, rss0) = fds_and_rss(pid);

    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = tokio::spawn({
        let done = done.clone();
        async move {
            let mut peak = (0, 0);
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let (fds, rss) = fds_and_rss(pid);
                peak = (peak.0.max(fds), peak.1.max(rss));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        }
    });
    for i in 0..EVENTS {
        let r = http
            .post(format!("{base}/v1/customers"))
            .bearer_auth(TEST_KEY)
            .body(format!("name=c{i}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let events = all_event_ids(&http, &base).await;
    await_all(&seen, &events, 1, Duration::from_secs(60)).await;

    // Every hostile endpoint had every event attempted, and was judged right.
    let want = events.len();
    let attempts = |we: &str| {
        let (http, base, we) = (http.clone(), base.clone(), we.to_owned());
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                let a = get_json(
                    &http,
                    &format!("{base}/switchboard/v1/webhook_endpoints/{we}/attempts?limit=100"),
                )
                .await;
                let data = a["data"].as_array().unwrap().clone();
                if data.len() >= want {
                    return data;
                }
                assert!(tokio::time::Instant::now() < deadline, "{we}: {a:#}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    for we in &huge {
        for a in attempts(we).await {
            assert_eq!(
                a["succeeded"], true,
                "a 200 is a success, whatever follows: {a:#}"
            );
            assert!(a["response_body"].as_str().unwrap().len() <= 4096);
        }
    }
    for a in attempts(&untrusted).await {
        assert_eq!(a["error"], "tls_error", "{a:#}");
        let why = a["response_body"].as_str().unwrap();
        assert!(
            why.contains("certificate"),
            "the reason names the certificate: {why}"
        );
        assert_eq!(a["next_action"], "retry");
    }
    for a in attempts(&gone).await {
        assert_eq!(a["status_code"], 410, "{a:#}");
        assert_eq!(a["succeeded"], false);
        assert_eq!(
            a["next_action"], "retry",
            "Stripe retries a 410 like any failure"
        );
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (fds, rss) = sampler.await.unwrap();
    eprintln!("descriptors {fds0} → peak {fds}; RSS {rss0} KiB → peak {rss} KiB");
    assert!(
        fds <= fds0 + 2 * SLOTS + 16,
        "descriptors grew from {fds0} to {fds} with {SLOTS} delivery slots"
    );
    assert!(
        rss <= rss0 + 64 * 1024,
        "memory grew from {rss0} KiB to {rss} KiB reading bodies it caps at 4 KiB"
    );
}
