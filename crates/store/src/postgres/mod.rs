//! The PostgreSQL store: several Switchboard nodes on one database.
//!
//! Everything nodes share lives in the database: objects, events, the
//! delivery queue (claimed with `FOR UPDATE SKIP LOCKED` in short
//! transactions, then leased: no row lock is held across an HTTP call),
//! idempotency keys, endpoint state. Each node caches routing tables, valid
//! while their platform's `routes_version` (bumped in every transaction that
//! writes an endpoint) is unchanged. Commits that queue deliveries `NOTIFY`
//! every node's dispatcher; the dispatcher's own poll covers a lost
//! notification.

mod read;
mod tx;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::engine::{self, RouteEntry};
use crate::*;
use switchboard_core::ids::live_key_at_rest;
use tx::PgTx;

/// Versioned migrations, applied in order, each once, under an advisory lock.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("migrations/0001_init.sql")),
    (2, include_str!("migrations/0002_listener_presence.sql")),
    (3, include_str!("migrations/0003_timers.sql")),
    (4, include_str!("migrations/0004_endpoint_chaos.sql")),
    (5, include_str!("migrations/0005_event_destinations.sql")),
    (6, include_str!("migrations/0006_thin_events.sql")),
];
/// The advisory lock nodes take to migrate one at a time ("SWBD").
const MIGRATION_LOCK: i64 = 0x5357_4244;
/// The channel commits notify when they queue deliveries.
const WORK_CHANNEL: &str = "switchboard_work";
/// Connections per node.
const POOL_SIZE: usize = 16;
/// Attempts of a transaction that PostgreSQL aborted to break a deadlock.
const DEADLOCK_RETRIES: usize = 4;

/// A platform's routing table and the `routes_version` it was read at.
type Versioned = (i64, Arc<Vec<RouteEntry>>);

/// Routing tables by platform.
#[derive(Default)]
pub(crate) struct RoutesCache(Mutex<HashMap<String, Versioned>>);

impl RoutesCache {
    fn get(&self, platform: &str, version: i64) -> Option<Arc<Vec<RouteEntry>>> {
        let cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(platform)
            .filter(|(v, _)| *v == version)
            .map(|(_, t)| t.clone())
    }

    fn put(&self, platform: &str, version: i64, table: Arc<Vec<RouteEntry>>) {
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        cache.insert(platform.to_owned(), (version, table));
    }
}

pub struct PostgresStore {
    shared: Arc<Shared>,
    /// Commits wait here for a committer to fold them into a transaction.
    commits: mpsc::Sender<Pending>,
    /// The connection that LISTENs for other nodes' work, and the committers.
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// What the store's tasks share.
struct Shared {
    pool: Pool,
    routes: RoutesCache,
    work: Arc<Notify>,
    /// Seals webhook secrets at rest (`crate::secrets`).
    sealed: crate::secrets::SecretBox,
    /// The local dispatcher commits hand fresh deliveries to.
    handoff: crate::handoff::HandoffSlot,
}

/// A commit waiting for its transaction.
struct Pending {
    change: Change,
    reply: oneshot::Sender<Result<CommitOutcome>>,
}

/// Committers, each folding the commits waiting when it starts a
/// transaction into that one transaction: concurrent API writes share one
/// commit (one WAL flush) instead of paying one each.
const COMMITTERS: usize = 4;
/// Most commits folded into one transaction.
const MAX_BATCH: usize = 64;

/// A PostgreSQL error as the store reports it: connection trouble and the
/// server's own resource faults (class 53: disk full, out of memory, too
/// many connections; class 57: shutting down, read-only standby via 25006)
/// make the store unavailable (a 503, try again), anything else is a
/// backend failure.
pub(crate) fn pg(e: tokio_postgres::Error) -> StoreError {
    let server_fault = e.as_db_error().is_some_and(|db| {
        let code = db.code().code();
        code.starts_with("53") || code.starts_with("57") || code == "25006"
    });
    if e.as_db_error().is_none() || e.is_closed() || server_fault {
        return StoreError::Unavailable(format!("PostgreSQL: {}", PgError(e)));
    }
    StoreError::backend(PgError(e))
}

/// A PostgreSQL error that says what the server said (tokio-postgres's own
/// message is only "db error"), its cause kept as the source.
#[derive(Debug)]
struct PgError(tokio_postgres::Error);

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_db_error() {
            Some(db) => write!(f, "PostgreSQL: {db}"),
            None => write!(f, "PostgreSQL: {}", self.0),
        }
    }
}

impl std::error::Error for PgError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Unavailable(format!("PostgreSQL: {e}"))
}

fn is_deadlock(e: &tokio_postgres::Error) -> bool {
    matches!(e.code(), Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE)
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/db`; `?options=-csearch_path%3Dschema`
    /// puts Switchboard's tables in a schema of their own) and migrates it.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_sealed(url, crate::secrets::SecretBox::plain()).await
    }

    /// [`PostgresStore::connect`], sealing webhook secrets with `sealed`
    /// (the operator's `--secrets-key`, the same on every node).
    pub async fn connect_sealed(url: &str, sealed: crate::secrets::SecretBox) -> Result<Self> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::backend(format!("invalid database URL: {e}")))?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(StoreError::backend)?;
        migrate(&pool).await?;
        if sealed.seals() {
            reseal(&pool, &sealed).await?;
        }
        let work = Arc::new(Notify::new());
        let shared = Arc::new(Shared {
            pool,
            routes: RoutesCache::default(),
            work: work.clone(),
            sealed,
            handoff: Default::default(),
        });
        let (commits, queue) = mpsc::channel(4 * MAX_BATCH);
        let queue = Arc::new(tokio::sync::Mutex::new(queue));
        let mut tasks = vec![tokio::spawn(listen_for_work(config, work))];
        for _ in 0..COMMITTERS {
            tasks.push(tokio::spawn(committer(shared.clone(), queue.clone())));
        }
        Ok(PostgresStore {
            shared,
            commits,
            tasks,
        })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.shared.client().await
    }
}

impl Shared {
    async fn client(&self) -> Result<deadpool_postgres::Object> {
        if self.pool.is_closed() {
            return Err(StoreError::Closed);
        }
        self.pool.get().await.map_err(pool_error)
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn migrate(pool: &Pool) -> Result<()> {
    let mut client = pool.get().await.map_err(pool_error)?;
    let t = client.transaction().await.map_err(pg)?;
    // Nodes starting together migrate one after the other; the lock ends with
    // the transaction, and DDL is transactional: a failed migration leaves nothing.
    t.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg)?;
    t.batch_execute(
        "CREATE TABLE IF NOT EXISTS switchboard_migrations (
             version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .map_err(pg)?;
    let applied: Vec<i32> = t
        .query("SELECT version FROM switchboard_migrations", &[])
        .await
        .map_err(pg)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tracing::info!(version, "applying PostgreSQL migration");
        t.batch_execute(sql).await.map_err(pg)?;
        t.execute(
            "INSERT INTO switchboard_migrations (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(pg)?;
    }
    // Live keys of databases older than their hashing are hashed in place.
    let plain: Vec<(String, String)> = t
        .query(
            "SELECT id, live_key FROM platforms WHERE live_key NOT LIKE 'sha256:%'",
            &[],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for (id, key) in plain {
        t.execute(
            "UPDATE platforms SET live_key = $2 WHERE id = $1",
            &[&id, &live_key_at_rest(&key)],
        )
        .await
        .map_err(pg)?;
    }
    t.commit().await.map_err(pg)
}

/// Seals webhook secrets written before they were sealed at rest (a node
/// given `--secrets-key` for the first time).
async fn reseal(pool: &Pool, sealed: &crate::secrets::SecretBox) -> Result<()> {
    let client = pool.get().await.map_err(pool_error)?;
    let rows = client
        .query(
            "SELECT seq, secrets FROM endpoints WHERE secrets NOT LIKE 'enc1:%'",
            &[],
        )
        .await
        .map_err(pg)?;
    for r in rows {
        let (seq, secrets): (i64, String) = (r.get(0), r.get(1));
        client
            .execute(
                "UPDATE endpoints SET secrets = $2 WHERE seq = $1 AND secrets = $3",
                &[&seq, &sealed.seal(&secrets), &secrets],
            )
            .await
            .map_err(pg)?;
    }
    Ok(())
}

/// Wakes this node's dispatcher when any node queues deliveries; reconnects
/// (and wakes it once, for what it may have missed) after a lost connection.
async fn listen_for_work(config: tokio_postgres::Config, work: Arc<Notify>) {
    use futures_util::StreamExt as _;
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let signal = work.clone();
                let driver = tokio::spawn(async move {
                    let mut messages =
                        futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(Ok(message)) = messages.next().await {
                        if let tokio_postgres::AsyncMessage::Notification(_) = message {
                            signal.notify_one();
                        }
                    }
                });
                match client
                    .batch_execute(&format!("LISTEN {WORK_CHANNEL}"))
                    .await
                {
                    Ok(()) => {
                        work.notify_one();
                        let _ = driver.await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN failed");
                        driver.abort();
                    }
                }
                drop(client);
            }
            Err(e) => tracing::warn!(error = %e, "could not open the LISTEN connection"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Runs `$body` (an engine call on `$tx`) in a transaction, again if
/// PostgreSQL broke a deadlock by aborting it. Evaluates to the body's
/// value; notifies other nodes when the body queued work.
/// With `handoff`, the deliveries it queues may go straight to this node's
/// dispatcher once it commits.
macro_rules! transaction {
    ($store:expr, |$tx:ident| $body:expr) => {
        transaction!($store, false, |$tx| $body)
    };
    ($store:expr, handoff, |$tx:ident| $body:expr) => {
        transaction!($store, true, |$tx| $body)
    };
    ($store:expr, $handoff:expr, |$tx:ident| $body:expr) => {{
        let mut tries = 0;
        loop {
            let mut client = $store.client().await?;
            let t = client.transaction().await.map_err(pg)?;
            let handing = if $handoff {
                $store.handoff.begin()
            } else {
                None
            };
            let mut $tx = PgTx::new(&t, &$store.routes, &$store.sealed, handing);
            let out = $body.await;
            let (new_work, aborted) = ($tx.new_work, $tx.deadlocked);
            // Handed to the dispatcher only once committed; dropped (its
            // reservations given back) if this try fails.
            let handing = $tx.handing.take();
            let out = match out {
                Ok(v) => {
                    let notified = if new_work {
                        t.execute("SELECT pg_notify($1, '')", &[&WORK_CHANNEL])
                            .await
                            .map(drop)
                    } else {
                        Ok(())
                    };
                    match notified {
                        Ok(()) => t.commit().await.map(|()| v),
                        Err(e) => Err(e),
                    }
                }
                Err(_) if aborted && tries < DEADLOCK_RETRIES => {
                    tries += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match out {
                Ok(v) => {
                    if let Some(h) = handing {
                        h.deliver();
                    }
                    if new_work {
                        $store.work.notify_one();
                    }
                    break v;
                }
                Err(e) if is_deadlock(&e) && tries < DEADLOCK_RETRIES => tries += 1,
                Err(e) => return Err(pg(e)),
            }
        }
    }};
}

/// Takes the commits waiting, runs them in one transaction, answers each.
async fn committer(shared: Arc<Shared>, queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Pending>>>) {
    loop {
        let mut batch = Vec::new();
        {
            let mut queue = queue.lock().await;
            match queue.recv().await {
                Some(p) => batch.push(p),
                None => return,
            }
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
        }
        if batch.len() > 1 {
            let changes: Vec<&Change> = batch.iter().map(|p| &p.change).collect();
            if let Ok(outcomes) = shared.commit_all(&changes).await {
                for (p, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = p.reply.send(Ok(outcome));
                }
                continue;
            }
            // One change failed (a lost optimistic race, usually) and sank
            // the transaction: each runs again alone, so only it fails.
        }
        for p in batch {
            let outcome = shared
                .commit_all(&[&p.change])
                .await
                .map(|mut o| o.remove(0));
            let _ = p.reply.send(outcome);
        }
    }
}

impl Shared {
    /// Commits `changes` in one transaction: all or none.
    async fn commit_all(&self, changes: &[&Change]) -> Result<Vec<CommitOutcome>> {
        Ok(transaction!(self, handoff, |tx| async {
            let mut outcomes = Vec::with_capacity(changes.len());
            for change in changes {
                outcomes.push(engine::commit(&mut tx, change).await?.0);
            }
            Ok::<_, StoreError>(outcomes)
        }))
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn bootstrap_platform(&self, init: PlatformInit) -> Result<Platform> {
        let client = self.client().await?;
        let p = &init.generated;
        // Nodes starting together: the first insert wins, the others read it.
        client
            .execute(
                "INSERT INTO platforms (id, client_id, test_key, live_key, created, is_default)
                 VALUES ($1, $2, $3, $4, $5, true) ON CONFLICT DO NOTHING",
                &[
                    &p.id,
                    &p.client_id,
                    &p.test_key,
                    &live_key_at_rest(&p.live_key),
                    &p.created,
                ],
            )
            .await
            .map_err(pg)?;
        let row = client
            .query_one(
                "SELECT id, client_id, test_key, live_key, created FROM platforms WHERE is_default",
                &[],
            )
            .await
            .map_err(pg)?;
        let mut platform = read::platform_row(&row)?;
        if platform.id == p.id {
            // This start made it: the caller sees the live key whole this once.
            platform.live_key = p.live_key.clone();
        }
        if let Some(k) = init.test_key_override {
            platform.test_key = k;
        }
        if let Some(k) = init.live_key_override {
            platform.live_key = k;
        }
        client
            .execute(
                "UPDATE platforms SET test_key = $2, live_key = $3 WHERE id = $1",
                &[
                    &platform.id,
                    &platform.test_key,
                    &live_key_at_rest(&platform.live_key),
                ],
            )
            .await
            .map_err(pg)?;
        Ok(platform)
    }

    async fn create_platform(&self, p: Platform) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO platforms (id, client_id, test_key, live_key, created) VALUES ($1, $2, $3, $4, $5)",
                &[&p.id, &p.client_id, &p.test_key, &live_key_at_rest(&p.live_key), &p.created],
            )
            .await
            .map_err(pg)?;
        Ok(())
    }

    async fn platform_by_key(&self, key: &str) -> Result<Option<(Platform, bool)>> {
        read::platform_by_key(&self.client().await?, key).await
    }

    async fn platforms(&self) -> Result<Vec<Platform>> {
        read::platforms(&self.client().await?).await
    }

    async fn set_platform_keys(&self, id: &str, test_key: &str, live_key: &str) -> Result<bool> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE platforms SET test_key = $2, live_key = $3 WHERE id = $1",
                &[&id, &test_key, &live_key_at_rest(live_key)],
            )
            .await
            .map_err(pg)?;
        Ok(n > 0)
    }

    async fn platform(&self, id: &str) -> Result<Option<Platform>> {
        read::platform(&self.client().await?, id).await
    }

    async fn health(&self) -> Result<()> {
        let client = self.client().await?;
        client.execute("SELECT 1", &[]).await.map_err(pg)?;
        Ok(())
    }

    async fn commit(&self, change: Change) -> Result<CommitOutcome> {
        let (reply, answer) = oneshot::channel();
        self.commits
            .send(Pending { change, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn object(&self, scope: &Scope, kind: &str, id: &str) -> Result<Option<StoredObject>> {
        read::object(&self.client().await?, scope, kind, id).await
    }

    async fn objects(
        &self,
        scope: &Scope,
        kind: &str,
        page: &PageRequest,
    ) -> Result<Page<StoredObject>> {
        read::objects(&self.client().await?, scope, kind, page).await
    }

    async fn endpoint(
        &self,
        platform: &str,
        livemode: bool,
        id: &str,
    ) -> Result<Option<EndpointRecord>> {
        read::endpoint(
            &self.client().await?,
            platform,
            livemode,
            id,
            &self.shared.sealed,
        )
        .await
    }

    async fn endpoints(
        &self,
        platform: &str,
        livemode: bool,
        kind: EndpointKind,
        page: &PageRequest,
    ) -> Result<Page<EndpointRecord>> {
        read::endpoints(
            &self.client().await?,
            platform,
            livemode,
            kind,
            page,
            &self.shared.sealed,
        )
        .await
    }

    async fn listeners(&self, platform: &str, livemode: bool) -> Result<Vec<EndpointRecord>> {
        read::listeners(
            &self.client().await?,
            platform,
            livemode,
            &self.shared.sealed,
        )
        .await
    }

    async fn event(&self, scope: &Scope, id: &str) -> Result<Option<EventRecord>> {
        read::event(&self.client().await?, scope, id).await
    }

    async fn events(
        &self,
        scope: &Scope,
        filter: &EventFilter,
        page: &PageRequest,
    ) -> Result<Page<EventRecord>> {
        read::events(&self.client().await?, scope, filter, page).await
    }

    async fn attempts(
        &self,
        platform: &str,
        _livemode: bool,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> Result<Page<AttemptRecord>> {
        read::attempts(&self.client().await?, platform, filter, page).await
    }

    async fn begin_idempotent(
        &self,
        scope: &Scope,
        key: &str,
        fingerprint: &str,
        now: i64,
    ) -> Result<Begun> {
        Ok(transaction!(self.shared, |tx| engine::begin_idempotent(
            &mut tx,
            scope,
            key,
            fingerprint,
            now
        )))
    }

    async fn abandon_idempotent(&self, scope: &Scope, key: &str) -> Result<()> {
        use crate::engine::Tx as _;
        transaction!(self.shared, |tx| tx.abandon_idempotency(scope, key));
        Ok(())
    }

    async fn idempotent_response(
        &self,
        scope: &Scope,
        key: &str,
        now: i64,
    ) -> Result<Option<StoredResponse>> {
        read::idempotent_response(&self.client().await?, scope, key, now).await
    }

    async fn hold_listener(&self, hold: ListenerHold) -> Result<()> {
        transaction!(self.shared, |tx| engine::hold_listener(&mut tx, &hold));
        Ok(())
    }

    async fn claim_due(&self, request: ClaimRequest) -> Result<Vec<ClaimedDelivery>> {
        Ok(transaction!(self.shared, |tx| engine::claim(
            &mut tx, &request
        )))
    }

    async fn record_outcomes(&self, outcomes: Vec<DeliveryOutcome>) -> Result<u64> {
        let (_, disabled) = transaction!(self.shared, |tx| engine::record(&mut tx, &outcomes));
        Ok(disabled)
    }

    async fn delivery_stats(&self) -> Result<DeliveryStats> {
        read::delivery_stats(&self.client().await?).await
    }

    async fn test_clock(&self, platform: &str) -> Result<i64> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT offset_ms FROM test_clocks WHERE platform = $1",
                &[&platform],
            )
            .await
            .map_err(pg)?;
        row.map_or(Ok(0), |r| r.try_get(0).map_err(pg))
    }

    async fn advance_test_clock(&self, platform: &str, by_ms: i64) -> Result<i64> {
        Ok(transaction!(self.shared, |tx| engine::advance_test_clock(
            &mut tx, platform, by_ms
        )))
    }

    async fn due_timers(&self, now_ms: i64, limit: usize) -> Result<Vec<Timer>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT object_id, platform, livemode, account, kind, due_ms FROM timers
                 WHERE due_ms <= $1 ORDER BY due_ms LIMIT $2",
                &[&now_ms, &(limit as i64)],
            )
            .await
            .map_err(pg)?;
        rows.iter()
            .map(|r| {
                let account: String = r.try_get(3).map_err(pg)?;
                Ok(Timer {
                    object_id: r.try_get(0).map_err(pg)?,
                    scope: Scope {
                        platform: r.try_get(1).map_err(pg)?,
                        livemode: r.try_get(2).map_err(pg)?,
                        account: (!account.is_empty()).then_some(account),
                    },
                    kind: r.try_get(4).map_err(pg)?,
                    due_ms: r.try_get(5).map_err(pg)?,
                })
            })
            .collect()
    }

    async fn next_due_ms(&self) -> Result<Option<i64>> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT min(next_at_ms) FROM deliveries WHERE state = 0",
                &[],
            )
            .await
            .map_err(pg)?;
        row.try_get(0).map_err(pg)
    }

    async fn close(&self) {
        for t in &self.tasks {
            t.abort();
        }
        self.shared.pool.close();
    }

    fn work_signal(&self) -> Arc<Notify> {
        self.shared.work.clone()
    }

    fn set_handoff(&self, to: Option<Arc<dyn crate::handoff::Handoff>>) {
        self.shared.handoff.set(to);
    }
}
