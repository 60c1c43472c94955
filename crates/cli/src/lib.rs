//! Composition of Switchboard's parts into a running node, shared by the
//! `switchboard` binary and the integration tests (which start it on port 0).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::serve::ListenerExt as _;
use switchboard_core::{Clock, ids};
use switchboard_dispatcher::DispatcherConfig;
use switchboard_server::listen::ListenHub;
use switchboard_server::{AppState, ServerConfig};
use switchboard_store::sqlite::SqliteStore;
use switchboard_store::{Platform, PlatformInit, Store};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    pub test_key: Option<String>,
    pub live_key: Option<String>,
    pub server: ServerConfig,
    pub dispatcher: DispatcherConfig,
    /// Whether this node delivers webhooks (`false`: API only, another node delivers).
    pub deliver: bool,
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
        std::fs::create_dir_all(&config.data_dir)?;
        // Keys and webhook secrets live here: readable by this user only.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&config.data_dir.join("switchboard.db"))?);
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
        let listen = Arc::new(ListenHub::new(config.server.api_version.clone()));
        let dispatcher = if config.deliver {
            tokio::spawn(switchboard_dispatcher::run(
                store.clone(),
                clock.clone(),
                config.dispatcher.clone(),
                Some(listen.clone()),
                shutdown.clone(),
            ))
        } else {
            tokio::spawn(async {})
        };
        let state = AppState::new(store.clone(), clock, config.server.clone(), listen.clone());
        let addr = listener.local_addr()?;
        let stop = shutdown.clone();
        let server = tokio::spawn(async move {
            let app = switchboard_server::router(state);
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
