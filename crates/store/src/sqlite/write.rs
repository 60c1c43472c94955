//! The writer thread: group commit of every write command.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use switchboard_core::attempt::{AttemptError, NextAction};
use switchboard_core::event::EventStamp;
use switchboard_core::routing::{self, Audience, EndpointRoute, EventRoute};
use tokio::sync::{Notify, mpsc, oneshot};

use super::{MAX_GROUP, backend, read};
use crate::*;

type Reply<T> = oneshot::Sender<Result<T>>;

pub(super) enum Command {
    Bootstrap(PlatformInit, Reply<Platform>),
    CreatePlatform(Platform, Reply<()>),
    Commit(Box<Change>, Reply<CommitOutcome>),
    Claim {
        request: ClaimRequest,
        reply: Reply<Vec<ClaimedDelivery>>,
    },
    Record(Vec<DeliveryOutcome>, Reply<()>),
}

/// What one command produced, sent only once its group has committed.
enum Output {
    Platform(Platform),
    Unit,
    Commit(CommitOutcome),
    Claim(Vec<ClaimedDelivery>),
}

impl Command {
    fn answer(self, result: Result<Output>) {
        fn pick<T>(r: Result<Output>, f: impl FnOnce(Output) -> Option<T>) -> Result<T> {
            r.and_then(|o| {
                f(o).ok_or_else(|| StoreError::Backend("mismatched writer output".into()))
            })
        }
        // A dropped receiver means the caller went away; nothing to do.
        let _ = match self {
            Command::Bootstrap(_, tx) => tx.send(pick(result, |o| match o {
                Output::Platform(p) => Some(p),
                _ => None,
            })),
            Command::CreatePlatform(_, tx) | Command::Record(_, tx) => {
                let _ = tx.send(pick(result, |o| matches!(o, Output::Unit).then_some(())));
                Ok(())
            }
            Command::Commit(_, tx) => {
                let _ = tx.send(pick(result, |o| match o {
                    Output::Commit(c) => Some(c),
                    _ => None,
                }));
                Ok(())
            }
            Command::Claim { reply, .. } => {
                let _ = reply.send(pick(result, |o| match o {
                    Output::Claim(c) => Some(c),
                    _ => None,
                }));
                Ok(())
            }
        };
    }
}

/// Routing view of one endpoint, cached per platform.
struct RouteEntry {
    seq: i64,
    livemode: bool,
    audience: Audience,
    enabled: bool,
    enabled_events: Vec<String>,
}

pub(super) struct Writer {
    conn: Connection,
    work: Arc<Notify>,
    /// Endpoints by platform. Every endpoint write goes through this thread,
    /// so the cache is invalidated exactly when it can go stale.
    routes: HashMap<String, Arc<Vec<RouteEntry>>>,
    /// Held for the life of the writer: the database belongs to this process.
    _lock: std::fs::File,
    /// Checked before every transaction: never commit into a deleted file.
    identity: super::FileIdentity,
}

/// Side effects of a group, applied only once it has committed.
#[derive(Default)]
struct Effects {
    new_work: bool,
    /// Platforms whose cached routes are stale; `None` inside means all.
    stale_routes: Vec<Option<String>>,
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        work: Arc<Notify>,
        lock: std::fs::File,
        identity: super::FileIdentity,
    ) -> Self {
        Writer {
            conn,
            work,
            routes: HashMap::new(),
            _lock: lock,
            identity,
        }
    }

    pub(super) fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut batch = Vec::with_capacity(MAX_GROUP);
        while let Some(first) = rx.blocking_recv() {
            batch.push(first);
            while batch.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(cmd) => batch.push(cmd),
                    Err(_) => break,
                }
            }
            self.run_group(&mut batch);
        }
    }

    /// Commits the whole group in one transaction. Commands rarely fail, so
    /// there are no per-command savepoints (their sub-journals cost more than
    /// the work); if one fails, the group is rolled back and each command
    /// runs again in a transaction of its own.
    fn run_group(&mut self, batch: &mut Vec<Command>) {
        let commands = std::mem::take(batch);
        // One stat per group: cheap beside the commit, and what tells a
        // success that would vanish from one that will not.
        if let Err(e) = self.identity.check() {
            tracing::error!(error = %e, "refusing writes");
            for cmd in commands {
                cmd.answer(Err(e.clone()));
            }
            return;
        }
        let outputs = match self.transaction(&commands, true) {
            Ok(outputs) => outputs.into_iter().map(Ok).collect(),
            Err(_) => commands
                .iter()
                .map(|cmd| {
                    self.transaction(std::slice::from_ref(cmd), false)
                        .map(|mut o| o.remove(0))
                })
                .collect::<Vec<_>>(),
        };
        for (cmd, out) in commands.into_iter().zip(outputs) {
            cmd.answer(out);
        }
    }

    /// Runs `commands` in one transaction; the first failure rolls it back.
    fn transaction(&mut self, commands: &[Command], group: bool) -> Result<Vec<Output>> {
        let mut effects = Effects::default();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(backend)?;
        let mut outputs = Vec::with_capacity(commands.len());
        for cmd in commands {
            match execute(&tx, &mut self.routes, cmd, &mut effects) {
                Ok(o) => outputs.push(o),
                Err(e) => {
                    drop(tx); // rolls back
                    // Routes read inside the failed transaction may include its writes.
                    self.routes.clear();
                    if group {
                        tracing::debug!(error = %e, "group rolled back; replaying its commands one by one");
                    }
                    return Err(e);
                }
            }
        }
        if let Err(e) = tx.commit() {
            self.routes.clear();
            return Err(backend(e));
        }
        for stale in effects.stale_routes {
            match stale {
                Some(p) => {
                    self.routes.remove(&p);
                }
                None => self.routes.clear(),
            }
        }
        if effects.new_work {
            self.work.notify_one();
        }
        Ok(outputs)
    }
}

fn execute(
    tx: &Transaction<'_>,
    routes: &mut HashMap<String, Arc<Vec<RouteEntry>>>,
    cmd: &Command,
    effects: &mut Effects,
) -> Result<Output> {
    match cmd {
        Command::Bootstrap(init, _) => bootstrap(tx, init.clone()).map(Output::Platform),
        Command::CreatePlatform(p, _) => insert_platform(tx, p, false).map(|()| Output::Unit),
        Command::Commit(change, _) => {
            if change
                .writes
                .iter()
                .any(|w| matches!(w, Write::Endpoint(..)))
            {
                // The cache must not serve this group's later commands stale routes.
                routes.remove(&change.platform);
                effects.stale_routes.push(Some(change.platform.clone()));
            }
            commit(tx, routes, change, &mut effects.new_work).map(Output::Commit)
        }
        Command::Claim { request, .. } => claim(tx, request).map(Output::Claim),
        Command::Record(outcomes, _) => {
            let disabled = record(tx, outcomes, &mut effects.new_work)?;
            if disabled {
                routes.clear();
                effects.stale_routes.push(None);
            }
            Ok(Output::Unit)
        }
    }
}

fn bootstrap(c: &Connection, init: PlatformInit) -> Result<Platform> {
    let existing = c
        .query_row(
            "SELECT id, client_id, test_key, live_key, created FROM platforms WHERE is_default = 1",
            [],
            read::platform_row,
        )
        .optional()
        .map_err(backend)?;
    let mut platform = match existing {
        Some(p) => p,
        None => {
            insert_platform(c, &init.generated, true)?;
            init.generated
        }
    };
    if let Some(k) = init.test_key_override {
        platform.test_key = k;
    }
    if let Some(k) = init.live_key_override {
        platform.live_key = k;
    }
    c.execute(
        "UPDATE platforms SET test_key = ?2, live_key = ?3 WHERE id = ?1",
        params![platform.id, platform.test_key, platform.live_key],
    )
    .map_err(backend)?;
    Ok(platform)
}

fn insert_platform(c: &Connection, p: &Platform, is_default: bool) -> Result<()> {
    c.execute(
        "INSERT INTO platforms (id, client_id, test_key, live_key, created, is_default) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![p.id, p.client_id, p.test_key, p.live_key, p.created, is_default],
    )
    .map_err(backend)?;
    Ok(())
}

fn is_constraint(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

fn commit(
    c: &Connection,
    routes: &mut HashMap<String, Arc<Vec<RouteEntry>>>,
    change: &Change,
    new_work: &mut bool,
) -> Result<CommitOutcome> {
    if let Some(idem) = &change.idempotency {
        let scope = &idem.scope;
        let expired = change.now - switchboard_core::IDEMPOTENCY_TTL_SECS;
        // An expired record of the same key is replaced: the key is free again.
        let inserted = c
            .prepare_cached(
                "INSERT INTO idempotency (platform, livemode, account, key, fingerprint, status, body, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT DO UPDATE SET fingerprint = excluded.fingerprint, status = excluded.status,
                     body = excluded.body, created = excluded.created
                 WHERE idempotency.created <= ?9",
            )
            .and_then(|mut s| {
                s.execute(params![
                    scope.platform,
                    scope.livemode,
                    scope.account.as_deref().unwrap_or(""),
                    idem.key,
                    idem.response.fingerprint,
                    idem.response.status,
                    idem.response.body.as_ref(),
                    idem.created,
                    expired
                ])
            })
            .map_err(backend)?;
        // Expired records go a few at a time, with the requests that make new ones.
        c.prepare_cached(
            "DELETE FROM idempotency WHERE rowid IN
                 (SELECT rowid FROM idempotency WHERE created <= ?1 LIMIT 16)",
        )
        .and_then(|mut s| s.execute(params![expired]))
        .map_err(backend)?;
        if inserted == 0 {
            let stored = read::idempotent_response(c, scope, &idem.key, change.now)?
                .ok_or_else(|| StoreError::Backend("idempotency row vanished".into()))?;
            return Ok(CommitOutcome::Replay(stored));
        }
    }
    for w in &change.writes {
        match w {
            Write::Object(o) => write_object(c, o)?,
            Write::Endpoint(e, expected) => write_endpoint(c, e, *expected)?,
            Write::Resend {
                event_id,
                endpoint_id,
            } => {
                let n = c
                    .prepare_cached(
                        "INSERT INTO deliveries (event_seq, endpoint_seq, next_at_ms, one_shot)
                         SELECT e.seq, w.seq, ?3, 1 FROM events e, endpoints w WHERE e.id = ?1 AND w.id = ?2",
                    )
                    .and_then(|mut s| s.execute(params![event_id, endpoint_id, change.now_ms]))
                    .map_err(backend)?;
                *new_work |= n > 0;
            }
        }
    }
    if !change.events.is_empty() {
        let table = match routes.get(&change.platform) {
            Some(t) => t.clone(),
            None => {
                let t = Arc::new(load_routes(c, &change.platform)?);
                routes.insert(change.platform.clone(), t.clone());
                t
            }
        };
        for ev in &change.events {
            insert_event(c, change, &table, ev, new_work)?;
        }
    }
    Ok(CommitOutcome::Committed)
}

fn write_object(c: &Connection, o: &ObjectWrite) -> Result<()> {
    let obj = &o.object;
    let data = serde_json::to_string(&obj.data).map_err(|e| StoreError::Backend(e.to_string()))?;
    let n = match o.expected_version {
        None => c
            .prepare_cached(
                "INSERT INTO objects (id, platform, livemode, account, kind, created, version, deleted, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    obj.id,
                    o.scope.platform,
                    o.scope.livemode,
                    o.scope.account,
                    obj.kind,
                    obj.created,
                    obj.version,
                    obj.deleted,
                    data
                ])
            }),
        Some(v) => c
            .prepare_cached(
                "UPDATE objects SET version = ?2, deleted = ?3, data = ?4 WHERE id = ?1 AND version = ?5",
            )
            .and_then(|mut s| s.execute(params![obj.id, obj.version, obj.deleted, data, v])),
    };
    match n {
        Ok(1) => Ok(()),
        Ok(_) => Err(StoreError::Conflict),
        Err(e) if is_constraint(&e) => Err(StoreError::Conflict),
        Err(e) => Err(backend(e)),
    }
}

fn write_endpoint(c: &Connection, e: &EndpointRecord, expected: Option<i64>) -> Result<()> {
    let secrets: Vec<serde_json::Value> = e
        .secrets
        .iter()
        .map(|s| serde_json::json!({"secret": s.secret, "expires_at": s.expires_at}))
        .collect();
    let (events, metadata, secrets) = (
        to_json(&e.enabled_events),
        to_json(&e.metadata),
        to_json(&secrets),
    );
    let n = match expected {
        None => c.execute(
            "INSERT INTO endpoints (id, platform, livemode, version, created, url, connect, enabled, enabled_events,
                 api_version, description, metadata, secrets, deleted, failing_since, kind)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            params![
                e.id, e.platform, e.livemode, e.version, e.created, e.url, e.connect, e.enabled, events,
                e.api_version, e.description, metadata, secrets, e.deleted, e.failing_since,
                if e.listener { "listener" } else { "webhook" }
            ],
        ),
        // Re-enabling an endpoint forgets its failure streak.
        Some(v) => c.execute(
            "UPDATE endpoints SET version = ?2, url = ?3, enabled = ?4, enabled_events = ?5, description = ?6,
                 metadata = ?7, secrets = ?8, deleted = ?9,
                 failing_since = CASE WHEN enabled = 0 AND ?4 THEN NULL ELSE failing_since END
             WHERE id = ?1 AND version = ?10",
            params![e.id, e.version, e.url, e.enabled, events, e.description, metadata, secrets, e.deleted, v],
        ),
    };
    match n {
        Ok(1) => Ok(()),
        Ok(_) => Err(StoreError::Conflict),
        Err(e) if is_constraint(&e) => Err(StoreError::Conflict),
        Err(e) => Err(backend(e)),
    }
}

/// Serializing plain data to JSON cannot fail.
fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serializes")
}

fn load_routes(c: &Connection, platform: &str) -> Result<Vec<RouteEntry>> {
    let mut stmt = c
        .prepare_cached(
            "SELECT seq, livemode, connect, enabled, enabled_events, kind FROM endpoints WHERE platform = ?1 AND deleted = 0",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map([platform], |r| {
            let events: String = r.get(4)?;
            let audience = match (r.get::<_, String>(5)?.as_str(), r.get::<_, bool>(2)?) {
                ("listener", _) => Audience::Listener,
                (_, true) => Audience::Connect,
                (_, false) => Audience::Platform,
            };
            Ok(RouteEntry {
                seq: r.get(0)?,
                livemode: r.get(1)?,
                audience,
                enabled: r.get(3)?,
                enabled_events: serde_json::from_str(&events).unwrap_or_default(),
            })
        })
        .map_err(backend)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(backend)
}

fn insert_event(
    c: &Connection,
    change: &Change,
    table: &[RouteEntry],
    ev: &NewEvent,
    new_work: &mut bool,
) -> Result<()> {
    let draft = &ev.draft;
    let route = EventRoute {
        livemode: draft.livemode,
        account: draft.account.as_deref(),
        event_type: &draft.event_type,
    };
    let targets: Vec<i64> = table
        .iter()
        .filter(|e| {
            routing::receives(
                &EndpointRoute {
                    livemode: e.livemode,
                    audience: e.audience,
                    enabled: e.enabled,
                    enabled_events: &e.enabled_events,
                },
                &route,
            )
        })
        .map(|e| e.seq)
        .collect();
    let payload = draft.render(EventStamp {
        id: &ev.id,
        created: change.now,
        api_version: &change.api_version,
        pending_webhooks: targets.len() as i64,
    });
    c.prepare_cached(
        "INSERT INTO events (id, platform, livemode, account, type, created, pending_webhooks, payload)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            ev.id,
            change.platform,
            draft.livemode,
            draft.account,
            draft.event_type,
            change.now,
            targets.len() as i64,
            payload
        ])
    })
    .map_err(backend)?;
    let event_seq = c.last_insert_rowid();
    let mut stmt = c
        .prepare_cached(
            "INSERT INTO deliveries (event_seq, endpoint_seq, next_at_ms) VALUES (?1, ?2, ?3)",
        )
        .map_err(backend)?;
    for seq in targets {
        stmt.execute(params![event_seq, seq, change.now_ms])
            .map_err(backend)?;
        *new_work = true;
    }
    Ok(())
}

/// How many due rows one claim looks at, per delivery it may return: room to
/// skip past deliveries of endpoints that reached their per-claim share.
const SCAN_FACTOR: usize = 4;

fn claim(c: &Connection, req: &ClaimRequest) -> Result<Vec<ClaimedDelivery>> {
    let (now_ms, lease_ms, limit) = (req.now_ms, req.lease_ms, req.limit);
    let full: Vec<&String> = req
        .endpoint_room
        .iter()
        .filter(|(_, room)| **room == 0)
        .map(|(e, _)| e)
        .collect();
    let exclude = to_json(&full);
    let mut select = c
        .prepare_cached(
            "SELECT d.id, d.attempts, d.one_shot, e.id, e.payload, w.id, w.url, w.secrets, w.enabled, w.deleted,
                    d.event_seq, w.livemode
             FROM deliveries d
             JOIN events e ON e.seq = d.event_seq
             JOIN endpoints w ON w.seq = d.endpoint_seq
             WHERE d.state = 0 AND d.next_at_ms <= ?1
               AND d.endpoint_seq NOT IN
                   (SELECT seq FROM endpoints WHERE id IN (SELECT value FROM json_each(?3)))
             ORDER BY d.next_at_ms LIMIT ?2",
        )
        .map_err(backend)?;
    let rows = select
        .query_map(
            params![now_ms, (limit * SCAN_FACTOR) as i64, exclude],
            |r| {
                let payload: Vec<u8> = r.get(4)?;
                let secrets: String = r.get(7)?;
                let endpoint = match (r.get::<_, bool>(8)?, r.get::<_, bool>(9)?) {
                    (_, true) => Target::Deleted(r.get(10)?),
                    (false, false) => Target::Disabled,
                    (true, false) => Target::Live,
                };
                Ok((
                    ClaimedDelivery {
                        delivery_id: r.get(0)?,
                        attempt: r.get::<_, u32>(1)? + 1,
                        one_shot: r.get(2)?,
                        event_id: r.get(3)?,
                        payload: payload.into(),
                        endpoint_id: r.get(5)?,
                        url: r.get(6)?,
                        livemode: r.get(11)?,
                        secrets: active_secrets(&secrets, now_ms / 1000),
                    },
                    endpoint,
                ))
            },
        )
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    let mut lease = c
        .prepare_cached("UPDATE deliveries SET attempts = attempts + 1, next_at_ms = ?2, leased = 1 WHERE id = ?1")
        .map_err(backend)?;
    let mut cancel = c
        .prepare_cached("UPDATE deliveries SET state = 3 WHERE id = ?1")
        .map_err(backend)?;
    let mut out = Vec::with_capacity(limit);
    let mut per_endpoint: HashMap<String, usize> = HashMap::new();
    for (d, endpoint) in rows {
        match endpoint {
            Target::Live => {
                let taken = per_endpoint.entry(d.endpoint_id.clone()).or_default();
                let cap = req
                    .endpoint_room
                    .get(&d.endpoint_id)
                    .copied()
                    .unwrap_or(req.per_endpoint.max(1));
                if out.len() >= limit || *taken >= cap {
                    continue;
                }
                *taken += 1;
                lease
                    .execute(params![d.delivery_id, now_ms + lease_ms])
                    .map_err(backend)?;
                out.push(d);
            }
            Target::Disabled => {
                cancel.execute([d.delivery_id]).map_err(backend)?;
            }
            // A deleted endpoint is no longer owed the event.
            Target::Deleted(event_seq) => {
                cancel.execute([d.delivery_id]).map_err(backend)?;
                if !d.one_shot {
                    c.prepare_cached(
                        "UPDATE events SET pending_webhooks = pending_webhooks - 1 WHERE seq = ?1 AND pending_webhooks > 0",
                    )
                    .and_then(|mut s| s.execute([event_seq]))
                    .map_err(backend)?;
                }
            }
        }
    }
    Ok(out)
}

/// What a due delivery's endpoint allows.
enum Target {
    Live,
    /// Retries stop while disabled; the event stays undelivered.
    Disabled,
    /// The endpoint is gone; the row holds the event's seq.
    Deleted(i64),
}

fn active_secrets(json: &str, now: i64) -> Vec<String> {
    let all: Vec<serde_json::Value> = serde_json::from_str(json).unwrap_or_default();
    all.into_iter()
        .filter(|s| s["expires_at"].as_i64().is_none_or(|exp| exp > now))
        .filter_map(|s| s["secret"].as_str().map(str::to_owned))
        .collect()
}

/// Returns whether an endpoint was disabled.
fn record(c: &Connection, outcomes: &[DeliveryOutcome], new_work: &mut bool) -> Result<bool> {
    let mut disabled = false;
    let mut insert = c
        .prepare_cached(
            "INSERT INTO attempts (platform, delivery_id, event_id, endpoint_id, attempt, started_at_ms, duration_ms,
                 status_code, error, response_body, succeeded, next_action, next_at_ms, chaos)
             SELECT w.platform, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13 FROM endpoints w WHERE w.id = ?3",
        )
        .map_err(backend)?;
    for o in outcomes {
        let a = &o.attempt;
        let (action, next_at) = match o.next {
            Next::Done if a.succeeded => (NextAction::Done, None),
            Next::Done => (NextAction::OneShot, None),
            Next::RetryAt(t) => (NextAction::Retry, Some(t)),
            Next::GiveUp => (NextAction::GiveUp, None),
        };
        insert
            .execute(params![
                o.delivery_id,
                a.event_id,
                a.endpoint_id,
                a.attempt,
                a.started_at_ms,
                a.duration_ms,
                a.status_code,
                a.error.map(AttemptError::as_str),
                a.response_body,
                a.succeeded,
                action.as_str(),
                next_at,
                (!a.chaos.is_empty()).then(|| a.chaos.join(","))
            ])
            .map_err(backend)?;
        // One statement moves the delivery on and says what it belonged to.
        // The attempt number guards against a stale claimer whose lease expired.
        macro_rules! moving {
            ($set:literal) => {
                concat!(
                    "UPDATE deliveries SET ",
                    $set,
                    " WHERE id = ?1 AND state = 0 AND attempts = ?2 RETURNING event_seq, endpoint_seq, one_shot"
                )
            };
        }
        let moved = |sql: &str, extra: Option<i64>| -> Result<Option<(i64, i64, bool)>> {
            let row = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?, r.get(2)?));
            c.prepare_cached(sql)
                .and_then(|mut st| match extra {
                    Some(x) => st
                        .query_row(params![o.delivery_id, a.attempt, x], row)
                        .optional(),
                    None => st
                        .query_row(params![o.delivery_id, a.attempt], row)
                        .optional(),
                })
                .map_err(backend)
        };
        let exec = |sql: &str, p: &[&dyn rusqlite::ToSql]| {
            c.prepare_cached(sql)
                .and_then(|mut s| s.execute(p))
                .map_err(backend)
        };
        if a.succeeded {
            let Some((event_seq, endpoint_seq, one_shot)) =
                moved(moving!("state = 1, leased = 0"), None)?
            else {
                continue;
            };
            if !one_shot {
                exec(
                    "UPDATE events SET pending_webhooks = pending_webhooks - 1 WHERE seq = ?1 AND pending_webhooks > 0",
                    &[&event_seq],
                )?;
            }
            exec(
                "UPDATE endpoints SET failing_since = NULL WHERE seq = ?1 AND failing_since IS NOT NULL",
                &[&endpoint_seq],
            )?;
            continue;
        }
        let row = match o.next {
            Next::RetryAt(t) => moved(moving!("next_at_ms = ?3, leased = 0"), Some(t))?,
            Next::GiveUp | Next::Done => moved(moving!("state = 2, leased = 0"), None)?,
        };
        let Some((_, endpoint_seq, one_shot)) = row else {
            continue;
        };
        exec(
            "UPDATE endpoints SET failing_since = ?2 WHERE seq = ?1 AND failing_since IS NULL",
            &[&endpoint_seq, &o.now_ms],
        )?;
        match o.next {
            Next::RetryAt(_) => *new_work = true,
            Next::GiveUp | Next::Done => {
                if !one_shot {
                    disabled |= exec(
                        "UPDATE endpoints SET enabled = 0, version = version + 1
                         WHERE seq = ?1 AND enabled = 1 AND failing_since IS NOT NULL AND failing_since <= ?2",
                        &[&endpoint_seq, &(o.now_ms - o.disable_after_ms)],
                    )? > 0;
                }
            }
        }
    }
    Ok(disabled)
}
