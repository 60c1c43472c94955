//! Bad input, swept across the API: every malformed request to every route
//! gets a Stripe-shaped 4xx (never a 5xx, never a panic), and the server is
//! still there afterwards.

use serde_json::Value;

use crate::support::*;

/// Malformed parameters, as a form body (POST/DELETE) or a query (GET).
fn bad_params() -> Vec<String> {
    let mut v: Vec<String> = [
        "a=%zz",
        "name=%ff%fe",
        "%ff=1",
        "=x",
        "[a]=1",
        "a[b=1",
        "a]=1",
        "a=1&a[b]=2",
        "a[b]=1&a=2",
        "amount=abc&currency=usd",
        "amount=-5&currency=usd",
        "amount=99999999999999999999999&currency=usd",
        "amount=100&currency=US%20D",
        "limit=0",
        "limit=-1",
        "limit=100000",
        "limit=abc",
        "starting_after=x&ending_before=y",
        "starting_after=evt_doesnotexist",
        "created[gt]=yesterday",
        "expand[]=",
        "expand[]=..",
        "expand[]=a.b.c.d.e.f",
        "expand[]=data.nothing",
        "metadata[]=x",
        "metadata[a][b]=c",
        "metadata=notamap",
        "enabled_events[]=not.an.event",
        "url=javascript:alert(1)&enabled_events[]=*",
        "url=http://&enabled_events[]=*",
        "connect=maybe",
        "disabled=2",
        "type=galactic",
        "business_type=robot",
        "capabilities[card_payments][requested]=perhaps",
        "dob[day]=first",
        "external_account=btok_nonsense",
        "payment_method=pm_card_doesnotexist",
        "confirm=yes%00no",
        "description=\u{0}\u{1}",
        "name=a&name=b&name=&email=x&email[]=y",
        "expand[]=customer&expand[]=customer&expand[0]=x",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(format!("x{}=1", "[a]".repeat(500)));
    v.push(format!("name={}", "y".repeat(200_000)));
    v.push(format!("{}=1", "k".repeat(50_000)));
    v.push(
        (0..5000)
            .map(|i| format!("a[{i}]=1"))
            .collect::<Vec<_>>()
            .join("&"),
    );
    v.push((0..5000).map(|_| "a[]=1").collect::<Vec<_>>().join("&"));
    v.push(
        (0..2000)
            .map(|i| format!("metadata[k{i}]=v"))
            .collect::<Vec<_>>()
            .join("&"),
    );
    v
}

/// A route template with its holes filled: the connected account in
/// `/v1/accounts/{account}`, `id` in every other hole.
fn fill(template: &str, acct: &str, id: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').unwrap() + open;
        out.push_str(&rest[..open]);
        let is_account = out.ends_with("/v1/accounts/");
        out.push_str(if is_account { acct } else { id });
        rest = &rest[close + 1..];
    }
    out + rest
}

fn assert_client_error(status: u16, body: &Value, what: &str) {
    assert!(
        (400..500).contains(&status) || status == 200,
        "{what}: {status} {body}"
    );
    if status != 200 {
        assert!(
            body["error"]["type"].is_string() && body["error"]["message"].is_string(),
            "{what}: not a Stripe error body: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_to_every_route_get_a_stripe_4xx() {
    let t = TestNode::start().await;
    let acct = t.post("/v1/accounts", "type=custom").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let customer = t.post("/v1/customers", "name=x").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let overlong = format!("cus_{}", "z".repeat(10_000));
    let ids = [
        customer.as_str(),
        "does_not_exist",
        overlong.as_str(),
        "%00",
        "..%2F..%2Fetc%2Fpasswd",
        "evt_%ff",
    ];
    let routes: Vec<_> = server_routes()
        .into_iter()
        .filter(|(_, p)| p.starts_with("/v1/") || p.starts_with("/switchboard/v1/"))
        .collect();
    assert!(routes.len() > 80, "the routers were read: {routes:?}");
    let mut sent = 0;
    for (method, template) in &routes {
        for id in ids {
            let path = fill(template, &acct, id);
            for params in bad_params() {
                // A client will not send a query this long; bodies carry the big cases.
                if *method == "GET" && params.len() + path.len() > 16_000 {
                    continue;
                }
                let (path, body) = if *method == "GET" {
                    (format!("{path}?{params}"), String::new())
                } else {
                    (path.clone(), params.clone())
                };
                let (status, _, json) = t.request(method, &path, Some(TEST_KEY), &body, &[]).await;
                let what = format!(
                    "{method} {} {}",
                    &path[..path.len().min(80)],
                    &params[..params.len().min(60)]
                );
                assert_client_error(status, &json, &what);
                sent += 1;
            }
        }
    }
    // Headers: wrong auth, injected or odd values.
    for (name, value) in [
        ("Stripe-Account", "acct_\u{7f}"),
        ("Stripe-Account", "acct_nope"),
        ("Idempotency-Key", "\u{1}\u{2}"),
        ("Stripe-Version", "1999-01-01"),
        ("Content-Type", "application/json"),
    ] {
        let Ok(v) = reqwest::header::HeaderValue::from_str(value) else {
            continue;
        };
        let resp = t
            .http
            .post(format!("{}/v1/customers", t.base))
            .bearer_auth(TEST_KEY)
            .header(name, v)
            .body("name=x")
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let json: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap_or_default();
        assert_client_error(status, &json, &format!("{name}: {value:?}"));
        sent += 1;
    }
    for key in ["", "sk_test_wrong", "Bearer", "sk_live_"] {
        let (status, _, json) = t.request("GET", "/v1/customers", Some(key), "", &[]).await;
        assert_eq!(status, 401, "key {key:?}: {json}");
        sent += 1;
    }
    // The oversized body is drained, so the sender reads the 413 (not a
    // reset mid-upload) and the connection stays usable.
    let (status, headers, json) = t
        .request(
            "POST",
            "/v1/customers",
            Some(TEST_KEY),
            &"n".repeat(2 << 20),
            &[],
        )
        .await;
    assert_eq!(status, 413, "{json}");
    assert_eq!(json["error"]["type"], "invalid_request_error", "{json}");
    assert!(headers.get("connection").is_none(), "{headers:?}");
    // Header injection and broken HTTP, on raw sockets (clients refuse to
    // send these): refused by the HTTP layer with a 4xx, the server unharmed.
    let addr = t.base.trim_start_matches("http://").to_owned();
    let auth = format!("Authorization: Bearer {TEST_KEY}\r\n");
    for raw in [
        format!("GET /v1/customers HTTP/1.1\r\nHost: x\r\n{auth}X-Injected: a\rb\r\n\r\n"),
        format!("GET /v1/customers HTTP/1.1\r\nHost: x\r\n{auth}NoColonHere\r\n\r\n"),
        format!(
            "GET /v1/customers HTTP/1.1\r\nHost: x\r\n{auth}Stripe-Account: acct_1\r\n Stripe-Account: folded\r\n\r\n"
        ),
        format!("GET /v1/cus tomers HTTP/1.1\r\nHost: x\r\n{auth}\r\n"),
        format!("GET /v1/customers\0 HTTP/1.1\r\nHost: x\r\n{auth}\r\n"),
        // Past hyper's bound on a request head (about 400 KB).
        format!(
            "GET /v1/customers HTTP/1.1\r\nHost: x\r\n{auth}X-Big: {}\r\n\r\n",
            "b".repeat(1 << 20)
        ),
        format!(
            "POST /v1/customers HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 5\r\nContent-Length: 7\r\n\r\nname=x"
        ),
        format!(
            "POST /v1/customers HTTP/1.1\r\nHost: x\r\n{auth}Transfer-Encoding: chunked\r\n\r\nzz\r\n"
        ),
    ] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let _ = sock.write_all(raw.as_bytes()).await;
        let mut answer = vec![0u8; 4096];
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), sock.read(&mut answer))
            .await
            .expect("an answer, not a hang")
            .unwrap_or(0);
        let head = String::from_utf8_lossy(&answer[..n]).into_owned();
        let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        assert!(
            (400..500).contains(&status) || n == 0,
            "{:?}: {head}",
            &raw[..raw.len().min(160)]
        );
        sent += 1;
    }
    // …and the client's next request, on a new connection, is answered.
    assert!(sent > 10_000, "{sent} requests");
    // Still up, still right.
    let again = t.get(&format!("/v1/customers/{customer}")).await;
    assert_eq!(again["id"], customer.as_str());
}
