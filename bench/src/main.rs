//! `switchboard-bench`: Switchboard's benchmark harness.
//!
//! Every scenario runs Switchboard in this process, as shipped (SQLite in a
//! temporary directory, the real HTTP API and dispatcher), with the load
//! generator and a signature-verifying receiver sharing the same cores, and
//! prints its figure beside a baseline measured in the same run.
//!
//! ```text
//! cargo run --release -p switchboard-bench -- [SCENARIO...] [--events N] [--backlog N]
//! ```

mod load;
mod postgres;
mod scenarios;
mod sink;
mod store;

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use switchboard::{Node, NodeConfig};
use switchboard_core::retry::RetrySchedule;
use switchboard_dispatcher::DispatcherConfig;
use switchboard_server::ServerConfig;
use switchboard_store::SystemClock;

// As in the shipped binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub const KEY: &str = "sk_test_benchmark0000000000";

#[derive(Parser, Clone)]
#[command(about = "Measure Switchboard against baselines measured in the same run")]
pub struct Args {
    /// Scenarios to run: throughput, latency, fanout, isolation, starvation, verify, peer, backlog (default: all); also `api` and `postgres` (one and two nodes on PostgreSQL beside pgbench).
    pub scenarios: Vec<String>,
    /// Events created in the throughput and isolation scenarios.
    #[arg(long, default_value_t = 50_000)]
    pub events: usize,
    /// Concurrent client connections of the load generator.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Deliveries queued in the backlog scenario.
    #[arg(long, default_value_t = 1_000_000)]
    pub backlog: usize,
    /// Seconds of fixed-rate load in the latency scenario.
    #[arg(long, default_value_t = 10)]
    pub latency_seconds: u64,
    /// Events in the localstripe comparison (localstripe is slow).
    #[arg(long, default_value_t = 2_000)]
    pub peer_events: usize,
    /// Python with `localstripe` installed, for the peer comparison
    /// (default: compat/.venv/bin/python).
    #[arg(long, env = "LOCALSTRIPE_PYTHON")]
    pub localstripe_python: Option<std::path::PathBuf>,
    /// Endpoints in the fan-out scenario.
    #[arg(long, default_value_t = 500)]
    pub fanout: usize,
    /// PostgreSQL for the `postgres` scenario (a fresh schema per run).
    #[arg(
        long,
        env = "SWITCHBOARD_TEST_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub database_url: String,
}

/// A node as `switchboard serve` runs it, on a fresh data dir.
pub struct Bench {
    pub node: Node,
    pub base: String,
    pub client: reqwest::Client,
    _dir: Option<tempfile::TempDir>,
}

pub fn node_config(dir: &std::path::Path, deliver: bool) -> NodeConfig {
    NodeConfig {
        data_dir: dir.to_owned(),
        test_key: Some(KEY.into()),
        live_key: None,
        secrets_key: None,
        server: ServerConfig::default(),
        dispatcher: DispatcherConfig {
            retry: RetrySchedule::fast(),
            timeout: Duration::from_secs(2),
            ..Default::default()
        },
        database_url: None,
        role: if deliver {
            switchboard::Role::All
        } else {
            switchboard::Role::Api
        },
    }
}

impl Bench {
    pub async fn start() -> Bench {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut b = Self::on(dir.path(), true).await;
        b._dir = Some(dir);
        b
    }

    pub async fn on(dir: &std::path::Path, deliver: bool) -> Bench {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let node = Node::start(node_config(dir, deliver), listener, Arc::new(SystemClock))
            .await
            .expect("node starts");
        let base = format!("http://{}", node.addr);
        Bench {
            node,
            base,
            client: client(),
            _dir: None,
        }
    }

    pub async fn post(&self, path: &str, body: String) -> serde_json::Value {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(KEY)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("request");
        serde_json::from_slice(&resp.bytes().await.expect("body")).expect("json")
    }

    /// Creates an endpoint for `*` at `url` and returns its secret.
    pub async fn endpoint(&self, url: &str) -> String {
        Self::endpoint_at(&self.client, &self.base, url).await
    }

    /// [`Bench::endpoint`] on the node at `base`.
    pub async fn endpoint_at(client: &reqwest::Client, base: &str, url: &str) -> String {
        let resp = client
            .post(format!("{base}/v1/webhook_endpoints"))
            .bearer_auth(KEY)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("url={url}&enabled_events[]=*"))
            .send()
            .await
            .expect("request");
        let we: serde_json::Value =
            serde_json::from_slice(&resp.bytes().await.expect("body")).expect("json");
        we["secret"].as_str().expect("secret").to_owned()
    }
}

pub fn client() -> reqwest::Client {
    let _ = switchboard_dispatcher::http_client(Duration::from_secs(1));
    reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// Resident set size of this process, in MiB.
pub fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

pub fn report(name: &str, figure: &str, baseline: &str, ratio: f64, target: &str, met: bool) {
    println!(
        "{name:<12} {figure:<34} baseline {baseline:<28} ratio {ratio:>6.2}  target {target:<22} {}",
        if met { "MET" } else { "NOT MET" }
    );
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let all = [
        "throughput",
        "latency",
        "fanout",
        "isolation",
        "starvation",
        "verify",
        "peer",
        "backlog",
    ];
    let chosen: Vec<String> = if args.scenarios.is_empty() {
        all.iter().map(|s| s.to_string()).collect()
    } else {
        args.scenarios.clone()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "switchboard-bench on {} cores ({}), SQLite in a temp dir",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        cpu_model()
    );
    for s in chosen {
        match s.as_str() {
            "throughput" => runtime.block_on(scenarios::throughput(&args)),
            "latency" => runtime.block_on(scenarios::latency(&args)),
            "fanout" => runtime.block_on(scenarios::fanout(&args)),
            "isolation" => runtime.block_on(scenarios::isolation(&args)),
            "starvation" => runtime.block_on(scenarios::starvation(&args)),
            "verify" => scenarios::verify(),
            "api" => runtime.block_on(scenarios::api_only(&args)),
            "peer" => runtime.block_on(scenarios::peer(&args)),
            "backlog" => runtime.block_on(scenarios::backlog(&args)),
            "postgres" => runtime.block_on(postgres::scenario(&args)),
            "store" => runtime.block_on(store::scenario(args.events.min(5_000))),
            other => anyhow::bail!("unknown scenario {other}; choose from {all:?}"),
        }
    }
    Ok(())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
