//! Switchboard's own CLI against the real binary: `endpoints`, `events`,
//! `attempts`, `trigger` and `fixtures` as one-shot processes, `listen` as a
//! long-running child whose output lines the tests wait on.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::support::{
    KillOnDrop, LIVE_KEY, Receiver, TEST_KEY, assert_no_schema_violations, get_json, refused_url,
    spawn, spawn_with_lines,
};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// The output of one finished client command.
struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn exec(base: &str, args: &[&str]) -> Out {
    let out = tokio::process::Command::new(BIN)
        .args(args)
        .env("SWITCHBOARD_API_BASE", base)
        .env("SWITCHBOARD_API_KEY", TEST_KEY)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a command that must succeed; returns its stdout.
async fn run(base: &str, args: &[&str]) -> String {
    let out = exec(base, args).await;
    assert!(
        out.ok,
        "switchboard {args:?} failed:\n{}{}",
        out.stdout, out.stderr
    );
    out.stdout
}

/// Runs a command whose stdout is not a terminal, so it prints JSON.
async fn run_json(base: &str, args: &[&str]) -> Value {
    let text = run(base, args).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}:\n{text}"))
}

fn ids(list: &Value) -> Vec<&str> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect()
}

/// The lines a child prints on stdout and stderr, as they come.
struct Lines {
    rx: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Lines {
    /// Waits for a line that satisfies `pred` and returns it.
    async fn wait_for(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(line)) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                _ => panic!("never printed {what}; printed:\n{}", self.seen.join("\n")),
            }
        }
    }
}

/// Starts `switchboard listen` and waits for its `Ready!` line; returns the signing secret too.
async fn listen(base: &str, args: &[&str]) -> (KillOnDrop, Lines, String) {
    let (child, rx) = spawn_with_lines(
        std::process::Command::new(BIN)
            .arg("listen")
            .args(args)
            .env("SWITCHBOARD_API_BASE", base)
            .env("SWITCHBOARD_API_KEY", TEST_KEY)
            .stdin(Stdio::null()),
    );
    let mut lines = Lines {
        rx,
        seen: Vec::new(),
    };
    let ready = lines.wait_for("Ready!", |l| l.contains("Ready!")).await;
    (child, lines, secret_in(&ready))
}

fn secret_in(line: &str) -> String {
    let secret = line
        .split_whitespace()
        .find(|w| w.starts_with("whsec_"))
        .unwrap_or_else(|| panic!("no secret in {line:?}"))
        .to_owned();
    assert!(secret.len() > 10, "{line}");
    secret
}

/// Resending to the `listen` sessions succeeds once one is connected *and* its
/// device routes events (the server enables it just after the WebSocket opens).
/// Resends `evt` to them as a side effect.
async fn until_listening(base: &str, evt: &str, listening: bool) {
    let http = switchboard_dispatcher::http_client(Duration::from_secs(10));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = http
            .post(format!("{base}/v1/events/{evt}/retry"))
            .bearer_auth(TEST_KEY)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("for_stripecli=true")
            .send()
            .await
            .unwrap();
        if r.status().is_success() == listening {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the listen device never became {}",
            if listening { "active" } else { "inactive" }
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Receives until an event of `event_type` other than those in `skip` arrives,
/// verifying every delivery with `secret`; returns it.
async fn expect(rx: &mut Receiver, event_type: &str, secret: &str, skip: &[&str]) -> Value {
    loop {
        let got = rx.next().await;
        switchboard_receiver::verify_header_at(&got.body, got.signature(), secret, 0, 0)
            .unwrap_or_else(|e| panic!("a delivery does not verify: {e}"));
        let event = got.json();
        if event["type"] == event_type && !skip.contains(&event["id"].as_str().unwrap()) {
            return event;
        }
    }
}

async fn latest_event(base: &str, event_type: &str) -> String {
    let list = run_json(
        base,
        &["events", "list", "--type", event_type, "--limit", "1"],
    )
    .await;
    ids(&list)[0].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_events_and_attempts() {
    let data = tempfile::tempdir().unwrap();
    let (_server, base) = spawn(data.path(), &["--retry-schedule", "fast"]);
    let mut rx = Receiver::start().await;

    let we = run_json(
        &base,
        &[
            "endpoints",
            "create",
            "--url",
            &rx.url,
            "--events",
            "customer.created,customer.updated",
            "--description",
            "from the cli",
        ],
    )
    .await;
    let we_id = we["id"].as_str().unwrap().to_owned();
    let secret = we["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{we:#}");
    assert_eq!(
        we["enabled_events"],
        serde_json::json!(["customer.created", "customer.updated"])
    );

    let printed = run(&base, &["trigger", "customer.created"]).await;
    assert_eq!(
        printed.lines().collect::<Vec<_>>(),
        [
            "Setting up fixture for: customer",
            "Running fixture for: customer",
            "Trigger succeeded! Check `switchboard events list` for event details."
        ]
    );
    let event = expect(&mut rx, "customer.created", &secret, &[]).await;
    let evt = event["id"].as_str().unwrap().to_owned();

    let listed = run_json(&base, &["events", "list", "--type", "customer.created"]).await;
    assert_eq!(ids(&listed), [evt.as_str()]);
    let retrieved = run_json(&base, &["events", "retrieve", &evt]).await;
    assert_eq!(
        (&retrieved["id"], &retrieved["data"]),
        (&event["id"], &event["data"])
    );

    // The attempt is recorded just after the receiver answers.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let attempts = loop {
        let a = run_json(&base, &["attempts", "list", "--event", &evt]).await;
        if !a["data"].as_array().unwrap().is_empty() {
            break a;
        }
        assert!(tokio::time::Instant::now() < deadline, "no attempt: {a:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let attempt = &attempts["data"][0];
    assert_eq!(
        (
            attempt["status_code"].as_i64(),
            attempt["webhook_endpoint"].as_str(),
            attempt["succeeded"].as_bool()
        ),
        (Some(200), Some(we_id.as_str()), Some(true)),
        "{attempts:#}"
    );
    let by_endpoint = run_json(&base, &["attempts", "list", "--endpoint", &we_id]).await;
    assert_eq!(by_endpoint["data"][0]["event"], evt.as_str());

    // Tables when asked for (or on a terminal).
    let table = run(&base, &["events", "list", "--format", "table"]).await;
    let mut rows = table.lines();
    let header: Vec<&str> = rows.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["ID", "TYPE", "ACCOUNT", "CREATED", "PENDING"]);
    assert!(
        rows.next()
            .unwrap()
            .starts_with(&format!("{evt}  customer.created"))
    );
    let table = run(
        &base,
        &["attempts", "list", "--event", &evt, "--format", "table"],
    )
    .await;
    assert!(table.lines().nth(1).unwrap().contains(" 200 "), "{table}");

    // One event again, to a named endpoint.
    let resent = run_json(
        &base,
        &["events", "resend", &evt, "--webhook-endpoint", &we_id],
    )
    .await;
    assert_eq!(resent["id"], evt.as_str());
    assert_eq!(
        expect(&mut rx, "customer.created", &secret, &[]).await["id"],
        evt.as_str()
    );

    // In bulk: what a failing endpoint still owes goes to a working one.
    let failing = run_json(
        &base,
        &[
            "endpoints",
            "create",
            "--url",
            &refused_url().await,
            "--events",
            "customer.deleted",
        ],
    )
    .await;
    let mut rescue = Receiver::start().await;
    let rescue_we = run_json(
        &base,
        &[
            "endpoints",
            "create",
            "--url",
            &rescue.url,
            "--events",
            "payout.paid",
        ],
    )
    .await;
    run(&base, &["trigger", "customer.deleted"]).await;
    let deleted = latest_event(&base, "customer.deleted").await;
    let owed = run_json(&base, &["events", "list", "--delivery-success", "false"]).await;
    assert!(ids(&owed).contains(&deleted.as_str()), "{owed:#}");
    let bulk = run_json(
        &base,
        &[
            "events",
            "resend",
            "--failed-since",
            "1h",
            "--webhook-endpoint",
            rescue_we["id"].as_str().unwrap(),
        ],
    )
    .await;
    assert!(
        bulk["resent"]
            .as_array()
            .unwrap()
            .contains(&deleted.as_str().into()),
        "{bulk:#}"
    );
    assert_eq!(bulk["failed"], serde_json::json!([]));
    let got = expect(
        &mut rescue,
        "customer.deleted",
        rescue_we["secret"].as_str().unwrap(),
        &[],
    )
    .await;
    assert_eq!(got["id"], deleted.as_str());
    let no_endpoint = exec(&base, &["events", "resend", "--failed-since", "1h"]).await;
    assert!(!no_endpoint.ok && no_endpoint.stderr.contains("--webhook-endpoint"));

    // Update, roll, list, delete.
    let updated = run_json(
        &base,
        &[
            "endpoints",
            "update",
            &we_id,
            "--disabled",
            "true",
            "--url",
            "http://127.0.0.1:9/new",
        ],
    )
    .await;
    assert_eq!(
        (updated["status"].as_str(), updated["url"].as_str()),
        (Some("disabled"), Some("http://127.0.0.1:9/new"))
    );
    let rolled = run_json(
        &base,
        &["endpoints", "roll-secret", &we_id, "--expires-in", "0"],
    )
    .await;
    let new_secret = rolled["secret"].as_str().unwrap();
    assert!(
        new_secret.starts_with("whsec_") && new_secret != secret,
        "{rolled:#}"
    );
    assert_eq!(rolled["previous_secret_expires_at"], Value::Null);
    let listed = run_json(&base, &["endpoints", "list"]).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 3, "{listed:#}");
    let failing_id = failing["id"].as_str().unwrap();
    let gone = run_json(&base, &["endpoints", "delete", failing_id]).await;
    assert_eq!(gone["deleted"], true);
    let table = run(
        &base,
        &["endpoints", "retrieve", &we_id, "--format", "table"],
    )
    .await;
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("status") && l.ends_with("disabled")),
        "{table}"
    );

    // Errors are one line on stderr and a failing exit code.
    let missing = exec(&base, &["events", "retrieve", "evt_missing"]).await;
    assert!(!missing.ok);
    assert!(
        missing
            .stderr
            .contains("No such notification: 'evt_missing'"),
        "{}",
        missing.stderr
    );
    let wrong_key = tokio::process::Command::new(BIN)
        .args([
            "endpoints",
            "list",
            "--api-base",
            &base,
            "--api-key",
            "sk_test_wrong",
        ])
        .output()
        .await
        .unwrap();
    assert!(!wrong_key.status.success());
    assert!(String::from_utf8_lossy(&wrong_key.stderr).contains("HTTP 401"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_fixtures_and_connect_events() {
    let data = tempfile::tempdir().unwrap();
    let (_server, base) = spawn(data.path(), &["--retry-schedule", "fast"]);
    let mut connect_rx = Receiver::start().await;
    let we = run_json(
        &base,
        &["endpoints", "create", "--url", &connect_rx.url, "--connect"],
    )
    .await;
    let secret = we["secret"].as_str().unwrap().to_owned();

    // payout.failed: a fixture that makes its own account and acts as it.
    let printed = run(&base, &["trigger", "payout.failed"]).await;
    assert!(
        printed.contains("Running fixture for: payout\n"),
        "{printed}"
    );
    let failed = expect(&mut connect_rx, "payout.failed", &secret, &[]).await;
    let acct = failed["account"].as_str().unwrap().to_owned();
    assert!(acct.starts_with("acct_"), "{failed:#}");
    assert_eq!(failed["data"]["object"]["failure_code"], "no_account");

    let printed = run(&base, &["trigger", "account.application.deauthorized"]).await;
    assert!(printed.contains("Trigger succeeded!"), "{printed}");
    let deauthorized = expect(
        &mut connect_rx,
        "account.application.deauthorized",
        &secret,
        &[],
    )
    .await;
    let gone = deauthorized["account"].as_str().unwrap();
    assert!(
        gone.starts_with("acct_") && gone != acct,
        "{deauthorized:#}"
    );

    // --stripe-account: the platform-level fixtures act as a connected account.
    run(
        &base,
        &["trigger", "customer.created", "--stripe-account", &acct],
    )
    .await;
    let created = expect(&mut connect_rx, "customer.created", &secret, &[]).await;
    assert_eq!(created["account"], acct.as_str());

    // Every built-in fixture runs to success (a declined card is an expected error).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".json").map(String::from))
        .collect();
    names.sort();
    assert!(names.len() >= 20, "{names:?}");
    let help = run(&base, &["trigger", "--help"]).await;
    for name in &names {
        assert!(
            help.contains(&format!("  {name}\n")),
            "{name} missing from --help"
        );
        let printed = run(&base, &["trigger", name]).await;
        assert!(
            printed.ends_with("for event details.\n"),
            "{name}: {printed}"
        );
        // The event the fixture is named after happened, on the platform or on a connected account.
        if name.starts_with("v2.") {
            // Accounts v2's events are the platform's, and v2 only.
            let listed = get_json(
                &switchboard_dispatcher::http_client(Duration::from_secs(10)),
                &format!(
                    "{base}/v2/core/events?types={}",
                    name.replace('[', "%5B").replace(']', "%5D")
                ),
            )
            .await;
            assert!(
                !listed["data"].as_array().unwrap().is_empty(),
                "{name}: {listed:#}"
            );
            continue;
        }
        let on_platform =
            run_json(&base, &["events", "list", "--type", name, "--limit", "1"]).await;
        if on_platform["data"].as_array().unwrap().is_empty() {
            expect(&mut connect_rx, name, &secret, &[]).await;
        }
    }
    let unknown = exec(&base, &["trigger", "customer.nope"]).await;
    assert!(
        !unknown.ok && unknown.stderr.contains("no fixture for"),
        "{}",
        unknown.stderr
    );

    // A custom fixture: references to earlier responses, defaults, overrides,
    // an expected card error, and a step acting as a connected account.
    let file = data.path().join("custom.json");
    std::fs::write(
        &file,
        format!(
            r#"{{"_meta": {{"template_version": 0}},
                "fixtures": [
                  {{"name": "cus", "path": "/v1/customers", "method": "post",
                    "params": {{"name": "Before", "metadata": {{"k": "v"}}}}}},
                  {{"name": "again", "path": "/v1/customers/${{cus:id}}", "method": "post",
                    "params": {{"description": "copy of ${{cus:name}}",
                               "metadata": {{"from": "${{cus:metadata.k}}", "other": "${{cus:nope|fallback}}"}}}}}},
                  {{"name": "declined", "path": "/v1/payment_intents", "method": "post",
                    "params": {{"amount": 500, "currency": "usd", "payment_method": "pm_card_chargeDeclined", "confirm": true}},
                    "expected_error_type": "card_error"}},
                  {{"name": "theirs", "path": "/v1/customers", "method": "post",
                    "params": {{"name": "${{.env:SWITCHBOARD_TEST_NAME|nobody}}"}}, "stripe_account": "{acct}"}}
                ],
                "env": {{}}}}"#
        ),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    run(
        &base,
        &["fixtures", file, "--override", "cus:name=Overridden"],
    )
    .await;
    let updated = latest_event(&base, "customer.updated").await;
    let updated = run_json(&base, &["events", "retrieve", &updated]).await;
    let object = &updated["data"]["object"];
    assert_eq!(object["name"], "Overridden");
    assert_eq!(object["description"], "copy of Overridden");
    assert_eq!(
        object["metadata"],
        serde_json::json!({"k": "v", "from": "v", "other": "fallback"})
    );
    let theirs = expect(&mut connect_rx, "customer.created", &secret, &[]).await;
    assert_eq!(
        (
            theirs["account"].as_str(),
            theirs["data"]["object"]["name"].as_str()
        ),
        (Some(acct.as_str()), Some("nobody"))
    );
    // Without a currency the error is not the expected card error: the run fails.
    let broken = exec(&base, &["fixtures", file, "--remove", "declined:currency"]).await;
    assert!(!broken.ok);
    assert!(
        broken
            .stderr
            .contains("Trigger failed: fixture \"declined\""),
        "{}",
        broken.stderr
    );
    let bad_override = exec(&base, &["fixtures", file, "--override", "nobody:name=x"]).await;
    assert!(!bad_override.ok && bad_override.stderr.contains("no step \"nobody\""));
    // Everything the fixtures made the server say was what Stripe says.
    assert_no_schema_violations(&base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_forwards_signed_events_and_reports_responses() {
    let data = tempfile::tempdir().unwrap();
    let (_server, base) = spawn(data.path(), &["--retry-schedule", "fast"]);
    let mut rx = Receiver::start().await;
    let mut connect_rx = Receiver::start().await;
    // An event from before, to probe with (see `until_listening`).
    run(&base, &["trigger", "customer.created"]).await;
    let probe = latest_event(&base, "customer.created").await;

    let (mut listener, mut lines, secret) = listen(
        &base,
        &[
            "--forward-to",
            &rx.url,
            "--forward-connect-to",
            &connect_rx.url,
        ],
    )
    .await;
    until_listening(&base, &probe, true).await;
    run(&base, &["trigger", "customer.created"]).await;
    let event = expect(&mut rx, "customer.created", &secret, &[&probe]).await;
    let evt = event["id"].as_str().unwrap();
    assert!(event["account"].is_null());
    lines
        .wait_for("the event line", |l| {
            l.ends_with(&format!("   --> customer.created [{evt}]"))
        })
        .await;
    let response = lines
        .wait_for("the response line", |l| {
            l.contains(&format!("[{evt}]")) && l.contains("<--")
        })
        .await;
    assert!(
        response.ends_with(&format!("  <--  [200] POST {} [{evt}]", rx.url)),
        "{response}"
    );
    // `2021-12-06 17:29:27` first, like the Stripe CLI.
    let stamp: Vec<char> = response.chars().take(19).collect();
    assert!(
        stamp.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == '-',
            10 => *c == ' ',
            13 | 16 => *c == ':',
            _ => c.is_ascii_digit(),
        }),
        "{response}"
    );

    // Connect events go to --forward-connect-to.
    run(&base, &["trigger", "account.updated"]).await;
    let updated = expect(&mut connect_rx, "account.updated", &secret, &[]).await;
    assert!(updated["account"].as_str().unwrap().starts_with("acct_"));
    lines
        .wait_for("a connect line", |l| {
            l.contains("   --> connect account.updated [")
        })
        .await;
    // The session's answers are the attempts of its device.
    let attempts = run_json(&base, &["attempts", "list", "--event", evt]).await;
    assert!(
        attempts["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["status_code"] == 200 && a["succeeded"] == true),
        "{attempts:#}"
    );
    let printed = exec(&base, &["listen", "--print-secret"]).await;
    assert_eq!(printed.stdout.trim(), secret);

    listener.kill();
    until_listening(&base, &probe, false).await;

    // The same device again: same secret; only the chosen events, as JSON lines.
    let (_listener, mut lines, again) = listen(
        &base,
        &[
            "--forward-to",
            &rx.url,
            "--events",
            "customer.updated",
            "--format",
            "json",
        ],
    )
    .await;
    assert_eq!(again, secret);
    until_listening(&base, &probe, true).await;
    run(&base, &["trigger", "customer.updated"]).await;
    // customer.created happens first but is not wanted.
    let got = expect(&mut rx, "customer.updated", &secret, &[]).await;
    let json_line = lines.wait_for("a JSON event", |l| l.starts_with('{')).await;
    let printed: Value = serde_json::from_str(&json_line).unwrap();
    assert_eq!(printed, got);

    let bad = exec(&base, &["listen", "--events", "customer.nope"]).await;
    assert!(
        !bad.ok && bad.stderr.contains("not an event type"),
        "{}",
        bad.stderr
    );
}

/// `switchboard listen --all-thin`: thin events (`v2_event` messages)
/// forwarded as the Stripe CLI forwards them, the platform's to
/// `--forward-to`, a connected account's (`context`) to
/// `--forward-connect-to`; `--events` with a v2 type and `--events-from`
/// narrow them; mixing kinds is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_forwards_thin_events() {
    let data = tempfile::tempdir().unwrap();
    let (_server, base) = spawn(data.path(), &["--retry-schedule", "fast"]);
    let mut rx = Receiver::start().await;
    let mut connect_rx = Receiver::start().await;
    let (mut listener, mut lines, secret) = listen(
        &base,
        &[
            "--all-thin",
            "--forward-to",
            &rx.url,
            "--forward-connect-to",
            &connect_rx.url,
        ],
    )
    .await;
    run(&base, &["trigger", "customer.created"]).await;
    let got = expect(&mut rx, "v1.customer.created", &secret, &[]).await;
    assert_eq!(got["object"], "v2.core.event", "{got:#}");
    assert!(
        got.get("data").is_none() && got.get("context").is_none(),
        "{got:#}"
    );
    let evt = got["id"].as_str().unwrap();
    lines
        .wait_for("the thin event line", |l| {
            l.ends_with(&format!("   --> v1.customer.created [{evt}]"))
        })
        .await;
    run(&base, &["trigger", "account.updated"]).await;
    let theirs = expect(&mut connect_rx, "v1.account.updated", &secret, &[]).await;
    assert!(
        theirs["context"].as_str().unwrap().starts_with("acct_"),
        "{theirs:#}"
    );
    lines
        .wait_for("a connect line", |l| {
            l.contains("   --> connect v1.account.updated [")
        })
        .await;
    // The session's answers are the attempts of its device.
    let attempts = run_json(&base, &["attempts", "list", "--event", evt]).await;
    assert!(
        attempts["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["status_code"] == 200 && a["succeeded"] == true),
        "{attempts:#}"
    );
    listener.kill();

    let (_narrow, _lines, again) = listen(
        &base,
        &[
            "--forward-to",
            &rx.url,
            "--events",
            "v2.core.account.created",
            "--events-from",
            "@self",
        ],
    )
    .await;
    assert_eq!(again, secret, "one secret per device, whichever kind");
    run(&base, &["trigger", "customer.created"]).await;
    let created = switchboard_dispatcher::http_client(Duration::from_secs(10))
        .post(format!("{base}/v2/core/accounts"))
        .bearer_auth(TEST_KEY)
        .header("content-type", "application/json")
        .body(r#"{"display_name": "Thin Co"}"#)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let created: Value = serde_json::from_slice(&created).unwrap();
    let got = expect(&mut rx, "v2.core.account.created", &secret, &[]).await;
    assert_eq!(got["related_object"]["id"], created["id"], "{got:#}");
    rx.assert_quiet(Duration::from_millis(300)).await;
    // `events list --thin` / `retrieve --thin`: what /v1/events does not show.
    let acct = created["id"].as_str().unwrap();
    let listed = run_json(
        &base,
        &[
            "events",
            "list",
            "--thin",
            "--object-id",
            acct,
            "--format",
            "json",
        ],
    )
    .await;
    assert_eq!(
        listed["data"][0]["type"], "v2.core.account.created",
        "{listed:#}"
    );
    let shown = run_json(
        &base,
        &["events", "retrieve", "--thin", got["id"].as_str().unwrap()],
    )
    .await;
    assert_eq!(shown["changes"]["after"]["display_name"], "Thin Co");
    let pattern = exec(&base, &["events", "list", "--thin", "--type", "v2.*"]).await;
    assert!(
        !pattern.ok && pattern.stderr.contains("exact type"),
        "{}",
        pattern.stderr
    );

    for (args, says) in [
        (
            &["--events", "customer.created,v1.customer.created"][..],
            "cannot forward both",
        ),
        (
            &["--all-thin", "--events", "customer.created"][..],
            "cannot forward both",
        ),
        (
            &[
                "--events-from",
                "@self",
                "--forward-connect-to",
                "localhost:9",
            ][..],
            "--forward-connect-to cannot be used",
        ),
    ] {
        let mut full = vec!["listen"];
        full.extend_from_slice(args);
        let bad = exec(&base, &full).await;
        assert!(
            !bad.ok && bad.stderr.contains(says),
            "{args:?}: {}",
            bad.stderr
        );
    }
}

/// `switchboard serve` on a fixed port (so that a restart keeps the URL).
fn serve_at(data_dir: &Path, port: u16) -> KillOnDrop {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(BIN)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .args([
            "--test-key",
            TEST_KEY,
            "--live-key",
            LIVE_KEY,
            "--retry-schedule",
            "fast",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .env("SWITCHBOARD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    assert!(first.contains(&format!("127.0.0.1:{port}")), "{first}");
    KillOnDrop(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_reconnects_when_the_server_restarts() {
    let data = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let mut server = serve_at(data.path(), port);
    let mut rx = Receiver::start().await;
    run(&base, &["trigger", "customer.created"]).await;
    let probe = latest_event(&base, "customer.created").await;

    let (_listener, mut lines, secret) = listen(&base, &["--forward-to", &rx.url]).await;
    until_listening(&base, &probe, true).await;

    server.kill();
    lines
        .wait_for("the reconnecting line", |l| l.contains("reconnecting"))
        .await;
    let _server = serve_at(data.path(), port);
    let back = lines
        .wait_for("the reconnected line", |l| l.contains("Reconnected"))
        .await;
    assert!(
        back.contains(&secret),
        "the device keeps its secret: {back}"
    );
    until_listening(&base, &probe, true).await;

    run(&base, &["trigger", "customer.created"]).await;
    let event = expect(&mut rx, "customer.created", &secret, &[&probe]).await;
    let evt = event["id"].as_str().unwrap();
    lines
        .wait_for("the response line", |l| {
            l.contains(&format!("<--  [200] POST {} [{evt}]", rx.url))
        })
        .await;
}

/// `switchboard logs tail` prints each request from then on, filtered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_tail_follows_requests_with_filters() {
    let data = tempfile::tempdir().unwrap();
    let (_server, base) = spawn(data.path(), &[]);
    // A request from before the tail starts is history, not shown.
    exec(&base, &["endpoints", "list"]).await;
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(["logs", "tail", "--filter-http-method", "POST"])
        .env("SWITCHBOARD_API_BASE", &base)
        .env("SWITCHBOARD_API_KEY", TEST_KEY);
    let (_tail, mut lines) = spawn_with_lines(&mut cmd);
    assert!(next_line(&mut lines).await.starts_with("Ready!"));
    let http = switchboard_dispatcher::http_client(Duration::from_secs(10));
    let call = |method: reqwest::Method, body: &'static str| {
        http.request(method, format!("{base}/v1/customers"))
            .bearer_auth(TEST_KEY)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    call(reqwest::Method::GET, "").await.unwrap();
    let created = call(reqwest::Method::POST, "name=Tail").await.unwrap();
    assert_eq!(created.status(), 200);
    let typo = call(reqwest::Method::POST, "nmae=typo").await.unwrap();
    assert_eq!(typo.status(), 400);
    let line = next_line(&mut lines).await;
    assert!(line.contains("[200] POST /v1/customers"), "{line}");
    let line = next_line(&mut lines).await;
    assert!(line.contains("[400] POST /v1/customers"), "{line}");
    let line = next_line(&mut lines).await;
    assert!(
        line.contains("invalid_request_error") && line.contains("nmae"),
        "{line}"
    );
}

async fn next_line(lines: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(20), lines.recv())
        .await
        .ok()
        .flatten()
        .expect("a line from logs tail")
}

/// `switchboard platforms` and `switchboard clock` against the real binary:
/// an operator hosts a second platform, lists it, rotates its test key; a
/// developer moves the test clock.
#[tokio::test]
async fn platforms_and_the_test_clock_from_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    let (_server, base) = spawn(data.path(), &["--admin-key", "admin_cli_000000000000"]);
    let admin = |args: &'static [&'static str]| {
        let base = base.clone();
        async move {
            let mut all = vec!["platforms", "--admin-key", "admin_cli_000000000000"];
            all.extend_from_slice(args);
            run_json(&base, &all).await
        }
    };
    let created = admin(&["create"]).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let key = created["test_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk_test_"), "{created:#}");
    let list = admin(&["list"]).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    let out = exec(&base, &["platforms", "list", "--admin-key", "wrong"]).await;
    assert!(
        !out.ok && out.stderr.contains("Invalid admin key"),
        "{}",
        out.stderr
    );
    let rotated = run_json(
        &base,
        &[
            "platforms",
            "--admin-key",
            "admin_cli_000000000000",
            "rotate-keys",
            &id,
            "--mode",
            "test",
        ],
    )
    .await;
    assert_ne!(rotated["test_key"].as_str().unwrap(), key);

    let clock = run_json(&base, &["clock", "advance", "2d"]).await;
    assert_eq!(clock["offset_seconds"], 2 * 86_400);
    let shown = run_json(&base, &["clock", "show"]).await;
    assert_eq!(shown["offset_seconds"], 2 * 86_400);
    let out = exec(&base, &["clock", "advance", "soon"]).await;
    assert!(
        !out.ok && out.stderr.contains("invalid duration"),
        "{}",
        out.stderr
    );
}
