//! The store's domain logic, written once over the primitives every backend
//! provides ([`Tx`]): what a commit writes (idempotency, objects, endpoints,
//! events routed to their endpoints, rendered with `pending_webhooks`),
//! which due deliveries a claim takes, and how an attempt's outcome moves a
//! delivery on. Backends supply SQL and transactions; the decisions live
//! here, and the pure ones in `switchboard_core::delivery`.
//!
//! The primitives are `async` so that PostgreSQL's can wait on the network;
//! SQLite's never wait, and its writer thread polls them to completion once.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use switchboard_core::attempt::NextAction;
use switchboard_core::delivery::{self, Move, Streak};
use switchboard_core::event::EventStamp;
use switchboard_core::routing::{self, Audience, EndpointRoute, EventRoute};

use crate::*;

/// Routing view of one endpoint.
#[derive(Debug, Clone)]
pub(crate) struct RouteEntry {
    pub seq: i64,
    pub livemode: bool,
    pub audience: Audience,
    pub enabled: bool,
    pub enabled_events: Vec<String>,
    /// What a delivery handed straight to the dispatcher needs of its
    /// endpoint (see `handoff`): a claim would read the same from the row.
    pub id: String,
    pub url: String,
    /// `None` if they cannot be opened (a wrong secrets key): such an
    /// endpoint is left to claims, which report it.
    pub secrets: Option<Vec<SigningSecret>>,
    pub chaos: Option<String>,
    /// A destination with thin payloads: routed by `v1.<type>` names, sent
    /// the event's thin rendering.
    pub thin: bool,
}

impl RouteEntry {
    /// Whose events an endpoint hears, and whether as thin events, from its
    /// `kind` column, `connect` flag and (for a destination) its stored
    /// `destination` JSON, read once.
    pub fn audience(kind: &str, connect: bool, destination: Option<&str>) -> (Audience, bool) {
        let d = destination.and_then(|d| serde_json::from_str::<Destination>(d).ok());
        let thin = d
            .as_ref()
            .is_some_and(|d| d.event_payload == EventPayload::Thin);
        let from = d.map(|d| (d.from_self, d.from_accounts));
        let audience = match (kind, connect, from) {
            ("listener", _, _) => Audience::Listener,
            ("destination", _, Some((true, true))) => Audience::Everyone,
            ("destination", _, Some((false, true))) => Audience::Connect,
            ("destination", _, _) => Audience::Platform,
            (_, true, _) => Audience::Connect,
            (_, false, _) => Audience::Platform,
        };
        (audience, thin)
    }
}

/// A due delivery as a claim sees it.
pub(crate) struct Due {
    pub delivery: ClaimedDelivery,
    pub target: Target,
    pub event_seq: i64,
    /// To a `stripe listen` device (of this platform): only a node holding
    /// its socket takes it.
    pub listener: Option<String>,
}

/// What a due delivery's endpoint allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Live,
    /// Retries stop while disabled; the event stays undelivered.
    Disabled,
    /// The endpoint is gone: it is no longer owed the event.
    Deleted,
}

/// What a delivery that moved belonged to.
pub(crate) struct Moved {
    pub event_seq: i64,
    pub endpoint_seq: i64,
    pub one_shot: bool,
}

/// An event row as inserted.
pub(crate) struct EventRow<'a> {
    pub id: &'a str,
    pub platform: &'a str,
    pub livemode: bool,
    pub account: Option<&'a str>,
    pub event_type: &'a str,
    pub created: i64,
    pub pending_webhooks: i64,
    pub payload: Bytes,
    /// For thin destinations (`v2.core.event`), when one receives it.
    pub thin_payload: Option<Bytes>,
}

/// One backend transaction's primitives. Every call runs inside the
/// transaction the backend opened; the engine never commits or rolls back.
#[allow(async_fn_in_trait)] // crate-private; callers know the concrete type
pub(crate) trait Tx {
    /// Stores the key's record unless a record newer than `expired` (unix
    /// seconds) exists; `false` if one does.
    async fn put_idempotency(&mut self, rec: &IdempotencyRecord, expired: i64) -> Result<bool>;
    /// Deletes a few records created at or before `expired`.
    async fn purge_idempotency(&mut self, expired: i64) -> Result<()>;
    /// The stored (not in-flight) answer of a key newer than the TTL.
    async fn idempotent_response(
        &mut self,
        scope: &Scope,
        key: &str,
        now: i64,
    ) -> Result<Option<StoredResponse>>;
    /// Reserves the key in flight unless a record newer than `expired`
    /// holds it (an in-flight one only if newer than `stale`); whether it did.
    async fn reserve_idempotency(&mut self, r: &Reserve<'_>) -> Result<bool>;
    /// Deletes the key's in-flight reservation.
    async fn abandon_idempotency(&mut self, scope: &Scope, key: &str) -> Result<()>;
    /// Inserts (`expected_version` none) or updates if the version is still
    /// the expected one; `Conflict` otherwise.
    async fn write_object(&mut self, o: &ObjectWrite) -> Result<()>;
    /// Upserts the object's timer, or deletes it when `due_ms` is `None`.
    async fn write_timer(&mut self, t: &Timer) -> Result<()>;
    /// Adds `by_ms` to the platform's test clock offset; returns the new one.
    async fn add_clock_offset(&mut self, platform: &str, by_ms: i64) -> Result<i64>;
    /// Brings the platform's test-mode timers and pending, unleased
    /// test-mode deliveries `by_ms` sooner.
    async fn bring_forward(&mut self, platform: &str, by_ms: i64) -> Result<()>;
    /// As `write_object`; the routes of the endpoint's platform change.
    async fn write_endpoint(&mut self, e: &EndpointRecord, expected: Option<i64>) -> Result<()>;
    /// Queues a one-shot delivery; `false` if the event or endpoint is unknown.
    async fn queue_resend(
        &mut self,
        event_id: &str,
        endpoint_id: &str,
        due_ms: i64,
    ) -> Result<bool>;
    /// The routing table of a platform, as of this transaction.
    async fn routes(&mut self, platform: &str) -> Result<Arc<Vec<RouteEntry>>>;
    /// Inserts an event; returns its seq.
    async fn insert_event(&mut self, row: EventRow<'_>) -> Result<i64>;
    async fn insert_deliveries(
        &mut self,
        event_seq: i64,
        endpoints: &[i64],
        due_ms: i64,
    ) -> Result<()>;
    /// Inserts a delivery with its first attempt already leased until
    /// `until_ms` (handed to this node's dispatcher); returns its id.
    async fn insert_leased(&mut self, event_seq: i64, endpoint: i64, until_ms: i64) -> Result<i64>;
    /// This transaction's hand-off to the local dispatcher, if one runs.
    fn handing(&mut self) -> Option<&mut crate::handoff::Handing>;
    /// Up to `scan` pending deliveries due at `req.now_ms`, oldest first,
    /// skipping endpoints whose room in `req` is zero; backends that share the
    /// queue lock them against other claimers until the transaction ends.
    async fn due(&mut self, req: &ClaimRequest, scan: usize) -> Result<Vec<Due>>;
    /// Takes one attempt of each delivery, hidden from claims until `until_ms`.
    async fn lease(&mut self, deliveries: &[i64], until_ms: i64) -> Result<()>;
    async fn cancel(&mut self, delivery: i64) -> Result<()>;
    /// One endpoint fewer owes the event a success.
    async fn settle_pending(&mut self, event_seq: i64) -> Result<()>;
    async fn insert_attempt(
        &mut self,
        delivery: i64,
        a: &AttemptRecord,
        action: NextAction,
        next_at_ms: Option<i64>,
    ) -> Result<()>;
    /// Moves a pending delivery whose attempt count is still `attempt` (a
    /// claimer whose lease ran out and was overtaken moves nothing).
    async fn move_delivery(
        &mut self,
        delivery: i64,
        attempt: u32,
        to: Move,
    ) -> Result<Option<Moved>>;
    async fn end_streak(&mut self, endpoint_seq: i64) -> Result<()>;
    /// Starts the endpoint's failure streak at `now_ms` unless one is running.
    async fn continue_streak(&mut self, endpoint_seq: i64, now_ms: i64) -> Result<()>;
    /// Disables the endpoint if it is enabled and failing since at or before
    /// `cutoff_ms`; whether it did.
    async fn disable_failing(&mut self, endpoint_seq: i64, cutoff_ms: i64) -> Result<bool>;
    /// Holds a listener on `node` until `until_ms`, or (`None`) lets go.
    async fn put_presence(
        &mut self,
        endpoint_id: &str,
        node: &str,
        until_ms: Option<i64>,
    ) -> Result<()>;
    /// The nodes holding the listener at `now_ms`.
    async fn holders(&mut self, endpoint_id: &str, now_ms: i64) -> Result<Vec<String>>;
    /// Enables or disables a listener endpoint (its platform's routes change if it did).
    async fn set_listener_enabled(
        &mut self,
        platform: &str,
        endpoint_id: &str,
        enabled: bool,
    ) -> Result<()>;
}

/// A listener is enabled exactly while some node holds it.
pub(crate) async fn hold_listener<T: Tx>(tx: &mut T, hold: &ListenerHold) -> Result<()> {
    tx.put_presence(&hold.endpoint_id, &hold.node, hold.until_ms)
        .await?;
    let held = !tx.holders(&hold.endpoint_id, hold.now_ms).await?.is_empty();
    tx.set_listener_enabled(&hold.platform, &hold.endpoint_id, held)
        .await
}

/// A key to reserve, and which existing records give way.
pub(crate) struct Reserve<'a> {
    pub scope: &'a Scope,
    pub key: &'a str,
    pub fingerprint: &'a str,
    pub now: i64,
    /// Records created at or before this are expired.
    pub expired: i64,
    /// In-flight reservations created at or before this were abandoned by a
    /// node that died.
    pub stale: i64,
}

pub(crate) async fn begin_idempotent<T: Tx>(
    tx: &mut T,
    scope: &Scope,
    key: &str,
    fingerprint: &str,
    now: i64,
) -> Result<Begun> {
    let reserve = Reserve {
        scope,
        key,
        fingerprint,
        now,
        expired: now - switchboard_core::IDEMPOTENCY_TTL_SECS,
        stale: now - switchboard_core::IDEMPOTENCY_IN_FLIGHT_SECS,
    };
    if tx.reserve_idempotency(&reserve).await? {
        return Ok(Begun::Fresh);
    }
    Ok(match tx.idempotent_response(scope, key, now).await? {
        Some(stored) => Begun::Done(stored),
        None => Begun::InFlight,
    })
}

/// Commits `change` in `tx`. Returns whether deliveries became due.
/// A platform's test clock moves forward: what it makes due, due now.
pub(crate) async fn advance_test_clock<T: Tx>(
    tx: &mut T,
    platform: &str,
    by_ms: i64,
) -> Result<i64> {
    let offset = tx.add_clock_offset(platform, by_ms).await?;
    tx.bring_forward(platform, by_ms).await?;
    Ok(offset)
}

pub(crate) async fn commit<T: Tx>(tx: &mut T, change: &Change) -> Result<(CommitOutcome, bool)> {
    let mut new_work = false;
    if let Some(idem) = &change.idempotency {
        // Real time (not a platform's test clock, which may run ahead).
        let real_now = change.now_ms.div_euclid(1000);
        let expired = real_now - switchboard_core::IDEMPOTENCY_TTL_SECS;
        let fresh = tx.put_idempotency(idem, expired).await?;
        // Expired records go a few at a time, with the requests that make new ones.
        tx.purge_idempotency(expired).await?;
        if !fresh {
            let stored = tx
                .idempotent_response(&idem.scope, &idem.key, real_now)
                .await?
                .ok_or_else(|| StoreError::backend("idempotency record vanished"))?;
            return Ok((CommitOutcome::Replay(stored), false));
        }
    }
    for w in &change.writes {
        match w {
            Write::Object(o) => tx.write_object(o).await?,
            Write::Endpoint(e, expected) => tx.write_endpoint(e, *expected).await?,
            Write::Resend { .. } => {}
            Write::Timer(t) => tx.write_timer(t).await?,
        }
    }
    if !change.events.is_empty() {
        let table = tx.routes(&change.platform).await?;
        for ev in &change.events {
            new_work |= insert_event(tx, change, &table, ev).await?;
        }
    }
    // Resends after the events: a change may resend an event it creates
    // (an event destination's ping goes to that destination alone).
    for w in &change.writes {
        if let Write::Resend {
            event_id,
            endpoint_id,
        } = w
        {
            new_work |= tx
                .queue_resend(event_id, endpoint_id, change.now_ms)
                .await?;
        }
    }
    Ok((CommitOutcome::Committed, new_work))
}

/// Routes one event, renders it with its `pending_webhooks`, and queues a
/// delivery per endpoint that receives it: handed to this node's dispatcher
/// where it has room, else for a claim. Returns whether any waits for a claim.
async fn insert_event<T: Tx>(
    tx: &mut T,
    change: &Change,
    table: &[RouteEntry],
    ev: &NewEvent,
) -> Result<bool> {
    let draft = &ev.draft;
    let route = EventRoute {
        livemode: draft.livemode,
        account: draft.account.as_deref(),
        event_type: &draft.event_type,
    };
    // Thin destinations name v1 events `v1.<type>` (named only if one is there).
    let thin_type = if table.iter().any(|e| e.thin) {
        draft.thin_type()
    } else {
        String::new()
    };
    let thin_route = EventRoute {
        event_type: &thin_type,
        ..route
    };
    let targets: Vec<&RouteEntry> = table
        .iter()
        .filter(|e| {
            // A v2 event exists only as a thin event.
            (e.thin || !draft.is_v2())
                && routing::receives(
                    &EndpointRoute {
                        livemode: e.livemode,
                        audience: e.audience,
                        enabled: e.enabled,
                        enabled_events: &e.enabled_events,
                    },
                    if e.thin { &thin_route } else { &route },
                )
        })
        .collect();
    let pending = targets.len() as i64;
    let stamp = EventStamp {
        id: &ev.id,
        created: change.now,
        api_version: &change.api_version,
        pending_webhooks: pending,
    };
    let payload: Bytes = draft.render(stamp).into();
    // A v2 event keeps its thin form even when nothing routes it now: a
    // resend (a ping) may still deliver it to a thin destination.
    let thin_payload: Option<Bytes> =
        (draft.is_v2() || targets.iter().any(|e| e.thin)).then(|| draft.render_thin(stamp).into());
    let seq = tx
        .insert_event(EventRow {
            id: &ev.id,
            platform: &change.platform,
            livemode: draft.livemode,
            account: draft.account.as_deref(),
            event_type: &draft.event_type,
            created: change.now,
            pending_webhooks: pending,
            payload: payload.clone(),
            thin_payload: thin_payload.clone(),
        })
        .await?;
    let mut queued = Vec::with_capacity(targets.len());
    for e in targets {
        // Listener devices are left to claims: only a node holding the
        // device's socket may deliver to it, and a claim checks that.
        let handed = e.audience != Audience::Listener
            && e.secrets.is_some()
            && tx.handing().is_some_and(|h| h.reserve(&e.id));
        if !handed {
            queued.push(e.seq);
            continue;
        }
        let lease_ms = tx.handing().map_or(0, |h| h.lease_ms());
        let id = match tx.insert_leased(seq, e.seq, change.now_ms + lease_ms).await {
            Ok(id) => id,
            Err(err) => {
                if let Some(h) = tx.handing() {
                    h.unreserve(&e.id);
                }
                return Err(err);
            }
        };
        let delivery = ClaimedDelivery {
            delivery_id: id,
            attempt: 1,
            one_shot: false,
            event_id: ev.id.clone(),
            payload: match (&thin_payload, e.thin) {
                (Some(thin), true) => thin.clone(),
                _ => payload.clone(),
            },
            endpoint_id: e.id.clone(),
            url: e.url.clone(),
            livemode: e.livemode,
            secrets: active_secrets(
                e.secrets.as_deref().unwrap_or_default(),
                change.now_ms.div_euclid(1000),
            ),
            chaos: e.chaos.clone(),
        };
        if let Some(h) = tx.handing() {
            h.take(delivery);
        }
    }
    if queued.is_empty() {
        return Ok(false);
    }
    tx.insert_deliveries(seq, &queued, change.now_ms).await?;
    Ok(true)
}

/// How many due rows one claim looks at, per delivery it may return: room to
/// skip past deliveries of endpoints that reached their per-claim share.
const SCAN_FACTOR: usize = 4;

/// Leases due deliveries, at most `req.per_endpoint` (or the endpoint's room)
/// per endpoint; deliveries of disabled or deleted endpoints are cancelled.
pub(crate) async fn claim<T: Tx>(tx: &mut T, req: &ClaimRequest) -> Result<Vec<ClaimedDelivery>> {
    let rows = tx.due(req, req.limit * SCAN_FACTOR).await?;
    let mut out = Vec::with_capacity(req.limit.min(rows.len()));
    let mut taken: HashMap<String, usize> = HashMap::new();
    let mut holders: HashMap<String, Vec<String>> = HashMap::new();
    for due in rows {
        let d = due.delivery;
        let mut target = due.target;
        if let (Some(platform), Target::Live) = (&due.listener, target) {
            if !holders.contains_key(&d.endpoint_id) {
                let h = tx.holders(&d.endpoint_id, req.now_ms).await?;
                if h.is_empty() {
                    // Every node that held it is gone (their holds ran out):
                    // the device is not connected, so events stop routing to it.
                    tx.set_listener_enabled(platform, &d.endpoint_id, false)
                        .await?;
                }
                holders.insert(d.endpoint_id.clone(), h);
            }
            match listener_target(&holders[&d.endpoint_id], &req.node) {
                Some(t) => target = t,
                None => continue, // another node's socket: its delivery
            }
        }
        match target {
            Target::Live => {
                let cap = req
                    .endpoint_room
                    .get(&d.endpoint_id)
                    .copied()
                    .unwrap_or(req.per_endpoint.max(1));
                let n = taken.entry(d.endpoint_id.clone()).or_default();
                if out.len() < req.limit && *n < cap {
                    *n += 1;
                    out.push(d);
                }
            }
            Target::Disabled => tx.cancel(d.delivery_id).await?,
            Target::Deleted => {
                tx.cancel(d.delivery_id).await?;
                if !d.one_shot {
                    tx.settle_pending(due.event_seq).await?;
                }
            }
        }
    }
    if !out.is_empty() {
        let ids: Vec<i64> = out.iter().map(|d| d.delivery_id).collect();
        tx.lease(&ids, req.now_ms + req.lease_ms).await?;
    }
    Ok(out)
}

/// Who delivers to a `stripe listen` device: a node holding its socket
/// (`Live`); none, if another node does (`None`: leave it to that node);
/// nobody, when no node holds it (it is not connected: `Disabled`).
fn listener_target(holders: &[String], me: &str) -> Option<Target> {
    if holders.iter().any(|h| h == me) {
        Some(Target::Live)
    } else if holders.is_empty() {
        Some(Target::Disabled)
    } else {
        None
    }
}

/// Records attempts and moves each delivery on. Returns (deliveries became
/// due again, endpoints disabled).
pub(crate) async fn record<T: Tx>(tx: &mut T, outcomes: &[DeliveryOutcome]) -> Result<(bool, u64)> {
    let (mut new_work, mut disabled) = (false, 0);
    for o in outcomes {
        let a = &o.attempt;
        let step = delivery::step(a.succeeded, o.next);
        tx.insert_attempt(o.delivery_id, a, step.action, step.next_at_ms)
            .await?;
        let Some(moved) = tx.move_delivery(o.delivery_id, a.attempt, step.to).await? else {
            continue; // overtaken by a later claim of the same delivery
        };
        if delivery::settles_pending(moved.one_shot, step.to) {
            tx.settle_pending(moved.event_seq).await?;
        }
        match step.streak {
            Streak::Ends => tx.end_streak(moved.endpoint_seq).await?,
            Streak::Continues => tx.continue_streak(moved.endpoint_seq, o.now_ms).await?,
        }
        new_work |= matches!(step.to, Move::Retry(_));
        if let Some(cutoff) =
            delivery::disable_cutoff(moved.one_shot, step.to, o.now_ms, o.disable_after_ms)
        {
            disabled += u64::from(tx.disable_failing(moved.endpoint_seq, cutoff).await?);
        }
    }
    Ok((new_work, disabled))
}

/// The secrets of a stored secrets list still valid at `now` (unix seconds).
pub(crate) fn active_secrets(secrets: &[SigningSecret], now: i64) -> Vec<String> {
    secrets
        .iter()
        .filter(|s| s.expires_at.is_none_or(|exp| exp > now))
        .map(|s| s.secret.clone())
        .collect()
}

/// One condition of an event list, as every backend spells it in its SQL.
pub(crate) enum EventCond<'a> {
    /// `type LIKE ? ESCAPE '\'`, the pattern already escaped.
    TypeLike(String),
    Type(&'a str),
    TypeIn(&'a [String]),
    /// `created <op> ?`
    Created(&'static str, i64),
    /// Every endpoint has it (`pending_webhooks = 0`), or not.
    Delivered(bool),
    /// `data.object.id` of the payload is this (`related_object.id` for a
    /// v2 event).
    ObjectId(&'a str),
    /// `type LIKE 'v2.%'`, or not.
    V2(bool),
}

/// The conditions a filter of `/v1/events` asks for.
pub(crate) fn event_conditions(f: &EventFilter) -> Vec<EventCond<'_>> {
    let mut conds = Vec::new();
    if let Some(t) = &f.event_type {
        conds.push(match t.strip_suffix('*') {
            Some(prefix) => EventCond::TypeLike(format!("{}%", escape_like(prefix))),
            None => EventCond::Type(t),
        });
    }
    if !f.types.is_empty() {
        conds.push(EventCond::TypeIn(&f.types));
    }
    for (op, v) in [
        (">", f.created_gt),
        (">=", f.created_gte),
        ("<", f.created_lt),
        ("<=", f.created_lte),
    ] {
        if let Some(v) = v {
            conds.push(EventCond::Created(op, v));
        }
    }
    if let Some(delivered) = f.delivery_success {
        conds.push(EventCond::Delivered(delivered));
    }
    if let Some(id) = &f.object_id {
        conds.push(EventCond::ObjectId(id));
    }
    if let Some(v2) = f.v2 {
        conds.push(EventCond::V2(v2));
    }
    conds
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// The active secrets of each stored secrets list seen in one claim, parsed
/// once: a claim's rows mostly share a few endpoints, and parsing the JSON
/// per row was 5 % of the writer's instructions.
pub(crate) struct SecretsMemo<'a> {
    now: i64,
    sealed: &'a crate::secrets::SecretBox,
    parsed: HashMap<String, Vec<String>>,
}

impl<'a> SecretsMemo<'a> {
    /// For secrets valid at `now` (unix seconds).
    pub fn new(now: i64, sealed: &'a crate::secrets::SecretBox) -> Self {
        SecretsMemo {
            now,
            sealed,
            parsed: HashMap::new(),
        }
    }

    pub fn active(&mut self, stored: &str) -> Result<Vec<String>> {
        if let Some(s) = self.parsed.get(stored) {
            return Ok(s.clone());
        }
        let s = active_secrets(&parse_secrets(stored, self.sealed)?, self.now);
        self.parsed.insert(stored.to_owned(), s.clone());
        Ok(s)
    }
}

/// Secrets as stored (JSON, sealed by `sealed`), shared by the backends.
pub(crate) fn secrets_json(
    secrets: &[SigningSecret],
    sealed: &crate::secrets::SecretBox,
) -> String {
    let list: Vec<serde_json::Value> = secrets
        .iter()
        .map(|s| serde_json::json!({"secret": s.secret, "expires_at": s.expires_at}))
        .collect();
    sealed.seal(&serde_json::Value::Array(list).to_string())
}

pub(crate) fn parse_secrets(
    stored: &str,
    sealed: &crate::secrets::SecretBox,
) -> Result<Vec<SigningSecret>> {
    let json = sealed.open(stored)?;
    let all: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap_or_default();
    Ok(all
        .into_iter()
        .filter_map(|s| {
            Some(SigningSecret {
                secret: s["secret"].as_str()?.to_owned(),
                expires_at: s["expires_at"].as_i64(),
            })
        })
        .collect())
}
