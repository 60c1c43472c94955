//! The official Stripe CLI 1.52.0 (`compat/cli`) against the real binary:
//! `listen` forwarding platform and Connect events to their URLs, `trigger`
//! for the Connect events, `events resend` both ways, generic resource commands.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use tokio::sync::mpsc;

use crate::support::{
    KillOnDrop, Receiver, TEST_KEY, assert_no_schema_violations, get_json, spawn, spawn_with_lines,
};

pub(crate) fn stripe_bin() -> PathBuf {
    let modules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../compat/cli/node_modules");
    // The Go binary itself where npm put it: killing the node shim would orphan it.
    let native = modules.join("@stripe/cli-linux-x64/bin/stripe");
    if native.exists() {
        return native;
    }
    let bin = modules.join(".bin/stripe");
    assert!(
        bin.exists(),
        "{} not found: run scripts/test.sh (npm installs @stripe/cli 1.52.0)",
        bin.display()
    );
    bin
}

pub(crate) fn stripe(home: &Path, base: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(stripe_bin());
    cmd.args(args)
        .args(["--api-base", base, "--api-key", TEST_KEY])
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home)
        .env("STRIPE_CLI_TELEMETRY_OPTOUT", "1");
    cmd
}

pub(crate) fn run(home: &Path, base: &str, args: &[&str]) -> String {
    let out = stripe(home, base, args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "stripe {args:?} failed:\n{text}");
    text
}

/// Runs `stripe listen` and returns it once it printed "Ready!", with its output lines.
pub(crate) async fn listen(
    home: &Path,
    base: &str,
    forward: &str,
    connect: &str,
    extra: &[&str],
) -> (KillOnDrop, mpsc::UnboundedReceiver<String>) {
    let mut args = vec![
        "listen",
        "--skip-update",
        "--forward-to",
        forward,
        "--forward-connect-to",
        connect,
    ];
    args.extend_from_slice(extra);
    let (child, mut rx) = spawn_with_lines(&mut stripe(home, base, &args));
    loop {
        let line = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .ok()
            .flatten()
            .expect("stripe listen never became ready");
        if line.contains("Ready!") {
            return (child, rx);
        }
    }
}

/// Waits for an event of `event_type` at `rx`, verifies it with the listen secret, returns it.
pub(crate) async fn expect(
    rx: &mut Receiver,
    event_type: &str,
    account: Option<&str>,
    secret: &str,
) -> Value {
    loop {
        let got = rx.next().await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let event =
            switchboard_receiver::construct_event_at(&got.body, got.signature(), secret, 300, now)
                .unwrap_or_else(|e| {
                    panic!("forwarded {event_type} does not verify with the listen secret: {e}")
                });
        if event.event_type == event_type {
            assert_eq!(event.account.as_deref(), account, "{event_type}");
            return got.json();
        }
    }
}

/// A Custom account with a verified bank account, made through the CLI.
fn account_with_bank(home: &Path, base: &str) -> String {
    let created = run(home, base, &["accounts", "create", "-d", "type=custom"]);
    let acct: Value = serde_json::from_str(&created[created.find('{').unwrap()..]).unwrap();
    let acct = acct["id"].as_str().unwrap().to_owned();
    run(
        home,
        base,
        &[
            "post",
            &format!("/v1/accounts/{acct}/external_accounts"),
            "-d",
            "external_account=btok_us_verified",
        ],
    );
    acct
}

/// Like [`expect`], for events on an account the fixture created itself.
async fn expect_any_account(rx: &mut Receiver, event_type: &str, secret: &str) -> Value {
    loop {
        let got = rx.next().await;
        switchboard_receiver::verify_header_at(&got.body, got.signature(), secret, 0, 0)
            .unwrap_or_else(|e| {
                panic!("forwarded {event_type} does not verify with the listen secret: {e}")
            });
        if got.json()["type"] == event_type {
            return got.json();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_cli_listen_trigger_and_resend() {
    let home = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (mut server, base) = spawn(data.path(), &["--retry-schedule", "fast"]);
    let mut platform_rx = Receiver::start().await;
    let mut connect_rx = Receiver::start().await;
    let secret = run(
        home.path(),
        &base,
        &["listen", "--print-secret", "--skip-update"],
    )
    .trim()
    .to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let (mut listener, mut lines) = listen(
        home.path(),
        &base,
        &platform_rx.url,
        &connect_rx.url,
        &["--all-snapshot"],
    )
    .await;

    // A connected account with a bank account, so Connect payouts can be triggered too.
    let acct = account_with_bank(home.path(), &base);
    expect(
        &mut connect_rx,
        "account.external_account.created",
        Some(&acct),
        &secret,
    )
    .await;

    for event in [
        "customer.created",
        "payment_intent.succeeded",
        "balance.available",
        "account.updated",
        "account.application.deauthorized",
        "payout.created",
    ] {
        run(home.path(), &base, &["trigger", event]);
        // account.* events happen on the connected account the fixture creates.
        if event.starts_with("account.") {
            let got = expect_any_account(&mut connect_rx, event, &secret).await;
            assert!(
                got["account"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("acct_")),
                "{event}: {got:#}"
            );
        } else {
            expect(&mut platform_rx, event, None, &secret).await;
        }
    }
    for event in [
        "customer.created",
        "payment_intent.succeeded",
        "balance.available",
        "payout.created",
    ] {
        run(
            home.path(),
            &base,
            &["trigger", event, "--stripe-account", &acct],
        );
        expect(&mut connect_rx, event, Some(&acct), &secret).await;
    }
    // The CLI printed a line per event, with "connect" for Connect events.
    let printed: Vec<String> = std::iter::from_fn(|| lines.try_recv().ok()).collect();
    assert!(
        printed
            .iter()
            .any(|l| l.contains("--> connect payout.created")),
        "{printed:#?}"
    );
    assert!(
        printed.iter().any(|l| l.contains("<--  [200] POST")),
        "{printed:#?}"
    );

    // Resend to a webhook endpoint, and to the listening CLI.
    let mut resend_rx = Receiver::start().await;
    let we = run(
        home.path(),
        &base,
        &[
            "webhook_endpoints",
            "create",
            "-d",
            &format!("url={}", resend_rx.url),
            "-d",
            "enabled_events[]=customer.created",
        ],
    );
    let we: Value = serde_json::from_str(&we[we.find('{').unwrap()..]).unwrap();
    let listed = run(
        home.path(),
        &base,
        &[
            "events",
            "list",
            "--limit",
            "1",
            "-d",
            "type=customer.created",
        ],
    );
    let listed: Value = serde_json::from_str(&listed[listed.find('{').unwrap()..]).unwrap();
    let evt = listed["data"][0]["id"].as_str().unwrap().to_owned();
    run(
        home.path(),
        &base,
        &[
            "events",
            "resend",
            &evt,
            "--webhook-endpoint",
            we["id"].as_str().unwrap(),
        ],
    );
    let again = resend_rx.next().await;
    switchboard_receiver::verify_header_at(
        &again.body,
        again.signature(),
        we["secret"].as_str().unwrap(),
        0,
        0,
    )
    .unwrap();
    assert_eq!(again.json()["id"], evt.as_str());
    run(home.path(), &base, &["events", "resend", &evt]);
    assert_eq!(
        expect(&mut platform_rx, "customer.created", None, &secret).await["id"],
        evt.as_str()
    );

    // The CLI's reports are attempts like any other.
    let http = switchboard_dispatcher::http_client(Duration::from_secs(10));
    let attempts = http
        .get(format!("{base}/switchboard/v1/events/{evt}/attempts"))
        .bearer_auth(TEST_KEY)
        .send()
        .await
        .unwrap();
    let attempts: Value = serde_json::from_slice(&attempts.bytes().await.unwrap()).unwrap();
    let codes: Vec<i64> = attempts["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["status_code"].as_i64())
        .collect();
    assert!(
        codes.len() >= 3 && codes.iter().all(|c| *c == 200),
        "{attempts:#}"
    );

    listener.kill();

    // `--latest` forwards the copy rendered at the latest version (the same
    // bytes here) and only that one; `--events` narrows what is forwarded.
    let (mut latest, _lines) = listen(
        home.path(),
        &base,
        &platform_rx.url,
        &connect_rx.url,
        &["--latest", "--events", "customer.created"],
    )
    .await;
    run(home.path(), &base, &["trigger", "customer.created"]);
    let got = expect(&mut platform_rx, "customer.created", None, &secret).await;
    assert_eq!(got["api_version"], switchboard_core::DEFAULT_API_VERSION);
    platform_rx.assert_quiet(Duration::from_millis(500)).await;
    latest.kill();
    assert_no_schema_violations(&base).await;
    server.kill();
}

/// `stripe listen --all-thin`: thin events only (v1 interop and Accounts
/// v2), the platform's to `--forward-to`, a connected account's (with its
/// `context`) to `--forward-connect-to`, signed with the device's one
/// secret; the CLI's answers are recorded as attempts. `--events` with a v2
/// type and `--events-from @self` narrow it, as the CLI filters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_cli_listen_forwards_thin_events() {
    let home = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (mut server, base) = spawn(data.path(), &["--retry-schedule", "fast"]);
    let mut platform_rx = Receiver::start().await;
    let mut connect_rx = Receiver::start().await;
    let secret = run(
        home.path(),
        &base,
        &["listen", "--print-secret", "--skip-update"],
    )
    .trim()
    .to_owned();
    let (mut listener, mut lines) = listen(
        home.path(),
        &base,
        &platform_rx.url,
        &connect_rx.url,
        &["--all-thin"],
    )
    .await;
    let http = switchboard_dispatcher::http_client(Duration::from_secs(10));
    let post = |path: &str, body: String, json: bool, account: Option<&str>| {
        let mut req = http
            .post(format!("{base}{path}"))
            .bearer_auth(TEST_KEY)
            .header(
                "content-type",
                if json {
                    "application/json"
                } else {
                    "application/x-www-form-urlencoded"
                },
            )
            .body(body);
        if let Some(a) = account {
            req = req.header("stripe-account", a);
        }
        async move {
            let resp = req.send().await.unwrap();
            assert!(resp.status().is_success(), "{}", resp.status());
            serde_json::from_slice::<Value>(&resp.bytes().await.unwrap()).unwrap()
        }
    };
    let thin = |got: &crate::support::Received, kind: &str| -> Option<Value> {
        switchboard_receiver::verify_header_at(&got.body, got.signature(), &secret, 0, 0)
            .unwrap_or_else(|e| panic!("a thin event does not verify with the listen secret: {e}"));
        let j = got.json();
        assert_eq!(j["object"], "v2.core.event", "only thin events: {j:#}");
        assert!(j.get("data").is_none(), "{j:#}");
        (j["type"] == kind).then_some(j)
    };
    let cus = post("/v1/customers", "name=Thin".into(), false, None).await;
    let acct = post(
        "/v2/core/accounts",
        r#"{"display_name": "Thin Co", "identity": {"country": "us"}}"#.into(),
        true,
        None,
    )
    .await;
    let acct = acct["id"].as_str().unwrap().to_owned();
    let their = post("/v1/customers", "name=Theirs".into(), false, Some(&acct)).await;

    let (mut customer_seen, mut evt) = (false, None);
    while !customer_seen || evt.is_none() {
        let got = platform_rx.next().await;
        if let Some(j) = thin(&got, "v1.customer.created") {
            assert_eq!(j["related_object"]["id"], cus["id"]);
            assert!(j.get("context").is_none(), "{j:#}");
            customer_seen = true;
        } else if let Some(j) = thin(&got, "v2.core.account.created") {
            assert_eq!(j["related_object"]["id"], acct.as_str());
            evt = j["id"].as_str().map(String::from);
        }
    }
    loop {
        let got = connect_rx.next().await;
        if let Some(j) = thin(&got, "v1.customer.created") {
            assert_eq!(j["context"], acct.as_str());
            assert_eq!(j["related_object"]["id"], their["id"]);
            break;
        }
    }
    // The CLI's answer is the attempt's: one 200, no retry.
    let evt = evt.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let attempts = loop {
        assert!(std::time::Instant::now() < deadline, "no attempt recorded");
        let got = get_json(
            &http,
            &format!("{base}/switchboard/v1/events/{evt}/attempts"),
        )
        .await;
        if got["data"].as_array().is_some_and(|a| !a.is_empty()) {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let codes: Vec<i64> = attempts["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["status_code"].as_i64())
        .collect();
    assert_eq!(codes, [200], "{attempts:#}");
    // The device's thin listener, beside the snapshot one `--print-secret` made.
    let devices = get_json(&http, &format!("{base}/switchboard/v1/listeners")).await;
    let kinds: Vec<(&str, bool)> = devices["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["event_payload"].as_str().unwrap(), d["connected"] == true))
        .collect();
    assert!(kinds.contains(&("thin", true)), "{devices:#}");
    let printed: Vec<String> = std::iter::from_fn(|| lines.try_recv().ok()).collect();
    assert!(
        printed
            .iter()
            .any(|l| l.contains("v2.core.account.created")),
        "{printed:#?}"
    );
    listener.kill();

    // Narrowed by the CLI: one v2 type, the platform's own.
    let (mut narrow, mut narrow_lines) = spawn_with_lines(&mut stripe(
        home.path(),
        &base,
        &[
            "listen",
            "--skip-update",
            "--forward-to",
            &platform_rx.url,
            "--events",
            "v2.core.account.updated",
            "--events-from",
            "@self",
        ],
    ));
    while let Some(line) = narrow_lines.recv().await {
        if line.contains("Ready!") {
            break;
        }
    }
    post("/v1/customers", "name=Ignored".into(), false, None).await;
    post("/v1/customers", "name=Theirs".into(), false, Some(&acct)).await;
    post(
        &format!("/v2/core/accounts/{acct}"),
        r#"{"display_name": "Thin Corp"}"#.into(),
        true,
        None,
    )
    .await;
    let got = platform_rx.next().await;
    let j = thin(&got, "v2.core.account.updated").expect("only the enabled type is forwarded");
    assert_eq!(j["related_object"]["id"], acct.as_str());
    platform_rx.assert_quiet(Duration::from_millis(500)).await;
    connect_rx.assert_quiet(Duration::from_millis(200)).await;
    narrow.kill();
    assert_no_schema_violations(&base).await;
    server.kill();
}

/// `stripe logs tail` streams the requests made through the API, with the
/// CLI's filters applied by the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_cli_logs_tail_streams_requests_with_filters() {
    let data = tempfile::tempdir().unwrap();
    let (_server, base) = spawn(data.path(), &[]);
    let home = tempfile::tempdir().unwrap();
    let tail = |extra: &[&str]| {
        let mut args = vec!["logs", "tail"];
        args.extend_from_slice(extra);
        spawn_with_lines(&mut stripe(home.path(), &base, &args))
    };
    let ready = |rx: &mut mpsc::UnboundedReceiver<String>| {
        let mut rx = std::mem::replace(rx, mpsc::unbounded_channel().1);
        async move {
            loop {
                let line = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                    .await
                    .ok()
                    .flatten()
                    .expect("stripe logs tail never became ready");
                if line.contains("Ready!") {
                    return rx;
                }
            }
        }
    };
    let (_all, mut all) = tail(&[]);
    let (_gets, mut gets) = tail(&[
        "--filter-http-method",
        "GET",
        "--filter-status-code-type",
        "4XX",
    ]);
    let mut all = ready(&mut all).await;
    let mut gets = ready(&mut gets).await;
    let http = switchboard_dispatcher::http_client(Duration::from_secs(10));
    let created = http
        .post(format!("{base}/v1/customers"))
        .bearer_auth(TEST_KEY)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=Tailed")
        .send()
        .await
        .unwrap();
    let request_id = created.headers()["request-id"].to_str().unwrap().to_owned();
    let missing = http
        .get(format!("{base}/v1/customers/cus_nope"))
        .bearer_auth(TEST_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let next = |rx: &mut mpsc::UnboundedReceiver<String>, want: String| {
        let mut rx = std::mem::replace(rx, mpsc::unbounded_channel().1);
        async move {
            loop {
                let line = tokio::time::timeout(Duration::from_secs(20), rx.recv())
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| panic!("no line with {want}"));
                if line.contains(&want) {
                    return (line, rx);
                }
                assert!(
                    !line.contains("[200] POST"),
                    "the GET 4XX filter let through: {line}"
                );
            }
        }
    };
    let (line, _) = next(&mut all, format!("[{request_id}]")).await;
    assert!(line.contains("[200] POST /v1/customers"), "{line}");
    // The filtered tail sees the 404 GET and its error, never the POST.
    let (line, mut gets) = next(&mut gets, "/v1/customers/cus_nope".into()).await;
    assert!(line.contains("[404] GET"), "{line}");
    let (line, _) = next(&mut gets, "Message:".into()).await;
    assert!(line.contains("No such customer"), "{line}");
}

/// Every fixture of the payments and Connect families of `stripe trigger`.
const MONEY_FIXTURES: [&str; 36] = [
    "account.application.deauthorized",
    "account.updated",
    "balance.available",
    "cash_balance.funds_available",
    "charge.captured",
    "charge.dispute.closed",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.failed",
    "charge.refund.updated",
    "charge.refunded",
    "charge.succeeded",
    "customer.source.created",
    "customer.source.updated",
    "payment_intent.amount_capturable_updated",
    "payment_intent.canceled",
    "payment_intent.created",
    "payment_intent.partially_funded",
    "payment_intent.payment_failed",
    "payment_intent.processing",
    "payment_intent.requires_action",
    "payment_intent.succeeded",
    "payment_method.attached",
    "payment_method.detached",
    "payment_method.updated",
    "payout.created",
    "payout.updated",
    "setup_intent.canceled",
    "setup_intent.created",
    "setup_intent.requires_action",
    "setup_intent.setup_failed",
    "setup_intent.succeeded",
    "topup.created",
    "transfer.created",
    "transfer.reversed",
    "transfer.updated",
];

/// The official CLI's payments and Connect fixtures (real Stripe call
/// sequences) as the platform, and as a connected account wherever Stripe
/// allows it (not account creation, not transfers): each succeeds and its
/// event reaches the right `stripe listen` URL, signed with the listen secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_payments_and_connect_trigger_fixture() {
    let home = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (mut server, base) = spawn(data.path(), &["--retry-schedule", "fast"]);
    let mut platform_rx = Receiver::start().await;
    let mut connect_rx = Receiver::start().await;
    let secret = run(
        home.path(),
        &base,
        &["listen", "--print-secret", "--skip-update"],
    )
    .trim()
    .to_owned();
    let (mut listener, _lines) = listen(
        home.path(),
        &base,
        &platform_rx.url,
        &connect_rx.url,
        &["--all-snapshot"],
    )
    .await;
    for event in MONEY_FIXTURES {
        run(home.path(), &base, &["trigger", event]);
        if event.starts_with("account.") {
            expect_any_account(&mut connect_rx, event, &secret).await;
        } else {
            expect(&mut platform_rx, event, None, &secret).await;
        }
    }
    // A connected account with a bank account, for its payouts.
    let acct = account_with_bank(home.path(), &base);
    for event in MONEY_FIXTURES
        .into_iter()
        .filter(|e| !e.starts_with("account.") && !e.starts_with("transfer."))
    {
        run(
            home.path(),
            &base,
            &["trigger", event, "--stripe-account", &acct],
        );
        // Skipping the transfer fixtures' events on the accounts they made.
        loop {
            let got = connect_rx.next().await;
            switchboard_receiver::verify_header_at(&got.body, got.signature(), &secret, 0, 0)
                .unwrap_or_else(|e| panic!("{event} does not verify with the listen secret: {e}"));
            let e = got.json();
            if e["type"] == event && e["account"] == acct.as_str() {
                break;
            }
        }
    }
    listener.kill();
    assert_no_schema_violations(&base).await;
    server.kill();
}
