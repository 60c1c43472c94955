//! Crash safety: SIGKILL the real binary mid-delivery, restart it on the same
//! data dir, and prove every event still reaches every endpoint.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;

use crate::support::TEST_KEY;

type Seen = Arc<Mutex<HashMap<(String, String), usize>>>;

fn spawn(data_dir: &std::path::Path, addr: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--addr", addr, "--data-dir"])
        .arg(data_dir)
        .args(["--test-key", TEST_KEY, "--retry-schedule", "1s", "--delivery-timeout", "2s"])
        .env("SWITCHBOARD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut first).unwrap();
    // Keep draining: the server prints more, and a closed pipe would kill it.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let base = first.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(base.starts_with("http://"), "unexpected first line: {first}");
    (child, base)
}

async fn record(State((seen, tag)): State<(Seen, String)>, _h: HeaderMap, body: Bytes) -> &'static str {
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    // Slow enough that many deliveries are in flight when the kill lands.
    tokio::time::sleep(Duration::from_millis(2)).await;
    *seen.lock().unwrap().entry((v["id"].as_str().unwrap().to_owned(), tag)).or_default() += 1;
    "ok"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_delivery() {
    const EVENTS: usize = 2000;
    const ENDPOINTS: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let seen: Seen = Default::default();
    let mut urls = Vec::new();
    for i in 0..ENDPOINTS {
        let app = axum::Router::new().fallback(record).with_state((seen.clone(), format!("ep{i}")));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        urls.push(format!("http://{}/hook", l.local_addr().unwrap()));
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    }
    let (mut child, base) = spawn(dir.path(), "127.0.0.1:0");
    let http = switchboard_dispatcher::http_client(Duration::from_secs(10));
    for url in &urls {
        let r = http.post(format!("{base}/v1/webhook_endpoints")).bearer_auth(TEST_KEY)
            .body(format!("url={url}&enabled_events[]=*")).header("content-type", "application/x-www-form-urlencoded")
            .send().await.unwrap();
        assert!(r.status().is_success());
    }

    // Create events from 16 concurrent clients; kill the server half-way through the deliveries.
    let mut clients = Vec::new();
    for c in 0..16 {
        let (http, base) = (http.clone(), base.clone());
        clients.push(tokio::spawn(async move {
            for i in 0..EVENTS / 16 {
                let r = http.post(format!("{base}/v1/customers")).bearer_auth(TEST_KEY)
                    .body(format!("name=c{c}-{i}")).header("content-type", "application/x-www-form-urlencoded")
                    .send().await.unwrap();
                assert!(r.status().is_success());
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    let target = EVENTS * ENDPOINTS / 3;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().len() < target {
        assert!(tokio::time::Instant::now() < deadline, "deliveries never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let delivered_before_kill = seen.lock().unwrap().len();

    let (mut child, base) = spawn(dir.path(), "127.0.0.1:0");
    // Every event the API acknowledged, to every endpoint.
    let mut event_ids = Vec::new();
    let mut after = String::new();
    loop {
        let url = format!("{base}/v1/events?limit=100{after}");
        let bytes = http.get(url).bearer_auth(TEST_KEY).send().await.unwrap().bytes().await.unwrap();
        let page: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let data = page["data"].as_array().unwrap();
        event_ids.extend(data.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
        after = format!("&starting_after={}", event_ids.last().unwrap());
    }
    assert_eq!(event_ids.len(), EVENTS, "every acknowledged create has its event");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let missing = {
            let seen = seen.lock().unwrap();
            event_ids.iter().flat_map(|id| (0..ENDPOINTS).map(move |i| (id.clone(), format!("ep{i}"))))
                .filter(|k| !seen.contains_key(k)).count()
        };
        if missing == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{missing} deliveries never arrived after restart");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let duplicates: usize = seen.lock().unwrap().values().map(|n| n - 1).sum();
    eprintln!(
        "crash test: {} deliveries, {delivered_before_kill} before SIGKILL, {duplicates} duplicates after restart",
        EVENTS * ENDPOINTS
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
