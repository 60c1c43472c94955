//! `stripe listen` support: the Stripe CLI's session endpoint and WebSocket
//! protocol, so the official CLI (and `switchboard listen`) can receive events.
//!
//! A device (platform, mode, `device_name`) is a *listener endpoint* in the
//! store with a stable signing secret, so a developer's `.env` keeps working
//! across restarts. It is enabled only while one of its sessions is connected;
//! events then route to it like to any endpoint, and the dispatcher hands each
//! delivery to this hub (a [`Relay`]), which sends it over the WebSocket and
//! waits for the CLI's `webhook_response`, recorded as the attempt's answer.
//!
//! Several nodes: the session's `websocket_id` carries the session itself,
//! signed with the device's secret, so any node can accept the WebSocket; the
//! node holding a socket records its hold in the store (renewed while
//! connected) and only holding nodes claim the device's deliveries, so events
//! written through any node reach the CLI.

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
use switchboard_store::{
    Destination, EndpointRecord, EventPayload, ListenerHold, SigningSecret, Write,
};
use tokio::sync::{mpsc, oneshot};

use crate::context::{Ctx, ok_json};
use crate::error::ApiError;
use crate::state::AppState;

/// How often the CLI re-creates its connection, in seconds.
const RECONNECT_DELAY: u64 = 3600;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Session {
    endpoint_id: String,
    platform: String,
    livemode: bool,
    /// Unix ms; a session's id stops working after [`SESSION_TTL_MS`].
    created_ms: i64,
    /// `stripe listen` (events) or `stripe logs tail` (request logs), and
    /// the latter's filters as the CLI sent them (JSON, hex in the id).
    feature: Feature,
    filters: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Feature {
    /// Snapshot events, as `webhook_event` messages.
    Webhooks,
    /// Thin events (`stripe listen --all-thin`, or v2 types in `--events`),
    /// as `v2_event` messages, to the device's thin listener endpoint.
    V2Events,
    RequestLogs,
}

impl Feature {
    fn as_str(self) -> &'static str {
        match self {
            Feature::Webhooks => "webhook-payloads",
            Feature::V2Events => "v2_events",
            Feature::RequestLogs => "request_logs",
        }
    }

    /// Its letter in a `websocket_id`.
    fn code(self) -> &'static str {
        match self {
            Feature::Webhooks => "w",
            Feature::V2Events => "v",
            Feature::RequestLogs => "r",
        }
    }
}

/// A `websocket_id` may be used to (re)connect for this long.
const SESSION_TTL_MS: i64 = 24 * 3600 * 1000;
/// A node's hold on a device's socket lasts this long unless renewed (every
/// third of it): a node that dies lets go of its devices by itself.
pub const HOLD_MS: i64 = 15_000;

impl Session {
    fn signed(&self, secret: &str) -> String {
        let text = format!(
            "{}.{}.{}.{}.{}.{}",
            self.platform,
            if self.livemode { "l" } else { "t" },
            self.endpoint_id,
            self.created_ms,
            self.feature.code(),
            hex::encode(&self.filters),
        );
        let mac = switchboard_core::signature::compute(secret, self.created_ms, text.as_bytes());
        format!("{}_{text}.{}", ids::WEBSOCKET, &mac[..32])
    }

    /// The session a `websocket_id` names, unverified (see [`Session::verify`]).
    fn parse(id: &str) -> Option<(Session, &str)> {
        let rest = id.strip_prefix(ids::WEBSOCKET)?.strip_prefix('_')?;
        let mut parts = rest.split('.');
        let (platform, mode, endpoint, created, feature, filters, mac) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?.parse().ok()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        if parts.next().is_some() || !matches!(mode, "l" | "t") {
            return None;
        }
        let feature = [Feature::Webhooks, Feature::V2Events, Feature::RequestLogs]
            .into_iter()
            .find(|f| f.code() == feature)?;
        let session = Session {
            endpoint_id: endpoint.to_owned(),
            platform: platform.to_owned(),
            livemode: mode == "l",
            created_ms: created,
            feature,
            filters: String::from_utf8(hex::decode(filters).ok()?).ok()?,
        };
        Some((session, mac))
    }

    /// Whether `id` is this session's, signed with one of the device's secrets.
    fn verify(&self, id: &str, secrets: &[SigningSecret]) -> bool {
        use subtle::ConstantTimeEq as _;
        secrets
            .iter()
            .any(|s| bool::from(self.signed(&s.secret).as_bytes().ct_eq(id.as_bytes())))
    }
}

/// A device's connected sockets on this node.
struct Device {
    platform: String,
    /// Its sessions take thin events (`v2_event` messages).
    thin: bool,
    /// (connection id, outbox)
    sockets: Vec<(u64, mpsc::UnboundedSender<String>)>,
}

#[derive(Default)]
struct Hub {
    /// Listener endpoint id → the device's sockets here.
    connections: HashMap<String, Device>,
    /// `webhook_id` (a thin event's: `destination_id/event id`) → (connection
    /// id, who waits for the CLI's answer).
    pending: HashMap<String, (u64, oneshot::Sender<RelayResponse>)>,
    next_connection: u64,
}

/// Connected `stripe listen` sessions of this node.
pub struct ListenHub {
    hub: Mutex<Hub>,
    /// The version events are rendered at, as the CLI's `--latest` sees it.
    api_version: String,
    /// This node, as its holds and claims name it.
    node: String,
    /// Cancelled at shutdown: ends the request-log sockets too.
    closing: tokio_util::sync::CancellationToken,
}

impl ListenHub {
    pub fn new(api_version: String, node: String) -> ListenHub {
        ListenHub {
            hub: Mutex::default(),
            api_version,
            node,
            closing: Default::default(),
        }
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Sockets connected here.
    pub fn sockets(&self) -> usize {
        self.lock()
            .connections
            .values()
            .map(|d| d.sockets.len())
            .sum()
    }

    /// The devices with a socket here, by (platform, endpoint id).
    fn held(&self) -> Vec<(String, String)> {
        self.lock()
            .connections
            .iter()
            .map(|(e, d)| (d.platform.clone(), e.clone()))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Hub> {
        self.hub.lock().expect("listen hub lock")
    }

    /// Registers a socket; `true` if it is the device's first.
    fn connect(
        &self,
        platform: &str,
        endpoint_id: &str,
        thin: bool,
    ) -> (u64, mpsc::UnboundedReceiver<String>, bool) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut hub = self.lock();
        hub.next_connection += 1;
        let id = hub.next_connection;
        let device = hub
            .connections
            .entry(endpoint_id.to_owned())
            .or_insert_with(|| Device {
                platform: platform.to_owned(),
                thin,
                sockets: Vec::new(),
            });
        device.sockets.push((id, tx));
        (id, rx, device.sockets.len() == 1)
    }

    /// Unregisters a socket, failing its unanswered deliveries; `true` if it was the device's last.
    fn disconnect(&self, endpoint_id: &str, connection: u64) -> bool {
        let mut hub = self.lock();
        hub.pending.retain(|_, (c, _)| *c != connection);
        let Some(device) = hub.connections.get_mut(endpoint_id) else {
            return true;
        };
        device.sockets.retain(|(c, _)| *c != connection);
        let last = device.sockets.is_empty();
        if last {
            hub.connections.remove(endpoint_id);
        }
        last
    }

    /// Ends every session (at shutdown): their sockets close, the CLIs reconnect elsewhere or later.
    pub fn close_all(&self) {
        self.closing.cancel();
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
        event_id: &str,
        payload: Bytes,
        signature: String,
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<RelayResponse, RelayError>> + Send + '_>> {
        let endpoint_id = endpoint_id.to_owned();
        let event_id = event_id.to_owned();
        Box::pin(async move {
            let thin = self
                .lock()
                .connections
                .get(&endpoint_id)
                .is_some_and(|d| d.thin);
            let (webhook_id, messages) = if thin {
                thin_message(&endpoint_id, &event_id, &payload, &signature)
            } else {
                snapshot_messages(&payload, &signature, &self.api_version)
            };
            let (tx, rx) = oneshot::channel();
            {
                let mut hub = self.lock();
                let Some((connection, outbox)) = hub
                    .connections
                    .get(&endpoint_id)
                    .and_then(|d| d.sockets.first())
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

/// The headers Stripe's webhooks carry, as the CLI forwards them.
fn http_headers(signature: &str) -> Value {
    json!({
        "Accept": "*/*; q=0.5, application/xml",
        "Cache-Control": "no-cache",
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": signature,
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    })
}

/// A snapshot event's `webhook_event` messages and their webhook id.
///
/// Stripe sends the CLI each event twice, rendered at the account's default
/// version (`api_version: null`) and at the latest one; the CLI forwards the
/// first, or with `--latest` the second. Both are the same bytes here (one
/// version), under one webhook id, so exactly one copy is forwarded and
/// answered.
fn snapshot_messages(payload: &[u8], signature: &str, api_version: &str) -> (String, Vec<String>) {
    let webhook_id = ids::generate(ids::Prefix::ListenWebhook, &mut rand::rng());
    let payload = String::from_utf8_lossy(payload);
    let copy = |api_version: Option<&str>| {
        json!({
            "type": "webhook_event",
            "webhook_id": webhook_id,
            "webhook_conversation_id": webhook_id,
            "event_payload": payload,
            "http_headers": http_headers(signature),
            "endpoint": {"api_version": api_version},
        })
        .to_string()
    };
    let messages = vec![copy(None), copy(Some(api_version))];
    (webhook_id, messages)
}

/// A thin event's one `v2_event` message, and the key its answer comes
/// back under: the CLI's `webhook_response` names the destination as
/// `webhook_id` and the event as `notification_id`.
fn thin_message(
    destination_id: &str,
    event_id: &str,
    payload: &[u8],
    signature: &str,
) -> (String, Vec<String>) {
    let message = json!({
        "type": "v2_event",
        "destination_id": destination_id,
        "payload": String::from_utf8_lossy(payload),
        "http_headers": http_headers(signature),
    });
    (
        thin_key(destination_id, event_id),
        vec![message.to_string()],
    )
}

fn thin_key(destination_id: &str, event_id: &str) -> String {
    format!("{destination_id}/{event_id}")
}

/// `POST /v1/stripecli/sessions`
pub async fn create_session(mut ctx: Ctx) -> Result<Response, ApiError> {
    let device = ctx
        .params
        .string("device_name")?
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "default".into());
    let features = ctx
        .params
        .string_list("websocket_features")?
        .unwrap_or_default();
    let asks = |f: &str| features.iter().any(|x| x == f);
    let feature = if asks("request_logs") {
        Feature::RequestLogs
    } else if asks("v2_events") && !asks("webhooks") {
        // `stripe listen --all-thin` (or thin types in `--events`): the CLI
        // filters types and `--events-from` itself, so the session hears
        // every thin event of the mode and no snapshot event.
        Feature::V2Events
    } else {
        Feature::Webhooks
    };
    let thin = feature == Feature::V2Events;
    // `stripe logs tail`'s filters, JSON in one parameter.
    let filters = ctx.params.string("filters")?.unwrap_or_default();
    if !filters.is_empty() && serde_json::from_str::<crate::request_log::Filters>(&filters).is_err()
    {
        return Err(ApiError::invalid(
            "filters",
            "Invalid filters: expected the Stripe CLI's JSON object of filter lists.",
        ));
    }
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
    // A device has a listener endpoint per payload kind; both sign with
    // the device's one secret, so one `.env` verifies either.
    let of_device: Vec<EndpointRecord> = existing
        .into_iter()
        .filter(|e| e.description.as_deref() == Some(device.as_str()))
        .collect();
    let secret = of_device.first().map(|e| e.secrets.clone());
    let endpoint = of_device
        .into_iter()
        .find(|e| e.destination.is_some() == thin);
    let (endpoint, created) = match endpoint {
        Some(e) => (e, false),
        None => {
            let mut rng = rand::rng();
            let secrets = secret.unwrap_or_else(|| {
                vec![SigningSecret {
                    secret: ids::generate_secret(ids::WEBHOOK_SECRET, &mut rng),
                    expires_at: None,
                }]
            });
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
                secrets,
                deleted: false,
                failing_since: None,
                listener: true,
                chaos: None,
                // A thin listener: thin payloads, of everyone's events.
                destination: thin.then(|| Destination {
                    name: device.clone(),
                    event_payload: EventPayload::Thin,
                    from_self: true,
                    from_accounts: true,
                    snapshot_api_version: None,
                    updated_ms: ctx.state.clock.now_ms(),
                }),
            };
            (rec, true)
        }
    };
    let session = Session {
        endpoint_id: endpoint.id.clone(),
        platform: ctx.platform.id.clone(),
        livemode: ctx.livemode(),
        created_ms: ctx.state.clock.now_ms(),
        feature,
        filters,
    };
    let secret = endpoint.secrets.first().map(|s| s.secret.clone());
    let websocket_id = session.signed(secret.as_deref().unwrap_or_default());
    let body = json!({
        "object": "stripecli_session",
        "default_version": ctx.state.config.api_version,
        "device_token": "",
        "display_connect_filter_warning": false,
        "latest_version": ctx.state.config.api_version,
        "reconnect_delay": RECONNECT_DELAY,
        "secret": secret,
        "websocket_authorized_feature": session.feature.as_str(),
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
    Ok(response)
}

/// `GET /v1/stripecli/websocket` with the `Websocket-Id` of a session.
pub async fn websocket(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(why) => {
            return ApiError::InvalidRequest {
                message: format!("This URL takes a WebSocket connection: {why}"),
                param: None,
                code: None,
            }
            .into_response();
        }
    };
    let id = headers
        .get("websocket-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(session) = verified_session(&state, id).await else {
        // The CLI recognises this exact message and opens a new session.
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"message": "Unknown WebSocket ID.", "type": "invalid_request_error"}})),
        )
            .into_response();
    };
    if session.feature == Feature::RequestLogs {
        return upgrade.on_upgrade(move |socket| serve_request_logs(state, session, socket));
    }
    // Registered and routed to before the upgrade completes: the CLI prints
    // "Ready!" once connected, and events created from then on must reach it
    // (deliveries queued before the socket is up wait in its outbox).
    let (connection, outbox, _) = state.listen.connect(
        &session.platform,
        &session.endpoint_id,
        session.feature == Feature::V2Events,
    );
    hold(&state, &session.platform, &session.endpoint_id, true).await;
    let failed = (state.clone(), session.clone());
    upgrade
        .on_failed_upgrade(move |_| {
            let (state, session) = failed;
            if state.listen.disconnect(&session.endpoint_id, connection) {
                tokio::spawn(async move {
                    hold(&state, &session.platform, &session.endpoint_id, false).await
                });
            }
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
    if state.listen.disconnect(&session.endpoint_id, connection) {
        hold(&state, &session.platform, &session.endpoint_id, false).await;
    }
}

fn handle_message(state: &AppState, text: &str) {
    let Ok(msg) = serde_json::from_str::<Value>(text) else {
        return;
    };
    if msg["type"] == "webhook_response" {
        let status = msg["status"].as_u64().unwrap_or(0) as u16;
        let body = msg["body"].as_str().unwrap_or_default().to_owned();
        let Some(id) = msg["webhook_id"].as_str() else {
            return;
        };
        // A thin event's answer has no conversation id (see `thin_message`).
        let key = match msg["webhook_conversation_id"].as_str() {
            Some(c) if !c.is_empty() => id.to_owned(),
            _ => thin_key(id, msg["notification_id"].as_str().unwrap_or_default()),
        };
        state.listen.answer(&key, RelayResponse { status, body });
    }
    // `event_ack` needs no answer: the response that follows is what counts.
}

/// `stripe logs tail`: every request of the session's platform and mode that
/// this node serves from now on and its filters admit, as `request_log_event`s.
async fn serve_request_logs(state: AppState, session: Session, mut socket: WebSocket) {
    let filters: crate::request_log::Filters = if session.filters.is_empty() {
        Default::default()
    } else {
        serde_json::from_str(&session.filters).unwrap_or_default()
    };
    let mut live = state.request_log.subscribe();
    let closing = state.listen.closing.clone();
    loop {
        tokio::select! {
            () = closing.cancelled() => break,
            entry = live.recv() => match entry {
                Ok(e) => {
                    if e.platform != session.platform || e.livemode != session.livemode || !filters.admit(&e) {
                        continue;
                    }
                    let message = json!({
                        "type": "request_log_event",
                        "request_log_id": format!("reqlog_{}", e.id.trim_start_matches("req_")),
                        "event_payload": e.cli_payload(),
                    });
                    if socket.send(Message::Text(message.to_string().into())).await.is_err() {
                        break;
                    }
                }
                // A slow reader misses entries rather than slowing the API.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// The session a `websocket_id` stands for, if its device still exists and
/// the id is signed with one of the device's secrets and not too old.
async fn verified_session(state: &AppState, id: &str) -> Option<Session> {
    let (session, _) = Session::parse(id)?;
    if state.clock.now_ms() - session.created_ms > SESSION_TTL_MS {
        return None;
    }
    let endpoint = state
        .store
        .endpoint(&session.platform, session.livemode, &session.endpoint_id)
        .await
        .ok()??;
    (endpoint.listener && session.verify(id, &endpoint.secrets)).then_some(session)
}

/// Records that this node holds (or let go of) a device's socket: the
/// device's endpoint is enabled while some node holds it, and this node
/// claims its deliveries while it does.
async fn hold(state: &AppState, platform: &str, endpoint_id: &str, held: bool) {
    let now_ms = state.clock.now_ms();
    let hold = ListenerHold {
        platform: platform.to_owned(),
        endpoint_id: endpoint_id.to_owned(),
        node: state.listen.node().to_owned(),
        until_ms: held.then_some(now_ms + HOLD_MS),
        now_ms,
    };
    if let Err(e) = state.store.hold_listener(hold).await {
        tracing::error!(error = %e, "could not record a listener's connection");
    }
}

/// Renews this node's holds on its connected devices until `stop`.
pub async fn keep_holds(state: AppState, stop: tokio_util::sync::CancellationToken) {
    let every = Duration::from_millis(HOLD_MS as u64 / 3);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        for (platform, endpoint) in state.listen.held() {
            hold(&state, &platform, &endpoint, true).await;
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
