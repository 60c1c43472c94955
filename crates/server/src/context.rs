//! `Ctx`: everything a handler needs to know about the request, extracted
//! once: who is calling (platform, mode, `Stripe-Account`), the parameters,
//! and the idempotency key, whose stored response is replayed before the
//! handler ever runs.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use switchboard_core::event::{EventDraft, RequestInfo};
use switchboard_core::form::Params;
use switchboard_store::{
    Begun, Change, CommitOutcome, IdempotencyRecord, NewEvent, Platform, Scope, StoreError,
    StoredResponse,
};

use crate::error::ApiError;
use crate::state::AppState;

const MAX_IDEMPOTENCY_KEY: usize = 255;

/// `axum::extract::Path` whose rejection (an id with invalid percent-encoding
/// or UTF-8, say) is a Stripe error like every other, not axum's plain text.
pub struct Path<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Path<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(t)| Path(t))
            .map_err(|e| ApiError::InvalidRequest {
                message: format!("Invalid URL: {}", e.body_text()),
                param: None,
                code: None,
            })
    }
}

/// Set by the request-id middleware on every request.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub struct Ctx {
    pub state: AppState,
    pub platform: Platform,
    /// Platform, mode and the connected account acted as.
    pub scope: Scope,
    pub params: Params,
    pub request_id: String,
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    /// `expand[]`, read by `finish_params` and applied to the response.
    pub expand: Vec<String>,
    /// The key the caller presented (never logged; shown only redacted).
    key: String,
    /// How far the platform's clock runs ahead of real time in this mode
    /// (its test clock; always 0 in live mode).
    pub offset_ms: i64,
    /// The idempotency key and the request's fingerprint.
    idempotency: Option<(String, String)>,
    reserved: ReservedKey,
}

/// The idempotency key a request reserved in the store (another request
/// with the key meanwhile gets Stripe's 409), until its commit stores an
/// answer. Set by the extractor; the `free_unused_keys` middleware frees a
/// key still reserved when the handler returns (a validation error: Stripe
/// saves no answer for a request that never started executing), before the
/// response leaves, so that a corrected retry with the key is not refused.
#[derive(Clone, Default)]
pub struct ReservedKey(std::sync::Arc<std::sync::Mutex<Option<(Scope, String)>>>);

impl ReservedKey {
    fn set(&self, reserved: Option<(Scope, String)>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = reserved;
    }

    pub fn take(&self) -> Option<(Scope, String)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// What a failed extraction answers: an error, or a replayed response.
pub struct Rejection(Response);

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        self.0
    }
}

impl From<ApiError> for Rejection {
    fn from(e: ApiError) -> Self {
        Rejection(e.into_response())
    }
}

impl FromRequest<AppState> for Ctx {
    type Rejection = Rejection;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_else(|| switchboard_core::ids::generate_request_id(&mut rand::rng()));
        let reserved = parts
            .extensions
            .get::<ReservedKey>()
            .cloned()
            .unwrap_or_default();
        let key = api_key(&parts.headers)?;
        let (platform, livemode) = state.authenticate(&key).await?.ok_or_else(|| {
            ApiError::Unauthenticated(format!("Invalid API Key provided: {}", redact(&key)))
        })?;
        if !state.admit(&key) {
            return Err(ApiError::RateLimited.into());
        }
        let account = acting_account(&parts.headers, &platform.id)?;
        let scope = Scope {
            platform: platform.id.clone(),
            livemode,
            account: None,
        };
        let scope = match account {
            // Naming one's own account means "as myself", as on Stripe:
            // integrations send it on every call made for platform events.
            None => scope,
            Some(acct) if acct == platform.id => scope,
            Some(acct) => connected_scope(state, scope, acct, &key).await?,
        };
        let offset_ms = state.offset_ms(&scope).await?;
        if let Some(actor) = parts.extensions.get::<crate::request_log::Actor>() {
            actor.set(&scope.platform, scope.livemode, scope.account.as_deref());
        }
        let bytes = axum::body::to_bytes(body, state.config.max_body_bytes)
            .await
            .map_err(|_| ApiError::BodyTooLarge(state.config.max_body_bytes))?;
        let path = parts.uri.path().to_owned();
        // API v2 takes JSON bodies (an empty one is `{}`, as the Stripe CLI
        // sends it) and keys its DELETEs too.
        let v2 = path.starts_with("/v2/");
        let params = if v2 && parts.method == Method::POST {
            let json = if bytes.iter().all(u8::is_ascii_whitespace) {
                serde_json::Value::Object(Default::default())
            } else {
                serde_json::from_slice(&bytes).map_err(|e| ApiError::InvalidRequest {
                    message: format!("The request body is not valid JSON: {e}"),
                    param: None,
                    code: None,
                })?
            };
            Params::from_json(json).map_err(ApiError::from)?
        } else {
            let form = if parts.method == Method::POST && !bytes.is_empty() {
                std::str::from_utf8(&bytes)
                    .map_err(|_| ApiError::InvalidRequest {
                        message: "Request body is not valid UTF-8.".into(),
                        param: None,
                        code: None,
                    })?
                    .to_owned()
            } else if v2 {
                let query = parts.uri.query().unwrap_or_default();
                switchboard_core::form::repeated_as_arrays(query).into_owned()
            } else {
                parts.uri.query().unwrap_or_default().to_owned()
            };
            Params::parse(&form).map_err(ApiError::from)?
        };
        let keyed = parts.method == Method::POST || (v2 && parts.method == Method::DELETE);
        let idempotency = match header(&parts.headers, "idempotency-key")? {
            Some(k) if keyed => {
                if k.len() > MAX_IDEMPOTENCY_KEY {
                    return Err(ApiError::InvalidRequest {
                        message: format!(
                            "Idempotency keys can be at most {MAX_IDEMPOTENCY_KEY} characters long"
                        ),
                        param: None,
                        code: None,
                    }
                    .into());
                }
                let fp = fingerprint(&parts.method, &path, &bytes);
                match state
                    .store
                    .begin_idempotent(&scope, &k, &fp, state.clock.now())
                    .await?
                {
                    Begun::Done(stored) => return Err(Rejection(replay(stored, &fp, &k)?)),
                    Begun::InFlight => return Err(ApiError::IdempotencyInFlight(k).into()),
                    Begun::Fresh => {
                        reserved.set(Some((scope.clone(), k.clone())));
                        Some((k, fp))
                    }
                }
            }
            _ => None,
        };
        Ok(Ctx {
            state: state.clone(),
            platform,
            scope,
            params,
            request_id,
            method: parts.method,
            path,
            headers: parts.headers,
            expand: Vec::new(),
            key,
            offset_ms,
            idempotency,
            reserved,
        })
    }
}

/// The account a request acts as: `Stripe-Account`, or `Stripe-Context`
/// (API v2's counterpart, which the SDKs also send to v1 paths when they
/// fetch a thin event's related object). A context is a `/`-joined path of
/// accounts from the caller down (`acct_platform/acct_connected`); leading
/// segments naming the platform itself are implied, and one connected account
/// below it is as deep as Connect goes here.
fn acting_account(headers: &HeaderMap, platform: &str) -> Result<Option<String>, ApiError> {
    let account = header(headers, "stripe-account")?.filter(|a| !a.is_empty());
    let Some(context) = header(headers, "stripe-context")?.filter(|c| !c.is_empty()) else {
        return Ok(account);
    };
    let invalid = |message: String| ApiError::InvalidRequest {
        message,
        param: Some("Stripe-Context".into()),
        code: None,
    };
    let segments: Vec<&str> = context.split('/').map(str::trim).collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(invalid(format!(
            "Invalid Stripe-Context header: {context:?}"
        )));
    }
    let below: Vec<&str> = segments
        .iter()
        .copied()
        .skip_while(|s| *s == platform)
        .collect();
    let from_context = match below.as_slice() {
        [] => None,
        [acct] if acct.starts_with("acct_") => Some((*acct).to_owned()),
        [_] => {
            return Err(invalid(format!(
                "Stripe-Context {context:?} does not name an account (acct_…) this platform manages"
            )));
        }
        _ => {
            return Err(invalid(format!(
                "Stripe-Context {context:?} nests accounts deeper than one connected account of this platform"
            )));
        }
    };
    match (account, from_context) {
        (Some(a), Some(c)) if a != c => Err(invalid(format!(
            "Stripe-Account ({a}) and Stripe-Context ({context}) name different accounts"
        ))),
        (a, c) => Ok(c.or(a)),
    }
}

fn header(headers: &HeaderMap, name: &str) -> Result<Option<String>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => {
            v.to_str()
                .map(|s| Some(s.trim().to_owned()))
                .map_err(|_| ApiError::InvalidRequest {
                    message: format!("Invalid {name} header"),
                    param: None,
                    code: None,
                })
        }
    }
}

/// `Authorization: Bearer sk_…` or Basic auth with the key as user name.
fn api_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let missing = || {
        ApiError::Unauthenticated(
            "You did not provide an API key. You need to provide your API key in the Authorization header, \
             using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
                .into(),
        )
    };
    let value = header(headers, "authorization")?.ok_or_else(missing)?;
    let (scheme, rest) = value.split_once(' ').ok_or_else(missing)?;
    let key = if scheme.eq_ignore_ascii_case("bearer") {
        rest.trim().to_owned()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .map_err(|_| missing())?;
        let text = String::from_utf8(decoded).map_err(|_| missing())?;
        text.split_once(':')
            .map_or(text.clone(), |(user, _)| user.to_owned())
    } else {
        return Err(missing());
    };
    if key.is_empty() {
        Err(missing())
    } else {
        Ok(key)
    }
}

/// Keys are secrets: error messages show only the prefix and last four.
fn redact(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 12 {
        return "*".repeat(chars.len());
    }
    let prefix: String = chars[..8].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{prefix}{}{tail}", "*".repeat(chars.len() - 12))
}

async fn connected_scope(
    state: &AppState,
    mut scope: Scope,
    account: String,
    key: &str,
) -> Result<Scope, ApiError> {
    let found = state.store.object(&scope, "account", &account).await?;
    let usable = found.is_some_and(|a| !a.deleted);
    if !usable {
        return Err(no_access_message(key, &account));
    }
    scope.account = Some(account);
    Ok(scope)
}

fn no_access_message(key: &str, account: &str) -> ApiError {
    ApiError::Permission(format!(
        "The provided key '{}' does not have access to account '{account}' (or that account does not exist). \
         Application access may have been revoked.",
        redact(key)
    ))
}

/// Stripe's answer when the caller's platform cannot reach an account.
pub fn no_access(ctx: &Ctx, account: &str) -> ApiError {
    no_access_message(ctx.api_key(), account)
}

/// The scope of a connected account named in a parameter rather than the header.
pub async fn connected_scope_for(ctx: &Ctx, account: String) -> Result<Scope, ApiError> {
    let base = Scope {
        platform: ctx.platform.id.clone(),
        livemode: ctx.scope.livemode,
        account: None,
    };
    connected_scope(&ctx.state, base, account, ctx.api_key()).await
}

fn fingerprint(method: &Method, path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_str());
    h.update(b" ");
    h.update(path);
    h.update(b"\n");
    h.update(body);
    hex::encode(h.finalize())
}

fn replay(stored: StoredResponse, fingerprint: &str, key: &str) -> Result<Response, ApiError> {
    if stored.fingerprint != fingerprint {
        return Err(ApiError::Idempotency(format!(
            "Keys for idempotent requests can only be used with the same parameters they were first used with. \
             Try using a key other than '{key}' if you meant to execute a different request."
        )));
    }
    let mut resp = json_bytes(
        StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK),
        stored.body,
    );
    resp.headers_mut()
        .insert("idempotent-replayed", "true".parse().expect("valid header"));
    Ok(resp)
}

pub fn json_bytes(status: StatusCode, body: Bytes) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        "content-type",
        "application/json".parse().expect("valid header"),
    );
    resp
}

/// Stripe's responses are 2-space pretty JSON with keys in Stripe's order
/// (`id`, `object`, then alphabetical, at every level), however a handler
/// happened to build the object.
pub fn render(value: &serde_json::Value) -> Bytes {
    let mut out = Vec::with_capacity(1024);
    serde_json::to_writer_pretty(&mut out, &switchboard_core::object::StripeOrdered(value))
        .expect("JSON values serialize");
    Bytes::from(out)
}

impl Ctx {
    /// The context of a hosted page (3-D Secure, onboarding) acting for
    /// `platform` in `scope`: no API key, parameters or idempotency key;
    /// its changes and events are the platform's like an API request's.
    pub async fn hosted(
        state: AppState,
        platform: Platform,
        scope: Scope,
        headers: HeaderMap,
    ) -> Result<Ctx, ApiError> {
        let offset_ms = state.offset_ms(&scope).await?;
        Ok(Ctx {
            state,
            platform,
            scope,
            params: Params::default(),
            request_id: switchboard_core::ids::generate_request_id(&mut rand::rng()),
            method: Method::POST,
            path: String::new(),
            headers,
            expand: Vec::new(),
            key: String::new(),
            offset_ms,
            idempotency: None,
            reserved: ReservedKey::default(),
        })
    }

    /// The context of work no request asked for (a timer firing): like
    /// Stripe's automatic events, its events carry no request id.
    pub async fn automatic(
        state: AppState,
        platform: Platform,
        scope: Scope,
    ) -> Result<Ctx, ApiError> {
        let mut ctx = Ctx::hosted(state, platform, scope, HeaderMap::new()).await?;
        ctx.request_id = String::new();
        Ok(ctx)
    }

    /// Commits a change made outside any API request (a hosted page).
    pub async fn commit_unanswered(&self, change: Change) -> Result<(), ApiError> {
        self.commit_status(change, StatusCode::OK, &serde_json::Value::Null)
            .await
            .map(drop)
    }

    pub fn livemode(&self) -> bool {
        self.scope.livemode
    }

    /// The key the caller authenticated with (for redacted error messages);
    /// empty for a hosted page or a timer, which present none.
    pub fn api_key(&self) -> &str {
        &self.key
    }

    /// `http://host:port` as the caller reached this server: hosted pages
    /// (3-D Secure, onboarding) are linked on the same origin.
    pub fn origin(&self) -> String {
        let host = self
            .headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| h.bytes().all(|b| b.is_ascii_graphic()))
            .unwrap_or("127.0.0.1:12111");
        format!("http://{host}")
    }

    /// Unix seconds on the platform's clock: its test clock in test mode
    /// (`POST /switchboard/v1/clock/advance` moves it), real time in live
    /// mode. Everything the API does with time reads this.
    pub fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    pub fn now_ms(&self) -> i64 {
        self.state.clock.now_ms() + self.offset_ms
    }

    /// Real time, for what is checked against real clocks: signing secrets
    /// (the dispatcher and receivers keep real time) and timers.
    pub fn real_now(&self) -> i64 {
        self.state.clock.now()
    }

    /// The write that arms the timer of object `id` (kind `kind`, in
    /// `scope`) for `due`, unix seconds on the platform's clock, or disarms
    /// it (`None`). Timers keep real time: the test-clock offset comes off here.
    pub fn timer(
        &self,
        scope: &Scope,
        kind: &str,
        id: &str,
        due: Option<i64>,
    ) -> switchboard_store::Write {
        switchboard_store::Write::Timer(switchboard_store::Timer {
            scope: scope.clone(),
            kind: kind.into(),
            object_id: id.into(),
            due_ms: due.map(|s| s * 1000 - self.offset_ms),
        })
    }

    /// A new empty change for this request.
    pub fn change(&self) -> Change {
        Change {
            platform: self.platform.id.clone(),
            now: self.now(),
            now_ms: self.state.clock.now_ms(),
            api_version: self.state.config.api_version.clone(),
            writes: Vec::new(),
            events: Vec::new(),
            idempotency: None,
        }
    }

    /// An event caused by this request, on the account the request acts as.
    pub fn event(
        &self,
        event_type: &str,
        object: serde_json::Value,
        previous_attributes: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> NewEvent {
        self.event_on(
            self.scope.account.clone(),
            event_type,
            object,
            previous_attributes,
        )
    }

    /// An event on an explicit account (`None`: the platform's own).
    pub fn event_on(
        &self,
        account: Option<String>,
        event_type: &str,
        object: serde_json::Value,
        previous_attributes: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> NewEvent {
        let event = NewEvent {
            id: switchboard_core::ids::generate(
                switchboard_core::ids::Prefix::Event,
                &mut rand::rng(),
            ),
            draft: EventDraft {
                event_type: event_type.into(),
                // Put in Stripe's key order when rendered (`EventDraft::render`).
                object,
                previous_attributes,
                livemode: self.scope.livemode,
                account,
                request: RequestInfo {
                    id: (!self.request_id.is_empty()).then(|| self.request_id.clone()),
                    idempotency_key: self.idempotency.as_ref().map(|(k, _)| k.clone()),
                },
                data: None,
            },
        };
        if self.state.config.check_schema {
            let stamp = switchboard_core::event::EventStamp {
                id: &event.id,
                created: self.now(),
                api_version: &self.state.config.api_version,
                pending_webhooks: 0,
            };
            self.state.audit(event_type, &event.draft.to_value(stamp));
        }
        event
    }

    /// Commits `change` together with the response it produces, so that a
    /// retry with the same idempotency key replays exactly this answer.
    pub async fn commit(
        &self,
        change: Change,
        body: &serde_json::Value,
    ) -> Result<Response, ApiError> {
        self.commit_status(change, StatusCode::OK, body).await
    }

    /// [`Ctx::commit`] for a change whose answer is not a 200 (a declined
    /// card is a 402 whose objects and events still happen).
    pub async fn commit_status(
        &self,
        change: Change,
        status: StatusCode,
        body: &serde_json::Value,
    ) -> Result<Response, ApiError> {
        let body = self.answer(&change, body).await?;
        self.commit_rendered(change, status, body).await
    }

    /// [`Ctx::commit`] answering with the object `id` that `change` writes
    /// (a create's new object), without a copy of it for the answer.
    pub async fn commit_staged(&self, change: Change, id: &str) -> Result<Response, ApiError> {
        let Some(data) = change.staged(id).map(|o| &o.data) else {
            return Err(ApiError::Internal(format!("{id} is not in the change")));
        };
        let body = self.answer(&change, data).await?;
        self.commit_rendered(change, StatusCode::OK, body).await
    }

    /// The answer's bytes: `body` with `expand[]` applied (objects `change`
    /// writes are expandable before they are committed).
    async fn answer(&self, change: &Change, body: &serde_json::Value) -> Result<Bytes, ApiError> {
        if self.expand.is_empty() {
            return Ok(render(body));
        }
        let expanded =
            crate::expand::apply(self, body.clone(), &self.expand, &change.writes).await?;
        Ok(render(&expanded))
    }

    async fn commit_rendered(
        &self,
        mut change: Change,
        status: StatusCode,
        body: Bytes,
    ) -> Result<Response, ApiError> {
        if let Some((key, fp)) = &self.idempotency {
            change.idempotency = Some(IdempotencyRecord {
                scope: self.scope.clone(),
                key: key.clone(),
                response: StoredResponse {
                    fingerprint: fp.clone(),
                    status: status.as_u16(),
                    body: body.clone(),
                },
                // Idempotency keys expire in real time, whatever the test clock says.
                created: change.now_ms.div_euclid(1000),
            });
        }
        let metrics = &self.state.config.metrics;
        let created: Vec<switchboard_store::metrics::EventLabels> = change
            .events
            .iter()
            .map(|e| switchboard_store::metrics::EventLabels {
                r#type: e.draft.event_type.clone(),
                mode: if e.draft.livemode { "live" } else { "test" },
            })
            .collect();
        let started = std::time::Instant::now();
        let outcome = self.state.store.commit(change).await?;
        metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        if matches!(outcome, CommitOutcome::Committed) {
            for labels in &created {
                metrics.events_created.get_or_create(labels).inc();
            }
        }
        // The key now holds an answer (this one, or one that beat it).
        self.reserved.take();
        match (outcome, &self.idempotency) {
            (CommitOutcome::Committed, _) => Ok(json_bytes(status, body)),
            (CommitOutcome::Replay(stored), Some((key, fp))) => replay(stored, fp, key),
            (CommitOutcome::Replay(_), None) => Err(ApiError::Internal(
                "a replay of a request without an idempotency key".into(),
            )),
        }
    }

    /// A 200 with `value`, its `expand[]` applied.
    pub async fn respond(&self, value: serde_json::Value) -> Result<Response, ApiError> {
        if self.expand.is_empty() {
            return Ok(ok_json(&value));
        }
        let value = crate::expand::apply(self, value, &self.expand, &[]).await?;
        Ok(ok_json(&value))
    }

    /// Ensures every parameter was understood.
    pub fn finish_params(&mut self) -> Result<(), ApiError> {
        self.expand = self.params.string_list("expand")?.unwrap_or_default();
        crate::expand::validate(&self.expand)?;
        std::mem::take(&mut self.params)
            .finish()
            .map_err(ApiError::from)
    }
}

/// Runs a read-modify-commit block again when a concurrent write won the race.
/// (A macro, not a closure-taking function: async closures borrowing the
/// handler's locals do not yet prove `Send` to axum.)
macro_rules! retry_conflicts {
    ($body:block) => {
        $crate::context::retry_conflicts!(axum::response::Response, $body)
    };
    // Work whose result is not a response (a hosted page's).
    ($t:ty, $body:block) => {{
        let mut tries = 0;
        loop {
            let result: Result<$t, $crate::error::ApiError> = async $body.await;
            match result {
                Err($crate::error::ApiError::Conflict) if tries < 8 => tries += 1,
                other => break other,
            }
        }
    }};
}
pub(crate) use retry_conflicts;

impl From<StoreError> for Rejection {
    fn from(e: StoreError) -> Self {
        ApiError::from(e).into()
    }
}

/// A 200 response with Stripe's JSON layout.
pub fn ok_json(value: &serde_json::Value) -> Response {
    json_bytes(StatusCode::OK, render(value))
}
