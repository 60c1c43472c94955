//! The `platform` binary itself: starts on port 0, announces its address on
//! the first line of stdout, verifies a delivery and shows it in `/state`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use switchboard_receiver::generate_test_header;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 exchange with `Connection: close`; returns (status, body).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut res = String::new();
    stream.read_to_string(&mut res).unwrap();
    let status = res[9..12].parse().unwrap();
    let body = res
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn the_binary_listens_verifies_and_reports() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_platform"))
        .args(["--port", "0"])
        .env("STRIPE_WEBHOOK_SECRET", "whsec_old, whsec_binary")
        .env("STRIPE_SECRET_KEY", "sk_test_unused")
        // Nothing here is fetched: payout.failed carries what it needs.
        .env("STRIPE_API_BASE", "http://127.0.0.1:9")
        .env_remove("PORT")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _running = Running(child);
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).unwrap();
    let addr = first
        .trim_end()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();

    let body = br#"{"id":"evt_bin","object":"event","account":"acct_bin","type":"payout.failed","created":1,"livemode":false,"data":{"object":{"id":"po_bin","object":"payout","destination":"ba_bin","failure_code":"no_account"}}}"#;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let header = generate_test_header(body, "whsec_binary", now);
    let (status, text) = http(
        &addr,
        "POST",
        "/webhook",
        &[("Stripe-Signature", &header)],
        body,
    );
    assert_eq!((status, text.as_str()), (200, "account flagged"));
    let (status, _) = http(
        &addr,
        "POST",
        "/webhook",
        &[("Stripe-Signature", "t=1,v1=00")],
        body,
    );
    assert_eq!(status, 400);

    let (status, state) = http(&addr, "GET", "/state", &[], b"");
    assert_eq!(status, 200);
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["processed_events"], 1);
    assert_eq!(
        state["accounts"]["acct_bin"]["last_failed_payout"]["destination"],
        "ba_bin"
    );
    assert_eq!(
        state["accounts"]["acct_bin"]["last_failed_payout"]["failure_code"],
        "no_account"
    );
}
