//! Crash safety: SIGKILL the real binary mid-delivery, restart it on the same
//! data dir, and prove every event still reaches every endpoint.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::support::{Seen, TEST_KEY, all_event_ids, await_all, counting_receivers, spawn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_delivery() {
    const EVENTS: usize = 2000;
    const ENDPOINTS: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let seen: Seen = Default::default();
    // Slow enough that many deliveries are in flight when the kill lands.
    let urls = counting_receivers(ENDPOINTS, &seen, Duration::from_millis(10)).await;
    let (mut child, base) = spawn(
        dir.path(),
        &[
            "--retry-schedule",
            "1s",
            "--delivery-timeout",
            "2s",
            "--concurrency",
            "16",
        ],
    );
    let http = switchboard_dispatcher::http_client(Duration::from_secs(10));
    for url in &urls {
        let r = http
            .post(format!("{base}/v1/webhook_endpoints"))
            .bearer_auth(TEST_KEY)
            .body(format!("url={url}&enabled_events[]=*"))
            .header("content-type", "application/x-www-form-urlencoded")
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    // 16 clients create events while deliveries flow; the kill lands as the last
    // create is acknowledged, with deliveries and outcome writes in flight.
    let acknowledged = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut clients = Vec::new();
    for c in 0..16 {
        let (http, base, acked) = (http.clone(), base.clone(), acknowledged.clone());
        clients.push(tokio::spawn(async move {
            for i in 0..EVENTS / 16 {
                let sent = http
                    .post(format!("{base}/v1/customers"))
                    .bearer_auth(TEST_KEY)
                    .body(format!("name=c{c}-{i}"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => {
                        acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                    }
                    _ => return, // the server is gone
                };
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    child.kill(); // SIGKILL, with deliveries in flight and thousands queued
    let delivered_before_kill = seen.lock().unwrap().len();
    let acknowledged = acknowledged.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        acknowledged * ENDPOINTS - delivered_before_kill >= 1000,
        "the kill should land with thousands of deliveries outstanding ({delivered_before_kill} of {} done)",
        acknowledged * ENDPOINTS
    );

    let (mut child, base) = spawn(
        dir.path(),
        &[
            "--retry-schedule",
            "1s",
            "--delivery-timeout",
            "2s",
            "--concurrency",
            "16",
        ],
    );
    // Every event the API acknowledged, to every endpoint.
    let event_ids = all_event_ids(&http, &base).await;
    // A create whose response was lost to the kill may still have committed.
    assert!(
        event_ids.len() >= acknowledged,
        "{} events for {acknowledged} acknowledged creates",
        event_ids.len()
    );
    await_all(&seen, &event_ids, ENDPOINTS, Duration::from_secs(90)).await;
    let duplicates: usize = seen.lock().unwrap().values().map(|n| n - 1).sum();
    eprintln!(
        "crash test: {} events committed ({acknowledged} acknowledged), {} deliveries, \
         {delivered_before_kill} before SIGKILL, {duplicates} duplicates after restart",
        event_ids.len(),
        event_ids.len() * ENDPOINTS
    );
    child.kill();
}

/// Five SIGKILLs in a row during a 10,000-create burst, each at a moment
/// chosen by a seeded random draw, the server restarted on the same data
/// dir each time: every acknowledged create is there afterwards and every
/// event reaches every endpoint. Duplicates (deliveries made again after a
/// kill, as at-least-once allows) are counted and reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_sigkills_during_a_burst_lose_nothing() {
    use rand::{Rng as _, SeedableRng as _};
    const EVENTS: usize = 10_000;
    const CLIENTS: usize = 16;
    const ENDPOINTS: usize = 2;
    let dir = tempfile::tempdir().unwrap();
    let seen: Seen = Default::default();
    let urls = counting_receivers(ENDPOINTS, &seen, Duration::from_millis(2)).await;
    let args = [
        "--retry-schedule",
        "1s",
        "--delivery-timeout",
        "2s",
        "--shutdown-timeout",
        "1s",
    ];
    let http = switchboard_dispatcher::http_client(Duration::from_secs(10));
    let (mut child, mut base) = spawn(dir.path(), &args);
    for url in &urls {
        let r = http
            .post(format!("{base}/v1/webhook_endpoints"))
            .bearer_auth(TEST_KEY)
            .body(format!("url={url}&enabled_events[]=*"))
            .header("content-type", "application/x-www-form-urlencoded")
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    let acked: Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut next = 0usize;
    for round in 0..5 {
        // Kill somewhere in this round's share of the burst.
        let kill_at = EVENTS / 5 * round + rng.random_range(EVENTS / 20..EVENTS / 5);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut clients = Vec::new();
        let counter = Arc::new(std::sync::atomic::AtomicUsize::new(next));
        for _ in 0..CLIENTS {
            let (http, base, acked, stop, counter) = (
                http.clone(),
                base.clone(),
                acked.clone(),
                stop.clone(),
                counter.clone(),
            );
            clients.push(tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let i = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= EVENTS {
                        return;
                    }
                    let sent = http
                        .post(format!("{base}/v1/customers"))
                        .bearer_auth(TEST_KEY)
                        .body(format!("name=burst-{i}"))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .send()
                        .await;
                    let Ok(r) = sent else { return };
                    if !r.status().is_success() {
                        return;
                    }
                    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap_or_default())
                        .unwrap_or_default();
                    if let Some(id) = body["id"].as_str() {
                        acked.lock().unwrap().push(id.to_owned());
                    }
                }
            }));
        }
        while acked.lock().unwrap().len() < kill_at && !clients.iter().all(|c| c.is_finished()) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        child.kill(); // SIGKILL mid-burst
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for c in clients {
            c.await.unwrap();
        }
        next = counter
            .load(std::sync::atomic::Ordering::SeqCst)
            .min(EVENTS);
        (child, base) = spawn(dir.path(), &args);
    }
    // The sixth start delivers what is left.
    let acked_ids = acked.lock().unwrap().clone();
    assert!(
        acked_ids.len() > EVENTS / 2,
        "{} creates acknowledged",
        acked_ids.len()
    );
    let mut customers = std::collections::HashSet::new();
    let mut after = String::new();
    loop {
        let page: Value =
            crate::support::get_json(&http, &format!("{base}/v1/customers?limit=100{after}")).await;
        let data = page["data"].as_array().unwrap();
        customers.extend(data.iter().map(|c| c["id"].as_str().unwrap().to_owned()));
        if page["has_more"] != true {
            break;
        }
        after = format!(
            "&starting_after={}",
            data.last().unwrap()["id"].as_str().unwrap()
        );
    }
    let lost: Vec<&String> = acked_ids
        .iter()
        .filter(|id| !customers.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged creates lost: {lost:?}",
        lost.len()
    );
    let event_ids = all_event_ids(&http, &base).await;
    assert!(event_ids.len() >= acked_ids.len());
    await_all(&seen, &event_ids, ENDPOINTS, Duration::from_secs(120)).await;
    let duplicates: usize = seen.lock().unwrap().values().map(|n| n - 1).sum();
    eprintln!(
        "five SIGKILLs: {} creates acknowledged, {} events, {} deliveries, {duplicates} duplicates",
        acked_ids.len(),
        event_ids.len(),
        event_ids.len() * ENDPOINTS
    );
    child.kill();
}

/// SIGTERM with a hanging endpoint: the process stops within its shutdown
/// timeout (not the delivery timeout, times the queued deliveries), exits 0,
/// and the abandoned delivery is made on the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_within_the_shutdown_timeout_and_loses_nothing() {
    use crate::support::{Receiver, Reply};
    let dir = tempfile::tempdir().unwrap();
    // The first attempt hangs far longer than the shutdown timeout (and
    // within the delivery timeout); later ones are answered at once.
    let mut hanging = Receiver::scripted(vec![Reply::Delay(Duration::from_secs(120))]).await;
    let args = [
        "--retry-schedule",
        "1s",
        "--delivery-timeout",
        "60s",
        "--shutdown-timeout",
        "1s",
    ];
    let (mut child, base) = spawn(dir.path(), &args);
    let http = switchboard_dispatcher::http_client(Duration::from_secs(10));
    let post = |path: &str, body: String| {
        http.post(format!("{base}{path}"))
            .bearer_auth(TEST_KEY)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let we = post(
        "/v1/webhook_endpoints",
        format!("url={}&enabled_events[]=customer.created", hanging.url),
    )
    .await
    .unwrap();
    assert_eq!(we.status(), 200);
    let customer: serde_json::Value = serde_json::from_slice(
        &post("/v1/customers", "name=Held".into())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    // The attempt is in flight (the receiver holds it) when SIGTERM arrives.
    hanging.next().await;
    let pid = child.0.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let exited = tokio::task::spawn_blocking(move || {
        let status = child.0.wait();
        (child, status)
    });
    let (child, status) = tokio::time::timeout(Duration::from_secs(20), exited)
        .await
        .expect("SIGTERM waited for the hanging delivery instead of the shutdown timeout")
        .unwrap();
    assert!(status.unwrap().success(), "a clean shutdown exits 0");
    drop(child);

    // Restarted, it makes the abandoned delivery again.
    let (mut again, _) = spawn(dir.path(), &args);
    let mut redelivered = None;
    while redelivered.is_none() {
        let got = hanging.next().await;
        let event = got.json();
        if event["data"]["object"]["id"] == customer["id"] {
            redelivered = Some(event);
        }
    }
    again.kill();
}

/// Keys and secrets at rest: the data dir and database are this user's only,
/// and the banner shows a key whole only the once it is generated, never one
/// given by flag.
#[test]
fn secrets_at_rest_are_private_and_the_banner_shows_keys_once() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let banner = |extra: &[&str]| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .args(extra)
            .env("SWITCHBOARD_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let lines: Vec<String> = (0..5)
            .map(|_| {
                let mut l = String::new();
                out.read_line(&mut l).unwrap();
                l
            })
            .collect();
        let _ = child.kill();
        let _ = child.wait();
        lines.join("")
    };
    let first = banner(&[]);
    let key_line = |text: &str, which: &str| {
        text.lines()
            .find(|l| l.starts_with(which))
            .unwrap()
            .split_whitespace()
            .nth(3)
            .unwrap()
            .to_owned()
    };
    let test_key = key_line(&first, "test secret key");
    assert!(
        test_key.starts_with("sk_test_") && test_key.len() > 30,
        "{first}"
    );
    let live_key = key_line(&first, "live secret key");
    assert!(live_key.starts_with("sk_live_"));
    assert!(first.contains("generated now"));
    // Later starts show only the ends of the stored keys.
    let second = banner(&[]);
    assert!(!second.contains(&test_key), "{second}");
    assert!(second.contains(&test_key[test_key.len() - 4..]), "{second}");
    assert!(second.contains(&live_key[live_key.len() - 4..]), "{second}");
    // The live key is nowhere in the data dir: only its digest is kept.
    for file in std::fs::read_dir(&data).unwrap() {
        let path = file.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes
                .windows(live_key.len())
                .any(|w| w == live_key.as_bytes()),
            "{} holds the live key",
            path.display()
        );
    }
    // A live key given by flag is never printed.
    let given = "sk_live_given_by_flag_0000000000000000";
    let third = banner(&["--live-key", given]);
    assert!(!third.contains(given), "{third}");
    for (path, mode) in [(data.clone(), 0o700), (data.join("switchboard.db"), 0o600)] {
        let got = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(got, mode, "{}: {got:o}", path.display());
    }
    if let Ok(wal) = std::fs::metadata(data.join("switchboard.db-wal")) {
        assert_eq!(
            wal.permissions().mode() & 0o077,
            0,
            "the WAL holds the same secrets"
        );
    }
}

/// Webhook signing secrets are sealed at rest: the database files never
/// hold one, `switchboard.key` (0600) beside them opens them after a
/// restart, and another key opens nothing.
#[tokio::test]
async fn webhook_secrets_are_sealed_at_rest() {
    use std::os::unix::fs::PermissionsExt as _;
    let data = tempfile::tempdir().unwrap();
    let http = switchboard_dispatcher::http_client(Duration::from_secs(10));
    let (server, base) = spawn(data.path(), &[]);
    let we: Value = http
        .post(format!("{base}/v1/webhook_endpoints"))
        .bearer_auth(TEST_KEY)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("url=http://127.0.0.1:9/hook&enabled_events[]=*")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap();
    let (id, secret) = (
        we["id"].as_str().unwrap().to_owned(),
        we["secret"].as_str().unwrap().to_owned(),
    );
    drop(server);
    for file in std::fs::read_dir(data.path()).unwrap() {
        let path = file.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{} holds the webhook secret",
            path.display()
        );
    }
    let key = data.path().join("switchboard.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let reveal = |base: String| {
        let http = http.clone();
        let id = id.clone();
        async move {
            http.get(format!(
                "{base}/switchboard/v1/webhook_endpoints/{id}/secret"
            ))
            .bearer_auth(TEST_KEY)
            .send()
            .await
            .unwrap()
        }
    };
    let (server, base) = spawn(data.path(), &[]);
    let shown: Value = serde_json::from_slice(&reveal(base).await.bytes().await.unwrap()).unwrap();
    assert_eq!(
        shown["secret"],
        secret.as_str(),
        "opened with the key file after a restart"
    );
    drop(server);
    let (_server, base) = spawn(
        data.path(),
        &["--secrets-key", "not the key they were sealed with"],
    );
    let refused = reveal(base).await;
    assert!(refused.status().is_server_error(), "{}", refused.status());
    assert!(!refused.text().await.unwrap().contains(&secret));
}
