//! The router driven with signed deliveries (built with
//! `generate_test_header`), against a stand-in for the API on port 0 that
//! answers `GET /v1/accounts/{id}`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::{Body, to_bytes};
use axum::extract::Path;
use axum::http::{HeaderMap, Request};
use serde_json::{Value, json};
use switchboard_receiver::generate_test_header;
use tower::ServiceExt;

use super::*;

const SECRET: &str = "whsec_platform_test";
const KEY: &str = "sk_test_platform_example";

/// The stand-in API: accounts it knows, and what it was asked.
#[derive(Default)]
struct FakeApi {
    accounts: Mutex<HashMap<String, Value>>,
    /// Accounts whose fetch fails with a 500.
    broken: Mutex<Vec<String>>,
    fetches: AtomicUsize,
}

async fn fake_api() -> (String, Arc<FakeApi>) {
    let api = Arc::new(FakeApi::default());
    let shared = api.clone();
    let routes = Router::new().route(
        "/v1/accounts/{id}",
        get(move |Path(id): Path<String>, headers: HeaderMap| {
            let api = shared.clone();
            async move {
                api.fetches.fetch_add(1, Ordering::SeqCst);
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
                assert_eq!(auth, Some(format!("Bearer {KEY}").as_str()));
                // Fetched as the connected account itself.
                let acting = headers.get("stripe-account").and_then(|v| v.to_str().ok());
                assert_eq!(acting, Some(id.as_str()));
                if api.broken.lock().unwrap().contains(&id) {
                    return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({}))).into_response();
                }
                match api.accounts.lock().unwrap().get(&id) {
                    Some(account) => Json(account.clone()).into_response(),
                    None => (
                        StatusCode::FORBIDDEN,
                        Json(json!({"error": {"type": "invalid_request_error", "code": "account_invalid"}})),
                    )
                        .into_response(),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, routes).await.unwrap() });
    (format!("http://{addr}"), api)
}

async fn platform() -> (Router, Arc<FakeApi>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (base, api) = fake_api().await;
    let app = App::new(
        WebhookSecrets::parse_list(SECRET),
        false,
        StripeApi::new(&base, KEY),
    );
    (router(app), api)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn event(id: &str, kind: &str, account: &str, object: Value) -> Value {
    json!({
        "id": id, "object": "event", "account": account, "api_version": "2025-03-31.basil",
        "created": now(), "data": {"object": object}, "livemode": false,
        "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null}, "type": kind,
    })
}

fn account_json(id: &str, charges: bool, payouts: bool, due: &[&str]) -> Value {
    json!({
        "id": id, "object": "account", "type": "custom", "charges_enabled": charges,
        "payouts_enabled": payouts, "details_submitted": true,
        "requirements": {"currently_due": due, "eventually_due": due, "past_due": [],
            "disabled_reason": if payouts { Value::Null } else { json!("requirements.past_due") }},
    })
}

async fn call(app: &Router, req: Request<Body>) -> (StatusCode, String) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let body = to_bytes(res.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

async fn deliver(app: &Router, event: &Value) -> (StatusCode, String) {
    let body = serde_json::to_vec_pretty(event).unwrap();
    let header = generate_test_header(&body, SECRET, now());
    let req = Request::post("/webhook")
        .header("Content-Type", "application/json; charset=utf-8")
        .header("Stripe-Signature", header)
        .body(Body::from(body))
        .unwrap();
    call(app, req).await
}

async fn state(app: &Router) -> Value {
    let (status, body) = call(app, Request::get("/state").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    serde_json::from_str(&body).unwrap()
}

#[tokio::test]
async fn account_updated_records_the_fetched_account() {
    let (app, api) = platform().await;
    let fresh = account_json(
        "acct_1",
        false,
        false,
        &["external_account", "tos_acceptance.date"],
    );
    api.accounts.lock().unwrap().insert("acct_1".into(), fresh);
    // The event's snapshot is stale; the platform trusts the fetched account.
    let stale = account_json("acct_1", true, true, &[]);
    let (status, body) = deliver(&app, &event("evt_1", "account.updated", "acct_1", stale)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "account updated"));
    let s = state(&app).await;
    assert_eq!(
        s["accounts"]["acct_1"],
        json!({"charges_enabled": false, "payouts_enabled": false,
            "currently_due": ["external_account", "tos_acceptance.date"],
            "disabled_reason": "requirements.past_due", "payout_failed": false,
            "last_failed_payout": null})
    );
    assert_eq!(s["processed_events"], 1);
    assert_eq!(api.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn deauthorize_removes_the_account() {
    let (app, api) = platform().await;
    api.accounts
        .lock()
        .unwrap()
        .insert("acct_2".into(), account_json("acct_2", true, true, &[]));
    let acct = account_json("acct_2", true, true, &[]);
    deliver(
        &app,
        &event("evt_a", "account.updated", "acct_2", acct.clone()),
    )
    .await;
    assert_eq!(
        state(&app).await["accounts"]["acct_2"]["charges_enabled"],
        true
    );

    let application = json!({"id": "ca_1", "object": "application", "name": "Platform"});
    let (status, _) = deliver(
        &app,
        &event(
            "evt_b",
            "account.application.deauthorized",
            "acct_2",
            application,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let s = state(&app).await;
    assert_eq!(s["accounts"], json!({}));
    assert_eq!(s["deauthorized"], json!(["acct_2"]));

    // A late event about it is acknowledged and changes nothing.
    let (status, body) = deliver(&app, &event("evt_c", "account.updated", "acct_2", acct)).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "ignored: account deauthorized")
    );
    assert_eq!(state(&app).await["accounts"], json!({}));
    assert_eq!(api.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unreachable_account_is_forgotten() {
    let (app, _api) = platform().await;
    // The fake API does not know acct_gone: 403, as for a disconnected account.
    let acct = account_json("acct_gone", true, true, &[]);
    let (status, body) = deliver(&app, &event("evt_g", "account.updated", "acct_gone", acct)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let s = state(&app).await;
    assert_eq!(s["accounts"], json!({}));
    assert_eq!(s["deauthorized"], json!(["acct_gone"]));
}

#[tokio::test]
async fn a_duplicate_event_is_not_applied_twice() {
    let (app, api) = platform().await;
    api.accounts.lock().unwrap().insert(
        "acct_3".into(),
        account_json("acct_3", true, false, &["individual.id_number"]),
    );
    let e = event(
        "evt_dup",
        "account.updated",
        "acct_3",
        account_json("acct_3", true, false, &[]),
    );
    assert_eq!(
        deliver(&app, &e).await,
        (StatusCode::OK, "account updated".into())
    );
    // The account changes, but a redelivery of the same event must not refetch
    // and apply it: only a new event would.
    api.accounts
        .lock()
        .unwrap()
        .insert("acct_3".into(), account_json("acct_3", true, true, &[]));
    assert_eq!(
        deliver(&app, &e).await,
        (StatusCode::OK, "duplicate".into())
    );
    let s = state(&app).await;
    assert_eq!(s["processed_events"], 1);
    assert_eq!(s["accounts"]["acct_3"]["payouts_enabled"], false);
    assert_eq!(api.fetches.load(Ordering::SeqCst), 1);

    // Same for payout.failed: the second delivery is acknowledged only.
    let payout = json!({"id": "po_1", "object": "payout", "status": "failed", "destination": "ba_1",
        "failure_code": "account_closed"});
    let p = event("evt_po", "payout.failed", "acct_3", payout);
    assert_eq!(deliver(&app, &p).await.1, "account flagged");
    assert_eq!(deliver(&app, &p).await.1, "duplicate");
    assert_eq!(state(&app).await["processed_events"], 2);
}

#[tokio::test]
async fn payout_failed_flags_the_account() {
    let (app, api) = platform().await;
    let payout = json!({
        "id": "po_9", "object": "payout", "amount": 1100, "currency": "usd", "status": "failed",
        "destination": "ba_1Closed", "failure_code": "account_closed",
        "failure_message": "The bank account has been closed.", "type": "bank_account",
        "livemode": false, "metadata": {}
    });
    let (status, _) = deliver(&app, &event("evt_p", "payout.failed", "acct_4", payout)).await;
    assert_eq!(status, StatusCode::OK);
    let a = &state(&app).await["accounts"]["acct_4"];
    assert_eq!(a["payout_failed"], true);
    assert_eq!(
        a["last_failed_payout"],
        json!({"payout": "po_9", "destination": "ba_1Closed", "failure_code": "account_closed",
            "failure_message": "The bank account has been closed."})
    );
    // payout.failed needs no fetch: the failure is in the event.
    assert_eq!(api.fetches.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn events_of_the_other_mode_are_acknowledged_and_ignored() {
    let (app, _api) = platform().await;
    let mut e = event(
        "evt_live",
        "payout.failed",
        "acct_5",
        json!({"id": "po_1", "object": "payout"}),
    );
    e["livemode"] = json!(true);
    assert_eq!(
        deliver(&app, &e).await,
        (StatusCode::OK, "ignored: other mode".into())
    );
    let s = state(&app).await;
    assert_eq!(
        (s["accounts"].clone(), s["processed_events"].clone()),
        (json!({}), json!(0))
    );
    assert_eq!(s["ignored_other_mode"], 1);
}

#[tokio::test]
async fn a_failed_fetch_is_retried_by_the_sender() {
    let (app, api) = platform().await;
    api.broken.lock().unwrap().push("acct_6".into());
    let e = event(
        "evt_r",
        "account.updated",
        "acct_6",
        account_json("acct_6", true, true, &[]),
    );
    let (status, _) = deliver(&app, &e).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(state(&app).await["processed_events"], 0);
    // The redelivery after the API recovers is applied.
    api.broken.lock().unwrap().clear();
    api.accounts
        .lock()
        .unwrap()
        .insert("acct_6".into(), account_json("acct_6", true, true, &[]));
    assert_eq!(
        deliver(&app, &e).await,
        (StatusCode::OK, "account updated".into())
    );
    assert_eq!(
        state(&app).await["accounts"]["acct_6"]["charges_enabled"],
        true
    );
}

#[tokio::test]
async fn unsigned_or_missigned_deliveries_are_refused() {
    let (app, _api) = platform().await;
    let body = serde_json::to_vec(&event("evt_x", "payout.failed", "acct_7", json!({}))).unwrap();
    let unsigned = Request::post("/webhook")
        .body(Body::from(body.clone()))
        .unwrap();
    assert_eq!(call(&app, unsigned).await.0, StatusCode::BAD_REQUEST);
    let header = generate_test_header(&body, "whsec_someone_else", now());
    let forged = Request::post("/webhook")
        .header("Stripe-Signature", header)
        .body(Body::from(body))
        .unwrap();
    assert_eq!(call(&app, forged).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(state(&app).await["processed_events"], 0);
}
