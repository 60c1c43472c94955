//! End to end: the example Connect platform (`examples/platform`) receives
//! what `switchboard trigger` makes happen on a real server, and its state
//! shows it handled each event.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{KillOnDrop, TEST_KEY, spawn};

/// The example's binary, built beside ours by `cargo test --workspace`.
fn platform_bin() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_switchboard")).with_file_name("platform");
    assert!(
        bin.exists(),
        "{} not found: run the suite with `cargo test --workspace` (scripts/test.sh)",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn trigger(base: &str, event: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["trigger", event, "--api-base", base, "--api-key", TEST_KEY])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "trigger {event}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn state(http: &reqwest::Client, platform: &str) -> Value {
    let resp = http.get(format!("{platform}/state")).send().await.unwrap();
    serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
}

/// Polls the platform's state until `f` holds (deliveries are asynchronous).
async fn eventually(http: &reqwest::Client, platform: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s = state(http, platform).await;
        if f(&s) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "platform state never matched: {s:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Connect endpoint at a free port, and the example platform listening
/// there with its secret: (process, platform URL, endpoint).
async fn start_platform(http: &reqwest::Client, base: &str) -> (KillOnDrop, String, Value) {
    let port = free_port();
    let resp = http
        .post(format!("{base}/v1/webhook_endpoints"))
        .bearer_auth(TEST_KEY)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "url=http://127.0.0.1:{port}/webhook&enabled_events[]=*&connect=true"
        ))
        .send()
        .await
        .unwrap();
    let we: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    let mut child = Command::new(platform_bin())
        .args(["--port", &port.to_string()])
        .env("STRIPE_WEBHOOK_SECRET", we["secret"].as_str().unwrap())
        .env("STRIPE_SECRET_KEY", TEST_KEY)
        .env("STRIPE_API_BASE", base)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut first).unwrap();
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    assert!(first.contains("listening on"), "{first}");
    (KillOnDrop(child), format!("http://127.0.0.1:{port}"), we)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_platform_handles_triggered_connect_events() {
    let data = tempfile::tempdir().unwrap();
    let (_server, base) = spawn(data.path(), &["--retry-schedule", "fast"]);
    let http = switchboard_dispatcher::http_client(Duration::from_secs(10));
    let (_platform_process, platform, we) = start_platform(&http, &base).await;

    // account.updated: the platform tracks the account's requirements.
    trigger(&base, "account.updated");
    let s = eventually(&http, &platform, |s| {
        s["accounts"].as_object().is_some_and(|a| !a.is_empty())
    })
    .await;
    assert!(s["processed_events"].as_u64().unwrap() >= 1);

    // payout.failed: the account and its bank account are flagged.
    trigger(&base, "payout.failed");
    let s = eventually(&http, &platform, |s| {
        s["accounts"]
            .as_object()
            .unwrap()
            .values()
            .any(|a| a["payout_failed"] == true)
    })
    .await;
    let (acct, flagged) = s["accounts"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, a)| a["payout_failed"] == true)
        .unwrap();
    assert_eq!(flagged["last_failed_payout"]["failure_code"], "no_account");
    assert!(
        flagged["last_failed_payout"]["destination"]
            .as_str()
            .unwrap()
            .starts_with("ba_")
    );
    let acct = acct.clone();

    // A duplicate delivery is acknowledged and not applied twice.
    let as_acct = |req: reqwest::RequestBuilder| {
        req.bearer_auth(TEST_KEY)
            .header("Stripe-Account", acct.as_str())
    };
    let listed = as_acct(http.get(format!("{base}/v1/events?type=payout.failed")))
        .send()
        .await
        .unwrap();
    let listed: Value = serde_json::from_slice(&listed.bytes().await.unwrap()).unwrap();
    let evt = listed["data"][0]["id"].as_str().unwrap().to_owned();
    let resent = as_acct(http.post(format!("{base}/v1/events/{evt}/retry")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("webhook_endpoint={}", we["id"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert!(resent.status().is_success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let a = as_acct(http.get(format!("{base}/switchboard/v1/events/{evt}/attempts")))
            .send()
            .await
            .unwrap();
        let a: Value = serde_json::from_slice(&a.bytes().await.unwrap()).unwrap();
        if a["data"].as_array().unwrap().len() >= 2 {
            assert_eq!(a["data"][0]["status_code"], 200, "{a:#}");
            assert!(
                a["data"][0]["response_body"]
                    .as_str()
                    .unwrap()
                    .contains("duplicate"),
                "{a:#}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the resend never arrived: {a:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Applied once: the flagged payout is still the one first recorded.
    let after = state(&http, &platform).await;
    assert_eq!(
        after["accounts"][acct.as_str()]["last_failed_payout"],
        flagged["last_failed_payout"]
    );

    // account.application.deauthorized: the account's local state is removed.
    trigger(&base, "account.application.deauthorized");
    let s = eventually(&http, &platform, |s| {
        !s["deauthorized"].as_array().unwrap().is_empty()
    })
    .await;
    let gone = s["deauthorized"][0].as_str().unwrap();
    assert!(s["accounts"].get(gone).is_none(), "{s:#}");
}

/// Chaos mode: every event delivered twice, some held back so later ones
/// overtake them, some attempts failed unsent. The example platform still
/// applies each event exactly once, and every fault is in the attempt log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_platform_survives_chaos_mode() {
    let data = tempfile::tempdir().unwrap();
    let (_server, base) = spawn(
        data.path(),
        &[
            "--retry-schedule",
            "fast",
            "--chaos",
            // fail=0.1: an event fails all five attempts of the fast schedule
            // one time in 100,000.
            "duplicate=1,reorder=0.5,delay=300ms,fail=0.1,seed=7",
        ],
    );
    let http = switchboard_dispatcher::http_client(Duration::from_secs(10));
    let (_platform_process, platform, _we) = start_platform(&http, &base).await;

    trigger(&base, "payout.failed");
    let s = eventually(&http, &platform, |s| {
        s["accounts"]
            .as_object()
            .unwrap()
            .values()
            .any(|a| a["payout_failed"] == true)
    })
    .await;
    let acct = s["accounts"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, a)| a["payout_failed"] == true)
        .unwrap()
        .0
        .clone();
    // Every event of the account delivered (despite the failures), once applied.
    let listed = http
        .get(format!("{base}/v1/events?limit=100"))
        .bearer_auth(TEST_KEY)
        .header("Stripe-Account", acct.as_str())
        .send()
        .await
        .unwrap();
    let listed: Value = serde_json::from_slice(&listed.bytes().await.unwrap()).unwrap();
    let events: Vec<String> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    let mut faults = std::collections::BTreeSet::new();
    for evt in &events {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let a = http
                .get(format!("{base}/switchboard/v1/events/{evt}/attempts"))
                .bearer_auth(TEST_KEY)
                .header("Stripe-Account", acct.as_str())
                .send()
                .await
                .unwrap();
            let a: Value = serde_json::from_slice(&a.bytes().await.unwrap()).unwrap();
            let attempts = a["data"].as_array().unwrap();
            for attempt in attempts {
                for f in attempt["chaos"].as_array().unwrap() {
                    faults.insert(f.as_str().unwrap().to_owned());
                }
                if attempt["error"] == "chaos_failure" {
                    assert_eq!(attempt["chaos"], serde_json::json!(["fail"]), "{attempt:#}");
                }
            }
            if attempts.iter().any(|x| x["succeeded"] == true) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{evt} never delivered: {a:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(faults.contains("duplicate"), "{faults:?}");
    let s = eventually(&http, &platform, |s| {
        s["processed_events"].as_u64().unwrap() as usize >= events.len()
    })
    .await;
    assert_eq!(
        s["processed_events"].as_u64().unwrap() as usize,
        events.len(),
        "each event applied exactly once, duplicates and all: {s:#}"
    );
}
