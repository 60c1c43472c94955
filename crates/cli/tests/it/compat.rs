//! The official stripe-python SDK against the real binary (`compat/python`).
//!
//! `scripts/test.sh` prepares the virtualenv; `SWITCHBOARD_PYTHON` may point
//! at another interpreter that has `stripe==16.1.0` installed.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{TEST_KEY, spawn};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
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
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base) = spawn(dir.path(), &["--retry-schedule", "fast"]);
    let out = Command::new(&python)
        .arg(workspace().join("compat/python/test_stripe_python.py"))
        .env("SWITCHBOARD_API_BASE", &base)
        .env("SWITCHBOARD_TEST_KEY", TEST_KEY)
        .output()
        .unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "stripe-python suite failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("0 failed"), "{stdout}");
}
