//! The writer thread: group commit of every write command, the engine's
//! logic run over SQLite's primitives ([`SqliteTx`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};
use switchboard_core::attempt::{AttemptError, NextAction};
use switchboard_core::delivery::{DeliveryState, Move};
use tokio::sync::{Notify, mpsc, oneshot};

use super::{MAX_GROUP, backend, read};
use crate::engine::{self, Due, EventRow, Moved, RouteEntry, Target, Tx};
use crate::*;
use switchboard_core::ids::live_key_at_rest;

type Reply<T> = oneshot::Sender<Result<T>>;

pub(super) enum Command {
    Bootstrap(PlatformInit, Reply<Platform>),
    CreatePlatform(Platform, Reply<()>),
    SetPlatformKeys {
        id: String,
        test_key: String,
        live_key: String,
        reply: Reply<u64>,
    },
    Commit(Box<Change>, Reply<CommitOutcome>),
    Claim {
        request: ClaimRequest,
        reply: Reply<Vec<ClaimedDelivery>>,
    },
    Record(Vec<DeliveryOutcome>, Reply<u64>),
    HoldListener(ListenerHold, Reply<()>),
    BeginIdempotent {
        scope: Scope,
        key: String,
        fingerprint: String,
        now: i64,
        reply: Reply<Begun>,
    },
    AbandonIdempotent(Scope, String, Reply<()>),
    AdvanceClock(String, i64, Reply<i64>),
    /// A write that changes a row and nothing else: whether storage takes
    /// writes again after a fault (see `StorageFault`).
    Probe(Reply<()>),
    /// Ends the writer once the commands before it are done; answered after
    /// the connection and the lock are released.
    Close(oneshot::Sender<()>),
}

/// What one command produced, sent only once its group has committed.
enum Output {
    Platform(Platform),
    Unit,
    Commit(CommitOutcome),
    Claim(Vec<ClaimedDelivery>),
    Begun(Begun),
    Count(u64),
    Offset(i64),
}

impl Command {
    fn answer(self, result: Result<Output>) {
        fn pick<T>(r: Result<Output>, f: impl FnOnce(Output) -> Option<T>) -> Result<T> {
            r.and_then(|o| f(o).ok_or_else(|| StoreError::backend("mismatched writer output")))
        }
        // A dropped receiver means the caller went away; nothing to do.
        match self {
            Command::Bootstrap(_, tx) => {
                let _ = tx.send(pick(result, |o| match o {
                    Output::Platform(p) => Some(p),
                    _ => None,
                }));
            }
            Command::Record(_, tx) | Command::SetPlatformKeys { reply: tx, .. } => {
                let _ = tx.send(pick(result, |o| match o {
                    Output::Count(n) => Some(n),
                    _ => None,
                }));
            }
            Command::AdvanceClock(_, _, tx) => {
                let _ = tx.send(pick(result, |o| match o {
                    Output::Offset(n) => Some(n),
                    _ => None,
                }));
            }
            Command::CreatePlatform(_, tx)
            | Command::HoldListener(_, tx)
            | Command::AbandonIdempotent(_, _, tx)
            | Command::Probe(tx) => {
                let _ = tx.send(pick(result, |o| matches!(o, Output::Unit).then_some(())));
            }
            Command::Commit(_, tx) => {
                let _ = tx.send(pick(result, |o| match o {
                    Output::Commit(c) => Some(c),
                    _ => None,
                }));
            }
            Command::Claim { reply, .. } => {
                let _ = reply.send(pick(result, |o| match o {
                    Output::Claim(c) => Some(c),
                    _ => None,
                }));
            }
            Command::BeginIdempotent { reply, .. } => {
                let _ = reply.send(pick(result, |o| match o {
                    Output::Begun(b) => Some(b),
                    _ => None,
                }));
            }
            Command::Close(_) => {}
        }
    }
}

type Routes = HashMap<String, Arc<Vec<RouteEntry>>>;

pub(super) struct Writer {
    conn: Connection,
    work: Arc<Notify>,
    /// Endpoints by platform. Every endpoint write goes through this thread,
    /// so the cache is invalidated exactly when it can go stale.
    routes: Routes,
    /// Held for the life of the writer: the database belongs to this process.
    _lock: std::fs::File,
    /// Checked before every transaction: never commit into a deleted file.
    identity: super::FileIdentity,
    fault: Arc<super::StorageFault>,
    sealed: Arc<crate::secrets::SecretBox>,
    handoff: Arc<crate::handoff::HandoffSlot>,
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        work: Arc<Notify>,
        lock: std::fs::File,
        identity: super::FileIdentity,
        fault: Arc<super::StorageFault>,
        sealed: Arc<crate::secrets::SecretBox>,
        handoff: Arc<crate::handoff::HandoffSlot>,
    ) -> Self {
        Writer {
            conn,
            work,
            routes: HashMap::new(),
            _lock: lock,
            identity,
            fault,
            sealed,
            handoff,
        }
    }

    pub(super) fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut batch = Vec::with_capacity(MAX_GROUP);
        let mut closed = None;
        while let Some(first) = rx.blocking_recv() {
            batch.push(first);
            while batch.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(cmd) => batch.push(cmd),
                    Err(_) => break,
                }
            }
            if let Some(i) = batch.iter().position(|c| matches!(c, Command::Close(_))) {
                // Commands after the close are refused (their senders see `Closed`).
                if let Command::Close(done) = batch.remove(i) {
                    closed = Some(done);
                }
                batch.truncate(i);
            }
            self.run_group(&mut batch);
            if closed.is_some() {
                break;
            }
        }
        rx.close();
        drop(self); // the connection and the lock file go first
        if let Some(done) = closed {
            let _ = done.send(());
        }
    }

    /// Commits the whole group in one transaction. Commands rarely fail, so
    /// there are no per-command savepoints (their sub-journals cost more than
    /// the work); if one fails, the group is rolled back and each command
    /// runs again in a transaction of its own.
    fn run_group(&mut self, batch: &mut Vec<Command>) {
        let commands = std::mem::take(batch);
        if commands.is_empty() {
            return;
        }
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

    /// Runs `commands` in one transaction and keeps the storage's health
    /// (`StorageFault`) up to date: a fault sets it, and a commit that wrote
    /// something clears it (one that wrote nothing proves nothing).
    fn transaction(&mut self, commands: &[Command], group: bool) -> Result<Vec<Output>> {
        let before = self.conn.total_changes();
        let result = self.try_transaction(commands, group);
        match &result {
            Err(StoreError::Unavailable(why)) => self.fault.set(Some(why.clone())),
            Ok(_) if self.conn.total_changes() > before => self.fault.set(None),
            _ => {}
        }
        result
    }

    /// Runs `commands` in one transaction; the first failure rolls it back.
    fn try_transaction(&mut self, commands: &[Command], group: bool) -> Result<Vec<Output>> {
        // BEGIN/COMMIT as cached statements: rusqlite's `Transaction`
        // prepares both anew every time (2 % of the writer's instructions).
        let run = |c: &Connection, sql: &str| {
            c.prepare_cached(sql)
                .and_then(|mut s| s.execute([]))
                .map_err(backend)
        };
        run(&self.conn, "BEGIN IMMEDIATE")?;
        let mut sql = SqliteTx {
            c: &self.conn,
            routes: &mut self.routes,
            sealed: &self.sealed,
            new_work: false,
            handing: self.handoff.begin(),
        };
        let mut outputs = Vec::with_capacity(commands.len());
        let mut failed = None;
        for cmd in commands {
            match sql.execute(cmd) {
                Ok(o) => outputs.push(o),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let (new_work, handing) = (sql.new_work, sql.handing.take());
        let committed = match failed {
            None => run(&self.conn, "COMMIT"),
            Some(e) => Err(e),
        };
        if let Err(e) = committed {
            // After a failed COMMIT the transaction may still be open.
            if !self.conn.is_autocommit()
                && let Err(rollback) = run(&self.conn, "ROLLBACK")
            {
                tracing::error!(error = %rollback, "rollback failed");
            }
            // Routes read inside the failed transaction may include its writes.
            self.routes.clear();
            if group {
                tracing::debug!(error = %e, "group rolled back; replaying its commands one by one");
            }
            return Err(e);
        }
        if let Some(h) = handing {
            h.deliver();
        }
        if new_work {
            self.work.notify_one();
        }
        Ok(outputs)
    }
}

/// Runs an engine future whose primitives are all SQLite's: they never wait,
/// so one poll completes it.
fn run_now<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => unreachable!("SQLite's primitives never wait"),
    }
}

/// The engine's primitives on the writer's transaction.
struct SqliteTx<'a> {
    c: &'a Connection,
    /// The writer's routes cache: endpoint writes evict their platform at
    /// once, so later commands of the same group never route stale.
    routes: &'a mut Routes,
    sealed: &'a crate::secrets::SecretBox,
    new_work: bool,
    /// Deliveries this transaction hands to the local dispatcher once it commits.
    handing: Option<crate::handoff::Handing>,
}

impl SqliteTx<'_> {
    fn execute(&mut self, cmd: &Command) -> Result<Output> {
        match cmd {
            Command::Bootstrap(init, _) => bootstrap(self.c, init.clone()).map(Output::Platform),
            Command::CreatePlatform(p, _) => {
                insert_platform(self.c, p, false).map(|()| Output::Unit)
            }
            Command::SetPlatformKeys {
                id,
                test_key,
                live_key,
                ..
            } => self
                .exec(
                    "UPDATE platforms SET test_key = ?2, live_key = ?3 WHERE id = ?1",
                    params![id, test_key, live_key_at_rest(live_key)],
                )
                .map(|n| Output::Count(n as u64)),
            Command::Commit(change, _) => {
                let (outcome, work) = run_now(engine::commit(self, change))?;
                self.new_work |= work;
                Ok(Output::Commit(outcome))
            }
            Command::Claim { request, .. } => {
                run_now(engine::claim(self, request)).map(Output::Claim)
            }
            Command::Record(outcomes, _) => {
                let (work, disabled) = run_now(engine::record(self, outcomes))?;
                self.new_work |= work;
                Ok(Output::Count(disabled))
            }
            Command::HoldListener(hold, _) => {
                run_now(engine::hold_listener(self, hold)).map(|()| Output::Unit)
            }
            Command::BeginIdempotent {
                scope,
                key,
                fingerprint,
                now,
                ..
            } => run_now(engine::begin_idempotent(
                self,
                scope,
                key,
                fingerprint,
                *now,
            ))
            .map(Output::Begun),
            Command::AbandonIdempotent(scope, key, _) => {
                run_now(self.abandon_idempotency(scope, key)).map(|()| Output::Unit)
            }
            Command::AdvanceClock(platform, by_ms, _) => {
                run_now(engine::advance_test_clock(self, platform, *by_ms)).map(Output::Offset)
            }
            Command::Probe(_) => self
                .exec(
                    "UPDATE platforms SET created = created
                     WHERE rowid = (SELECT min(rowid) FROM platforms)",
                    [],
                )
                .map(|_| Output::Unit),
            Command::Close(_) => Ok(Output::Unit),
        }
    }

    fn exec(&self, sql: &str, p: impl rusqlite::Params) -> Result<usize> {
        self.c
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(p))
            .map_err(backend)
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
        params![
            platform.id,
            platform.test_key,
            live_key_at_rest(&platform.live_key)
        ],
    )
    .map_err(backend)?;
    // The caller sees the live key whole only when it was just made or given.
    Ok(platform)
}

fn insert_platform(c: &Connection, p: &Platform, is_default: bool) -> Result<()> {
    c.execute(
        "INSERT INTO platforms (id, client_id, test_key, live_key, created, is_default) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![p.id, p.client_id, p.test_key, live_key_at_rest(&p.live_key), p.created, is_default],
    )
    .map_err(backend)?;
    Ok(())
}

fn is_constraint(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

/// One row written, or a lost optimistic race.
fn one_row(n: rusqlite::Result<usize>) -> Result<()> {
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

impl Tx for SqliteTx<'_> {
    async fn put_idempotency(&mut self, idem: &IdempotencyRecord, expired: i64) -> Result<bool> {
        let scope = &idem.scope;
        // An expired record of the same key is replaced: the key is free again.
        let n = self.exec(
            "INSERT INTO idempotency (platform, livemode, account, key, fingerprint, status, body, created)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT DO UPDATE SET fingerprint = excluded.fingerprint, status = excluded.status,
                 body = excluded.body, created = excluded.created
             WHERE idempotency.created <= ?9 OR idempotency.status = 0",
            params![
                scope.platform,
                scope.livemode,
                scope.account.as_deref().unwrap_or(""),
                idem.key,
                idem.response.fingerprint,
                idem.response.status,
                idem.response.body.as_ref(),
                idem.created,
                expired
            ],
        )?;
        Ok(n > 0)
    }

    async fn reserve_idempotency(&mut self, r: &engine::Reserve<'_>) -> Result<bool> {
        // status 0: in flight, no answer yet.
        let n = self.exec(
            "INSERT INTO idempotency (platform, livemode, account, key, fingerprint, status, body, created)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, x'', ?6)
             ON CONFLICT DO UPDATE SET fingerprint = excluded.fingerprint, status = 0, body = x'',
                 created = excluded.created
             WHERE idempotency.created <= ?7 OR (idempotency.status = 0 AND idempotency.created <= ?8)",
            params![
                r.scope.platform,
                r.scope.livemode,
                r.scope.account.as_deref().unwrap_or(""),
                r.key,
                r.fingerprint,
                r.now,
                r.expired,
                r.stale
            ],
        )?;
        Ok(n > 0)
    }

    async fn abandon_idempotency(&mut self, scope: &Scope, key: &str) -> Result<()> {
        self.exec(
            "DELETE FROM idempotency WHERE platform = ?1 AND livemode = ?2 AND account = ?3 AND key = ?4 AND status = 0",
            params![scope.platform, scope.livemode, scope.account.as_deref().unwrap_or(""), key],
        )
        .map(drop)
    }

    async fn purge_idempotency(&mut self, expired: i64) -> Result<()> {
        self.exec(
            "DELETE FROM idempotency WHERE rowid IN
                 (SELECT rowid FROM idempotency WHERE created <= ?1 LIMIT 16)",
            params![expired],
        )
        .map(drop)
    }

    async fn idempotent_response(
        &mut self,
        scope: &Scope,
        key: &str,
        now: i64,
    ) -> Result<Option<StoredResponse>> {
        read::idempotent_response(self.c, scope, key, now)
    }

    async fn write_timer(&mut self, t: &Timer) -> Result<()> {
        match t.due_ms {
            Some(due) => self.exec(
                "INSERT INTO timers (object_id, platform, livemode, account, kind, due_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (object_id) DO UPDATE SET due_ms = excluded.due_ms",
                params![t.object_id, t.scope.platform, t.scope.livemode, t.scope.account, t.kind, due],
            ),
            None => self.exec("DELETE FROM timers WHERE object_id = ?1", params![t.object_id]),
        }
        .map(drop)
    }

    async fn add_clock_offset(&mut self, platform: &str, by_ms: i64) -> Result<i64> {
        self.exec(
            "INSERT INTO test_clocks (platform, offset_ms) VALUES (?1, ?2)
             ON CONFLICT (platform) DO UPDATE SET offset_ms = offset_ms + excluded.offset_ms",
            params![platform, by_ms],
        )?;
        self.c
            .query_row(
                "SELECT offset_ms FROM test_clocks WHERE platform = ?1",
                [platform],
                |r| r.get(0),
            )
            .map_err(backend)
    }

    async fn bring_forward(&mut self, platform: &str, by_ms: i64) -> Result<()> {
        self.exec(
            "UPDATE timers SET due_ms = due_ms - ?2 WHERE platform = ?1 AND livemode = 0",
            params![platform, by_ms],
        )?;
        let moved = self.exec(
            "UPDATE deliveries SET next_at_ms = next_at_ms - ?2 WHERE state = 0 AND leased = 0
             AND endpoint_seq IN (SELECT seq FROM endpoints WHERE platform = ?1 AND livemode = 0)",
            params![platform, by_ms],
        )?;
        self.new_work |= moved > 0;
        Ok(())
    }

    async fn write_object(&mut self, o: &ObjectWrite) -> Result<()> {
        let obj = &o.object;
        let data = to_json(&obj.data);
        one_row(match o.expected_version {
            None => self
                .c
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
            Some(v) => self
                .c
                .prepare_cached(
                    "UPDATE objects SET version = ?2, deleted = ?3, data = ?4 WHERE id = ?1 AND version = ?5",
                )
                .and_then(|mut s| s.execute(params![obj.id, obj.version, obj.deleted, data, v])),
        })
    }

    async fn write_endpoint(&mut self, e: &EndpointRecord, expected: Option<i64>) -> Result<()> {
        // The cache must not serve this group's later commands stale routes.
        self.routes.remove(&e.platform);
        let (events, metadata, secrets) = (
            to_json(&e.enabled_events),
            to_json(&e.metadata),
            engine::secrets_json(&e.secrets, self.sealed),
        );
        let destination = e.destination.as_ref().map(to_json);
        one_row(match expected {
            None => self.c.execute(
                "INSERT INTO endpoints (id, platform, livemode, version, created, url, connect, enabled, enabled_events,
                     api_version, description, metadata, secrets, deleted, failing_since, kind, chaos, destination)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                params![
                    e.id, e.platform, e.livemode, e.version, e.created, e.url, e.connect, e.enabled, events,
                    e.api_version, e.description, metadata, secrets, e.deleted, e.failing_since,
                    e.kind(), e.chaos, destination
                ],
            ),
            // Re-enabling an endpoint forgets its failure streak.
            Some(v) => self.c.execute(
                "UPDATE endpoints SET version = ?2, url = ?3, enabled = ?4, enabled_events = ?5, description = ?6,
                     metadata = ?7, secrets = ?8, deleted = ?9, chaos = ?11, destination = ?12,
                     failing_since = CASE WHEN enabled = 0 AND ?4 THEN NULL ELSE failing_since END
                 WHERE id = ?1 AND version = ?10",
                params![e.id, e.version, e.url, e.enabled, events, e.description, metadata, secrets, e.deleted, v, e.chaos, destination],
            ),
        })
    }

    async fn queue_resend(
        &mut self,
        event_id: &str,
        endpoint_id: &str,
        due_ms: i64,
    ) -> Result<bool> {
        let n = self.exec(
            "INSERT INTO deliveries (event_seq, endpoint_seq, next_at_ms, one_shot)
             SELECT e.seq, w.seq, ?3, 1 FROM events e, endpoints w WHERE e.id = ?1 AND w.id = ?2",
            params![event_id, endpoint_id, due_ms],
        )?;
        Ok(n > 0)
    }

    async fn routes(&mut self, platform: &str) -> Result<Arc<Vec<RouteEntry>>> {
        if let Some(t) = self.routes.get(platform) {
            return Ok(t.clone());
        }
        let mut stmt = self
            .c
            .prepare_cached(
                "SELECT seq, livemode, connect, enabled, enabled_events, kind, id, url, secrets, chaos, destination
                 FROM endpoints WHERE platform = ?1 AND deleted = 0",
            )
            .map_err(backend)?;
        let sealed = self.sealed;
        let rows = stmt
            .query_map([platform], |r| {
                let events: String = r.get(4)?;
                let secrets = engine::parse_secrets(r.get_ref(8)?.as_str()?, sealed).ok();
                let (audience, thin) = RouteEntry::audience(
                    r.get_ref(5)?.as_str()?,
                    r.get(2)?,
                    r.get_ref(10)?.as_str_or_null()?,
                );
                Ok(RouteEntry {
                    seq: r.get(0)?,
                    livemode: r.get(1)?,
                    audience,
                    enabled: r.get(3)?,
                    enabled_events: serde_json::from_str(&events).unwrap_or_default(),
                    id: r.get(6)?,
                    url: r.get(7)?,
                    secrets,
                    chaos: r.get(9)?,
                    thin,
                })
            })
            .map_err(backend)?;
        let table = Arc::new(rows.collect::<Result<Vec<_>, _>>().map_err(backend)?);
        self.routes.insert(platform.to_owned(), table.clone());
        Ok(table)
    }

    async fn insert_event(&mut self, row: EventRow<'_>) -> Result<i64> {
        self.exec(
            "INSERT INTO events (id, platform, livemode, account, type, created, pending_webhooks, payload, thin_payload)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                row.id,
                row.platform,
                row.livemode,
                row.account,
                row.event_type,
                row.created,
                row.pending_webhooks,
                row.payload.as_ref(),
                row.thin_payload.as_deref()
            ],
        )?;
        Ok(self.c.last_insert_rowid())
    }

    async fn insert_deliveries(
        &mut self,
        event_seq: i64,
        endpoints: &[i64],
        due_ms: i64,
    ) -> Result<()> {
        let mut stmt = self
            .c
            .prepare_cached(
                "INSERT INTO deliveries (event_seq, endpoint_seq, next_at_ms) VALUES (?1, ?2, ?3)",
            )
            .map_err(backend)?;
        for seq in endpoints {
            stmt.execute(params![event_seq, seq, due_ms])
                .map_err(backend)?;
        }
        Ok(())
    }

    async fn insert_leased(&mut self, event_seq: i64, endpoint: i64, until_ms: i64) -> Result<i64> {
        self.exec(
            "INSERT INTO deliveries (event_seq, endpoint_seq, next_at_ms, attempts, leased) VALUES (?1, ?2, ?3, 1, 1)",
            params![event_seq, endpoint, until_ms],
        )?;
        Ok(self.c.last_insert_rowid())
    }

    fn handing(&mut self) -> Option<&mut crate::handoff::Handing> {
        self.handing.as_mut()
    }

    async fn due(&mut self, req: &ClaimRequest, scan: usize) -> Result<Vec<Due>> {
        // `LIMIT (SELECT ?2)`, not a bare bound limit: SQLite's planner reads
        // that as a hint, so every new binding expired the cached
        // statement and re-prepared it (23 % of all instructions per event;
        // see BENCHMARKS.md). `tidy.rs` keeps them out.
        let full: Vec<&String> = req
            .endpoint_room
            .iter()
            .filter(|(_, room)| **room == 0)
            .map(|(e, _)| e)
            .collect();
        let mut select = self
            .c
            .prepare_cached(
                "SELECT d.id, d.attempts, d.one_shot, e.id,
                        CASE WHEN json_extract(w.destination, '$.event_payload') = 'thin'
                             THEN coalesce(e.thin_payload, e.payload) ELSE e.payload END,
                        w.id, w.url, w.secrets, w.enabled, w.deleted,
                        d.event_seq, w.livemode, CASE WHEN w.kind = 'listener' THEN w.platform END, w.chaos
                 FROM deliveries d
                 JOIN events e ON e.seq = d.event_seq
                 JOIN endpoints w ON w.seq = d.endpoint_seq
                 WHERE d.state = 0 AND d.next_at_ms <= ?1
                   AND d.endpoint_seq NOT IN
                       (SELECT seq FROM endpoints WHERE id IN (SELECT value FROM json_each(?3)))
                 ORDER BY d.next_at_ms LIMIT (SELECT ?2)",
            )
            .map_err(backend)?;
        let now = req.now_ms / 1000;
        let memo = std::cell::RefCell::new(engine::SecretsMemo::new(now, self.sealed));
        select
            .query_map(params![req.now_ms, scan as i64, to_json(&full)], |r| {
                let payload: Vec<u8> = r.get(4)?;
                let secrets = r.get_ref(7)?.as_str()?;
                let secrets = memo.borrow_mut().active(secrets).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        7,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    )
                })?;
                let target = match (r.get::<_, bool>(8)?, r.get::<_, bool>(9)?) {
                    (_, true) => Target::Deleted,
                    (false, false) => Target::Disabled,
                    (true, false) => Target::Live,
                };
                Ok(Due {
                    delivery: ClaimedDelivery {
                        delivery_id: r.get(0)?,
                        attempt: r.get::<_, u32>(1)? + 1,
                        one_shot: r.get(2)?,
                        event_id: r.get(3)?,
                        payload: Bytes::from(payload),
                        endpoint_id: r.get(5)?,
                        url: r.get(6)?,
                        livemode: r.get(11)?,
                        secrets,
                        chaos: r.get(13)?,
                    },
                    target,
                    event_seq: r.get(10)?,
                    listener: r.get(12)?,
                })
            })
            .map_err(backend)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)
    }

    async fn lease(&mut self, deliveries: &[i64], until_ms: i64) -> Result<()> {
        let mut stmt = self
            .c
            .prepare_cached(
                "UPDATE deliveries SET attempts = attempts + 1, next_at_ms = ?2, leased = 1 WHERE id = ?1",
            )
            .map_err(backend)?;
        for id in deliveries {
            stmt.execute(params![id, until_ms]).map_err(backend)?;
        }
        Ok(())
    }

    async fn cancel(&mut self, delivery: i64) -> Result<()> {
        self.exec(
            "UPDATE deliveries SET state = ?2 WHERE id = ?1",
            params![delivery, DeliveryState::Cancelled.code()],
        )
        .map(drop)
    }

    async fn settle_pending(&mut self, event_seq: i64) -> Result<()> {
        self.exec(
            "UPDATE events SET pending_webhooks = pending_webhooks - 1 WHERE seq = ?1 AND pending_webhooks > 0",
            [event_seq],
        )
        .map(drop)
    }

    async fn insert_attempt(
        &mut self,
        delivery: i64,
        a: &AttemptRecord,
        action: NextAction,
        next_at_ms: Option<i64>,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO attempts (platform, delivery_id, event_id, endpoint_id, attempt, started_at_ms, duration_ms,
                 status_code, error, response_body, succeeded, next_action, next_at_ms, chaos)
             SELECT w.platform, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13 FROM endpoints w WHERE w.id = ?3",
            params![
                delivery,
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
                next_at_ms,
                (!a.chaos.is_empty()).then(|| a.chaos.join(","))
            ],
        )
        .map(drop)
    }

    async fn move_delivery(
        &mut self,
        delivery: i64,
        attempt: u32,
        to: Move,
    ) -> Result<Option<Moved>> {
        // One statement moves the delivery on and says what it belonged to;
        // only a retry touches `next_at_ms` (an indexed column: setting it
        // costs an index write the other moves do not need).
        const RETRY: &str = "UPDATE deliveries SET leased = 0, next_at_ms = ?3
             WHERE id = ?1 AND state = 0 AND attempts = ?2 RETURNING event_seq, endpoint_seq, one_shot";
        const SETTLE: &str = "UPDATE deliveries SET state = ?3, leased = 0
             WHERE id = ?1 AND state = 0 AND attempts = ?2 RETURNING event_seq, endpoint_seq, one_shot";
        let (sql, third) = match to {
            Move::Retry(t) => (RETRY, t),
            Move::Succeed | Move::Fail => (SETTLE, i64::from(to.state().code())),
        };
        self.c
            .prepare_cached(sql)
            .and_then(|mut s| {
                s.query_row(params![delivery, attempt, third], |r| {
                    Ok(Moved {
                        event_seq: r.get(0)?,
                        endpoint_seq: r.get(1)?,
                        one_shot: r.get(2)?,
                    })
                })
                .optional()
            })
            .map_err(backend)
    }

    async fn end_streak(&mut self, endpoint_seq: i64) -> Result<()> {
        self.exec(
            "UPDATE endpoints SET failing_since = NULL WHERE seq = ?1 AND failing_since IS NOT NULL",
            [endpoint_seq],
        )
        .map(drop)
    }

    async fn continue_streak(&mut self, endpoint_seq: i64, now_ms: i64) -> Result<()> {
        self.exec(
            "UPDATE endpoints SET failing_since = ?2 WHERE seq = ?1 AND failing_since IS NULL",
            params![endpoint_seq, now_ms],
        )
        .map(drop)
    }

    async fn disable_failing(&mut self, endpoint_seq: i64, cutoff_ms: i64) -> Result<bool> {
        let n = self.exec(
            "UPDATE endpoints SET enabled = 0, version = version + 1
             WHERE seq = ?1 AND enabled = 1 AND failing_since IS NOT NULL AND failing_since <= ?2",
            params![endpoint_seq, cutoff_ms],
        )?;
        if n > 0 {
            self.routes.clear();
        }
        Ok(n > 0)
    }

    async fn put_presence(
        &mut self,
        endpoint_id: &str,
        node: &str,
        until_ms: Option<i64>,
    ) -> Result<()> {
        match until_ms {
            Some(until) => self.exec(
                "INSERT INTO listener_presence (endpoint_id, node, until_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO UPDATE SET until_ms = excluded.until_ms",
                params![endpoint_id, node, until],
            ),
            None => self.exec(
                "DELETE FROM listener_presence WHERE endpoint_id = ?1 AND node = ?2",
                params![endpoint_id, node],
            ),
        }
        .map(drop)
    }

    async fn holders(&mut self, endpoint_id: &str, now_ms: i64) -> Result<Vec<String>> {
        let mut stmt = self
            .c
            .prepare_cached(
                "SELECT node FROM listener_presence WHERE endpoint_id = ?1 AND until_ms > ?2",
            )
            .map_err(backend)?;
        stmt.query_map(params![endpoint_id, now_ms], |r| r.get(0))
            .map_err(backend)?
            .collect::<Result<Vec<String>, _>>()
            .map_err(backend)
    }

    async fn set_listener_enabled(
        &mut self,
        platform: &str,
        endpoint_id: &str,
        enabled: bool,
    ) -> Result<()> {
        let n = self.exec(
            "UPDATE endpoints SET enabled = ?2, version = version + 1 WHERE id = ?1 AND kind = 'listener' AND enabled <> ?2",
            params![endpoint_id, enabled],
        )?;
        if n > 0 {
            self.routes.remove(platform);
        }
        Ok(())
    }
}
