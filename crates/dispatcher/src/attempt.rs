//! One delivery attempt: sign, POST, read the start of the answer, decide.

use std::time::Instant;

use reqwest::header::{HeaderMap, HeaderValue};
use switchboard_core::Clock;
use switchboard_core::attempt::{AttemptError, NextAction};
use switchboard_core::retry::NextAttempt;
use switchboard_core::signature;
use switchboard_core::url_policy::UrlPolicy;
use switchboard_store::{AttemptRecord, ClaimedDelivery, DeliveryOutcome, Next};

use crate::DispatcherConfig;
use switchboard_store::relay::{LISTENER_SCHEME, Relay, RelayError};

pub const USER_AGENT: &str = "Stripe/1.0 (+https://stripe.com/docs/webhooks)";
/// How much of a receiver's answer the attempt log keeps.
pub const MAX_RECORDED_BODY: usize = 4096;

struct Answer {
    status: Option<u16>,
    error: Option<AttemptError>,
    body: String,
    retry_after_ms: Option<u64>,
}

/// One client per mode: live deliveries resolve names through the policy.
#[derive(Clone)]
pub(crate) struct Clients {
    pub test: reqwest::Client,
    pub live: reqwest::Client,
    /// Endpoint URLs already parsed: reqwest would parse the string on every
    /// request (~6 k instructions), and a URL's parse never changes.
    pub urls: UrlCache,
}

/// Parsed endpoint URLs by their text, bounded (emptied when full).
#[derive(Clone, Default)]
pub(crate) struct UrlCache(
    std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, reqwest::Url>>>,
);

impl UrlCache {
    const MAX: usize = 4096;

    /// `url` parsed, or `None` if it does not parse (reqwest then reports why).
    fn get(&self, url: &str) -> Option<reqwest::Url> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(u) = map.get(url) {
            return Some(u.clone());
        }
        let parsed = reqwest::Url::parse(url).ok()?;
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert(url.to_owned(), parsed.clone());
        Some(parsed)
    }
}

/// Resolves names for live deliveries, keeping only addresses the policy
/// permits: a name that resolves only to internal addresses is refused.
pub(crate) struct PolicyResolver(pub UrlPolicy);

/// Why a live delivery was not sent: its host is internal.
#[derive(Debug)]
struct InternalAddress(String);

impl std::fmt::Display for InternalAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} resolves only to internal addresses", self.0)
    }
}

impl std::error::Error for InternalAddress {}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let permitted: Vec<std::net::SocketAddr> =
                found.filter(|a| policy.permits(a.ip())).collect();
            if permitted.is_empty() {
                return Err(
                    Box::new(InternalAddress(host)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(permitted.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

pub(crate) async fn deliver(
    clients: &Clients,
    relay: Option<&dyn Relay>,
    clock: &dyn Clock,
    config: &DispatcherConfig,
    d: ClaimedDelivery,
) -> DeliveryOutcome {
    // The endpoint's own chaos mode, if it has one, else the server's.
    let own = d
        .chaos
        .as_deref()
        .and_then(|c| switchboard_core::chaos::Chaos::parse(c).ok());
    let plan = own
        .as_ref()
        .unwrap_or(&config.chaos)
        .plan(d.delivery_id, d.attempt);
    if plan.hold_ms > 0 {
        // Held back so that later events overtake it.
        tokio::time::sleep(std::time::Duration::from_millis(plan.hold_ms)).await;
    }
    let started_at_ms = clock.now_ms();
    let started = Instant::now();
    let answer = if plan.fail {
        Answer {
            status: None,
            error: Some(AttemptError::ChaosFailure),
            body: String::new(),
            retry_after_ms: None,
        }
    } else if d.url.starts_with(LISTENER_SCHEME) {
        relayed(relay, clock, config, &d).await
    } else if d.livemode {
        // Literal addresses never reach the resolver: check them here (the
        // URL was checked when it was set, but the policy may have changed).
        match config.url_policy.check(&d.url, true) {
            Ok(()) => post(&clients.live, &clients.urls, clock, &d).await,
            Err(_) => Answer {
                status: None,
                error: Some(AttemptError::InternalAddress),
                body: String::new(),
                retry_after_ms: None,
            },
        }
    } else {
        post(&clients.test, &clients.urls, clock, &d).await
    };
    // A duplicate: the same event, signed afresh, sent once more.
    if plan.duplicate && answer.status.is_some() && !d.url.starts_with(LISTENER_SCHEME) {
        let client = if d.livemode {
            &clients.live
        } else {
            &clients.test
        };
        let _ = post(client, &clients.urls, clock, &d).await;
    }
    let elapsed = started.elapsed();
    let duration_ms = elapsed.as_millis() as i64;
    // A response cut off mid-body is a failed attempt even with a 2xx status.
    let succeeded =
        answer.error.is_none() && answer.status.is_some_and(|s| (200..300).contains(&s));
    let now_ms = clock.now_ms();
    let next = if succeeded || d.one_shot {
        Next::Done
    } else {
        match config
            .retry
            .next(d.attempt, now_ms, answer.retry_after_ms, &mut rand::rng())
        {
            NextAttempt::At(t) => Next::RetryAt(t),
            NextAttempt::GiveUp => Next::GiveUp,
        }
    };
    tracing::info!(target: "switchboard::delivery", event = %d.event_id, endpoint = %d.endpoint_id,
        attempt = d.attempt, status = answer.status, error = answer.error.map(|e| e.as_str()),
        duration_ms, succeeded, ?next, "delivery attempt");
    let outcome = match next {
        _ if succeeded => "succeeded",
        Next::RetryAt(_) => "retry",
        Next::GiveUp => "gave_up",
        Next::Done => "one_shot_failed",
    };
    config
        .metrics
        .deliveries
        .get_or_create(&switchboard_store::metrics::OutcomeLabels { outcome })
        .inc();
    config
        .metrics
        .attempt_seconds
        .observe(elapsed.as_secs_f64());
    DeliveryOutcome {
        delivery_id: d.delivery_id,
        attempt: AttemptRecord {
            id: 0,
            event_id: d.event_id,
            endpoint_id: d.endpoint_id,
            attempt: d.attempt,
            started_at_ms,
            duration_ms,
            status_code: answer.status,
            error: answer.error,
            response_body: answer.body,
            succeeded,
            // The store decides it from `next` when recording.
            next_action: NextAction::Retry,
            next_at_ms: None,
            chaos: plan.faults().into_iter().map(str::to_owned).collect(),
        },
        next,
        now_ms,
        disable_after_ms: config.disable_after.as_millis() as i64,
    }
}

/// A delivery to a `stripe listen` session: the CLI forwards it and reports back.
async fn relayed(
    relay: Option<&dyn Relay>,
    clock: &dyn Clock,
    config: &DispatcherConfig,
    d: &ClaimedDelivery,
) -> Answer {
    let failed = |e: AttemptError| Answer {
        status: None,
        error: Some(e),
        body: String::new(),
        retry_after_ms: None,
    };
    let Some(relay) = relay else {
        return failed(AttemptError::ListenerDisconnected);
    };
    let signature = signature::header(
        d.secrets.iter().map(String::as_str),
        clock.now(),
        &d.payload,
    );
    match relay
        .deliver(
            &d.endpoint_id,
            &d.event_id,
            d.payload.clone(),
            signature,
            config.timeout,
        )
        .await
    {
        Ok(r) => {
            let mut body = r.body;
            if body.len() > MAX_RECORDED_BODY {
                let mut cut = MAX_RECORDED_BODY;
                while !body.is_char_boundary(cut) {
                    cut -= 1;
                }
                body.truncate(cut);
            }
            Answer {
                status: Some(r.status),
                error: None,
                body,
                retry_after_ms: None,
            }
        }
        Err(RelayError::Disconnected) => failed(AttemptError::ListenerDisconnected),
        Err(RelayError::Timeout) => failed(AttemptError::Timeout),
    }
}

fn headers(clock: &dyn Clock, d: &ClaimedDelivery) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert(
        "accept",
        HeaderValue::from_static("*/*; q=0.5, application/xml"),
    );
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    // A fresh timestamp per attempt: SDKs reject signatures older than 5 minutes.
    let sig = signature::header(
        d.secrets.iter().map(String::as_str),
        clock.now(),
        &d.payload,
    );
    if let Ok(v) = HeaderValue::from_str(&sig) {
        h.insert("stripe-signature", v);
    }
    h
}

async fn post(
    client: &reqwest::Client,
    urls: &UrlCache,
    clock: &dyn Clock,
    d: &ClaimedDelivery,
) -> Answer {
    let request = match urls.get(&d.url) {
        Some(url) => client.post(url),
        None => client.post(&d.url),
    };
    let sent = request
        .headers(headers(clock, d))
        .body(d.payload.clone())
        .send()
        .await;
    let mut resp = match sent {
        Ok(r) => r,
        Err(e) => {
            let error = classify(&e);
            // The attempt log shows why a handshake failed (expired or
            // untrusted certificate, no TLS on the port…).
            let body = if error == AttemptError::TlsError {
                tls_reason(&e)
            } else {
                String::new()
            };
            return Answer {
                status: None,
                error: Some(error),
                body,
                retry_after_ms: None,
            };
        }
    };
    let status = resp.status().as_u16();
    let retry_after_ms = (status == 429 || status == 503)
        .then(|| {
            resp.headers()
                .get("retry-after")?
                .to_str()
                .ok()?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .flatten()
        .map(|s| s.saturating_mul(1000));
    // The answer is the status; the body is only recorded, up to 4 KiB and
    // for at most BODY_READ_TIME: an endless fast body and a trickling one
    // are treated alike (the status counts), while a connection that breaks
    // before either limit is an interrupted response.
    let mut body = Vec::new();
    let mut error = None;
    let read_until = tokio::time::Instant::now() + BODY_READ_TIME;
    while body.len() < MAX_RECORDED_BODY {
        match tokio::time::timeout_at(read_until, resp.chunk()).await {
            Err(_) => break,
            Ok(Ok(Some(chunk))) => body.extend_from_slice(&chunk),
            Ok(Ok(None)) => break,
            Ok(Err(e)) if e.is_timeout() => break,
            Ok(Err(e)) => {
                error = Some(classify(&e));
                break;
            }
        }
    }
    body.truncate(MAX_RECORDED_BODY);
    Answer {
        status: Some(status),
        error,
        body: String::from_utf8_lossy(&body).into_owned(),
        retry_after_ms,
    }
}

/// A short, stable name for why an attempt got no usable answer.
pub fn classify(e: &reqwest::Error) -> AttemptError {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<InternalAddress>() {
            return AttemptError::InternalAddress;
        }
        source = s.source();
    }
    if tls_error(e).is_some() {
        return AttemptError::TlsError;
    }
    if e.is_timeout() {
        AttemptError::Timeout
    } else if e.is_connect() {
        AttemptError::ConnectionFailed
    } else if e.is_builder() {
        AttemptError::InvalidUrl
    } else if e.is_body() || e.is_decode() {
        AttemptError::ResponseInterrupted
    } else {
        AttemptError::NetworkError
    }
}

/// How long a response body is read for the attempt log once its status is in.
const BODY_READ_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// The rustls error behind a request error, however deep: rustls reports
/// handshake failures inside I/O errors, which hyper wraps in I/O errors
/// again (and an I/O error's `source()` skips the error it carries).
fn tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        next = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// The TLS failure's own words, for the attempt log.
fn tls_reason(e: &reqwest::Error) -> String {
    match tls_error(e) {
        Some(tls) => format!("TLS handshake failed: {tls}"),
        None => format!("TLS handshake failed: {e}"),
    }
}
