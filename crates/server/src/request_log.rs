//! The request log: every `/v1` request this node served (method, path,
//! status, account, idempotency key, duration, request and response bodies
//! with secrets masked), kept in memory (the newest [`KEPT`]) and broadcast
//! live to `stripe logs tail` sessions and the dashboard. Per node: behind a
//! load balancer each node logs the requests it served.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::state::AppState;

/// Requests kept per node.
pub const KEPT: usize = 1000;
/// Most bytes of a body kept.
const MAX_BODY: usize = 8 * 1024;

#[derive(Debug, Clone)]
pub struct LogEntry {
    /// The request id (`req_…`), also the entry's id.
    pub id: String,
    pub created: i64,
    pub platform: String,
    pub livemode: bool,
    pub account: Option<String>,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub duration_ms: u64,
    pub idempotency_key: Option<String>,
    /// The first [`MAX_BODY`] bytes of each body, as sent: masked when shown
    /// (rarely), not on the request's path (always).
    pub request_body: bytes::Bytes,
    pub response_body: bytes::Bytes,
    /// The Stripe error object of a failed request.
    pub error: Option<Value>,
}

impl LogEntry {
    /// As the dashboard and `/switchboard/v1/request_logs` show it.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "request_log",
            "account": self.account,
            "created": self.created,
            "duration_ms": self.duration_ms,
            "error": self.error,
            "idempotency_key": self.idempotency_key,
            "livemode": self.livemode,
            "method": self.method,
            "request_body": shown(&self.request_body),
            "response_body": shown(&self.response_body),
            "status": self.status,
            "url": self.path,
        })
    }

    /// The payload of a `stripe logs tail` `request_log_event`.
    pub fn cli_payload(&self) -> String {
        let e = self.error.as_ref();
        let field = |k: &str| e.and_then(|e| e[k].as_str()).unwrap_or_default();
        json!({
            "created_at": self.created,
            "livemode": self.livemode,
            "method": self.method,
            "request_id": self.id,
            "status": self.status,
            "url": self.path,
            "error": {
                "type": field("type"),
                "charge": field("charge"),
                "code": field("code"),
                "decline_code": field("decline_code"),
                "message": field("message"),
                "param": field("param"),
            },
        })
        .to_string()
    }
}

/// Platform, mode and connected account of a request.
type Acting = (String, bool, Option<String>);

/// Who a request acted for, set by the request extractor once the key is known.
#[derive(Clone, Default)]
pub struct Actor(Arc<Mutex<Option<Acting>>>);

impl Actor {
    pub fn set(&self, platform: &str, livemode: bool, account: Option<&str>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((platform.to_owned(), livemode, account.map(str::to_owned)));
    }

    fn take(&self) -> Option<Acting> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

pub struct RequestLog {
    kept: Mutex<VecDeque<Arc<LogEntry>>>,
    live: broadcast::Sender<Arc<LogEntry>>,
}

impl Default for RequestLog {
    fn default() -> Self {
        RequestLog {
            kept: Mutex::new(VecDeque::with_capacity(KEPT)),
            live: broadcast::channel(256).0,
        }
    }
}

impl RequestLog {
    fn push(&self, entry: LogEntry) {
        let entry = Arc::new(entry);
        {
            let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
            if kept.len() == KEPT {
                kept.pop_front();
            }
            kept.push_back(entry.clone());
        }
        // Nobody listening is fine.
        let _ = self.live.send(entry);
    }

    /// Entries of one platform and mode matching `filters`, newest first.
    pub fn list(
        &self,
        platform: &str,
        livemode: bool,
        filters: &Filters,
        limit: usize,
    ) -> Vec<Arc<LogEntry>> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.iter()
            .rev()
            .filter(|e| e.platform == platform && e.livemode == livemode && filters.admit(e))
            .take(limit)
            .cloned()
            .collect()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LogEntry>> {
        self.live.subscribe()
    }
}

/// `stripe logs tail`'s filters (the CLI sends them as JSON with its session).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Filters {
    pub filter_account: Vec<String>,
    pub filter_ip_address: Vec<String>,
    pub filter_http_method: Vec<String>,
    pub filter_request_path: Vec<String>,
    pub filter_request_status: Vec<String>,
    pub filter_source: Vec<String>,
    pub filter_status_code: Vec<String>,
    pub filter_status_code_type: Vec<String>,
}

impl Filters {
    pub fn admit(&self, e: &LogEntry) -> bool {
        let any = |list: &[String], f: &dyn Fn(&str) -> bool| {
            list.is_empty() || list.iter().any(|x| f(x))
        };
        let ok = (200..300).contains(&e.status);
        // `self`: the platform's own requests; `connect_out`: made for a
        // connected account (`Stripe-Account`); `connect_in` (another
        // platform acting on this account) never happens here.
        any(&self.filter_account, &|a| match a.to_ascii_lowercase().as_str() {
            "self" => e.account.is_none(),
            "connect_out" => e.account.is_some(),
            _ => false,
        })
            // Requests come from the API here, never the Dashboard; addresses are not kept.
            && any(&self.filter_source, &|s| s.eq_ignore_ascii_case("api"))
            && self.filter_ip_address.is_empty()
            && any(&self.filter_http_method, &|m| m.eq_ignore_ascii_case(&e.method))
            && any(&self.filter_request_path, &|p| e.path == p || e.path.starts_with(&format!("{}/", p.trim_end_matches('/'))))
            && any(&self.filter_request_status, &|s| match s.to_ascii_lowercase().as_str() {
                "succeeded" => ok,
                "failed" => !ok,
                _ => false,
            })
            && any(&self.filter_status_code, &|c| c == e.status.to_string())
            // The CLI sends a class as its first code (`--filter-status-code-type 4XX` → "400").
            && any(&self.filter_status_code_type, &|t| {
                let class = t.get(1..).is_some_and(|rest| rest.eq_ignore_ascii_case("xx") || rest == "00");
                class && t.len() == 3 && t.starts_with(&(e.status / 100).to_string())
            })
    }
}

/// Masks what must never be shown again: API keys and webhook secrets
/// anywhere in the text, card and bank account numbers and CVCs in forms.
pub fn mask(text: &str) -> String {
    const SECRETS: [&str; 5] = ["sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_"];
    let mut hits: Vec<(usize, &str)> = Vec::new();
    for prefix in SECRETS {
        let mut from = 0;
        while let Some(i) = text[from..].find(prefix) {
            hits.push((from + i, prefix));
            from += i + prefix.len();
        }
    }
    if hits.is_empty() {
        return mask_form_numbers(text);
    }
    hits.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, prefix) in hits {
        if start < at {
            continue;
        }
        let tail = &text[start + prefix.len()..];
        let len = tail
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(tail.len());
        out.push_str(&text[at..start]);
        out.push_str(prefix);
        out.push('…');
        out.push_str(&tail[len.saturating_sub(4)..len]);
        at = start + prefix.len() + len;
    }
    out.push_str(&text[at..]);
    mask_form_numbers(&out)
}

/// `card[number]=4242…`, `account_number=…`, `cvc=…` in a form body: all but
/// the last four digits masked (the CVC entirely).
fn mask_form_numbers(text: &str) -> String {
    if !text.contains('=') || text.trim_start().starts_with('{') {
        return text.to_owned();
    }
    text.split('&')
        .map(|pair| {
            let Some((k, v)) = pair.split_once('=') else {
                return pair.to_owned();
            };
            let key = k.replace("%5B", "[").replace("%5D", "]");
            if key.ends_with("cvc]") || key == "cvc" {
                format!("{k}=***")
            } else if key.ends_with("number]") || key.ends_with("account_number") || key == "number"
            {
                let keep = &v[v.len().saturating_sub(4)..];
                format!("{k}=****{keep}")
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The first [`MAX_BODY`] bytes, copied (never a slice that would keep a
/// large body alive), with a marker when cut.
fn excerpt(bytes: &[u8]) -> bytes::Bytes {
    if bytes.len() <= MAX_BODY {
        return bytes::Bytes::copy_from_slice(bytes);
    }
    let mut cut = bytes[..MAX_BODY].to_vec();
    cut.extend_from_slice("…".as_bytes());
    cut.into()
}

/// A kept body as shown: text, masked.
fn shown(body: &[u8]) -> String {
    mask(&String::from_utf8_lossy(body))
}

/// Records each `/v1` request (inside the body-reading layer, so both bodies
/// are already in memory).
pub async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if !path.starts_with("/v1/") || path.starts_with("/v1/stripecli/") {
        return next.run(req).await;
    }
    let started = std::time::Instant::now();
    let actor = Actor::default();
    let (mut parts, body) = req.into_parts();
    parts.extensions.insert(actor.clone());
    let request_bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
    let query = parts.uri.query().map(str::to_owned);
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let idempotency_key = header("idempotency-key");
    let method = parts.method.as_str().to_owned();
    let request_body = match query {
        Some(q) if request_bytes.is_empty() => bytes::Bytes::from(q),
        _ => excerpt(&request_bytes),
    };
    let id = parts
        .extensions
        .get::<crate::context::RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let response = next
        .run(Request::from_parts(parts, Body::from(request_bytes)))
        .await;
    let Some((platform, livemode, account)) = actor.take() else {
        return response; // not authenticated: no platform to log it for
    };
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
    let status = parts.status.as_u16();
    let error = (status >= 400)
        .then(|| serde_json::from_slice::<Value>(&bytes).ok())
        .flatten()
        .map(|v| v["error"].clone());
    state.request_log.push(LogEntry {
        id,
        created: state.clock.now(),
        platform,
        livemode,
        account,
        method,
        path,
        status,
        duration_ms: started.elapsed().as_millis() as u64,
        idempotency_key,
        request_body,
        response_body: excerpt(&bytes),
        error,
    });
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_numbers_are_masked() {
        assert_eq!(
            mask(r#"{"secret": "whsec_abcdef123456"}"#),
            r#"{"secret": "whsec_…3456"}"#
        );
        assert_eq!(mask("key sk_live_0123456789 ok"), "key sk_live_…6789 ok");
        assert_eq!(
            mask("card%5Bnumber%5D=4242424242424242&card[cvc]=123&name=x"),
            "card%5Bnumber%5D=****4242&card[cvc]=***&name=x"
        );
        assert_eq!(mask("plain text"), "plain text");
        assert_eq!(
            mask("sk_test_1234567 then whsec_abcdefgh, sk_test_ (nothing after)"),
            "sk_test_…4567 then whsec_…efgh, sk_test_… (nothing after)"
        );
    }

    fn entry(status: u16, method: &str, path: &str, account: Option<&str>) -> LogEntry {
        LogEntry {
            id: "req_1".into(),
            created: 0,
            platform: "acct_p".into(),
            livemode: false,
            account: account.map(Into::into),
            method: method.into(),
            path: path.into(),
            status,
            duration_ms: 1,
            idempotency_key: None,
            request_body: Default::default(),
            response_body: Default::default(),
            error: None,
        }
    }

    #[test]
    fn filters_follow_the_stripe_cli() {
        let f: Filters = serde_json::from_str(
            r#"{"filter_http_method":["POST"],"filter_status_code_type":["400"],"filter_request_path":["/v1/customers"]}"#,
        )
        .unwrap();
        assert!(f.admit(&entry(400, "POST", "/v1/customers", None)));
        assert!(f.admit(&entry(404, "POST", "/v1/customers/cus_1", None)));
        assert!(!f.admit(&entry(200, "POST", "/v1/customers", None)));
        assert!(!f.admit(&entry(400, "GET", "/v1/customers", None)));
        assert!(!f.admit(&entry(400, "POST", "/v1/customers_x", None)));
        let acct = Filters {
            filter_account: vec!["connect_out".into()],
            filter_request_status: vec!["failed".into()],
            ..Default::default()
        };
        assert!(acct.admit(&entry(402, "POST", "/v1/charges", Some("acct_c"))));
        assert!(!acct.admit(&entry(200, "POST", "/v1/charges", Some("acct_c"))));
        assert!(!acct.admit(&entry(402, "POST", "/v1/charges", None)));
        assert!(Filters::default().admit(&entry(500, "DELETE", "/v1/x", None)));
        let spelled: Filters =
            serde_json::from_str(r#"{"filter_status_code_type":["5XX"]}"#).unwrap();
        assert!(spelled.admit(&entry(503, "GET", "/v1/x", None)));
        assert!(!spelled.admit(&entry(404, "GET", "/v1/x", None)));
        let own: Filters = serde_json::from_str(r#"{"filter_account":["self"]}"#).unwrap();
        assert!(own.admit(&entry(200, "GET", "/v1/balance", None)));
        assert!(!own.admit(&entry(200, "GET", "/v1/balance", Some("acct_c"))));
    }
}
