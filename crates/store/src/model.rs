//! The records the store reads and writes.

use bytes::Bytes;
use serde_json::Value;
use switchboard_core::attempt::{AttemptError, NextAction};
pub use switchboard_core::delivery::Next;
use switchboard_core::event::EventDraft;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// The platform's own account id (`acct_…`).
    pub id: String,
    /// The Connect application id (`ca_…`), also the OAuth `client_id`.
    pub client_id: String,
    pub test_key: String,
    pub live_key: String,
    pub created: i64,
}

#[derive(Debug, Clone)]
pub struct PlatformInit {
    /// Used only when no platform exists yet.
    pub generated: Platform,
    pub test_key_override: Option<String>,
    pub live_key_override: Option<String>,
}

/// Whose data a request sees: a platform, in one mode, optionally acting as
/// one of its connected accounts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub platform: String,
    pub livemode: bool,
    pub account: Option<String>,
}

#[derive(Debug, Clone)]
pub struct StoredObject {
    pub id: String,
    pub kind: String,
    pub version: i64,
    pub created: i64,
    pub deleted: bool,
    pub data: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningSecret {
    pub secret: String,
    /// After a roll the old secret keeps signing until this unix time (seconds).
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct EndpointRecord {
    pub id: String,
    pub platform: String,
    pub livemode: bool,
    pub version: i64,
    pub created: i64,
    pub url: String,
    pub connect: bool,
    pub enabled: bool,
    pub enabled_events: Vec<String>,
    pub api_version: Option<String>,
    pub description: Option<String>,
    pub metadata: serde_json::Map<String, Value>,
    /// Newest first.
    pub secrets: Vec<SigningSecret>,
    pub deleted: bool,
    /// Unix ms of the first failure since the last success.
    pub failing_since: Option<i64>,
    /// A `stripe listen` device rather than an HTTP endpoint: hidden from
    /// `/v1/webhook_endpoints`, enabled only while connected.
    pub listener: bool,
    /// Chaos mode for this endpoint alone (`--chaos` syntax), in place of
    /// the server's; `None`: the server's.
    pub chaos: Option<String>,
    /// An API v2 event destination (`/v2/core/event_destinations`) rather
    /// than a v1 webhook endpoint: hidden from `/v1/webhook_endpoints`.
    pub destination: Option<Destination>,
}

impl EndpointRecord {
    /// How the `kind` column spells this endpoint.
    pub fn kind(&self) -> &'static str {
        match (self.listener, &self.destination) {
            (true, _) => "listener",
            (false, Some(_)) => "destination",
            (false, None) => "webhook",
        }
    }
}

/// Which endpoints a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointKind {
    /// `/v1/webhook_endpoints`.
    Webhook,
    /// `/v2/core/event_destinations`.
    Destination,
}

impl EndpointKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointKind::Webhook => "webhook",
            EndpointKind::Destination => "destination",
        }
    }
}

/// What an event destination has beyond a webhook endpoint's fields.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Destination {
    pub name: String,
    pub event_payload: EventPayload,
    /// Receives the platform's own events (`@self`).
    pub from_self: bool,
    /// Receives its connected accounts' events (`@accounts`).
    pub from_accounts: bool,
    pub snapshot_api_version: Option<String>,
    /// Unix ms of the last change (`updated`).
    pub updated_ms: i64,
}

/// What a destination's deliveries carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventPayload {
    /// The whole v1 event, as webhook endpoints get it.
    Snapshot,
    /// A `v2.core.event` notification without data.
    Thin,
}

#[derive(Debug, Clone)]
pub struct EventRecord {
    pub id: String,
    pub livemode: bool,
    pub account: Option<String>,
    pub event_type: String,
    pub created: i64,
    /// Endpoints that have not yet received this event successfully.
    pub pending_webhooks: i64,
    /// The exact bytes every delivery sends.
    pub payload: Bytes,
}

#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Exact type, or a prefix wildcard such as `customer.*`.
    pub event_type: Option<String>,
    pub types: Vec<String>,
    pub created_gt: Option<i64>,
    pub created_gte: Option<i64>,
    pub created_lt: Option<i64>,
    pub created_lte: Option<i64>,
    pub delivery_success: Option<bool>,
    /// Events about this object (its `data.object.id`; API v2's `object_id`).
    pub object_id: Option<String>,
    /// Only API v2 events (`v2.*`, `Some(true)`) or only v1 ones.
    pub v2: Option<bool>,
}

#[derive(Debug, Clone)]
pub enum AttemptFilter {
    Event(String),
    Endpoint(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub id: i64,
    pub event_id: String,
    pub endpoint_id: String,
    pub attempt: u32,
    pub started_at_ms: i64,
    pub duration_ms: i64,
    pub status_code: Option<u16>,
    /// Why the attempt failed without a usable status.
    pub error: Option<AttemptError>,
    /// The first 4 KiB of the response body.
    pub response_body: String,
    pub succeeded: bool,
    /// Set by the store from the outcome's [`Next`] when it records it.
    pub next_action: NextAction,
    pub next_at_ms: Option<i64>,
    /// Faults chaos mode injected into this attempt (`fail`, `reorder`, `duplicate`).
    pub chaos: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub limit: usize,
    pub starting_after: Option<String>,
    pub ending_before: Option<String>,
    /// Equality filters on object fields. Only object lists use them.
    pub filters: Vec<(Field, serde_json::Value)>,
}

/// A field of a stored object's data, by its dotted path
/// (`status`, `relationship.owner`); each backend spells it in its own SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field(pub &'static str);

impl Field {
    pub fn segments(self) -> impl Iterator<Item = &'static str> {
        self.0.split('.')
    }
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    /// Newest first, whichever direction was requested.
    pub data: Vec<T>,
    pub has_more: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub fingerprint: String,
    pub status: u16,
    pub body: Bytes,
}

/// What starting a request with an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    /// The key is this request's now (reserved in flight until its commit).
    Fresh,
    /// Another request with the key is still being handled (Stripe's 409).
    InFlight,
    /// The key's stored answer.
    Done(StoredResponse),
}

#[derive(Debug, Clone)]
pub struct IdempotencyRecord {
    pub scope: Scope,
    pub key: String,
    pub response: StoredResponse,
    pub created: i64,
}

/// One atomic unit of work.
#[derive(Debug, Clone)]
pub struct Change {
    pub platform: String,
    /// Unix seconds on the platform's clock (its test clock in test mode);
    /// the `created` of every event in the change.
    pub now: i64,
    /// Unix ms of real time, at which new deliveries become due (and by
    /// which idempotency records expire).
    pub now_ms: i64,
    pub api_version: String,
    pub writes: Vec<Write>,
    pub events: Vec<NewEvent>,
    pub idempotency: Option<IdempotencyRecord>,
}

impl Change {
    /// The object `id` this change writes, if it does.
    pub fn staged(&self, id: &str) -> Option<&StoredObject> {
        self.writes.iter().find_map(|w| match w {
            Write::Object(o) if o.object.id == id => Some(&o.object),
            _ => None,
        })
    }

    /// [`Change::staged`], to amend in place.
    pub fn staged_mut(&mut self, id: &str) -> Option<&mut StoredObject> {
        self.writes.iter_mut().find_map(|w| match w {
            Write::Object(o) if o.object.id == id => Some(&mut o.object),
            _ => None,
        })
    }
}

#[derive(Debug, Clone)]
pub enum Write {
    Object(ObjectWrite),
    Endpoint(Box<EndpointRecord>, Option<i64>),
    /// Queue one extra attempt of an event to one endpoint (a resend).
    Resend {
        event_id: String,
        endpoint_id: String,
    },
    /// Arms (or, with no `due_ms`, disarms) an object's timer.
    Timer(Timer),
}

/// When an object has work to do as time passes: a balance whose pending
/// funds become available, a payout that arrives, an authorization that
/// expires. One timer per object; writing it again moves it. The server's
/// timer task runs what is due (`Store::due_timers`) and re-arms or disarms
/// the timer in the same change as the work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    pub scope: Scope,
    /// The object's kind (`balance`, `payout`, `payment_intent`).
    pub kind: String,
    pub object_id: String,
    /// Unix ms of real time (a platform's test clock offset already taken
    /// off); `None` disarms.
    pub due_ms: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct ObjectWrite {
    pub scope: Scope,
    pub object: StoredObject,
    /// `None` inserts; `Some(v)` updates only if the stored version is still `v`.
    pub expected_version: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: String,
    pub draft: EventDraft,
}

#[derive(Debug, Clone)]
pub enum CommitOutcome {
    Committed,
    /// The idempotency key was already used: here is what it answered.
    Replay(StoredResponse),
}

/// A `stripe listen` device's socket held on one node, or let go. The
/// device's endpoint is enabled exactly while some node holds it, and only
/// the nodes holding it claim its deliveries.
#[derive(Debug, Clone)]
pub struct ListenerHold {
    pub platform: String,
    pub endpoint_id: String,
    pub node: String,
    /// Held until this unix ms (renewed while connected); `None` lets go.
    pub until_ms: Option<i64>,
    pub now_ms: i64,
}

/// What the dispatcher asks of the queue.
#[derive(Debug, Clone, Default)]
pub struct ClaimRequest {
    /// The claiming node: deliveries to a `stripe listen` device held by
    /// other nodes are theirs.
    pub node: String,
    pub now_ms: i64,
    /// The claim holds until `now_ms + lease_ms`.
    pub lease_ms: i64,
    /// Most deliveries in this claim.
    pub limit: usize,
    /// Most deliveries of one endpoint in this claim, so that one busy or
    /// slow endpoint cannot fill a batch.
    pub per_endpoint: usize,
    /// Endpoints (ids) that may get fewer than `per_endpoint` deliveries
    /// now (their adaptive limit is lower, or they have some already); zero
    /// skips them.
    pub endpoint_room: std::collections::HashMap<String, usize>,
}

#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub delivery_id: i64,
    /// The attempt being made now (1-based).
    pub attempt: u32,
    /// A resend: one attempt, no retries, no bookkeeping of `pending_webhooks`.
    pub one_shot: bool,
    pub event_id: String,
    pub payload: Bytes,
    pub endpoint_id: String,
    pub url: String,
    /// The endpoint's mode: live URLs are held to the URL policy at delivery.
    pub livemode: bool,
    /// Secrets valid at claim time, newest first.
    pub secrets: Vec<String>,
    /// The endpoint's own chaos mode, if it has one.
    pub chaos: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DeliveryOutcome {
    pub delivery_id: i64,
    pub attempt: AttemptRecord,
    pub next: Next,
    pub now_ms: i64,
    /// Disable the endpoint when a delivery gives up and it has been failing
    /// for at least this long.
    pub disable_after_ms: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    pub pending: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub attempts: i64,
}
