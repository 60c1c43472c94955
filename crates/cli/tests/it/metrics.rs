//! `GET /metrics`: an OpenMetrics exposition that the reference parser
//! (the Prometheus project's Python client, `compat/.venv`) reads strictly,
//! with the figures an operator watches moving as the API and deliveries do.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::support::{Receiver, TEST_KEY, TestNode};

/// Every sample as (name, labels, value), parsed by
/// `prometheus_client.openmetrics.parser` (which rejects malformed text).
fn parse(text: &str) -> Vec<(String, HashMap<String, String>, f64)> {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../compat/.venv/bin/python");
    let mut child = Command::new(python)
        .args([
            "-c",
            "import sys, json\n\
             from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
             out = [[s.name, s.labels, s.value] for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples]\n\
             print(json.dumps(out))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("compat/.venv (scripts/test.sh installs prometheus-client)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the OpenMetrics parser rejects the scrape: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples: Vec<(String, HashMap<String, String>, f64)> =
        serde_json::from_slice(&out.stdout).unwrap();
    samples
}

fn value(
    samples: &[(String, HashMap<String, String>, f64)],
    name: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
}

async fn scrape(t: &TestNode) -> Vec<(String, HashMap<String, String>, f64)> {
    let resp = t
        .http
        .get(format!("{}/metrics", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = String::from_utf8(resp.bytes().await.unwrap().to_vec()).unwrap();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            line.starts_with("switchboard_"),
            "unprefixed sample: {line}"
        );
    }
    parse(&text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_scrape_cleanly_and_follow_the_work() {
    let t = TestNode::start().await;
    let mut rx = Receiver::start().await;
    t.post(
        "/v1/webhook_endpoints",
        &format!("url={}&enabled_events[]=*", rx.url),
    )
    .await;
    t.post("/v1/customers", "name=Counted").await;
    rx.next().await;
    let (status, _, _) = t
        .request("GET", "/v1/customers/cus_missing", Some(TEST_KEY), "", &[])
        .await;
    assert_eq!(status, 404);
    // The attempt is counted when its outcome is known, a moment after the
    // receiver answered, and the queue gauge (read from the store) follows
    // once the outcome is committed.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let m = loop {
        let m = scrape(&t).await;
        let done = value(
            &m,
            "switchboard_deliveries_total",
            &[("outcome", "succeeded")],
        );
        let pending = value(&m, "switchboard_queue_pending_deliveries", &[]);
        if (done == Some(1.0) && pending == Some(0.0)) || tokio::time::Instant::now() > deadline {
            break m;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let events = [("type", "customer.created"), ("mode", "test")];
    assert_eq!(
        value(&m, "switchboard_events_created_total", &events),
        Some(1.0)
    );
    let succeeded = [("outcome", "succeeded")];
    assert_eq!(
        value(&m, "switchboard_deliveries_total", &succeeded),
        Some(1.0)
    );
    let created = [
        ("method", "POST"),
        ("route", "/v1/customers"),
        ("status", "200"),
    ];
    assert_eq!(
        value(&m, "switchboard_api_requests_total", &created),
        Some(1.0)
    );
    // Routes are templates, never raw paths (which would explode the label space).
    let missing = [
        ("method", "GET"),
        ("route", "/v1/customers/{id}"),
        ("status", "404"),
    ];
    assert_eq!(
        value(&m, "switchboard_api_requests_total", &missing),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "switchboard_attempt_duration_seconds_count", &[]),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "switchboard_store_commit_duration_seconds_count", &[]),
        Some(2.0)
    );
    assert_eq!(
        value(&m, "switchboard_queue_pending_deliveries", &[]),
        Some(0.0)
    );
    assert_eq!(
        value(&m, "switchboard_queue_oldest_due_age_seconds", &[]),
        Some(0.0)
    );
    assert_eq!(value(&m, "switchboard_listen_sessions", &[]), Some(0.0));
}

/// `--log-format json`: one JSON object per line, a line per API request and
/// per delivery attempt with their ids, and never a key or a secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_name_requests_and_attempts_and_hide_secrets() {
    use crate::support::{LIVE_KEY, spawn_with_lines};
    let data = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.args([
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "--test-key",
        TEST_KEY,
    ])
    .args(["--live-key", LIVE_KEY, "--data-dir"])
    .arg(data.path())
    .env("SWITCHBOARD_LOG", "info");
    let (_server, mut lines) = spawn_with_lines(&mut cmd);
    let base = loop {
        let line = next_line(&mut lines).await;
        if let Some(addr) = line.strip_prefix("switchboard listening on ") {
            break addr.trim().to_owned();
        }
    };
    let mut rx = Receiver::start().await;
    let http = switchboard_dispatcher::http_client(std::time::Duration::from_secs(10));
    let post = |path: &str, body: String| {
        http.post(format!("{base}{path}"))
            .bearer_auth(TEST_KEY)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("idempotency-key", format!("log-{path}"))
            .body(body)
            .send()
    };
    let we = post(
        "/v1/webhook_endpoints",
        format!("url={}&enabled_events[]=*", rx.url),
    )
    .await
    .unwrap();
    let secret = {
        let v: serde_json::Value = serde_json::from_slice(&we.bytes().await.unwrap()).unwrap();
        v["secret"].as_str().unwrap().to_owned()
    };
    post("/v1/customers", "name=Logged".into()).await.unwrap();
    let event_id = rx.next().await.json()["id"].as_str().unwrap().to_owned();
    let (mut request, mut attempt) = (None, None);
    while request.is_none() || attempt.is_none() {
        let line = next_line(&mut lines).await;
        if !line.starts_with('{') {
            continue; // the banner on stdout
        }
        assert!(
            !line.contains(TEST_KEY) && !line.contains(LIVE_KEY) && !line.contains(&secret),
            "{line}"
        );
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        match v["message"].as_str() {
            Some("api request") if v["path"] == "/v1/customers" => request = Some(v),
            Some("delivery attempt") => attempt = Some(v),
            _ => {}
        }
    }
    let request = request.unwrap();
    assert!(request["request_id"].as_str().unwrap().starts_with("req_"));
    assert_eq!(
        (request["method"].as_str(), request["status"].as_u64()),
        (Some("POST"), Some(200))
    );
    assert_eq!(request["idempotency_key"], "log-/v1/customers");
    let attempt = attempt.unwrap();
    assert_eq!(attempt["event"], event_id.as_str());
    assert!(attempt["endpoint"].as_str().unwrap().starts_with("we_"));
    assert_eq!(attempt["status"], 200);
}

async fn next_line(lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(std::time::Duration::from_secs(20), lines.recv())
        .await
        .ok()
        .flatten()
        .expect("a log line")
}
