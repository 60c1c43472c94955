//! The webhook receiver every scenario delivers to: verifies each signature
//! (as a real platform would), counts, and remembers arrival times.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use tokio::sync::Notify;

#[derive(Default)]
pub struct Sink {
    /// Secret per path segment (`/hook/{name}`).
    secrets: RwLock<HashMap<String, String>>,
    pub delivered: AtomicUsize,
    pub invalid: AtomicUsize,
    /// Arrival time by `data.object.id`, when tracking latency.
    pub arrivals: Mutex<HashMap<String, Instant>>,
    pub track_arrivals: AtomicBool,
    /// `/slow/…` paths sleep this long (isolation scenario).
    pub slow_for: Mutex<Duration>,
    changed: Notify,
}

impl Sink {
    pub async fn start() -> (Arc<Sink>, SocketAddr) {
        let sink = Arc::new(Sink::default());
        let app = axum::Router::new()
            .route("/hook/{name}", axum::routing::post(receive))
            .route("/slow/{name}", axum::routing::post(slow))
            .route("/raw", axum::routing::post(raw))
            .with_state(sink.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind sink");
        let addr = listener.local_addr().expect("sink address");
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        (sink, addr)
    }

    pub fn secret(&self, name: &str, secret: &str) {
        self.secrets
            .write()
            .unwrap()
            .insert(name.to_owned(), secret.to_owned());
    }

    pub fn reset(&self) {
        self.delivered.store(0, Ordering::SeqCst);
        self.invalid.store(0, Ordering::SeqCst);
        self.arrivals.lock().unwrap().clear();
    }

    /// Waits until `n` deliveries arrived (or `limit` passed); returns when.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Option<Instant> {
        let deadline = Instant::now() + limit;
        loop {
            let notified = self.changed.notified();
            if self.delivered.load(Ordering::SeqCst) >= n {
                return Some(Instant::now());
            }
            if Instant::now() > deadline {
                return None;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
        }
    }

    fn accept(&self, name: &str, headers: &HeaderMap, body: &[u8]) -> StatusCode {
        let secret = self.secrets.read().unwrap().get(name).cloned();
        let header = headers
            .get("stripe-signature")
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let event = secret.and_then(|s| {
            switchboard_receiver::construct_event_at(body, header, &s, 300, now).ok()
        });
        let Some(event) = event else {
            self.invalid.fetch_add(1, Ordering::SeqCst);
            return StatusCode::BAD_REQUEST;
        };
        // Arrivals are the `main` endpoint's: other endpoints share its events.
        if self.track_arrivals.load(Ordering::Relaxed)
            && name == "main"
            && let Some(id) = event.data.object_id()
        {
            self.arrivals.lock().unwrap().insert(id, Instant::now());
        }
        self.delivered.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
        StatusCode::OK
    }
}

async fn receive(
    State(sink): State<Arc<Sink>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    sink.accept(&name, &headers, &body)
}

async fn slow(State(sink): State<Arc<Sink>>, Path(_name): Path<String>) -> StatusCode {
    let wait = *sink.slow_for.lock().unwrap();
    tokio::time::sleep(wait).await;
    StatusCode::OK
}

/// The baseline's target: same verification, no Switchboard in between.
async fn raw(State(sink): State<Arc<Sink>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    sink.accept("raw", &headers, &body)
}
