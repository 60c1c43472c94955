//! Test harness: a node on port 0 with a fresh data dir, an API client, and
//! scriptable webhook receivers.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use switchboard::{Node, NodeConfig};
use switchboard_core::retry::RetrySchedule;
use switchboard_core::url_policy::UrlPolicy;
use switchboard_core::{Clock, ManualClock};
use switchboard_dispatcher::DispatcherConfig;
use switchboard_server::ServerConfig;
use switchboard_store::SystemClock;
use tokio::sync::mpsc;

pub const TEST_KEY: &str = "sk_test_integration0000000";
pub const LIVE_KEY: &str = "sk_live_integration0000000";
/// 2026-01-01T00:00:00Z, where manual clocks start.
pub const T0_MS: i64 = 1_767_225_600_000;

pub struct TestNode {
    pub node: Option<Node>,
    pub base: String,
    pub http: reqwest::Client,
    pub clock: Arc<dyn Clock>,
    pub manual: Option<Arc<ManualClock>>,
    _dir: tempfile::TempDir,
}

pub struct Options {
    pub retry: RetrySchedule,
    pub timeout: Duration,
    pub disable_after: Duration,
    pub manual_clock: bool,
    pub max_body_bytes: usize,
    pub concurrency: usize,
    pub per_endpoint_concurrency: usize,
    pub rate_limit: Option<u32>,
    /// The dispatcher's fallback poll (default: 200 ms, 60 s with a manual clock).
    pub poll_interval: Option<Duration>,
    /// `--allow-private-endpoints`: loopback by default, so live endpoints
    /// can point at the tests' receivers.
    pub allow_private: Vec<switchboard_core::url_policy::Cidr>,
    /// `--admin-key`: the admin API (several platforms) is off without it.
    pub admin_key: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            retry: RetrySchedule::fast(),
            timeout: Duration::from_secs(5),
            disable_after: Duration::from_secs(3 * 24 * 3600),
            manual_clock: false,
            max_body_bytes: 1 << 20,
            concurrency: 512,
            per_endpoint_concurrency: 64,
            rate_limit: None,
            allow_private: vec!["127.0.0.0/8".parse().unwrap()],
            poll_interval: None,
            admin_key: None,
        }
    }
}

impl TestNode {
    pub async fn start() -> TestNode {
        Self::with(Options::default()).await
    }

    pub async fn with(opts: Options) -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        let manual = opts.manual_clock.then(|| Arc::new(ManualClock::new(T0_MS)));
        let clock: Arc<dyn Clock> = match &manual {
            Some(m) => m.clone(),
            None => Arc::new(SystemClock),
        };
        let config = NodeConfig {
            data_dir: dir.path().to_owned(),
            test_key: Some(TEST_KEY.into()),
            live_key: Some(LIVE_KEY.into()),
            secrets_key: None,
            server: ServerConfig {
                max_body_bytes: opts.max_body_bytes,
                rate_limit: opts.rate_limit,
                admin_key: opts.admin_key.clone(),
                url_policy: UrlPolicy {
                    allow: opts.allow_private.clone(),
                },
                ..Default::default()
            },
            dispatcher: DispatcherConfig {
                retry: opts.retry,
                timeout: opts.timeout,
                disable_after: opts.disable_after,
                concurrency: opts.concurrency,
                per_endpoint_concurrency: opts.per_endpoint_concurrency,
                // Manual-clock tests wake the dispatcher explicitly; a slow poll keeps them honest.
                poll_interval: opts.poll_interval.unwrap_or(Duration::from_millis(
                    if opts.manual_clock { 60_000 } else { 200 },
                )),
                url_policy: UrlPolicy {
                    allow: opts.allow_private.clone(),
                },
                ..Default::default()
            },
            role: switchboard::Role::All,
            database_url: None,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let node = Node::start(config, listener, clock.clone()).await.unwrap();
        let base = format!("http://{}", node.addr);
        TestNode {
            node: Some(node),
            base,
            http: switchboard_dispatcher::http_client(Duration::from_secs(30)),
            clock,
            manual,
            _dir: dir,
        }
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub fn node(&self) -> &Node {
        self.node.as_ref().unwrap()
    }

    /// Moves the manual clock and wakes the dispatcher.
    pub fn advance(&self, ms: i64) {
        self.manual.as_ref().expect("manual clock").advance_ms(ms);
        self.node().store.work_signal().notify_one();
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (u16, HeaderMap, Value) {
        let method: reqwest::Method = method.parse().unwrap();
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if method == reqwest::Method::POST {
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.to_owned());
        }
        let resp = req.send().await.unwrap_or_else(|e| {
            panic!(
                "{method} {} with {} body bytes: {e}",
                &path[..path.len().min(120)],
                body.len()
            )
        });
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        // The Stripe CLI's own session object is not part of Stripe's API schema.
        if path.starts_with("/v1/") && !path.starts_with("/v1/stripecli/") && json.is_object() {
            assert_stripe_shape(&json, &format!("{method} {path}"));
        }
        (status, headers, json)
    }

    pub async fn post(&self, path: &str, body: &str) -> Value {
        let (status, _, json) = self.request("POST", path, Some(TEST_KEY), body, &[]).await;
        assert_eq!(status, 200, "POST {path} {body}: {json:#}");
        json
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, _, json) = self.request("GET", path, Some(TEST_KEY), "", &[]).await;
        assert_eq!(status, 200, "GET {path}: {json:#}");
        json
    }

    /// Moves the platform's test clock forward over HTTP: what comes due in
    /// that time (payouts arriving, funds becoming available) has happened
    /// when this returns.
    pub async fn advance_clock(&self, seconds: i64) -> Value {
        self.post(
            "/switchboard/v1/clock/advance",
            &format!("seconds={seconds}"),
        )
        .await
    }

    /// Creates an endpoint for every event and returns (id, secret).
    pub async fn endpoint(&self, url: &str) -> (String, String) {
        let we = self
            .post(
                "/v1/webhook_endpoints",
                &format!("url={url}&enabled_events[]=*"),
            )
            .await;
        (
            we["id"].as_str().unwrap().into(),
            we["secret"].as_str().unwrap().into(),
        )
    }

    /// Waits (awaiting a condition, polling the API) until `f` holds.
    pub async fn eventually<F: Fn(&Value) -> bool>(&self, path: &str, f: F) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.get(path).await;
            if f(&v) {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "condition never held for {path}: {v:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// What a scripted receiver answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    RetryAfter(u16, u64),
    Redirect,
    Delay(Duration),
}

#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    pub fn signature(&self) -> &str {
        self.headers
            .get("stripe-signature")
            .unwrap()
            .to_str()
            .unwrap()
    }
}

#[derive(Clone)]
struct ReceiverState {
    script: Arc<Mutex<VecDeque<Reply>>>,
    tx: mpsc::UnboundedSender<Received>,
}

/// A webhook receiver on port 0 that records every request and answers from
/// a script (200 once the script is exhausted).
pub struct Receiver {
    pub url: String,
    pub rx: mpsc::UnboundedReceiver<Received>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        Self::scripted(Vec::new()).await
    }

    pub async fn scripted(replies: Vec<Reply>) -> Receiver {
        let (tx, rx) = mpsc::unbounded_channel();
        let script = Arc::new(Mutex::new(VecDeque::from(replies)));
        let state = ReceiverState { script, tx };
        let app = axum::Router::new().fallback(receive).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver {
            url: format!("http://{addr}/webhook"),
            rx,
        }
    }

    pub async fn next(&mut self) -> Received {
        let received = tokio::time::timeout(Duration::from_secs(20), self.rx.recv())
            .await
            .expect("no delivery within 20 s")
            .unwrap();
        assert_stripe_shape(&received.json(), "webhook payload");
        received
    }

    /// Asserts nothing arrives for a short while.
    pub async fn assert_quiet(&mut self, wait: Duration) {
        if let Ok(Some(r)) = tokio::time::timeout(wait, self.rx.recv()).await {
            panic!("unexpected delivery: {}", String::from_utf8_lossy(&r.body));
        }
    }
}

async fn receive(State(state): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> Response {
    let reply = state.script.lock().unwrap().pop_front();
    let _ = state.tx.send(Received { headers, body });
    match reply {
        None => StatusCode::OK.into_response(),
        Some(Reply::Status(s)) => {
            (StatusCode::from_u16(s).unwrap(), "scripted reply").into_response()
        }
        Some(Reply::RetryAfter(s, secs)) => (
            StatusCode::from_u16(s).unwrap(),
            [("retry-after", secs.to_string())],
            "slow down",
        )
            .into_response(),
        Some(Reply::Redirect) => (StatusCode::FOUND, [("location", "/elsewhere")]).into_response(),
        Some(Reply::Delay(d)) => {
            tokio::time::sleep(d).await;
            StatusCode::OK.into_response()
        }
    }
}

/// Every API response and webhook payload the suite sees is held to Stripe's
/// schema (stripe-node's generated types for the pinned API version).
pub fn assert_stripe_shape(body: &Value, what: &str) {
    let errs = switchboard_core::schema::stripe().check(body);
    assert!(
        errs.is_empty(),
        "{what}: not what Stripe sends:\n  {}\nbody: {body:#}",
        errs.join("\n  ")
    );
}

/// A TCP server on a free loopback port that hands every connection to
/// `handle`, each on a task of its own: the receivers below that misbehave
/// below HTTP.
async fn tcp_server<F, Fut>(handle: F) -> SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            tokio::spawn(handle(sock));
        }
    });
    addr
}

/// A server answering 200 with a body that never ends, sent as fast as it
/// is read (`pause` zero) or one byte every `pause` (a trickle).
pub async fn endless_body_server(pause: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = tcp_server(move |mut sock| async move {
        let mut buf = vec![0u8; 65536];
        let _ = sock.read(&mut buf).await;
        let head =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000000000\r\n\r\n";
        if sock.write_all(head).await.is_err() {
            return;
        }
        let chunk = if pause.is_zero() {
            vec![b'x'; 16384]
        } else {
            vec![b'x']
        };
        while sock.write_all(&chunk).await.is_ok() {
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
    })
    .await;
    format!("http://{addr}/webhook")
}

/// A TCP server that answers every request with a truncated response and
/// closes the connection ("connection reset mid-response").
pub async fn resetting_server() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    let addr = tcp_server(move |mut sock| {
        h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            let mut buf = vec![0u8; 65536];
            let _ = sock.read(&mut buf).await;
            let _ = sock
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
                .await;
            drop(sock);
        }
    })
    .await;
    (format!("http://{addr}/webhook"), hits)
}

/// A port nothing listens on.
pub async fn refused_url() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}/webhook")
}

/// A child process killed when the test ends, even by a panic.
pub struct KillOnDrop(pub std::process::Child);

impl KillOnDrop {
    /// SIGKILL now, and reap.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs the real `switchboard serve` binary on port 0 and returns it with its base URL.
pub fn spawn(data_dir: &std::path::Path, extra: &[&str]) -> (KillOnDrop, String) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--test-key",
            TEST_KEY,
            "--live-key",
            LIVE_KEY,
            // Live endpoints of the tests point at receivers on loopback.
            "--allow-private-endpoints",
            "127.0.0.0/8",
            "--data-dir",
        ])
        .arg(data_dir)
        .args(extra)
        .env("SWITCHBOARD_LOG", "warn")
        // Every spawned server holds its responses and events to Stripe's schema.
        .env("SWITCHBOARD_CHECK_SCHEMA", "true")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut first).unwrap();
    // Keep draining: the server prints more, and a closed pipe would kill it.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let base = first.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(
        base.starts_with("http://"),
        "unexpected first line: {first}"
    );
    (KillOnDrop(child), base)
}

/// Asserts a spawned server (see [`spawn`]) emitted nothing Stripe would not:
/// every response and event the official clients made it produce matched.
pub async fn assert_no_schema_violations(base: &str) {
    let http = switchboard_dispatcher::http_client(Duration::from_secs(10));
    let resp = http
        .get(format!("{base}/switchboard/v1/schema_violations"))
        .bearer_auth(TEST_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let found: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    let list = found["data"].as_array().unwrap();
    assert!(
        list.is_empty(),
        "not what Stripe sends:\n  {}",
        list.iter()
            .map(|v| v.as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

/// Spawns `cmd` with stdout and stderr piped, merged line by line into one channel.
pub fn spawn_with_lines(
    cmd: &mut std::process::Command,
) -> (KillOnDrop, mpsc::UnboundedReceiver<String>) {
    use std::io::BufRead as _;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pipes = [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ];
    let child = KillOnDrop(child);
    let (tx, rx) = mpsc::unbounded_channel();
    for pipe in pipes {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    (child, rx)
}

/// A new, empty schema of the test database (`SWITCHBOARD_TEST_DATABASE_URL`,
/// default `postgres://postgres@127.0.0.1:5432/test`), for nodes started with
/// `--database-url` [`PgSchema::url`].
pub struct PgSchema {
    pub url: String,
    name: String,
    admin: String,
}

pub async fn fresh_postgres() -> PgSchema {
    let admin = std::env::var("SWITCHBOARD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let name = format!("cluster_{:016x}", rand::random::<u64>());
    pg_admin(&admin, &format!("CREATE SCHEMA {name}")).await;
    let sep = if admin.contains('?') { '&' } else { '?' };
    PgSchema {
        url: format!("{admin}{sep}options=-csearch_path%3D{name}"),
        name,
        admin,
    }
}

impl PgSchema {
    /// Drops the schema (at the end of a passing test; a failing one leaves it to look at).
    pub async fn drop(self) {
        pg_admin(&self.admin, &format!("DROP SCHEMA {} CASCADE", self.name)).await;
    }
}

async fn pg_admin(url: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL on 127.0.0.1:5432 (.ci/run starts it)");
    tokio::spawn(connection);
    client.batch_execute(sql).await.unwrap();
}

/// Deliveries seen, by (event id, endpoint tag `ep<i>`).
pub type Seen = Arc<Mutex<HashMap<(String, String), usize>>>;

/// `n` receivers (tagged `ep0`…) that count deliveries per event, each
/// answering after `delay` (so that work is in flight when a test kills a node).
pub async fn counting_receivers(n: usize, seen: &Seen, delay: Duration) -> Vec<String> {
    type Tagged = (Seen, String, Duration);
    async fn record(
        State((seen, tag, delay)): State<Tagged>,
        body: axum::body::Bytes,
    ) -> &'static str {
        let v: Value = serde_json::from_slice(&body).unwrap();
        tokio::time::sleep(delay).await;
        *seen
            .lock()
            .unwrap()
            .entry((v["id"].as_str().unwrap().to_owned(), tag))
            .or_default() += 1;
        "ok"
    }
    let mut urls = Vec::new();
    for i in 0..n {
        let app = axum::Router::new().fallback(record).with_state((
            seen.clone(),
            format!("ep{i}"),
            delay,
        ));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        urls.push(format!("http://{}/hook", l.local_addr().unwrap()));
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    }
    urls
}

/// A GET of the test platform's API, as JSON.
pub async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    let resp = http.get(url).bearer_auth(TEST_KEY).send().await.unwrap();
    serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
}

/// Every event id the API lists, oldest last.
pub async fn all_event_ids(http: &reqwest::Client, base: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = String::new();
    loop {
        let page: Value = get_json(http, &format!("{base}/v1/events?limit=100{after}")).await;
        let data = page["data"].as_array().unwrap();
        ids.extend(data.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        if !page["has_more"].as_bool().unwrap() {
            return ids;
        }
        after = format!("&starting_after={}", ids.last().unwrap());
    }
}

/// Waits until every (event, endpoint) pair arrived at least once.
pub async fn await_all(seen: &Seen, events: &[String], endpoints: usize, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let missing = {
            let seen = seen.lock().unwrap();
            events
                .iter()
                .flat_map(|id| (0..endpoints).map(move |i| (id.clone(), format!("ep{i}"))))
                .filter(|k| !seen.contains_key(k))
                .count()
        };
        if missing == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{missing} deliveries never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Creates a webhook endpoint for every event on a spawned server; its id.
pub async fn create_endpoint(http: &reqwest::Client, base: &str, url: &str) -> String {
    let r = http
        .post(format!("{base}/v1/webhook_endpoints"))
        .bearer_auth(TEST_KEY)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("url={url}&enabled_events[]=*"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let we: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    we["id"].as_str().unwrap().to_owned()
}

/// An HTTPS server whose certificate no one trusts (self-signed, committed
/// under `fixtures/`): a handshake with it must fail.
pub async fn untrusted_tls_server() -> String {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert = CertificateDer::from_pem_slice(include_bytes!("fixtures/untrusted.crt")).unwrap();
    let key = PrivateKeyDer::from_pem_slice(include_bytes!("fixtures/untrusted.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let addr = tcp_server(move |sock| {
        let acceptor = acceptor.clone();
        async move {
            let _ = acceptor.accept(sock).await;
        }
    })
    .await;
    format!("https://{addr}/webhook")
}

/// A server that accepts connections, reads the request and never answers.
pub async fn hanging_server() -> String {
    use tokio::io::AsyncReadExt;
    let addr = tcp_server(|mut sock| async move {
        let mut buf = vec![0u8; 65536];
        while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
    format!("http://{addr}/webhook")
}

/// Open descriptors and resident memory (KiB) of a process, from /proc.
pub fn fds_and_rss(pid: u32) -> (usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap();
    (fds, rss)
}

/// (method, path template) of every route the server declares, read from
/// the routers' source: tests that sweep the API cover a new route at once.
pub fn server_routes() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let src = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../server/src");
    let mut files = vec![src];
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if p.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        for chunk in text.split(".route(").skip(1) {
            let Some(start) = chunk.find('"') else {
                continue;
            };
            let rest = &chunk[start + 1..];
            let path = &rest[..rest.find('"').unwrap()];
            let handlers = &rest[..rest
                .find(".route(")
                .unwrap_or(rest.len())
                .min(rest.find("\n}").unwrap_or(rest.len()))];
            for (method, token) in [("GET", "get("), ("POST", "post("), ("DELETE", "delete(")] {
                let found = handlers.match_indices(token).any(|(i, _)| {
                    i == 0
                        || !handlers.as_bytes()[i - 1].is_ascii_alphanumeric()
                            && handlers.as_bytes()[i - 1] != b'_'
                });
                if found {
                    out.push((method.to_owned(), path.to_owned()));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}
