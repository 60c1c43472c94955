//! The `axum` feature's extractor behind a real router, driven with
//! `tower::ServiceExt::oneshot`.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::FromRef;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use switchboard_receiver::axum::VerifiedEvent;
use switchboard_receiver::{Object, WebhookSecrets, generate_test_header};
use tower::ServiceExt;

const SECRET: &str = "whsec_axum_test";
const OLD_SECRET: &str = "whsec_axum_old";

#[derive(Clone)]
struct AppState {
    secrets: WebhookSecrets,
}

impl FromRef<AppState> for WebhookSecrets {
    fn from_ref(state: &AppState) -> Self {
        state.secrets.clone()
    }
}

async fn webhook(VerifiedEvent(event): VerifiedEvent) -> String {
    let what = match event.object() {
        Ok(Object::Payout(p)) => format!("payout {}", p.id),
        Ok(other) => format!("other {:?}", other.id()),
        Err(e) => format!("unreadable object: {e}"),
    };
    format!("{} {what}", event.id)
}

fn app() -> Router {
    Router::new()
        .route("/webhook", post(webhook))
        .with_state(AppState {
            secrets: WebhookSecrets::new([SECRET, OLD_SECRET]).with_body_limit(64 * 1024),
        })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

const BODY: &str = r#"{"id":"evt_axum_1","object":"event","type":"payout.failed","account":"acct_1","created":1,"livemode":false,"data":{"object":{"id":"po_1","object":"payout","failure_code":"account_closed"}}}"#;

async fn send(body: impl Into<Body>, header: Option<&str>) -> (StatusCode, String) {
    let mut req = Request::post("/webhook").header("content-type", "application/json");
    if let Some(h) = header {
        req = req.header("Stripe-Signature", h);
    }
    let res = app().oneshot(req.body(body.into()).unwrap()).await.unwrap();
    let status = res.status();
    let ct = res.headers().get("content-type").cloned();
    let text =
        String::from_utf8(to_bytes(res.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
    if !status.is_success() {
        assert_eq!(ct.unwrap(), "text/plain; charset=utf-8");
        assert!(text.starts_with("Webhook Error: "), "{text}");
        assert!(text.lines().count() == 1 && text.len() < 200, "{text}");
    }
    (status, text)
}

#[tokio::test]
async fn a_valid_signature_reaches_the_handler() {
    let header = generate_test_header(BODY.as_bytes(), SECRET, now());
    let (status, text) = send(BODY, Some(&header)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text, "evt_axum_1 payout po_1");
}

#[tokio::test]
async fn any_of_the_secrets_may_sign() {
    let header = generate_test_header(BODY.as_bytes(), OLD_SECRET, now());
    assert_eq!(send(BODY, Some(&header)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_bad_signature_is_400() {
    let header = generate_test_header(BODY.as_bytes(), "whsec_someone_else", now());
    let (status, text) = send(BODY, Some(&header)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("No signatures found matching"), "{text}");

    let tampered = BODY.replace("po_1", "po_2");
    let header = generate_test_header(BODY.as_bytes(), SECRET, now());
    assert_eq!(
        send(tampered, Some(&header)).await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn a_missing_header_is_400() {
    let (status, text) = send(BODY, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("No Stripe-Signature header"), "{text}");
    assert_eq!(send(BODY, Some("")).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_old_signature_is_400() {
    let header = generate_test_header(BODY.as_bytes(), SECRET, now() - 3600);
    let (status, text) = send(BODY, Some(&header)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        text.contains("Timestamp outside the tolerance zone"),
        "{text}"
    );
}

#[tokio::test]
async fn a_signed_body_that_is_not_an_event_is_400() {
    let body = "[1, 2, 3]";
    let header = generate_test_header(body.as_bytes(), SECRET, now());
    let (status, text) = send(body, Some(&header)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("not a valid event"), "{text}");
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(65 * 1024));
    let header = generate_test_header(big.as_bytes(), SECRET, now());
    // Without a Content-Length (oneshot adds none) the limit applies while reading …
    let (status, text) = send(big.clone(), Some(&header)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(text.contains("larger than 65536 bytes"), "{text}");
    // … and a declared Content-Length over it is refused before reading.
    let req = Request::post("/webhook")
        .header("Stripe-Signature", &header)
        .header("Content-Length", big.len())
        .body(Body::from(big))
        .unwrap();
    let res = app().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_state_of_just_the_secrets_works_too() {
    let app: Router = Router::new()
        .route("/webhook", post(webhook))
        .with_state(WebhookSecrets::parse_list(SECRET));
    let header = generate_test_header(BODY.as_bytes(), SECRET, now());
    let req = Request::post("/webhook")
        .header("Stripe-Signature", header)
        .body(Body::from(BODY))
        .unwrap();
    assert_eq!(app.oneshot(req).await.unwrap().status(), StatusCode::OK);
}
