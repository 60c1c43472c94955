//! The embedded SQLite store.
//!
//! All writes go through one writer thread that owns the only write
//! connection and commits *groups* of commands in one transaction (each
//! command inside its own savepoint, so one failure does not sink the
//! others). That turns thousands of small API writes per second into a few
//! hundred fsync-free WAL commits. Reads run on a small pool of read-only
//! connections on the blocking thread pool; WAL lets them proceed while the
//! writer commits.

mod read;
mod write;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::*;
use write::Command;

const SCHEMA: &str = include_str!("schema.sql");
/// Most commands folded into one transaction.
const MAX_GROUP: usize = 1024;

pub struct SqliteStore {
    commands: mpsc::Sender<Command>,
    /// Tells the checkpoint thread to end with the store.
    stop_checkpoints: Arc<std::sync::atomic::AtomicBool>,
    readers: Arc<ReadPool>,
    work: Arc<Notify>,
    identity: FileIdentity,
    fault: Arc<StorageFault>,
    /// Seals webhook secrets at rest (`crate::secrets`).
    sealed: Arc<crate::secrets::SecretBox>,
    /// The local dispatcher the writer hands fresh deliveries to.
    handoff: Arc<crate::handoff::HandoffSlot>,
}

/// Which file the database is: a path whose file was deleted or replaced
/// (the data dir removed under a running process) must not take writes that
/// would vanish with the old file.
#[derive(Debug, Clone)]
pub(crate) struct FileIdentity {
    path: PathBuf,
    #[cfg(unix)]
    id: (u64, u64),
}

impl FileIdentity {
    fn of(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(StoreError::backend)?;
        #[cfg(not(unix))]
        let _ = meta;
        Ok(FileIdentity {
            path: path.to_owned(),
            #[cfg(unix)]
            id: {
                use std::os::unix::fs::MetadataExt as _;
                (meta.dev(), meta.ino())
            },
        })
    }

    /// `Unavailable` unless the path still names the file opened.
    pub(crate) fn check(&self) -> Result<()> {
        let now = FileIdentity::of(&self.path).map_err(|_| {
            StoreError::Unavailable(format!("{} has vanished", self.path.display()))
        })?;
        #[cfg(unix)]
        if now.id != self.id {
            return Err(StoreError::Unavailable(format!(
                "{} was replaced by another file",
                self.path.display()
            )));
        }
        Ok(())
    }
}

/// The storage fault the last write met (disk full, read-only, I/O error),
/// kept until a write that changed something commits again. Readiness reports
/// it: with no writes coming (a node out of rotation gets none) only a probe
/// can tell that space came back.
#[derive(Debug, Default)]
pub(crate) struct StorageFault(Mutex<Option<String>>);

impl StorageFault {
    pub(crate) fn get(&self) -> Option<String> {
        self.0.lock().expect("fault lock").clone()
    }

    pub(crate) fn set(&self, fault: Option<String>) {
        *self.0.lock().expect("fault lock") = fault;
    }
}

/// Free space a node wants on its data dir's filesystem before it calls
/// itself ready again after a storage fault.
const HEADROOM: u64 = 4 << 20;

/// Bytes free to this user on the filesystem holding `path` (0 when it is
/// mounted read-only); `None` where that cannot be told.
fn free_bytes(path: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt as _;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
        // SAFETY: `c` is a NUL-terminated path and `st` a statvfs the call fills.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
            return None;
        }
        if st.f_flag & libc::ST_RDONLY != 0 {
            return Some(0);
        }
        Some(st.f_bavail as u64 * st.f_frsize as u64)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Creates `path` if needed and makes it readable and writable by its owner only.
fn private_file(path: &Path) -> Result<()> {
    let io = |e: std::io::Error| StoreError::backend(format!("{}: {e}", path.display()));
    let mut open = std::fs::OpenOptions::new();
    open.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        open.mode(0o600);
        open.open(path).map_err(io)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    #[cfg(not(unix))]
    open.open(path).map_err(io)?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`.
    ///
    /// One process owns a database file at a time (enforced with a lock file
    /// beside it), so claims left by a previous process are dead and are
    /// released at once instead of waiting for their leases to end.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, WAL_LIMIT)
    }

    /// [`SqliteStore::open`] with the WAL size past which checkpoints
    /// truncate it (tests use a small one).
    pub fn open_with(path: &Path, wal_limit: u64) -> Result<Self> {
        Self::open_sealed(path, wal_limit, None)
    }

    /// [`SqliteStore::open_with`], sealing webhook secrets with the
    /// operator's key, or (`None`) with the key file beside the database
    /// (`switchboard.key`, made on first start).
    pub fn open_sealed(
        path: &Path,
        wal_limit: u64,
        sealed: Option<crate::secrets::SecretBox>,
    ) -> Result<Self> {
        let sealed = Arc::new(match sealed {
            Some(s) => s,
            None => {
                crate::secrets::SecretBox::from_key_file(&path.with_file_name("switchboard.key"))?
            }
        });
        // The database holds keys and webhook secrets: this user's only.
        // SQLite gives the -wal and -shm files the database file's mode.
        private_file(path)?;
        let lock =
            std::fs::File::create(path.with_extension("lock")).map_err(StoreError::backend)?;
        lock.try_lock().map_err(|_| {
            StoreError::backend(format!(
                "{} is in use by another Switchboard process",
                path.display()
            ))
        })?;
        let conn = Connection::open(path).map_err(backend)?;
        let identity = FileIdentity::of(path)?;
        configure(&conn)?;
        conn.execute_batch(SCHEMA).map_err(backend)?;
        migrate(&conn)?;
        reseal(&conn, &sealed)?;
        // The previous owner is gone: its claims are dead, and so are its
        // `stripe listen` sockets.
        conn.execute_batch(
            "UPDATE deliveries SET leased = 0, next_at_ms = 0 WHERE state = 0 AND leased = 1;
             DELETE FROM listener_presence;
             UPDATE endpoints SET enabled = 0, version = version + 1 WHERE kind = 'listener' AND enabled = 1;",
        )
        .map_err(backend)?;
        let work = Arc::new(Notify::new());
        let (tx, rx) = mpsc::channel(4 * MAX_GROUP);
        let fault = Arc::new(StorageFault::default());
        let handoff = Arc::new(crate::handoff::HandoffSlot::default());
        let writer = write::Writer::new(
            conn,
            work.clone(),
            lock,
            identity.clone(),
            fault.clone(),
            sealed.clone(),
            handoff.clone(),
        );
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(StoreError::backend)?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (db, flag) = (path.to_owned(), stop.clone());
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpointer(db, flag, wal_limit))
            .map_err(StoreError::backend)?;
        Ok(SqliteStore {
            commands: tx,
            stop_checkpoints: stop,
            readers: Arc::new(ReadPool {
                path: path.to_owned(),
                idle: Mutex::new(Vec::new()),
            }),
            work,
            identity,
            fault,
            sealed,
            handoff,
        })
    }

    async fn send<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Command) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || pool.with(f))
            .await
            .map_err(StoreError::backend)?
    }
}

/// Columns added after a table was first created: `CREATE TABLE IF NOT
/// EXISTS` leaves an older database's table as it was. (Table, column, type.)
const ADDED_COLUMNS: [(&str, &str, &str); 4] = [
    ("attempts", "chaos", "TEXT"),
    ("endpoints", "chaos", "TEXT"),
    ("endpoints", "destination", "TEXT"),
    ("events", "thin_payload", "BLOB"),
];

fn migrate(conn: &Connection) -> Result<()> {
    for (table, column, kind) in ADDED_COLUMNS {
        let present = conn
            .prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")
            .and_then(|mut s| s.exists([table, column]))
            .map_err(backend)?;
        if !present {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))
                .map_err(backend)?;
        }
    }
    // Live keys of databases older than their hashing are hashed in place.
    let plain: Vec<(String, String)> = conn
        .prepare("SELECT id, live_key FROM platforms WHERE live_key NOT LIKE 'sha256:%'")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(backend)?;
    for (id, key) in plain {
        conn.execute(
            "UPDATE platforms SET live_key = ?2 WHERE id = ?1",
            rusqlite::params![id, switchboard_core::ids::live_key_at_rest(&key)],
        )
        .map_err(backend)?;
    }
    Ok(())
}

/// Seals webhook secrets written before they were sealed at rest.
fn reseal(conn: &Connection, sealed: &crate::secrets::SecretBox) -> Result<()> {
    let plain: Vec<(i64, String)> = conn
        .prepare("SELECT seq, secrets FROM endpoints WHERE secrets NOT LIKE 'enc1:%'")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(backend)?;
    for (seq, secrets) in plain {
        conn.execute(
            "UPDATE endpoints SET secrets = ?2 WHERE seq = ?1",
            rusqlite::params![seq, sealed.seal(&secrets)],
        )
        .map_err(backend)?;
    }
    Ok(())
}

/// Prepared statements kept per connection: the writer alone runs ~30
/// distinct ones, and rusqlite's default of 16 re-prepared some of them on
/// every command (3 % of the writer's instructions).
const STATEMENT_CACHE: usize = 64;

fn configure(conn: &Connection) -> Result<()> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // WAL + synchronous=NORMAL survives a killed process (not a power cut
    // mid-commit), which is what "nothing is lost when the process is killed" needs.
    // Checkpoints run on their own thread (see `checkpointer`): inline, their
    // fsync would stall every writer behind them.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;
         PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;", // = WAL_LIMIT
    )
    .map_err(backend)
}

/// How often the background thread copies the WAL back into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// The WAL size (bytes) past which a checkpoint truncates it; also SQLite's
/// `journal_size_limit`.
pub const WAL_LIMIT: u64 = 64 << 20;

/// Copies committed WAL frames into the database file without blocking the
/// writer (PASSIVE), until the store is dropped. Under sustained load with
/// readers always open, PASSIVE checkpoints never reach the end of the WAL,
/// so it is never reset and grows without bound: past `wal_limit` the
/// checkpoint escalates to TRUNCATE (briefly waiting for the writer and
/// readers), which brings it back to empty.
fn checkpointer(path: PathBuf, stop: Arc<std::sync::atomic::AtomicBool>, wal_limit: u64) {
    let mut wal = path.clone().into_os_string();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    let Ok(conn) = Connection::open(&path) else {
        return;
    };
    if conn.execute_batch("PRAGMA busy_timeout = 5000;").is_err() {
        return;
    }
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(CHECKPOINT_EVERY);
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
        let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
        if size > wal_limit {
            tracing::debug!(size, "WAL over its limit: truncating checkpoint");
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "WAL truncating checkpoint failed");
            }
        }
    }
}

/// SQLite's errors as the store's. The storage's own faults (disk full,
/// read-only, I/O) are `Unavailable`: the request was fine, and retrying
/// once the storage recovers will succeed.
pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::*;
    match e.sqlite_error_code() {
        Some(DiskFull | ReadOnly | SystemIoFailure | CannotOpen) => {
            StoreError::Unavailable(format!("storage: {e}"))
        }
        _ => StoreError::backend(e),
    }
}

struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.idle.lock().expect("pool lock").pop();
        let conn = match conn {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(backend)?;
                c.execute_batch("PRAGMA busy_timeout = 5000;")
                    .map_err(backend)?;
                c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
                c
            }
        };
        let out = f(&conn);
        self.idle.lock().expect("pool lock").push(conn);
        out
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.stop_checkpoints
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn bootstrap_platform(&self, init: PlatformInit) -> Result<Platform> {
        self.send(|reply| Command::Bootstrap(init, reply)).await
    }

    async fn create_platform(&self, platform: Platform) -> Result<()> {
        self.send(|reply| Command::CreatePlatform(platform, reply))
            .await
    }

    async fn health(&self) -> Result<()> {
        self.identity.check()?;
        if let Some(fault) = self.fault.get() {
            // A small write can slip into space a full disk still has
            // inside the WAL: headroom first, then a write that must commit.
            if free_bytes(&self.identity.path).is_some_and(|free| free < HEADROOM) {
                return Err(StoreError::Unavailable(fault));
            }
            self.send(Command::Probe).await?;
        }
        self.read(|c| {
            c.query_row("SELECT count(*) FROM platforms", [], |_| Ok(()))
                .map_err(backend)
        })
        .await
    }

    async fn platform_by_key(&self, key: &str) -> Result<Option<(Platform, bool)>> {
        let key = key.to_owned();
        self.read(move |c| read::platform_by_key(c, &key)).await
    }

    async fn platforms(&self) -> Result<Vec<Platform>> {
        self.read(read::platforms).await
    }

    async fn set_platform_keys(&self, id: &str, test_key: &str, live_key: &str) -> Result<bool> {
        let (id, test_key, live_key) = (id.to_owned(), test_key.to_owned(), live_key.to_owned());
        let n = self
            .send(|reply| Command::SetPlatformKeys {
                id,
                test_key,
                live_key,
                reply,
            })
            .await?;
        Ok(n > 0)
    }

    async fn platform(&self, id: &str) -> Result<Option<Platform>> {
        let id = id.to_owned();
        self.read(move |c| read::platform(c, &id)).await
    }

    async fn commit(&self, change: Change) -> Result<CommitOutcome> {
        self.send(|reply| Command::Commit(Box::new(change), reply))
            .await
    }

    async fn object(&self, scope: &Scope, kind: &str, id: &str) -> Result<Option<StoredObject>> {
        let (scope, kind, id) = (scope.clone(), kind.to_owned(), id.to_owned());
        self.read(move |c| read::object(c, &scope, &kind, &id))
            .await
    }

    async fn objects(
        &self,
        scope: &Scope,
        kind: &str,
        page: &PageRequest,
    ) -> Result<Page<StoredObject>> {
        let (scope, kind, page) = (scope.clone(), kind.to_owned(), page.clone());
        self.read(move |c| read::objects(c, &scope, &kind, &page))
            .await
    }

    async fn endpoint(
        &self,
        platform: &str,
        livemode: bool,
        id: &str,
    ) -> Result<Option<EndpointRecord>> {
        let (platform, id) = (platform.to_owned(), id.to_owned());
        let sealed = self.sealed.clone();
        self.read(move |c| read::endpoint(c, &platform, livemode, &id, &sealed))
            .await
    }

    async fn endpoints(
        &self,
        platform: &str,
        livemode: bool,
        kind: EndpointKind,
        page: &PageRequest,
    ) -> Result<Page<EndpointRecord>> {
        let (platform, page) = (platform.to_owned(), page.clone());
        let sealed = self.sealed.clone();
        self.read(move |c| read::endpoints(c, &platform, livemode, kind, &page, &sealed))
            .await
    }

    async fn listeners(&self, platform: &str, livemode: bool) -> Result<Vec<EndpointRecord>> {
        let platform = platform.to_owned();
        let sealed = self.sealed.clone();
        self.read(move |c| read::listeners(c, &platform, livemode, &sealed))
            .await
    }

    async fn event(&self, scope: &Scope, id: &str) -> Result<Option<EventRecord>> {
        let (scope, id) = (scope.clone(), id.to_owned());
        self.read(move |c| read::event(c, &scope, &id)).await
    }

    async fn events(
        &self,
        scope: &Scope,
        filter: &EventFilter,
        page: &PageRequest,
    ) -> Result<Page<EventRecord>> {
        let (scope, filter, page) = (scope.clone(), filter.clone(), page.clone());
        self.read(move |c| read::events(c, &scope, &filter, &page))
            .await
    }

    async fn attempts(
        &self,
        platform: &str,
        _livemode: bool,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> Result<Page<AttemptRecord>> {
        let (platform, filter, page) = (platform.to_owned(), filter.clone(), page.clone());
        self.read(move |c| read::attempts(c, &platform, &filter, &page))
            .await
    }

    async fn begin_idempotent(
        &self,
        scope: &Scope,
        key: &str,
        fingerprint: &str,
        now: i64,
    ) -> Result<Begun> {
        let (scope, key, fingerprint) = (scope.clone(), key.to_owned(), fingerprint.to_owned());
        self.send(|reply| Command::BeginIdempotent {
            scope,
            key,
            fingerprint,
            now,
            reply,
        })
        .await
    }

    async fn abandon_idempotent(&self, scope: &Scope, key: &str) -> Result<()> {
        let (scope, key) = (scope.clone(), key.to_owned());
        self.send(|reply| Command::AbandonIdempotent(scope, key, reply))
            .await
    }

    async fn idempotent_response(
        &self,
        scope: &Scope,
        key: &str,
        now: i64,
    ) -> Result<Option<StoredResponse>> {
        let (scope, key) = (scope.clone(), key.to_owned());
        self.read(move |c| read::idempotent_response(c, &scope, &key, now))
            .await
    }

    async fn hold_listener(&self, hold: ListenerHold) -> Result<()> {
        self.send(|reply| Command::HoldListener(hold, reply)).await
    }

    async fn claim_due(&self, request: ClaimRequest) -> Result<Vec<ClaimedDelivery>> {
        self.send(|reply| Command::Claim { request, reply }).await
    }

    async fn record_outcomes(&self, outcomes: Vec<DeliveryOutcome>) -> Result<u64> {
        self.send(|reply| Command::Record(outcomes, reply)).await
    }

    async fn delivery_stats(&self) -> Result<DeliveryStats> {
        self.read(read::delivery_stats).await
    }

    async fn test_clock(&self, platform: &str) -> Result<i64> {
        let platform = platform.to_owned();
        self.read(move |c| read::test_clock(c, &platform)).await
    }

    async fn advance_test_clock(&self, platform: &str, by_ms: i64) -> Result<i64> {
        let platform = platform.to_owned();
        self.send(|reply| Command::AdvanceClock(platform, by_ms, reply))
            .await
    }

    async fn due_timers(&self, now_ms: i64, limit: usize) -> Result<Vec<Timer>> {
        self.read(move |c| read::due_timers(c, now_ms, limit)).await
    }

    async fn next_due_ms(&self) -> Result<Option<i64>> {
        self.read(|c| {
            // Cached: the dispatcher asks after most claims.
            c.prepare_cached("SELECT min(next_at_ms) FROM deliveries WHERE state = 0")
                .and_then(|mut s| s.query_row([], |r| r.get(0)))
                .map_err(backend)
        })
        .await
    }

    async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.commands.send(Command::Close(done)).await.is_ok() {
            let _ = closed.await;
        }
        self.stop_checkpoints
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.readers.idle.lock().expect("pool lock").clear();
    }

    fn work_signal(&self) -> Arc<Notify> {
        self.work.clone()
    }

    fn set_handoff(&self, to: Option<Arc<dyn crate::handoff::Handoff>>) {
        self.handoff.set(to);
    }
}
