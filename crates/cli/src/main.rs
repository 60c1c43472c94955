//! The `switchboard` binary: argument parsing, logging, exit codes.
//! `serve` runs a node; the other commands are clients of a running one.

mod commands;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use switchboard::{Node, NodeConfig, Role};
use switchboard_core::chaos::Chaos;
use switchboard_core::duration;
use switchboard_core::retry::RetrySchedule;
use switchboard_core::url_policy::{Cidr, UrlPolicy};
use switchboard_dispatcher::DispatcherConfig;
use switchboard_server::ServerConfig;
use switchboard_store::SystemClock;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "A self-hostable, Stripe-compatible Connect webhooks engine",
    after_help = "Client commands find the server with --api-base (SWITCHBOARD_API_BASE, default \
                  http://127.0.0.1:12111) and authenticate with --api-key (SWITCHBOARD_API_KEY): \
                  a secret key `switchboard serve` prints."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server and the delivery engine (embedded SQLite, or PostgreSQL with --database-url).
    Serve(ServeArgs),
    /// Receive events over a WebSocket and forward them to a local URL, like `stripe listen`.
    ///
    /// Events are signed with the device's secret, stable across sessions and
    /// server restarts; the session reconnects by itself when the connection drops.
    /// One line per event and per response goes to stdout (colour only on a
    /// terminal); `Ready!`, reconnects and forwarding errors go to stderr. Without
    /// --forward-to, events are only printed (and answered 200).
    Listen(commands::listen::Args),
    /// Make an event happen by running its built-in fixture, like `stripe trigger`.
    #[command(after_help = commands::trigger::supported_events_help())]
    Trigger(commands::trigger::TriggerArgs),
    /// Run the API calls of a fixture file (the Stripe CLI's fixture format).
    #[command(after_help = commands::trigger::FIXTURE_FORMAT_HELP)]
    Fixtures(commands::trigger::FixturesArgs),
    /// List, show and resend events.
    Events(commands::events::Args),
    /// Manage webhook endpoints.
    Endpoints(commands::endpoints::Args),
    /// Inspect delivery attempts.
    Attempts(commands::attempts::Args),
    /// Follow the API requests the server handles (like `stripe logs tail`).
    Logs(commands::logs::Args),
    /// Show or advance the platform's test-mode clock (funds, payouts, retries come due).
    Clock(commands::clock::Args),
    /// Host more than one platform: create, list, rotate keys (needs `serve --admin-key`).
    Platforms(commands::platforms::Args),
}

/// How `serve` writes its log lines to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable, one line per event.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SWITCHBOARD_ADDR", default_value = "127.0.0.1:12111")]
    addr: SocketAddr,
    /// Directory holding the database.
    #[arg(
        long,
        env = "SWITCHBOARD_DATA_DIR",
        default_value = "./switchboard-data"
    )]
    data_dir: PathBuf,
    /// PostgreSQL instead of the embedded SQLite file, for several nodes on one
    /// database: `postgres://user:password@host:5432/db` (no TLS; keep it on a
    /// private network). Tables are created (migrated) at start.
    #[arg(long, env = "SWITCHBOARD_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// The platform's test secret key (generated once and stored if not given).
    #[arg(long, env = "SWITCHBOARD_TEST_KEY", hide_env_values = true)]
    test_key: Option<String>,
    /// The platform's live secret key (generated once and stored if not given).
    #[arg(long, env = "SWITCHBOARD_LIVE_KEY", hide_env_values = true)]
    live_key: Option<String>,
    /// Retry schedule: live (≈3 days), test (3 retries over hours), fast (seconds), none, or a list like 1s,30s,5m.
    #[arg(long, env = "SWITCHBOARD_RETRY_SCHEDULE", default_value = "live", value_parser = RetrySchedule::parse)]
    retry_schedule: RetrySchedule,
    /// Timeout of one delivery attempt.
    #[arg(long, env = "SWITCHBOARD_DELIVERY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    delivery_timeout: Duration,
    /// Disable an endpoint whose deliveries give up after it has failed for this long.
    #[arg(long, env = "SWITCHBOARD_DISABLE_AFTER", default_value = "3d", value_parser = parse_duration)]
    disable_after: Duration,
    /// Deliveries in flight at once.
    #[arg(long, env = "SWITCHBOARD_CONCURRENCY", default_value_t = 512)]
    concurrency: usize,
    /// What this node does: `all` (API and deliveries), `api` (API only, deliveries
    /// wait in the database for a node that delivers), `worker` (deliveries only;
    /// its address answers `/healthz` and `/readyz`).
    #[arg(long, env = "SWITCHBOARD_ROLE", value_enum, default_value_t = Role::All)]
    role: Role,
    /// Deliveries in flight at once to any one endpoint.
    #[arg(
        long,
        env = "SWITCHBOARD_PER_ENDPOINT_CONCURRENCY",
        default_value_t = 64
    )]
    per_endpoint_concurrency: usize,
    /// Requests per second allowed per API key, answered with Stripe's 429 beyond
    /// (Stripe's own limits are 25/s in test mode, 100/s live). Unlimited if unset.
    #[arg(long, env = "SWITCHBOARD_RATE_LIMIT")]
    rate_limit: Option<u32>,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "SWITCHBOARD_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    max_body_bytes: usize,
    /// How long SIGINT/SIGTERM waits for deliveries in flight before exiting;
    /// unfinished ones are due again on the next start.
    #[arg(long, env = "SWITCHBOARD_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    shutdown_timeout: Duration,
    /// Chaos mode, to rehearse what Stripe warns of: `duplicate=0.1` sends
    /// events twice, `reorder=0.2,delay=5s` holds attempts back so later ones
    /// overtake them, `fail=0.05` fails attempts unsent (they are retried);
    /// `seed=N` reproduces a run. Every fault shows in the attempt log.
    #[arg(long, env = "SWITCHBOARD_CHAOS", value_parser = Chaos::parse)]
    chaos: Option<Chaos>,
    /// Address ranges live endpoints may point at although they are internal
    /// (loopback, private, link-local, CGNAT…), for self-hosted receivers:
    /// `10.0.0.0/8,127.0.0.1`. Plain HTTP is allowed to them too.
    #[arg(
        long,
        env = "SWITCHBOARD_ALLOW_PRIVATE_ENDPOINTS",
        value_delimiter = ','
    )]
    allow_private_endpoints: Vec<Cidr>,
    /// Log lines as `text` or `json` (one object per line); SWITCHBOARD_LOG sets the level.
    #[arg(long, env = "SWITCHBOARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// The key that seals webhook secrets at rest (64 hex digits, or a
    /// passphrase). Every node of a PostgreSQL cluster needs the same one;
    /// with SQLite it defaults to `switchboard.key` in the data dir.
    #[arg(long, env = "SWITCHBOARD_SECRETS_KEY", hide_env_values = true)]
    secrets_key: Option<String>,
    /// The operator's key for the admin API (`switchboard platforms`, which
    /// hosts more than one platform); the admin API is off without it.
    #[arg(long, env = "SWITCHBOARD_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
    /// Test suites only: hold every `/v1` response and event to Stripe's schema
    /// and list mismatches at `GET /switchboard/v1/schema_violations` (across
    /// platforms, so never in production).
    #[arg(long, env = "SWITCHBOARD_CHECK_SCHEMA", hide = true)]
    check_schema: bool,
}

// glibc's malloc serialises threads on its arena locks under this load
// (allocation-heavy HTTP and JSON on every core); mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn parse_duration(s: &str) -> Result<Duration, String> {
    duration::parse_millis(s).map(Duration::from_millis)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // A server logs what it does; a client command speaks through its output.
    let (default_level, format) = match &cli.command {
        Command::Serve(args) => ("info", args.log_format),
        _ => ("warn", LogFormat::Text),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWITCHBOARD_LOG")
        .unwrap_or_else(|_| default_level.into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        // One JSON object per line, fields flattened, for log pipelines.
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let client = match cli.command {
        Command::Serve(args) => return runtime.block_on(serve(args)),
        Command::Listen(args) => runtime.block_on(commands::listen::run(args)),
        Command::Trigger(args) => runtime.block_on(commands::trigger::trigger(args)),
        Command::Fixtures(args) => runtime.block_on(commands::trigger::fixtures(args)),
        Command::Events(args) => runtime.block_on(commands::events::run(args)),
        Command::Endpoints(args) => runtime.block_on(commands::endpoints::run(args)),
        Command::Attempts(args) => runtime.block_on(commands::attempts::run(args)),
        Command::Logs(args) => runtime.block_on(commands::logs::run(args)),
        Command::Clock(args) => runtime.block_on(commands::clock::run(args)),
        Command::Platforms(args) => runtime.block_on(commands::platforms::run(args)),
    };
    // A client's failure is a message for a person: its causes on one line, no backtrace.
    if let Err(e) = client {
        eprintln!("Error: {e:#}");
        std::process::exit(1);
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    let url_policy = UrlPolicy {
        allow: args.allow_private_endpoints,
    };
    let config = NodeConfig {
        data_dir: args.data_dir,
        database_url: args.database_url,
        test_key: args.test_key,
        live_key: args.live_key,
        secrets_key: args.secrets_key,
        server: ServerConfig {
            max_body_bytes: args.max_body_bytes,
            rate_limit: args.rate_limit,
            check_schema: args.check_schema,
            admin_key: args.admin_key.filter(|k| !k.is_empty()),
            url_policy: url_policy.clone(),
            ..Default::default()
        },
        dispatcher: DispatcherConfig {
            retry: args.retry_schedule,
            timeout: args.delivery_timeout,
            disable_after: args.disable_after,
            concurrency: args.concurrency,
            per_endpoint_concurrency: args.per_endpoint_concurrency,
            url_policy,
            shutdown_timeout: args.shutdown_timeout,
            chaos: args.chaos.unwrap_or_default(),
            ..Default::default()
        },
        role: args.role,
    };
    let (test_given, live_given) = (config.test_key.is_some(), config.live_key.is_some());
    let node = Node::start(config, listener, Arc::new(SystemClock)).await?;
    let p = &node.platform;
    // The first line is machine-readable: tests and scripts read the address from it.
    println!("switchboard listening on http://{}", node.addr);
    println!("platform account:  {}", p.id);
    println!("connect client id: {}", p.client_id);
    // A key is shown whole only the one time it is generated; keys given by
    // flag or environment, and stored ones, only by their ends.
    println!(
        "test secret key:   {}",
        banner_key(
            &p.test_key,
            node.created_platform && !test_given,
            test_given
        )
    );
    println!(
        "live secret key:   {}",
        banner_key(
            &p.live_key,
            node.created_platform && !live_given,
            live_given
        )
    );
    wait_for_signal().await;
    tracing::info!("shutting down");
    node.shutdown().await;
    Ok(())
}

fn banner_key(key: &str, generated: bool, given: bool) -> String {
    if generated {
        return format!("{key}   (generated now; it is not shown again)");
    }
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    // A stored live key is only its digest (ending with the key's last four).
    let prefix: String = if switchboard_core::ids::is_at_rest(key) {
        switchboard_core::ids::SECRET_KEY_LIVE.to_owned() + "_"
    } else {
        key.chars().take(8).collect()
    };
    let whence = if given {
        "as given"
    } else if switchboard_core::ids::is_at_rest(key) {
        "stored hashed: only its last four are known"
    } else {
        "as stored in the data dir"
    };
    format!("{prefix}…{tail}   ({whence})")
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
