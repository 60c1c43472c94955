//! Several real `switchboard serve` processes on one PostgreSQL database
//! (a fresh schema of 127.0.0.1:5432/test per test) behaving as one
//! Switchboard: a burst through two nodes is delivered once per endpoint, a
//! SIGKILLed node's work is finished by the other, a `stripe listen` session
//! on one node receives events written through another, and racing requests
//! with one idempotency key create one object.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::support::{
    KillOnDrop, Receiver, Seen, TEST_KEY, all_event_ids, assert_no_schema_violations, await_all,
    counting_receivers, fresh_postgres, get_json, spawn,
};

/// Two nodes on one fresh database, started at the same moment (so that
/// they migrate it concurrently), sealing webhook secrets with one key (a
/// secret one node seals, the other opens to sign its deliveries).
fn two_nodes(url: &str, extra: &[&str]) -> [(KillOnDrop, String, tempfile::TempDir); 2] {
    let mut args = vec![
        "--database-url",
        url,
        "--secrets-key",
        "cluster secrets passphrase",
    ];
    args.extend_from_slice(extra);
    let start = || {
        let dir = tempfile::tempdir().unwrap();
        let (child, base) = spawn(dir.path(), &args);
        (child, base, dir)
    };
    std::thread::scope(|s| {
        let a = s.spawn(start);
        let b = s.spawn(start);
        [a.join().unwrap(), b.join().unwrap()]
    })
}

/// Stops the nodes before their schema goes.
async fn stop_then_drop(db: crate::support::PgSchema, nodes: [KillOnDrop; 2]) {
    drop(nodes);
    db.drop().await;
}

fn client() -> reqwest::Client {
    switchboard_dispatcher::http_client(Duration::from_secs(10))
}

async fn post(http: &reqwest::Client, base: &str, path: &str, body: &str) -> reqwest::Response {
    http.post(format!("{base}{path}"))
        .bearer_auth(TEST_KEY)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

/// Waits until no event is still owed to an endpoint: every delivery recorded as made.
async fn await_nothing_owed(http: &reqwest::Client, base: &str, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let owed: Value = get_json(
            http,
            &format!("{base}/v1/events?delivery_success=false&limit=1"),
        )
        .await;
        if owed["data"].as_array().unwrap().is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "events still owed: {owed}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_through_two_nodes_is_delivered_once_per_endpoint() {
    const EVENTS: usize = 400;
    let db = fresh_postgres().await;
    let [(node_a, a, _da), (node_b, b, _db)] = two_nodes(&db.url, &["--retry-schedule", "1s"]);
    let seen: Seen = Default::default();
    let urls = counting_receivers(2, &seen, Duration::from_millis(5)).await;
    let http = client();
    // One endpoint written through each node: both nodes route to both.
    for (base, url) in [(&a, &urls[0]), (&b, &urls[1])] {
        let r = post(
            &http,
            base,
            "/v1/webhook_endpoints",
            &format!("url={url}&enabled_events[]=*"),
        )
        .await;
        assert!(r.status().is_success());
    }
    let mut clients = Vec::new();
    for c in 0..8 {
        let (http, base) = (http.clone(), if c % 2 == 0 { a.clone() } else { b.clone() });
        clients.push(tokio::spawn(async move {
            for i in 0..EVENTS / 8 {
                let r = post(&http, &base, "/v1/customers", &format!("name=c{c}-{i}")).await;
                assert!(r.status().is_success(), "{}", r.text().await.unwrap());
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    let events = all_event_ids(&http, &b).await;
    assert_eq!(events.len(), EVENTS, "both nodes list every event");
    await_all(&seen, &events, 2, Duration::from_secs(60)).await;
    // Nothing is still owed (no retry is coming that could duplicate one).
    await_nothing_owed(&http, &a, Duration::from_secs(10)).await;
    let counts = seen.lock().unwrap().clone();
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(counts.len(), EVENTS * 2);
    assert_no_schema_violations(&a).await;
    assert_no_schema_violations(&b).await;
    stop_then_drop(db, [node_a, node_b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_node_loses_nothing_and_the_other_finishes_its_work() {
    const EVENTS: usize = 1200;
    let db = fresh_postgres().await;
    // Short attempts, so that the dead node's leases end soon.
    let args = [
        "--retry-schedule",
        "1s",
        "--delivery-timeout",
        "2s",
        "--concurrency",
        "16",
    ];
    let [(mut victim, a, _da), (node_b, b, _db)] = two_nodes(&db.url, &args);
    let seen: Seen = Default::default();
    // Slow receivers (at most 2 nodes × 16 slots / 50 ms = 640 deliveries/s)
    // keep deliveries outstanding at the kill even when a loaded machine
    // makes the creates slow.
    let urls = counting_receivers(2, &seen, Duration::from_millis(50)).await;
    let http = client();
    for url in &urls {
        let r = post(
            &http,
            &a,
            "/v1/webhook_endpoints",
            &format!("url={url}&enabled_events[]=*"),
        )
        .await;
        assert!(r.status().is_success());
    }
    let acknowledged = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut clients = Vec::new();
    for c in 0..8 {
        let (http, acked) = (http.clone(), acknowledged.clone());
        let base = if c % 2 == 0 { a.clone() } else { b.clone() };
        clients.push(tokio::spawn(async move {
            for i in 0..EVENTS / 8 {
                let sent = http
                    .post(format!("{base}/v1/customers"))
                    .bearer_auth(TEST_KEY)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(format!("name=c{c}-{i}"))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => {
                        acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    _ => return, // node A is gone; this client stops
                }
            }
        }));
    }
    // The kill lands mid-burst, with node A's claims in flight.
    while acknowledged.load(std::sync::atomic::Ordering::SeqCst) < EVENTS / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    victim.kill();
    let (acked_at_kill, delivered_at_kill) = (
        acknowledged.load(std::sync::atomic::Ordering::SeqCst),
        seen.lock().unwrap().len(),
    );
    assert!(
        delivered_at_kill < acked_at_kill * 2,
        "the kill should land with deliveries outstanding ({delivered_at_kill} of {})",
        acked_at_kill * 2
    );
    for c in clients {
        c.await.unwrap();
    }
    let acknowledged = acknowledged.load(std::sync::atomic::Ordering::SeqCst);
    let events = all_event_ids(&http, &b).await;
    assert!(
        events.len() >= acknowledged,
        "{} events for {acknowledged} acknowledged creates",
        events.len()
    );
    // Node B alone finishes everything: it delivers what A never sent, and
    // once A's leases run out, records (re-sending if need be) what A had
    // claimed, so that no event is left owed.
    await_all(&seen, &events, 2, Duration::from_secs(90)).await;
    await_nothing_owed(&http, &b, Duration::from_secs(90)).await;
    eprintln!(
        "cluster kill: {} events ({acknowledged} acknowledged), {delivered_at_kill} deliveries before SIGKILL",
        events.len()
    );
    stop_then_drop(db, [victim, node_b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_session_on_one_node_receives_events_written_through_another() {
    use crate::stripe_cli::{expect, listen, run};
    let db = fresh_postgres().await;
    let [(node_a, a, _da), (node_b, b, _db)] = two_nodes(&db.url, &[]);
    let home = tempfile::tempdir().unwrap();
    let secret = run(
        home.path(),
        &a,
        &["listen", "--print-secret", "--skip-update"],
    );
    let secret = secret.trim().to_owned();
    let mut rx = Receiver::start().await;
    let (_cli, _lines) = listen(
        home.path(),
        &a,
        &rx.url,
        &rx.url,
        &["--events", "customer.created"],
    )
    .await;
    let http = client();
    for i in 0..5 {
        let r = post(&http, &b, "/v1/customers", &format!("name=through-b-{i}")).await;
        assert!(r.status().is_success());
        let event = expect(&mut rx, "customer.created", None, &secret).await;
        assert_eq!(event["data"]["object"]["name"], format!("through-b-{i}"));
    }
    assert_no_schema_violations(&a).await;
    assert_no_schema_violations(&b).await;
    stop_then_drop(db, [node_a, node_b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_racing_one_idempotency_key_create_one_object() {
    const KEYS: usize = 20;
    let db = fresh_postgres().await;
    let [(node_a, a, _da), (node_b, b, _db)] = two_nodes(&db.url, &[]);
    let http = client();
    for k in 0..KEYS {
        let send = |base: String| {
            let http = http.clone();
            async move {
                let r = http
                    .post(format!("{base}/v1/customers"))
                    .bearer_auth(TEST_KEY)
                    .header("idempotency-key", format!("race-{k}"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(format!("name=key-{k}"))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
                (status, body)
            }
        };
        let ((sa, ja), (sb, jb)) = tokio::join!(send(a.clone()), send(b.clone()));
        // While one node runs the request, the other answers Stripe's 409
        // (SDKs retry it), or replays the answer if it came second.
        for (status, body) in [(sa, &ja), (sb, &jb)] {
            assert!(
                status == 200 || (status == 409 && body["error"]["type"] == "idempotency_error"),
                "{status} {body}"
            );
        }
        assert!(sa == 200 || sb == 200, "one node ran it: {ja} {jb}");
        // The retry of either node now replays the one answer.
        let ((ra, ja), (rb, jb)) = tokio::join!(send(a.clone()), send(b.clone()));
        assert_eq!((ra, rb), (200, 200), "{ja} {jb}");
        assert_eq!(ja["id"], jb["id"], "one key, one customer");
    }
    let list: Value = get_json(&http, &format!("{b}/v1/customers?limit=100")).await;
    assert_eq!(list["data"].as_array().unwrap().len(), KEYS);
    stop_then_drop(db, [node_a, node_b]).await;
}

/// The README's split deployment: a node that only serves the API and one
/// that only delivers, on one database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_node_and_a_worker_node_split_the_work() {
    let db = fresh_postgres().await;
    let (api_dir, worker_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (api_node, api) = spawn(
        api_dir.path(),
        &[
            "--database-url",
            &db.url,
            "--role",
            "api",
            "--secrets-key",
            "split secrets",
        ],
    );
    let (worker_node, worker) = spawn(
        worker_dir.path(),
        &[
            "--database-url",
            &db.url,
            "--role",
            "worker",
            "--secrets-key",
            "split secrets",
        ],
    );
    let http = client();
    // The worker serves health checks only.
    let health = http.get(format!("{worker}/readyz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let api_call = http
        .get(format!("{worker}/v1/customers"))
        .bearer_auth(TEST_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(api_call.status(), 404, "a worker serves no API");
    let mut rx = Receiver::start().await;
    let r = post(
        &http,
        &api,
        "/v1/webhook_endpoints",
        &format!("url={}&enabled_events[]=*", rx.url),
    )
    .await;
    assert!(r.status().is_success());
    let r = post(&http, &api, "/v1/customers", "name=split").await;
    assert!(r.status().is_success());
    // The API node queues; the worker delivers.
    let got = rx.next().await;
    assert_eq!(got.json()["type"], "customer.created");
    assert_eq!(got.json()["data"]["object"]["name"], "split");
    stop_then_drop(db, [api_node, worker_node]).await;
}
