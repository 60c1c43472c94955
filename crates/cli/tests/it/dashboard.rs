//! The dashboard in a real browser: `compat/dashboard/test.mjs` drives
//! Debian's Chromium with playwright-core against the real binary (sign in,
//! create a Connect endpoint through the form, see an event and its attempt
//! arrive without reloading, Resend, see the second attempt); screenshots go
//! to `target/screenshots/dashboard/`. Here: the receiver got both
//! deliveries, signed with the secret the dashboard revealed.

use std::path::PathBuf;

use serde_json::Value;

use crate::support::{Receiver, TEST_KEY, assert_no_schema_violations, spawn};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_a_real_browser() {
    let dir = workspace().join("compat/dashboard");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "compat/dashboard/node_modules missing: run scripts/test.sh (it installs playwright-core and Chromium)"
    );
    let data = tempfile::tempdir().unwrap();
    let (_server, base) = spawn(data.path(), &["--retry-schedule", "fast"]);
    let mut rx = Receiver::start().await;
    let shots = workspace().join("target/screenshots/dashboard");
    let out = tokio::process::Command::new("node")
        .arg("test.mjs")
        .args([&base, TEST_KEY, &rx.url])
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
    let secret = result["secret"].as_str().unwrap();
    // The delivery and the resend, each the connected account's customer.created.
    let mut seen = 0;
    while seen < 2 {
        let got = rx.next().await;
        switchboard_receiver::verify_header_at(&got.body, got.signature(), secret, 0, 0)
            .expect("signed with the secret the dashboard revealed");
        let event = got.json();
        if event["type"] == "customer.created" {
            assert_eq!(event["account"], result["account"]);
            assert_eq!(event["data"]["object"]["id"], result["customer"]);
            seen += 1;
        }
    }
    for shot in [
        "1-webhooks-empty",
        "3-endpoint-created",
        "4-event-arrived-live",
        "5-resent",
    ] {
        assert!(shots.join(format!("{shot}.png")).exists(), "{shot}.png");
    }
    assert_no_schema_violations(&base).await;
}
