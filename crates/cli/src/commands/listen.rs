//! `switchboard listen`: receives events over the WebSocket protocol the
//! server offers the Stripe CLI and forwards each to a local URL.
//!
//! `POST /v1/stripecli/sessions` returns the device's signing secret and a
//! `websocket_url`; the socket (opened with a `Websocket-Id` header) then
//! carries `webhook_event` messages. Each is acknowledged (`event_ack`),
//! POSTed verbatim with the headers the server chose (its `Stripe-Signature`
//! included) and answered with a `webhook_response`, which the server records
//! as the delivery attempt. When the socket drops (the server restarted, say),
//! a new session is opened after a short pause; the secret stays the same
//! because it belongs to the device, not to the session.
//!
//! Thin events (`--all-thin`, or thin types in `--events`) come as `v2_event`
//! messages on a session that asked for `v2_events`, as the Stripe CLI asks;
//! one session carries one kind. `--events` and `--events-from` filter here,
//! as the Stripe CLI filters: what is filtered out is answered as handled.
//!
//! Status lines (`Ready!`, reconnects) go to stderr, event lines to stdout.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use anyhow::{Context as _, anyhow, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::api::{Api, ClientArgs};
use super::output::{self, BOLD, DIM};

/// How long one forwarded request may take.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);
/// The most of a response body reported back to the server.
const MAX_RESPONSE_BODY: usize = 5000;
/// Pause before re-creating a session, doubling up to the maximum.
const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Pings keep the socket alive; silence this long means it is dead.
const PING_EVERY: Duration = Duration::from_secs(15);
const SILENCE_LIMIT: Duration = Duration::from_secs(45);

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    client: ClientArgs,
    /// Where to POST events, e.g. http://localhost:4242/webhook (`localhost:4242/webhook` works too).
    #[arg(long, short = 'f', value_name = "URL")]
    forward_to: Option<String>,
    /// Where to POST Connect events (those with a top-level `account`) [default: --forward-to].
    #[arg(long, short = 'c', value_name = "URL")]
    forward_connect_to: Option<String>,
    /// Only these event types, comma-separated [default: all]: snapshot
    /// types (`customer.created`) or thin ones (`v1.customer.created`,
    /// `v2.core.account.updated`), not both. Others are acknowledged as
    /// delivered without being forwarded or printed.
    #[arg(long, short = 'e', value_delimiter = ',', value_name = "TYPES")]
    events: Vec<String>,
    /// Every snapshot event (the default).
    #[arg(long, conflicts_with = "all_thin")]
    all_snapshot: bool,
    /// Every thin event (`v2.core.event` notifications) instead of snapshot events.
    #[arg(long)]
    all_thin: bool,
    /// Whose events: `@self` (the platform's), `@accounts` (connected
    /// accounts'), or `all`.
    #[arg(long, value_enum, default_value = "all", value_name = "FROM")]
    events_from: EventsFrom,
    /// `json`: print each event as one line of JSON instead of the summary lines.
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<ListenFormat>,
    /// The device this session belongs to; each device has its own stable signing secret.
    #[arg(long, default_value = "default", value_name = "NAME")]
    device_name: String,
    /// Print the device's signing secret and exit.
    #[arg(long)]
    print_secret: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EventsFrom {
    #[value(name = "@self", alias = "self")]
    OwnAccount,
    #[value(name = "@accounts", alias = "accounts")]
    Accounts,
    All,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ListenFormat {
    /// One compact JSON event per line.
    Json,
}

struct Session {
    secret: String,
    websocket_url: String,
    websocket_id: String,
}

/// What happens to each event: where it goes, whether it is wanted, how it is shown.
struct Forwarder {
    http: reqwest::Client,
    forward_to: Option<String>,
    forward_connect_to: Option<String>,
    /// `None`: every event.
    only: Option<HashSet<String>>,
    events_from: EventsFrom,
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let api = Api::new(&args.client)?;
    let forward_to = args.forward_to.as_deref().map(normalize_url).transpose()?;
    let forward_connect_to = match args.forward_connect_to.as_deref() {
        Some(u) => Some(normalize_url(u)?),
        None => forward_to.clone(),
    };
    let (only, thin) = event_filter(&args.events, args.all_thin)?;
    if args.events_from == EventsFrom::OwnAccount && args.forward_connect_to.is_some() {
        bail!(
            "--forward-connect-to cannot be used with --events-from @self, which excludes connected accounts' events"
        );
    }
    if args.print_secret {
        let session = create_session(&api, &args, thin, None, None).await?;
        println!("{}", session.secret);
        return Ok(());
    }
    let fwd = Arc::new(Forwarder {
        http: super::api::http_client(FORWARD_TIMEOUT),
        forward_to: forward_to.clone(),
        forward_connect_to: forward_connect_to.clone(),
        only,
        events_from: args.events_from,
        json: args.format == Some(ListenFormat::Json),
    });
    let mut secret: Option<String> = None;
    let mut backoff = MIN_BACKOFF;
    loop {
        let opened = async {
            let session = create_session(
                &api,
                &args,
                thin,
                forward_to.as_deref(),
                forward_connect_to.as_deref(),
            )
            .await?;
            let socket = connect(&session).await?;
            anyhow::Ok((session, socket))
        }
        .await;
        let (session, socket) = match opened {
            Ok(s) => s,
            // The first connection must work: a wrong URL or key should fail loudly.
            Err(e) if secret.is_none() => return Err(e),
            Err(e) => {
                tracing::debug!(error = %format!("{e:#}"), "reconnect failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = MIN_BACKOFF;
        let ts = output::now_local();
        match secret.as_deref() {
            None => output::status(&format!(
                "Ready! Your webhook signing secret is {BOLD}{}{BOLD:#} (^C to quit)",
                session.secret
            )),
            Some(old) if old == session.secret => output::status(&format!(
                "{DIM}{ts}{DIM:#} Reconnected. Your webhook signing secret is unchanged: {}",
                session.secret
            )),
            Some(_) => output::status(&format!(
                "{DIM}{ts}{DIM:#} Reconnected, but the server has a new signing secret for this device. \
                 Ready! Your webhook signing secret is {BOLD}{}{BOLD:#} (^C to quit)",
                session.secret
            )),
        }
        secret = Some(session.secret);
        let reason = pump(socket, &fwd).await;
        output::status(&format!(
            "{DIM}{}{DIM:#} Lost the connection to {} ({reason}); reconnecting…",
            output::now_local(),
            api.base()
        ));
        tokio::time::sleep(MIN_BACKOFF).await;
    }
}

/// `localhost:4242/hook` → `http://localhost:4242/hook`; `4242` → `http://localhost:4242`.
fn normalize_url(raw: &str) -> anyhow::Result<String> {
    let url = if raw.contains("://") {
        raw.to_owned()
    } else if raw.bytes().all(|b| b.is_ascii_digit()) {
        format!("http://localhost:{raw}")
    } else if let Some(rest) = raw.strip_prefix(':') {
        format!("http://localhost:{rest}")
    } else if raw.starts_with('/') {
        format!("http://localhost{raw}")
    } else {
        format!("http://{raw}")
    };
    let parsed = reqwest::Url::parse(&url).with_context(|| format!("{raw:?} is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        bail!("{raw:?}: only http:// and https:// URLs can receive events");
    }
    Ok(url)
}

/// The types to forward (`None`: all) and whether they are thin events.
fn event_filter(
    events: &[String],
    all_thin: bool,
) -> anyhow::Result<(Option<HashSet<String>>, bool)> {
    use switchboard_core::catalog;
    let events: Vec<&str> = events
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty() && *e != "*")
        .collect();
    if events.is_empty() {
        return Ok((None, all_thin));
    }
    for e in &events {
        if !catalog::is_event_type(e) && !catalog::is_thin_event_type(e) {
            bail!("--events: {e:?} is not an event type");
        }
    }
    let thin = events
        .iter()
        .filter(|e| catalog::is_thin_event_type(e))
        .count();
    if (thin != 0 && thin != events.len()) || (all_thin && thin == 0) {
        bail!("cannot forward both snapshot and thin events to the same destination");
    }
    Ok((
        Some(events.into_iter().map(String::from).collect()),
        thin != 0,
    ))
}

async fn create_session(
    api: &Api,
    args: &Args,
    thin: bool,
    forward_to: Option<&str>,
    forward_connect_to: Option<&str>,
) -> anyhow::Result<Session> {
    let mut p = Map::new();
    p.insert("device_name".into(), args.device_name.clone().into());
    p.insert(
        "websocket_features".into(),
        json!([if thin { "v2_events" } else { "webhooks" }]),
    );
    if let Some(u) = forward_to {
        p.insert("forward_to_url".into(), u.into());
    }
    if let Some(u) = forward_connect_to {
        p.insert("forward_connect_to_url".into(), u.into());
    }
    let body = api.post("/v1/stripecli/sessions", &p, None).await?;
    let field = |name: &str| {
        body[name]
            .as_str()
            .map(String::from)
            .ok_or_else(|| anyhow!("the session has no {name}: {body}"))
    };
    Ok(Session {
        secret: field("secret")?,
        websocket_url: field("websocket_url")?,
        websocket_id: field("websocket_id")?,
    })
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(session: &Session) -> anyhow::Result<Socket> {
    if session.websocket_url.starts_with("wss://") {
        bail!(
            "the server offers {} but `switchboard listen` speaks plain ws:// only",
            session.websocket_url
        );
    }
    let mut req = session
        .websocket_url
        .as_str()
        .into_client_request()
        .with_context(|| format!("bad websocket_url {}", session.websocket_url))?;
    req.headers_mut().insert(
        "Websocket-Id",
        HeaderValue::from_str(&session.websocket_id).context("bad websocket_id")?,
    );
    let (socket, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(req),
    )
    .await
    .map_err(|_| anyhow!("timed out opening {}", session.websocket_url))?
    .with_context(|| format!("opening {}", session.websocket_url))?;
    Ok(socket)
}

/// Serves one socket until it ends; returns why it ended.
async fn pump(socket: Socket, fwd: &Arc<Forwarder>) -> String {
    let (mut sink, mut stream) = socket.split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<String>();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut last_heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            incoming = stream.next() => {
                last_heard = tokio::time::Instant::now();
                match incoming {
                    Some(Ok(Message::Text(text))) => fwd.handle(text.as_str(), &out_tx),
                    Some(Ok(Message::Close(frame))) => {
                        return match frame {
                            Some(f) if !f.reason.is_empty() => format!("closed by the server: {}", f.reason),
                            _ => "closed by the server".into(),
                        };
                    }
                    Some(Ok(_)) => {} // pings are answered by tungstenite; pongs only prove life
                    Some(Err(e)) => return e.to_string(),
                    None => return "connection closed".into(),
                }
            }
            Some(text) = out_rx.recv() => {
                if let Err(e) = sink.send(Message::text(text)).await {
                    return e.to_string();
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > SILENCE_LIMIT {
                    return "no answer from the server".into();
                }
                if let Err(e) = sink.send(Message::Ping(Default::default())).await {
                    return e.to_string();
                }
            }
        }
    }
}

impl Forwarder {
    fn wants(&self, event_type: &str, connect: bool) -> bool {
        let from = match self.events_from {
            EventsFrom::All => true,
            EventsFrom::OwnAccount => !connect,
            EventsFrom::Accounts => connect,
        };
        from && self.only.as_ref().is_none_or(|o| o.contains(event_type))
    }

    /// Acknowledges a `webhook_event` (snapshot) or `v2_event` (thin),
    /// prints it and forwards it in a task of its own.
    fn handle(self: &Arc<Self>, text: &str, out: &mpsc::UnboundedSender<String>) {
        let Ok(msg) = serde_json::from_str::<Value>(text) else {
            return;
        };
        let str_of = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        // A thin event's message names its destination where a snapshot
        // event's names the webhook, and has no conversation.
        let (webhook_id, conversation, payload) = match msg["type"].as_str() {
            Some("webhook_event") => (
                str_of(&msg["webhook_id"]),
                str_of(&msg["webhook_conversation_id"]),
                str_of(&msg["event_payload"]),
            ),
            Some("v2_event") => (
                str_of(&msg["destination_id"]),
                String::new(),
                str_of(&msg["payload"]),
            ),
            _ => return,
        };
        let event: Value = serde_json::from_str(&payload).unwrap_or(Value::Null);
        let event_id = event["id"].as_str().unwrap_or_default().to_owned();
        let event_type = event["type"].as_str().unwrap_or_default().to_owned();
        let _ = out.send(
            json!({
                "type": "event_ack",
                "event_id": event_id,
                "webhook_conversation_id": conversation,
                "webhook_id": webhook_id,
            })
            .to_string(),
        );
        let respond = {
            let (webhook_id, conversation) = (webhook_id.clone(), conversation.clone());
            let event_id = event_id.clone();
            move |forward_url: &str, status: u16, body: &str| {
                json!({
                    "type": "webhook_response",
                    "webhook_id": webhook_id,
                    "webhook_conversation_id": conversation,
                    "notification_id": event_id,
                    "forward_url": forward_url,
                    "status": status,
                    "http_headers": {},
                    "body": body,
                })
                .to_string()
            }
        };
        // A Connect event: a snapshot's top-level `account`, a thin one's `context`.
        let connect = [&event["account"], &event["context"]]
            .iter()
            .any(|v| v.as_str().is_some_and(|a| !a.is_empty()));
        if !self.wants(&event_type, connect) {
            // Answered, so that the server records it as handled rather than retrying it.
            let _ = out.send(respond("", 200, ""));
            return;
        }
        if self.json {
            output::line(&serde_json::to_string(&event).unwrap_or(payload.clone()));
        } else {
            output::line(&format!(
                "{DIM}{}{DIM:#}   --> {}{BOLD}{event_type}{BOLD:#} [{event_id}]",
                output::now_local(),
                if connect { "connect " } else { "" }
            ));
        }
        let target = if connect {
            self.forward_connect_to.clone()
        } else {
            self.forward_to.clone()
        };
        let Some(url) = target else {
            let _ = out.send(respond("", 200, ""));
            return;
        };
        let headers = msg["http_headers"].as_object().cloned().unwrap_or_default();
        let this = self.clone();
        let out = out.clone();
        tokio::spawn(async move {
            let (status, body) = match this.post(&url, payload, &headers).await {
                Ok((status, body)) => {
                    if !this.json {
                        let style = status_style(status);
                        output::line(&format!(
                            "{DIM}{}{DIM:#}  <--  [{style}{status}{style:#}] POST {url} [{event_id}]",
                            output::now_local()
                        ));
                    }
                    (status, body)
                }
                Err(e) => {
                    let red = Style::new().fg_color(Some(AnsiColor::Red.into())).bold();
                    output::status(&format!(
                        "{DIM}{}{DIM:#}            [{red}ERROR{red:#}] Failed to POST: {e}",
                        output::now_local()
                    ));
                    // Status 0: the server counts the attempt as failed and retries it.
                    (0, e)
                }
            };
            let _ = out.send(respond(&url, status, &body));
        });
    }

    /// POSTs the payload verbatim; returns the status and the start of the body.
    async fn post(
        &self,
        url: &str,
        payload: String,
        headers: &Map<String, Value>,
    ) -> Result<(u16, String), String> {
        let mut req = self.http.post(url).body(payload);
        for (name, value) in headers {
            if let Some(v) = value.as_str() {
                req = req.header(name.as_str(), v);
            }
        }
        let mut resp = req.send().await.map_err(|e| error_chain(&e))?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while body.len() < MAX_RESPONSE_BODY {
            match resp.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => return Err(error_chain(&e)),
            }
        }
        let mut text = String::from_utf8_lossy(&body).into_owned();
        if text.len() > MAX_RESPONSE_BODY {
            let mut cut = MAX_RESPONSE_BODY;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        Ok((status, text))
    }
}

/// Green for 2xx, yellow for 3xx, red for the rest, as the Stripe CLI colours them.
fn status_style(status: u16) -> Style {
    let color = match status {
        200..=299 => AnsiColor::Green,
        300..=399 => AnsiColor::Yellow,
        _ => AnsiColor::Red,
    };
    Style::new().fg_color(Some(color.into())).bold()
}

/// An error and its causes on one line (reqwest's own message hides the cause).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = cause.source();
    }
    s
}
