//! Shared server state.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use switchboard_core::Clock;
use switchboard_store::{Platform, Store};

use crate::error::ApiError;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// The API version objects and events are rendered in.
    pub api_version: String,
    /// Requests per second allowed per API key (Stripe's 429 beyond); `None`: unlimited.
    pub rate_limit: Option<u32>,
    /// Check every `/v1` response and every event against Stripe's schema and
    /// keep what does not match (`GET /switchboard/v1/schema_violations`): for
    /// test suites driving the real binary with the official clients.
    pub check_schema: bool,
    /// Which internal addresses live endpoints may point at anyway.
    pub url_policy: switchboard_core::url_policy::UrlPolicy,
    /// What `GET /metrics` exports (shared with the dispatcher).
    pub metrics: Arc<switchboard_store::metrics::Metrics>,
    /// The operator's key for `/switchboard/admin/v1` (several platforms);
    /// `None` turns the admin API off.
    pub admin_key: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: 1 << 20,
            api_version: switchboard_core::DEFAULT_API_VERSION.into(),
            rate_limit: None,
            check_schema: false,
            url_policy: Default::default(),
            metrics: switchboard_store::metrics::Metrics::new(),
            admin_key: None,
        }
    }
}

/// What an API key is: its platform, whether it is live, and when it was
/// looked up (real ms).
type CachedKey = (Platform, bool, i64);

/// What every handler and middleware shares. One `Arc` around it all: axum
/// clones the state for every middleware layer of every request, and one
/// reference count is far cheaper than one per field (the clones and drops of
/// nine counters showed at ~8 % of the API's CPU under load).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<ServerConfig>,
    /// `stripe listen` sessions connected to this node.
    pub listen: Arc<crate::listen::ListenHub>,
    /// The requests this node served, for `stripe logs tail` and the dashboard.
    pub request_log: Arc<crate::request_log::RequestLog>,
    keys: Arc<RwLock<HashMap<String, CachedKey>>>,
    /// Token buckets per API key: (tokens, last refill in unix ms).
    buckets: Arc<std::sync::Mutex<HashMap<String, (f64, i64)>>>,
    /// Each platform's test clock offset (ms) and when it was read (real
    /// ms): read again after a second, so an advance on another node is
    /// seen within one.
    clocks: Arc<std::sync::Mutex<HashMap<String, (i64, i64)>>>,
    /// What `check_schema` found.
    schema_violations: Arc<std::sync::Mutex<Vec<String>>>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: ServerConfig,
        listen: Arc<crate::listen::ListenHub>,
    ) -> Self {
        AppState(Arc::new(Shared {
            store,
            clock,
            config: Arc::new(config),
            listen,
            request_log: Default::default(),
            keys: Default::default(),
            buckets: Default::default(),
            clocks: Default::default(),
            schema_violations: Default::default(),
        }))
    }

    /// With `check_schema`: records what is wrong with `body` (a response or
    /// an event payload), prefixed by `what`.
    pub fn audit(&self, what: &str, body: &serde_json::Value) {
        if !self.config.check_schema {
            return;
        }
        let errs = switchboard_core::schema::stripe().check(body);
        if !errs.is_empty() {
            let mut found = self.schema_violations.lock().expect("audit lock");
            found.extend(errs.into_iter().map(|e| format!("{what}: {e}")));
        }
    }

    pub fn schema_violations(&self) -> Vec<String> {
        self.schema_violations.lock().expect("audit lock").clone()
    }

    /// Takes one request from the key's token bucket (burst = one second's
    /// worth); `false` when the key is over its rate.
    pub fn admit(&self, key: &str) -> bool {
        let Some(rate) = self.config.rate_limit else {
            return true;
        };
        let rate = f64::from(rate.max(1));
        let now = self.clock.now_ms();
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        let (tokens, last) = buckets.entry(key.to_owned()).or_insert((rate, now));
        *tokens = (*tokens + (now - *last).max(0) as f64 * rate / 1000.0).min(rate);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How far `scope`'s clock runs ahead of real time: the platform's test
    /// clock in test mode, nothing in live mode.
    pub async fn offset_ms(&self, scope: &switchboard_store::Scope) -> Result<i64, ApiError> {
        if scope.livemode {
            return Ok(0);
        }
        const FRESH_MS: i64 = 1000;
        let now = self.clock.now_ms();
        if let Some(&(offset, read_at)) = self
            .clocks
            .lock()
            .expect("clock cache lock")
            .get(&scope.platform)
            && (0..FRESH_MS).contains(&(now - read_at))
        {
            return Ok(offset);
        }
        let offset = self.store.test_clock(&scope.platform).await?;
        self.clocks
            .lock()
            .expect("clock cache lock")
            .insert(scope.platform.clone(), (offset, now));
        Ok(offset)
    }

    /// What this node knows right after advancing a platform's test clock.
    pub fn set_offset_ms(&self, platform: &str, offset: i64) {
        self.clocks
            .lock()
            .expect("clock cache lock")
            .insert(platform.to_owned(), (offset, self.clock.now_ms()));
    }

    /// The platform and mode of an API key. Positive answers are cached for
    /// a few seconds: a key rotated on another node stops working here
    /// within that (on this node at once: [`AppState::forget_keys`]).
    pub async fn authenticate(&self, key: &str) -> Result<Option<(Platform, bool)>, ApiError> {
        const FRESH_MS: i64 = 5_000;
        let now = self.clock.now_ms();
        if let Some((platform, live, at)) = self.keys.read().expect("key cache lock").get(key)
            && (0..FRESH_MS).contains(&(now - at))
        {
            return Ok(Some((platform.clone(), *live)));
        }
        let found = self.store.platform_by_key(key).await?;
        let mut cache = self.keys.write().expect("key cache lock");
        match &found {
            Some((platform, live)) => {
                cache.insert(key.to_owned(), (platform.clone(), *live, now));
            }
            None => {
                cache.remove(key);
            }
        }
        Ok(found)
    }

    /// Drops every cached API key (after keys were rotated).
    pub fn forget_keys(&self) {
        self.keys.write().expect("key cache lock").clear();
    }
}
