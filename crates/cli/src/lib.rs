//! Composition of Switchboard's parts into a running node, shared by the
//! `switchboard` binary and the integration tests (which start it on port 0).

use anyhow::Context as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::serve::ListenerExt as _;
use switchboard_core::{Clock, ids};
use switchboard_dispatcher::DispatcherConfig;
use switchboard_server::listen::ListenHub;
use switchboard_server::{AppState, ServerConfig};
use switchboard_store::postgres::PostgresStore;
use switchboard_store::sqlite::SqliteStore;
use switchboard_store::{Platform, PlatformInit, Store};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What a node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Role {
    /// The API and deliveries.
    #[default]
    All,
    /// The API only; deliveries wait in the database for a node that delivers.
    Api,
    /// Deliveries only; the address answers `/healthz` and `/readyz`.
    Worker,
}

impl Role {
    fn serves_api(self) -> bool {
        matches!(self, Role::All | Role::Api)
    }

    fn delivers(self) -> bool {
        matches!(self, Role::All | Role::Worker)
    }
}

#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Where the SQLite database lives (unless `database_url` is set).
    pub data_dir: PathBuf,
    /// PostgreSQL, shared by several nodes, instead of the SQLite file.
    pub database_url: Option<String>,
    pub test_key: Option<String>,
    pub live_key: Option<String>,
    /// Seals webhook secrets at rest. SQLite without it: a key file beside
    /// the database; PostgreSQL without it: unsealed (with a warning).
    pub secrets_key: Option<String>,
    pub server: ServerConfig,
    pub dispatcher: DispatcherConfig,
    pub role: Role,
}

/// A node serving the API and delivering webhooks until shut down.
pub struct Node {
    pub addr: SocketAddr,
    pub platform: Platform,
    /// Whether this start created the platform (its keys were just generated).
    pub created_platform: bool,
    pub store: Arc<dyn Store>,
    listen: Arc<ListenHub>,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<()>,
    dispatcher: tokio::task::JoinHandle<()>,
}

impl Node {
    pub async fn start(
        config: NodeConfig,
        listener: TcpListener,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Node> {
        let sealed = config
            .secrets_key
            .as_deref()
            .filter(|k| !k.is_empty())
            .map(switchboard_store::secrets::SecretBox::from_operator_key);
        let store: Arc<dyn Store> = match &config.database_url {
            Some(url) => {
                let sealed = sealed.unwrap_or_else(|| {
                    tracing::warn!(
                        "webhook secrets are stored unsealed: give every node the same --secrets-key to seal them"
                    );
                    switchboard_store::secrets::SecretBox::plain()
                });
                Arc::new(PostgresStore::connect_sealed(url, sealed).await?)
            }
            None => {
                let dir = &config.data_dir;
                let unusable = || format!("data dir {} is not usable", dir.display());
                std::fs::create_dir_all(dir).with_context(unusable)?;
                // Keys and webhook secrets live here: readable by this user only.
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt as _;
                    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                        .with_context(unusable)?;
                }
                Arc::new(
                    SqliteStore::open_sealed(
                        &dir.join("switchboard.db"),
                        switchboard_store::sqlite::WAL_LIMIT,
                        sealed,
                    )
                    .with_context(unusable)?,
                )
            }
        };
        // Names this process in listener holds and claims.
        let node_id = ids::generate(ids::Prefix::Node, &mut rand::rng());
        let generated = new_platform(clock.now());
        let generated_id = generated.id.clone();
        let platform = store
            .bootstrap_platform(PlatformInit {
                generated,
                test_key_override: config.test_key.clone(),
                live_key_override: config.live_key.clone(),
            })
            .await?;
        let created_platform = platform.id == generated_id;
        let shutdown = CancellationToken::new();
        let listen = Arc::new(ListenHub::new(
            config.server.api_version.clone(),
            node_id.clone(),
        ));
        let dispatcher = if config.role.delivers() {
            let mut dispatcher_config = config.dispatcher.clone();
            dispatcher_config.node = node_id;
            // One set of metrics per node, counted by both halves.
            dispatcher_config.metrics = config.server.metrics.clone();
            tokio::spawn(switchboard_dispatcher::run(
                store.clone(),
                clock.clone(),
                dispatcher_config,
                Some(listen.clone()),
                shutdown.clone(),
            ))
        } else {
            tokio::spawn(async {})
        };
        let state = AppState::new(store.clone(), clock, config.server.clone(), listen.clone());
        tokio::spawn(switchboard_server::listen::keep_holds(
            state.clone(),
            shutdown.clone(),
        ));
        // Time passing for objects (funds, payouts, authorizations) is
        // background work, like deliveries.
        if config.role.delivers() {
            tokio::spawn(switchboard_server::timers::run(
                state.clone(),
                shutdown.clone(),
            ));
        }
        let addr = listener.local_addr()?;
        let stop = shutdown.clone();
        let serves_api = config.role.serves_api();
        let server = tokio::spawn(async move {
            let app = if serves_api {
                switchboard_server::router(state)
            } else {
                switchboard_server::health_router(state)
            };
            // Without TCP_NODELAY, small responses meet delayed ACKs: ~40 ms per request.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
            {
                tracing::error!(error = %e, "server failed");
            }
        });
        Ok(Node {
            addr,
            platform,
            created_platform,
            store,
            listen,
            shutdown,
            server,
            dispatcher,
        })
    }

    /// Stops accepting requests, finishes in-flight work, and returns.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        // Open WebSockets would otherwise hold the graceful shutdown forever.
        self.listen.close_all();
        let _ = self.server.await;
        let _ = self.dispatcher.await;
        self.store.close().await;
    }
}

/// A platform with fresh ids and keys, kept only if none exists yet.
pub fn new_platform(now: i64) -> Platform {
    let mut rng = rand::rng();
    Platform {
        id: ids::generate(ids::Prefix::Account, &mut rng),
        client_id: ids::generate(ids::Prefix::Application, &mut rng),
        test_key: ids::generate_secret(ids::SECRET_KEY_TEST, &mut rng),
        live_key: ids::generate_secret(ids::SECRET_KEY_LIVE, &mut rng),
        created: now,
    }
}
