//! Switchboard's durable state, behind the [`Store`] trait.
//!
//! Architecture invariants:
//! - This is the only crate that contains SQL.
//! - Every read of tenant data is scoped by platform and mode (a [`Scope`]).
//! - Time is always a parameter (`now_ms`), never `now()` in SQL, so tests
//!   drive the queue with a manual clock.
//! - A [`Change`] commits atomically: object writes, the events they cause,
//!   one delivery row per endpoint that receives each event, and the
//!   idempotency record of the request that caused them.
//! - The delivery queue is a table with leases: a claim pushes `next_at` past
//!   the lease, so work claimed by a crashed process becomes due again.

mod engine;
pub mod handoff;
pub mod metrics;
mod model;
pub mod postgres;
pub mod relay;
pub mod secrets;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Notify;

pub use model::*;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A concurrent write changed the row first (optimistic concurrency).
    #[error("concurrent modification")]
    Conflict,
    /// `starting_after`/`ending_before` named an id that does not exist.
    #[error("no such object: {0}")]
    CursorNotFound(String),
    #[error("storage backend failed: {0}")]
    Backend(#[source] Arc<dyn std::error::Error + Send + Sync>),
    #[error("the store is shut down")]
    Closed,
    /// The storage cannot be trusted to keep what is written (its file
    /// vanished or was replaced): retry later, elsewhere.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// A backend failure, its cause kept as the error's source.
    pub fn backend(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StoreError::Backend(Arc::from(e.into()))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    // -- platforms and keys ------------------------------------------------

    /// Returns the default platform, creating it from `init` on first start.
    /// Keys given in `init.key_overrides` replace the stored ones.
    async fn bootstrap_platform(&self, init: PlatformInit) -> Result<Platform>;
    async fn create_platform(&self, platform: Platform) -> Result<()>;
    /// The platform and mode an API key belongs to.
    async fn platform_by_key(&self, key: &str) -> Result<Option<(Platform, bool)>>;
    /// Every platform this store hosts, oldest first.
    async fn platforms(&self) -> Result<Vec<Platform>>;
    /// Replaces a platform's API keys (the old ones stop working); `false`
    /// when there is no such platform.
    async fn set_platform_keys(&self, id: &str, test_key: &str, live_key: &str) -> Result<bool>;
    /// A platform by its account id or its Connect `client_id` (hosted
    /// pages, which carry no API key, name it; OAuth names the client).
    async fn platform(&self, id: &str) -> Result<Option<Platform>>;

    /// How far a platform's test-mode clock runs ahead of real time (ms).
    async fn test_clock(&self, platform: &str) -> Result<i64>;
    /// Moves a platform's test-mode clock forward by `by_ms`, in one
    /// transaction with what that makes due: its test-mode timers and its
    /// pending (not in-flight) test-mode deliveries come `by_ms` sooner.
    /// Returns the new offset.
    async fn advance_test_clock(&self, platform: &str, by_ms: i64) -> Result<i64>;
    /// Timers due at `now_ms` (real time), soonest first.
    async fn due_timers(&self, now_ms: i64, limit: usize) -> Result<Vec<Timer>>;

    /// Whether the store can serve and keep writes now (readiness).
    async fn health(&self) -> Result<()>;

    // -- writes ----------------------------------------------------------------

    async fn commit(&self, change: Change) -> Result<CommitOutcome>;

    // -- reads -----------------------------------------------------------------

    async fn object(&self, scope: &Scope, kind: &str, id: &str) -> Result<Option<StoredObject>>;
    async fn objects(
        &self,
        scope: &Scope,
        kind: &str,
        page: &PageRequest,
    ) -> Result<Page<StoredObject>>;
    async fn endpoint(
        &self,
        platform: &str,
        livemode: bool,
        id: &str,
    ) -> Result<Option<EndpointRecord>>;
    /// Webhook endpoints or event destinations (never listeners), newest first.
    async fn endpoints(
        &self,
        platform: &str,
        livemode: bool,
        kind: EndpointKind,
        page: &PageRequest,
    ) -> Result<Page<EndpointRecord>>;
    /// Every `stripe listen` device endpoint of a platform in one mode.
    async fn listeners(&self, platform: &str, livemode: bool) -> Result<Vec<EndpointRecord>>;
    async fn event(&self, scope: &Scope, id: &str) -> Result<Option<EventRecord>>;
    async fn events(
        &self,
        scope: &Scope,
        filter: &EventFilter,
        page: &PageRequest,
    ) -> Result<Page<EventRecord>>;
    async fn attempts(
        &self,
        platform: &str,
        livemode: bool,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> Result<Page<AttemptRecord>>;
    /// Starts a request with an idempotency key at `now` (unix seconds):
    /// reserves the key unless a stored answer or another request in flight
    /// holds it. A reservation ends with the commit that stores the request's
    /// answer, or with [`Store::abandon_idempotent`]; one left by a node that
    /// died is free again after `IDEMPOTENCY_IN_FLIGHT_SECS`.
    async fn begin_idempotent(
        &self,
        scope: &Scope,
        key: &str,
        fingerprint: &str,
        now: i64,
    ) -> Result<Begun>;
    /// Frees a key reserved by a request that ended without committing (a
    /// validation error: Stripe saves no answer for those).
    async fn abandon_idempotent(&self, scope: &Scope, key: &str) -> Result<()>;
    /// The stored answer of an idempotency key still valid at `now` (unix
    /// seconds): keys expire after `IDEMPOTENCY_TTL_SECS`.
    async fn idempotent_response(
        &self,
        scope: &Scope,
        key: &str,
        now: i64,
    ) -> Result<Option<StoredResponse>>;

    /// Records that `hold.node` holds (or let go of) a listener's socket.
    async fn hold_listener(&self, hold: ListenerHold) -> Result<()>;

    // -- delivery queue --------------------------------------------------------

    /// Leases due deliveries (see [`ClaimRequest`]). Deliveries whose endpoint
    /// is disabled or deleted are cancelled instead.
    async fn claim_due(&self, request: ClaimRequest) -> Result<Vec<ClaimedDelivery>>;
    /// Records attempts and moves each delivery on (done, retry, give up).
    /// Returns how many endpoints this disabled (they failed for too long).
    async fn record_outcomes(&self, outcomes: Vec<DeliveryOutcome>) -> Result<u64>;
    /// Counts of deliveries by state, for metrics and tests.
    async fn delivery_stats(&self) -> Result<DeliveryStats>;
    /// When the next pending delivery is due (unix ms), leased ones included
    /// (at their lease's end): the dispatcher sleeps until then.
    async fn next_due_ms(&self) -> Result<Option<i64>>;
    /// Finishes the writes already submitted and releases the database (a
    /// SQLite file can be opened again at once); later calls fail with `Closed`.
    async fn close(&self);
    /// Notified whenever new deliveries become due; the dispatcher also polls.
    fn work_signal(&self) -> Arc<Notify>;
    /// Where commits hand the deliveries they queue straight to this node's
    /// dispatcher (`None`: none runs; they wait for a claim).
    fn set_handoff(&self, to: Option<Arc<dyn handoff::Handoff>>);
}

/// The real clock. (It lives here, not in `core`, which never reads the time.)
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl switchboard_core::Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default()
    }
}
