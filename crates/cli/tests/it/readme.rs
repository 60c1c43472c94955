//! The README's quick start, run as written (with this run's key, address
//! and receiver substituted for the placeholders): the Python snippet with
//! stripe-python, and the curl line.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::support::*;

fn readme() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    std::fs::read_to_string(path).unwrap()
}

/// The first fenced block of `lang` in the README.
fn block(text: &str, lang: &str) -> String {
    let start = text.find(&format!("```{lang}\n")).expect("a fenced block") + lang.len() + 4;
    let end = start + text[start..].find("```").unwrap();
    text[start..end].to_owned()
}

fn substitute(s: &str, base: &str, hook: &str) -> String {
    s.replace("sk_test_…", TEST_KEY)
        .replace("http://127.0.0.1:12111", base)
        .replace("http://localhost:4242/webhook", hook)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_start_works_as_written() {
    let data = tempfile::tempdir().unwrap();
    let (mut server, base) = spawn(data.path(), &["--retry-schedule", "fast"]);
    let mut hooks = Receiver::start().await;
    let text = readme();

    let snippet = substitute(&block(&text, "python"), &base, &hooks.url);
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../compat/.venv/bin/python");
    let out = Command::new(&python)
        .arg("-c")
        .arg(&snippet)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the README's Python snippet failed:\n{snippet}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        secret.starts_with("whsec_"),
        "it prints the secret: {secret}"
    );
    // "→ customer.created, delivered and signed"
    let got = hooks.next().await;
    let event = switchboard_receiver::verify_header_at(&got.body, got.signature(), &secret, 0, 0)
        .map(|_| got.json())
        .expect("signed with the printed secret");
    assert_eq!(event["type"], "customer.created");
    assert_eq!(event["data"]["object"]["name"], "Jane");

    let line = text
        .lines()
        .find(|l| l.starts_with("`curl "))
        .expect("the curl line");
    let command = substitute(
        line.trim_start_matches('`').split('`').next().unwrap(),
        &base,
        &hooks.url,
    );
    let args: Vec<&str> = command.split_whitespace().collect();
    let out = Command::new(args[0])
        .args(&args[1..])
        .arg("-s")
        .output()
        .unwrap();
    assert!(out.status.success(), "{command}");
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["object"], "list", "{command}: {listed}");
    assert_eq!(listed["data"][0]["type"], "customer.created");
    assert_no_schema_violations(&base).await;
    server.kill();
}
