//! The official SDKs against the real binary: stripe-python 16.1.0
//! (`compat/python`) and stripe-node 23.x (`compat/node`).
//!
//! `scripts/test.sh` prepares the virtualenv and `node_modules`;
//! `SWITCHBOARD_PYTHON` may point at another interpreter with `stripe==16.1.0`.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{TEST_KEY, assert_no_schema_violations, spawn};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs an SDK suite against two fresh servers (the second with `--rate-limit 1`,
/// for the SDKs' RateLimitError) and asserts it passed.
fn run_suite(name: &str, mut suite: Command) {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base) = spawn(dir.path(), &["--retry-schedule", "fast"]);
    let limited_dir = tempfile::tempdir().unwrap();
    let (mut limited, limited_base) = spawn(limited_dir.path(), &["--rate-limit", "1"]);
    let out = suite
        .env("SWITCHBOARD_API_BASE", &base)
        .env("SWITCHBOARD_RATE_LIMITED_API_BASE", &limited_base)
        .env("SWITCHBOARD_TEST_KEY", TEST_KEY)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{name} suite failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(assert_no_schema_violations(&base));
    server.kill();
    limited.kill();
}

#[test]
fn stripe_python_suite_passes() {
    let python = std::env::var_os("SWITCHBOARD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("compat/.venv/bin/python"));
    assert!(
        python.exists(),
        "{} not found: run scripts/test.sh (it creates compat/.venv with stripe==16.1.0)",
        python.display()
    );
    let mut suite = Command::new(&python);
    suite.arg(workspace().join("compat/python/test_stripe_python.py"));
    run_suite("stripe-python", suite);
}

#[test]
fn stripe_node_suite_passes() {
    let dir = workspace().join("compat/node");
    assert!(
        dir.join("node_modules/stripe").exists(),
        "compat/node/node_modules missing: run scripts/test.sh (it installs compat/node)"
    );
    let mut suite = Command::new("node");
    suite.arg("test.mjs").current_dir(&dir);
    run_suite("stripe-node", suite);
}
