//! Shared server state.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use switchboard_core::Clock;
use switchboard_store::{Platform, Store};

use crate::error::ApiError;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// The API version objects and events are rendered in.
    pub api_version: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: 1 << 20,
            api_version: switchboard_core::DEFAULT_API_VERSION.into(),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<ServerConfig>,
    /// `stripe listen` sessions connected to this node.
    pub listen: Arc<crate::listen::ListenHub>,
    keys: Arc<RwLock<HashMap<String, (Platform, bool)>>>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: ServerConfig,
        listen: Arc<crate::listen::ListenHub>,
    ) -> Self {
        AppState {
            store,
            clock,
            config: Arc::new(config),
            listen,
            keys: Default::default(),
        }
    }

    /// The platform and mode of an API key. Keys change only at start-up,
    /// so positive answers are cached for the life of the process.
    pub async fn authenticate(&self, key: &str) -> Result<Option<(Platform, bool)>, ApiError> {
        if let Some(hit) = self.keys.read().expect("key cache lock").get(key) {
            return Ok(Some(hit.clone()));
        }
        let found = self.store.platform_by_key(key).await?;
        if let Some(hit) = &found {
            self.keys
                .write()
                .expect("key cache lock")
                .insert(key.to_owned(), hit.clone());
        }
        Ok(found)
    }
}
