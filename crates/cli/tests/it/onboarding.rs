//! Onboarding and account management over HTTP, as a browser and a platform
//! do it: Account Links into the hosted onboarding page (one submit of its
//! pre-filled form completes onboarding; a cleared field stays due; a used
//! link goes to `refresh_url`), the capabilities API, Express login links,
//! account sessions, and OAuth for Standard accounts. A real Connect
//! endpoint hears each step's events. The same pages in Chromium:
//! `hosted_pages.rs`.

use reqwest::redirect::Policy;
use serde_json::Value;

use crate::support::*;

async fn call(
    t: &TestNode,
    method: &str,
    path: &str,
    body: &str,
    acct: Option<&str>,
) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = acct.map(|a| ("Stripe-Account", a)).into_iter().collect();
    let (status, _, json) = t
        .request(method, path, Some(TEST_KEY), body, &headers)
        .await;
    (status, json)
}

/// A browser that does not follow redirects, so the test sees where they go.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// The value of the hidden `name` input of a page's form.
fn hidden(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name={name} value=\""))
        .unwrap_or_else(|| panic!("no {name} in {html}"));
    let rest = &html[at + name.len() + 13..];
    rest[..rest.find('"').unwrap()].to_owned()
}

async fn connect_endpoint(t: &TestNode) -> Receiver {
    let rx = Receiver::start().await;
    t.post(
        "/v1/webhook_endpoints",
        &format!("url={}&enabled_events[]=*&connect=true", rx.url),
    )
    .await;
    rx
}

async fn link(t: &TestNode, account: &str, kind: &str) -> Value {
    t.post(
        "/v1/account_links",
        &format!("account={account}&type={kind}&refresh_url=https://platform.example/refresh&return_url=https://platform.example/return"),
    )
    .await
}

/// The pre-filled onboarding form of `html` as a browser would submit it,
/// with `changes` applied (an empty value clears a field).
fn filled_form(html: &str, changes: &[(&str, &str)]) -> String {
    let mut fields: Vec<(String, String)> = Vec::new();
    for name in [
        "first_name",
        "last_name",
        "dob",
        "email",
        "company_name",
        "url",
        "mcc",
        "routing_number",
        "account_number",
    ] {
        if let Some(at) = html.find(&format!("<input name={name} ")) {
            let rest = &html[at..];
            let v = rest.find("value=\"").map(|i| {
                let r = &rest[i + 7..];
                r[..r.find('"').unwrap()].to_owned()
            });
            fields.push((name.into(), v.unwrap_or_default()));
        }
    }
    fields.push(("business_type".into(), "individual".into()));
    fields.push(("accept_tos".into(), "on".into()));
    fields.push(("session".into(), hidden(html, "session")));
    for (k, v) in changes {
        fields.retain(|(name, _)| name != k);
        if *v != "-" {
            fields.push(((*k).into(), (*v).into()));
        }
    }
    fields
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.replace('@', "%40")
                    .replace(' ', "+")
                    .replace(':', "%3A")
                    .replace('/', "%2F")
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::test]
async fn an_account_link_onboards_an_express_account_through_the_hosted_page() {
    let t = TestNode::start().await;
    let mut rx = connect_endpoint(&t).await;
    let acct = t
        .post("/v1/accounts", "type=express&country=US&capabilities[card_payments][requested]=true&capabilities[transfers][requested]=true")
        .await;
    let id = acct["id"].as_str().unwrap().to_owned();
    assert_eq!(acct["charges_enabled"], false);
    let caps = t.get(&format!("/v1/accounts/{id}/capabilities")).await;
    assert!(
        caps["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "inactive"),
        "{caps:#}"
    );

    // Before onboarding an Express account cannot log in to its dashboard.
    let (status, err) = call(
        &t,
        "POST",
        &format!("/v1/accounts/{id}/login_links"),
        "",
        None,
    )
    .await;
    assert_eq!(
        (status, err["error"]["param"].as_str()),
        (400, Some("account")),
        "{err:#}"
    );

    let l = link(&t, &id, "account_onboarding").await;
    assert_eq!(l["object"], "account_link");
    assert_eq!(
        l["expires_at"].as_i64().unwrap() - l["created"].as_i64().unwrap(),
        300
    );
    let url = l["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&t.base), "{url}");

    let b = browser();
    let page = b.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains(&id), "{html}");
    // The link works once: a second visit goes to refresh_url.
    let again = b.get(&url).send().await.unwrap();
    assert_eq!(again.status(), 303);
    assert_eq!(
        again.headers()["location"],
        "https://platform.example/refresh"
    );

    // A mistake in the form shows the form again, with the error.
    let wrong = b
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(filled_form(&html, &[("routing_number", "12")]))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 400);
    let wrong_html = wrong.text().await.unwrap();
    assert!(
        wrong_html.contains("Routing number must have 9 digits"),
        "{wrong_html}"
    );

    let done = b
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(filled_form(&wrong_html, &[("routing_number", "110000000")]))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303, "{}", done.text().await.unwrap());
    assert_eq!(
        done.headers()["location"],
        "https://platform.example/return"
    );

    let acct = t.get(&format!("/v1/accounts/{id}")).await;
    assert_eq!(acct["charges_enabled"], true, "{acct:#}");
    assert_eq!(acct["payouts_enabled"], true);
    assert_eq!(acct["details_submitted"], true);
    assert_eq!(acct["requirements"]["currently_due"], serde_json::json!([]));
    assert_eq!(acct["individual"]["first_name"], "Jenny");
    assert_eq!(acct["tos_acceptance"]["ip"], "127.0.0.1");
    assert_eq!(acct["external_accounts"]["data"][0]["last4"], "6789");
    let card = t
        .get(&format!("/v1/accounts/{id}/capabilities/card_payments"))
        .await;
    assert_eq!(
        (card["object"].as_str(), card["status"].as_str()),
        (Some("capability"), Some("active"))
    );
    assert_eq!(card["requirements"]["currently_due"], serde_json::json!([]));

    // The platform's Connect endpoint heard it all, on the account.
    let mut seen = Vec::new();
    while !seen.iter().any(|t: &String| t == "account.updated") {
        let e = rx.next().await.json();
        assert_eq!(e["account"], id.as_str(), "{e:#}");
        seen.push(e["type"].as_str().unwrap().to_owned());
        if e["type"] == "capability.updated" {
            assert_eq!(e["data"]["object"]["status"], "active");
            assert_eq!(e["data"]["previous_attributes"]["status"], "inactive");
        }
    }
    assert_eq!(
        seen,
        [
            "account.external_account.created",
            "capability.updated",
            "capability.updated",
            "account.updated"
        ]
    );

    // The submitted form cannot be submitted again.
    let replay = b
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(filled_form(&wrong_html, &[("routing_number", "110000000")]))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 400);

    // Now the Express Dashboard opens, once.
    let login = t.post(&format!("/v1/accounts/{id}/login_links"), "").await;
    assert_eq!(login["object"], "login_link");
    let dash = b.get(login["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(dash.status(), 200);
    assert!(dash.text().await.unwrap().contains(&id));
    let dash = b.get(login["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(dash.status(), 400);
}

#[tokio::test]
async fn a_cleared_field_leaves_its_requirement_due_and_an_expired_link_refreshes() {
    let t = TestNode::with(Options {
        manual_clock: true,
        ..Default::default()
    })
    .await;
    let id = t
        .post(
            "/v1/accounts",
            "type=custom&country=US&capabilities[transfers][requested]=true",
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = browser();
    let l = link(&t, &id, "account_onboarding").await;
    let url = l["url"].as_str().unwrap();
    let html = b.get(url).send().await.unwrap().text().await.unwrap();
    let done = b
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(filled_form(
            &html,
            &[("business_type", "company"), ("company_name", "")],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    let acct = t.get(&format!("/v1/accounts/{id}")).await;
    assert_eq!(
        acct["requirements"]["currently_due"],
        serde_json::json!(["company.name"]),
        "{acct:#}"
    );
    assert_eq!(acct["charges_enabled"], false);
    // The company got its representative as a person.
    let persons = t.get(&format!("/v1/accounts/{id}/persons")).await;
    assert_eq!(
        persons["data"][0]["relationship"]["representative"], true,
        "{persons:#}"
    );
    let cap = t
        .get(&format!("/v1/accounts/{id}/capabilities/transfers"))
        .await;
    assert_eq!(cap["status"], "inactive");
    assert_eq!(
        cap["requirements"]["currently_due"],
        serde_json::json!(["company.name"])
    );

    // A Custom account can also get an account_update link; after five
    // minutes unused it goes to refresh_url.
    let l = link(&t, &id, "account_update").await;
    t.advance(301_000);
    let late = b.get(l["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(late.status(), 303);
    assert_eq!(
        late.headers()["location"],
        "https://platform.example/refresh"
    );

    // An Express account cannot get account_update links; unknown accounts are refused.
    let express = t.post("/v1/accounts", "type=express").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, err) = call(
        &t,
        "POST",
        "/v1/account_links",
        &format!("account={express}&type=account_update"),
        None,
    )
    .await;
    assert_eq!(
        (status, err["error"]["param"].as_str()),
        (400, Some("type")),
        "{err:#}"
    );
    let (status, _) = call(
        &t,
        "POST",
        "/v1/account_links",
        "account=acct_nobody&type=account_onboarding",
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, err) = call(
        &t,
        "POST",
        "/v1/account_links",
        &format!("account={id}"),
        None,
    )
    .await;
    assert_eq!(
        (status, err["error"]["param"].as_str()),
        (400, Some("type"))
    );
}

#[tokio::test]
async fn capabilities_are_requested_and_given_up_through_their_api() {
    let t = TestNode::start().await;
    let mut rx = connect_endpoint(&t).await;
    let id = t.post("/v1/accounts", "type=custom&country=US").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cap = t
        .get(&format!("/v1/accounts/{id}/capabilities/card_payments"))
        .await;
    assert_eq!(
        (cap["status"].as_str(), cap["requested"].as_bool()),
        (Some("unrequested"), Some(false))
    );
    let cap = t
        .post(
            &format!("/v1/accounts/{id}/capabilities/card_payments"),
            "requested=true",
        )
        .await;
    assert_eq!(
        (cap["status"].as_str(), cap["requested"].as_bool()),
        (Some("inactive"), Some(true))
    );
    let e = rx.next().await.json();
    assert_eq!(
        (e["type"].as_str(), e["account"].as_str()),
        (Some("capability.updated"), Some(id.as_str()))
    );
    assert_eq!(e["data"]["previous_attributes"]["status"], "unrequested");
    assert_eq!(rx.next().await.json()["type"], "account.updated");
    let list = t.get(&format!("/v1/accounts/{id}/capabilities")).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let (status, err) = call(
        &t,
        "GET",
        &format!("/v1/accounts/{id}/capabilities/teleportation"),
        "",
        None,
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("resource_missing"))
    );
    let cap = t
        .post(
            &format!("/v1/accounts/{id}/capabilities/card_payments"),
            "requested=false",
        )
        .await;
    assert_eq!(cap["status"], "unrequested");
    // Another platform's account, or one acting as another account, is not reachable.
    let other = t.post("/v1/accounts", "type=custom").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = call(
        &t,
        "GET",
        &format!("/v1/accounts/{other}/capabilities"),
        "",
        Some(&id),
    )
    .await;
    assert_eq!(status, 403);

    let session = t
        .post("/v1/account_sessions", &format!("account={id}&components[account_onboarding][enabled]=true&components[payments][enabled]=true&components[payments][features][refund_management]=true"))
        .await;
    assert_eq!(session["object"], "account_session");
    assert_eq!(session["account"], id.as_str());
    assert!(
        session["client_secret"]
            .as_str()
            .unwrap()
            .starts_with("accs_")
    );
    assert_eq!(session["components"]["account_onboarding"]["enabled"], true);
    assert_eq!(
        session["components"]["payments"]["features"]["refund_management"],
        true
    );
    assert_eq!(session["components"]["payouts"]["enabled"], false);
    let (status, err) = call(
        &t,
        "POST",
        "/v1/account_sessions",
        &format!("account={id}"),
        None,
    )
    .await;
    assert_eq!(
        (status, err["error"]["param"].as_str()),
        (400, Some("components"))
    );
}

#[tokio::test]
async fn oauth_connects_a_standard_account_and_its_code_works_once() {
    let t = TestNode::start().await;
    let mut rx = connect_endpoint(&t).await;
    let platform = t
        .node()
        .store
        .platform_by_key(TEST_KEY)
        .await
        .unwrap()
        .unwrap()
        .0;
    let b = browser();
    let authorize = format!(
        "{}/oauth/authorize?response_type=code&client_id={}&scope=read_write&redirect_uri=https://platform.example/cb&state=s%201",
        t.base, platform.client_id
    );
    let page = b.get(&authorize).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(&platform.client_id));
    let form = format!(
        "client_id={}&response_type=code&scope=read_write&redirect_uri=https%3A%2F%2Fplatform.example%2Fcb&state=s+1&email=owner%40example.com",
        platform.client_id
    );
    let denied = b
        .post(format!("{}/oauth/authorize", t.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("{form}&decision=deny"))
        .send()
        .await
        .unwrap();
    let location = denied.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        location,
        "https://platform.example/cb?error=access_denied&error_description=The+user+denied+your+request&state=s%201"
    );

    let approved = b
        .post(format!("{}/oauth/authorize", t.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("{form}&decision=approve"))
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 303);
    let location = approved.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("https://platform.example/cb?code=ac_"),
        "{location}"
    );
    assert!(
        location.ends_with("&scope=read_write&state=s%201"),
        "{location}"
    );
    let code = location
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();

    let (status, token) = call(
        &t,
        "POST",
        "/oauth/token",
        &format!("grant_type=authorization_code&code={code}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{token:#}");
    let user = token["stripe_user_id"].as_str().unwrap().to_owned();
    assert_eq!(
        (token["scope"].as_str(), token["livemode"].as_bool()),
        (Some("read_write"), Some(false))
    );
    assert_eq!(token["token_type"], "bearer");
    let e = rx.next().await.json();
    assert_eq!(e["type"], "account.application.authorized");
    assert_eq!(e["account"], user.as_str());
    assert_eq!(e["data"]["object"]["id"], platform.client_id.as_str());
    // The connected account is reachable with Stripe-Account.
    let (status, me) = call(&t, "GET", "/v1/account", "", Some(&user)).await;
    assert_eq!(
        (status, me["type"].as_str(), me["email"].as_str()),
        (200, Some("standard"), Some("owner@example.com"))
    );
    // A code works once; a made-up one never.
    let (status, again) = call(
        &t,
        "POST",
        "/oauth/token",
        &format!("grant_type=authorization_code&code={code}"),
        None,
    )
    .await;
    assert_eq!(
        (status, again["error"].as_str()),
        (400, Some("invalid_grant")),
        "{again:#}"
    );
    let (status, none) = call(
        &t,
        "POST",
        "/oauth/token",
        "grant_type=authorization_code&code=ac_madeup",
        None,
    )
    .await;
    assert_eq!(
        (status, none["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // An unknown client gets an error page, not a form.
    let page = b
        .get(format!(
            "{}/oauth/authorize?response_type=code&client_id=ca_nobody",
            t.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 400);
}
