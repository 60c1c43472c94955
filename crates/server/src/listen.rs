//! `stripe listen` support: the Stripe CLI's session endpoint and WebSocket
//! protocol, so the official CLI (and `switchboard listen`) can receive events.
//!
//! A device (platform, mode, `device_name`) is a *listener endpoint* in the
//! store with a stable signing secret, so a developer's `.env` keeps working
//! across restarts. It is enabled only while one of its sessions is connected;
//! events then route to it like to any endpoint, and the dispatcher hands each
//! delivery to this hub (a [`Relay`]), which sends it over the WebSocket and
//! waits for the CLI's `webhook_response`, recorded as the attempt's answer.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use switchboard_core::ids;
use switchboard_store::relay::{LISTENER_SCHEME, Relay, RelayError, RelayResponse};
use switchboard_store::{Change, EndpointRecord, SigningSecret, StoreError, Write};
use tokio::sync::{mpsc, oneshot};

use crate::context::{Ctx, ok_json};
use crate::error::ApiError;
use crate::state::AppState;

/// How often the CLI re-creates its connection, in seconds.
const RECONNECT_DELAY: u64 = 3600;

#[derive(Clone)]
struct Session {
    endpoint_id: String,
    platform: String,
    livemode: bool,
    /// Unix ms; sessions are forgotten after [`SESSION_TTL_MS`].
    created_ms: i64,
}

/// A `websocket_id` may be used to (re)connect for this long.
const SESSION_TTL_MS: i64 = 24 * 3600 * 1000;

#[derive(Default)]
struct Hub {
    /// `websocket_id` → session, handed out by `POST /v1/stripecli/sessions`.
    sessions: HashMap<String, Session>,
    /// Listener endpoint id → its connected sockets (connection id, outbox).
    connections: HashMap<String, Vec<(u64, mpsc::UnboundedSender<String>)>>,
    /// `webhook_id` → (connection id, who waits for the CLI's answer).
    pending: HashMap<String, (u64, oneshot::Sender<RelayResponse>)>,
    next_connection: u64,
}

/// Connected `stripe listen` sessions of this node.
pub struct ListenHub {
    hub: Mutex<Hub>,
    /// The version events are rendered at, as the CLI's `--latest` sees it.
    api_version: String,
}

impl ListenHub {
    pub fn new(api_version: String) -> ListenHub {
        ListenHub {
            hub: Mutex::default(),
            api_version,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Hub> {
        self.hub.lock().expect("listen hub lock")
    }

    /// Registers a socket; `true` if it is the device's first.
    fn connect(&self, endpoint_id: &str) -> (u64, mpsc::UnboundedReceiver<String>, bool) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut hub = self.lock();
        hub.next_connection += 1;
        let id = hub.next_connection;
        let conns = hub.connections.entry(endpoint_id.to_owned()).or_default();
        conns.push((id, tx));
        (id, rx, conns.len() == 1)
    }

    /// Unregisters a socket, failing its unanswered deliveries; `true` if it was the device's last.
    fn disconnect(&self, endpoint_id: &str, connection: u64) -> bool {
        let mut hub = self.lock();
        hub.pending.retain(|_, (c, _)| *c != connection);
        let Some(conns) = hub.connections.get_mut(endpoint_id) else {
            return true;
        };
        conns.retain(|(c, _)| *c != connection);
        let last = conns.is_empty();
        if last {
            hub.connections.remove(endpoint_id);
        }
        last
    }

    fn is_connected(&self, endpoint_id: &str) -> bool {
        self.lock().connections.contains_key(endpoint_id)
    }

    /// Ends every session (at shutdown): their sockets close, the CLIs reconnect elsewhere or later.
    pub fn close_all(&self) {
        let mut hub = self.lock();
        hub.connections.clear();
        hub.pending.clear();
    }

    fn answer(&self, webhook_id: &str, response: RelayResponse) {
        if let Some((_, waiter)) = self.lock().pending.remove(webhook_id) {
            let _ = waiter.send(response);
        }
    }
}

impl Relay for ListenHub {
    fn deliver(
        &self,
        endpoint_id: &str,
        payload: Bytes,
        signature: String,
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<RelayResponse, RelayError>> + Send + '_>> {
        let endpoint_id = endpoint_id.to_owned();
        Box::pin(async move {
            let webhook_id = ids::generate(ids::Prefix::ListenWebhook, &mut rand::rng());
            // Stripe sends the CLI each event twice, rendered at the account's
            // default version (`api_version: null`) and at the latest one; the
            // CLI forwards the first, or with `--latest` the second. Both are
            // the same bytes here (one version), under one webhook id, so
            // exactly one copy is forwarded and answered.
            let payload = String::from_utf8_lossy(&payload);
            let copy = |api_version: Option<&str>| {
                json!({
                    "type": "webhook_event",
                    "webhook_id": webhook_id,
                    "webhook_conversation_id": webhook_id,
                    "event_payload": payload,
                    "http_headers": {
                        "Accept": "*/*; q=0.5, application/xml",
                        "Cache-Control": "no-cache",
                        "Content-Type": "application/json; charset=utf-8",
                        "Stripe-Signature": signature,
                        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                    },
                    "endpoint": {"api_version": api_version},
                })
                .to_string()
            };
            let messages = [copy(None), copy(Some(&self.api_version))];
            let (tx, rx) = oneshot::channel();
            {
                let mut hub = self.lock();
                let Some((connection, outbox)) = hub
                    .connections
                    .get(&endpoint_id)
                    .and_then(|c| c.first())
                    .cloned()
                else {
                    return Err(RelayError::Disconnected);
                };
                hub.pending.insert(webhook_id.clone(), (connection, tx));
                if messages.into_iter().any(|m| outbox.send(m).is_err()) {
                    hub.pending.remove(&webhook_id);
                    return Err(RelayError::Disconnected);
                }
            }
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(response)) => Ok(response),
                Ok(Err(_)) => Err(RelayError::Disconnected),
                Err(_) => {
                    self.lock().pending.remove(&webhook_id);
                    Err(RelayError::Timeout)
                }
            }
        })
    }
}

/// `POST /v1/stripecli/sessions`
pub async fn create_session(mut ctx: Ctx) -> Result<Response, ApiError> {
    let device = ctx
        .params
        .string("device_name")?
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "default".into());
    ctx.params.string_list("websocket_features")?;
    // Where the CLI forwards to is its own business; the session does not depend on it.
    for informational in [
        "forward_to_url",
        "forward_connect_to_url",
        "forward_thin_to_url",
        "forward_thin_connect_to_url",
    ] {
        ctx.params.string(informational)?;
    }
    ctx.finish_params()?;
    let host = ctx
        .headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .ok_or_else(|| ApiError::InvalidRequest {
            message: "A Host header is required.".into(),
            param: None,
            code: None,
        })?
        .to_owned();
    let existing = ctx
        .state
        .store
        .listeners(&ctx.platform.id, ctx.livemode())
        .await?;
    let endpoint = existing
        .into_iter()
        .find(|e| e.description.as_deref() == Some(device.as_str()));
    let (endpoint, created) = match endpoint {
        Some(e) => (e, false),
        None => {
            let mut rng = rand::rng();
            let rec = EndpointRecord {
                id: ids::generate(ids::Prefix::WebhookEndpoint, &mut rng),
                platform: ctx.platform.id.clone(),
                livemode: ctx.livemode(),
                version: 1,
                created: ctx.now(),
                url: format!("{LISTENER_SCHEME}{device}"),
                connect: false,
                enabled: false,
                enabled_events: vec!["*".into()],
                api_version: None,
                description: Some(device.clone()),
                metadata: Default::default(),
                secrets: vec![SigningSecret {
                    secret: ids::generate_secret(ids::WEBHOOK_SECRET, &mut rng),
                    expires_at: None,
                }],
                deleted: false,
                failing_since: None,
                listener: true,
            };
            (rec, true)
        }
    };
    let websocket_id = ids::generate_secret(ids::WEBSOCKET, &mut rand::rng());
    let session = Session {
        endpoint_id: endpoint.id.clone(),
        platform: ctx.platform.id.clone(),
        livemode: ctx.livemode(),
        created_ms: ctx.state.clock.now_ms(),
    };
    let body = json!({
        "object": "stripecli_session",
        "default_version": ctx.state.config.api_version,
        "device_token": "",
        "display_connect_filter_warning": false,
        "latest_version": ctx.state.config.api_version,
        "reconnect_delay": RECONNECT_DELAY,
        "secret": endpoint.secrets.first().map(|s| s.secret.clone()),
        "websocket_authorized_feature": "webhook-payloads",
        "websocket_id": websocket_id,
        "websocket_url": format!("ws://{host}/v1/stripecli/websocket"),
        "webhook_endpoint": endpoint.id,
    });
    let response = if created {
        let mut change = ctx.change();
        change
            .writes
            .push(Write::Endpoint(Box::new(endpoint), None));
        ctx.commit(change, &body).await?
    } else {
        ok_json(&body)
    };
    let mut hub = ctx.state.listen.lock();
    hub.sessions
        .retain(|_, s| s.created_ms > session.created_ms - SESSION_TTL_MS);
    hub.sessions.insert(websocket_id, session);
    drop(hub);
    Ok(response)
}

/// `GET /v1/stripecli/websocket` with the `Websocket-Id` of a session.
pub async fn websocket(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let id = headers
        .get("websocket-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let session = state.listen.lock().sessions.get(id).cloned();
    let Some(session) = session else {
        // The CLI recognises this exact message and opens a new session.
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"message": "Unknown WebSocket ID."}})),
        )
            .into_response();
    };
    // Registered and routed to before the upgrade completes: the CLI prints
    // "Ready!" once connected, and events created from then on must reach it
    // (deliveries queued before the socket is up wait in its outbox).
    let (connection, outbox, _) = state.listen.connect(&session.endpoint_id);
    sync_enabled(&state, &session).await;
    let failed = (state.clone(), session.clone());
    upgrade
        .on_failed_upgrade(move |_| {
            let (state, session) = failed;
            state.listen.disconnect(&session.endpoint_id, connection);
            tokio::spawn(async move { sync_enabled(&state, &session).await });
        })
        .on_upgrade(move |socket| serve(state, session, connection, outbox, socket))
}

async fn serve(
    state: AppState,
    session: Session,
    connection: u64,
    mut outbox: mpsc::UnboundedReceiver<String>,
    mut socket: WebSocket,
) {
    loop {
        tokio::select! {
            out = outbox.recv() => match out {
                Some(text) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => handle_message(&state, text.as_str()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {} // pings are answered by the WebSocket layer
            },
        }
    }
    state.listen.disconnect(&session.endpoint_id, connection);
    sync_enabled(&state, &session).await;
}

fn handle_message(state: &AppState, text: &str) {
    let Ok(msg) = serde_json::from_str::<Value>(text) else {
        return;
    };
    if msg["type"] == "webhook_response" {
        let status = msg["status"].as_u64().unwrap_or(0) as u16;
        let body = msg["body"].as_str().unwrap_or_default().to_owned();
        if let Some(id) = msg["webhook_id"].as_str() {
            state.listen.answer(id, RelayResponse { status, body });
        }
    }
    // `event_ack` needs no answer: the response that follows is what counts.
}

/// Routes events to the device while it is connected, and stops when it is not.
async fn sync_enabled(state: &AppState, session: &Session) {
    for _ in 0..8 {
        // Read the hub on every try: a socket may have come or gone meanwhile.
        let enabled = state.listen.is_connected(&session.endpoint_id);
        let rec = match state
            .store
            .endpoint(&session.platform, session.livemode, &session.endpoint_id)
            .await
        {
            Ok(Some(r)) => r,
            _ => return,
        };
        if rec.enabled == enabled {
            return;
        }
        let expected = rec.version;
        let mut rec = rec;
        rec.enabled = enabled;
        rec.version += 1;
        let now_ms = state.clock.now_ms();
        let change = Change {
            platform: session.platform.clone(),
            now: now_ms.div_euclid(1000),
            now_ms,
            api_version: state.config.api_version.clone(),
            writes: vec![Write::Endpoint(Box::new(rec), Some(expected))],
            events: Vec::new(),
            idempotency: None,
        };
        match state.store.commit(change).await {
            Err(StoreError::Conflict) => continue,
            Err(e) => {
                tracing::error!(error = %e, "could not update a listener endpoint");
                return;
            }
            Ok(_) => return,
        }
    }
}

/// This module's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/v1/stripecli/sessions", post(create_session))
        .route("/v1/stripecli/websocket", get(websocket))
}
