//! The hosted pages in a real browser: `compat/dashboard/hosted.mjs` drives
//! Debian's Chromium with playwright-core against the real binary (onboard
//! an Express account through its Account Link, correct a typo on the way,
//! see a used link go to `refresh_url`; complete one 3-D Secure challenge
//! and fail another); screenshots go to `target/screenshots/hosted/`.
//! Here: the platform's Connect endpoint heard the account become able to
//! charge, and its own endpoint heard the one payment succeed.

use std::path::PathBuf;

use serde_json::Value;

use crate::support::{Receiver, TEST_KEY, assert_no_schema_violations, spawn};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn hook(base: &str, url: &str, connect: bool) {
    let r = switchboard_dispatcher::http_client(std::time::Duration::from_secs(10))
        .post(format!("{base}/v1/webhook_endpoints"))
        .bearer_auth(TEST_KEY)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("url={url}&enabled_events[]=*&connect={connect}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_and_3d_secure_work_in_a_real_browser() {
    let dir = workspace().join("compat/dashboard");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "compat/dashboard/node_modules missing: run scripts/test.sh (it installs playwright-core and Chromium)"
    );
    let data = tempfile::tempdir().unwrap();
    let (_server, base) = spawn(data.path(), &[]);
    let mut connect = Receiver::start().await;
    let mut own = Receiver::start().await;
    hook(&base, &connect.url, true).await;
    hook(&base, &own.url, false).await;
    let shots = workspace().join("target/screenshots/hosted");
    let out = tokio::process::Command::new("node")
        .arg("hosted.mjs")
        .args([&base, TEST_KEY])
        .arg(&shots)
        .current_dir(&dir)
        .output()
        .await
        .expect("node runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "the browser test failed (screenshots in {}):\n{stdout}\n{stderr}",
        shots.display()
    );
    let result: Value = serde_json::from_str(stdout.trim()).expect("the script's summary");
    loop {
        let e = connect.next().await.json();
        assert_eq!(e["account"], result["account"]);
        let acct = &e["data"]["object"];
        if e["type"] == "account.updated" && acct["charges_enabled"] == true {
            assert_eq!(
                acct["individual"]["first_name"], "Ada",
                "what was typed on the page"
            );
            assert_eq!(acct["capabilities"]["card_payments"], "active");
            break;
        }
    }
    let mut outcomes = Vec::new();
    while outcomes.len() < 2 {
        let e = own.next().await.json();
        let t = e["type"].as_str().unwrap();
        if t == "payment_intent.succeeded" || t == "payment_intent.payment_failed" {
            outcomes.push((
                t.to_owned(),
                e["data"]["object"]["id"].as_str().unwrap().to_owned(),
            ));
        }
    }
    outcomes.sort();
    assert_eq!(
        outcomes,
        [
            (
                "payment_intent.payment_failed".to_owned(),
                result["failed"].as_str().unwrap().to_owned()
            ),
            (
                "payment_intent.succeeded".to_owned(),
                result["succeeded"].as_str().unwrap().to_owned()
            ),
        ]
    );
    for shot in [
        "onboarding-1-form",
        "onboarding-2-error",
        "onboarding-3-returned",
        "3ds-1-challenge",
        "3ds-2-failed",
    ] {
        assert!(shots.join(format!("{shot}.png")).exists(), "{shot}.png");
    }
    assert_no_schema_violations(&base).await;
}
