//! The delivery engine.
//!
//! One loop claims due deliveries from the store (a lease, so a crashed
//! process's work comes back), and spawns one task per delivery, bounded by
//! a semaphore. Each task signs the stored event bytes with the endpoint's
//! active secrets, POSTs them verbatim, and sends the outcome to a recorder
//! task that writes outcomes in batches.
//!
//! Architecture invariants:
//! - Payloads are sent exactly as stored; nothing here re-serializes JSON.
//! - At-least-once: an outcome is recorded only after the attempt finished;
//!   a crash in between makes the delivery due again when its lease ends.
//! - Time comes from the injected [`Clock`]; the loop wakes on the store's
//!   work signal and polls slowly as a fallback.

mod attempt;
mod relay;

use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;
use switchboard_core::Clock;
use switchboard_core::retry::RetrySchedule;

use switchboard_store::{ClaimRequest, DeliveryOutcome, Store};
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use attempt::{MAX_RECORDED_BODY, classify};
pub use relay::{LISTENER_SCHEME, Relay, RelayError, RelayResponse};

#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    pub retry: RetrySchedule,
    /// Whole-attempt timeout (connect, send, first 4 KiB of the response).
    pub timeout: Duration,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Deliveries in flight at once to one endpoint, so a slow endpoint
    /// cannot occupy every slot.
    pub per_endpoint_concurrency: usize,
    /// Fallback polling period when no wake-up arrives.
    pub poll_interval: Duration,
    /// An endpoint whose deliveries give up after failing this long is disabled.
    pub disable_after: Duration,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            retry: RetrySchedule::live(),
            timeout: Duration::from_secs(30),
            concurrency: 512,
            per_endpoint_concurrency: 64,
            poll_interval: Duration::from_secs(1),
            disable_after: Duration::from_secs(3 * 24 * 3600),
        }
    }
}

impl DispatcherConfig {
    /// A claim outlives the attempt it covers, plus time to record the outcome.
    fn lease_ms(&self) -> i64 {
        self.timeout.as_millis() as i64 + 5_000
    }
}

/// Most deliveries claimed in one store round trip.
const CLAIM_BATCH: usize = 256;

/// Builds the HTTP client deliveries use: pooled keep-alive connections, no
/// redirects (Stripe counts a 3xx as a failure), no ambient proxies.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    // reqwest is built without a default TLS provider; install ring once.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .pool_max_idle_per_host(64)
        .pool_idle_timeout(Duration::from_secs(60))
        .no_proxy()
        .user_agent(attempt::USER_AGENT)
        .build()
        .expect("static client configuration is valid")
}

/// Runs until `shutdown` is cancelled, then waits for in-flight attempts and
/// records their outcomes.
///
/// Deliveries to `stripecli://` endpoints go through `relay` (the server's
/// `stripe listen` hub) instead of HTTP.
pub async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: DispatcherConfig,
    relay: Option<Arc<dyn Relay>>,
    shutdown: CancellationToken,
) {
    let client = http_client(config.timeout);
    let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let (outcomes_tx, outcomes_rx) = mpsc::unbounded_channel();
    let recorder = tokio::spawn(record_outcomes(store.clone(), outcomes_rx));
    let tasks = TaskTracker::new();
    let work = store.work_signal();
    let config = Arc::new(config);
    let in_flight = Arc::new(InFlight::new(config.per_endpoint_concurrency));
    while !shutdown.is_cancelled() {
        let free = permits.available_permits();
        if free == 0 {
            // Wait for one attempt to finish before claiming more.
            tokio::select! {
                p = permits.clone().acquire_owned() => drop(p),
                _ = shutdown.cancelled() => break,
            }
            continue;
        }
        let want = free.min(CLAIM_BATCH);
        let request = ClaimRequest {
            now_ms: clock.now_ms(),
            lease_ms: config.lease_ms(),
            limit: want,
            per_endpoint: config.per_endpoint_concurrency,
            exclude: in_flight.saturated(),
        };
        let claimed = match store.claim_due(request).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "claiming deliveries failed");
                Vec::new()
            }
        };
        let full_batch = claimed.len() == want;
        for delivery in claimed {
            let permit = permits
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore is never closed");
            let (client, clock, config, tx) = (
                client.clone(),
                clock.clone(),
                config.clone(),
                outcomes_tx.clone(),
            );
            let (relay, in_flight) = (relay.clone(), in_flight.clone());
            in_flight.start(&delivery.endpoint_id);
            tasks.spawn(async move {
                let endpoint = delivery.endpoint_id.clone();
                let outcome =
                    attempt::deliver(&client, relay.as_deref(), clock.as_ref(), &config, delivery)
                        .await;
                let _ = tx.send(outcome);
                in_flight.finish(&endpoint);
                drop(permit);
            });
        }
        if full_batch {
            continue;
        }
        tokio::select! {
            _ = work.notified() => {}
            _ = in_flight.freed.notified() => {}
            _ = tokio::time::sleep(config.poll_interval) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    tasks.close();
    tasks.wait().await;
    drop(outcomes_tx);
    let _ = recorder.await;
}

/// Deliveries in flight per endpoint.
struct InFlight {
    limit: usize,
    counts: std::sync::Mutex<HashMap<String, usize>>,
    /// Signalled when a saturated endpoint gets a free slot again.
    freed: Notify,
}

impl InFlight {
    fn new(limit: usize) -> Self {
        InFlight {
            limit: limit.max(1),
            counts: Default::default(),
            freed: Notify::new(),
        }
    }

    fn saturated(&self) -> Vec<String> {
        let counts = self.counts.lock().expect("in-flight lock");
        counts
            .iter()
            .filter(|(_, n)| **n >= self.limit)
            .map(|(e, _)| e.clone())
            .collect()
    }

    fn start(&self, endpoint: &str) {
        *self
            .counts
            .lock()
            .expect("in-flight lock")
            .entry(endpoint.to_owned())
            .or_default() += 1;
    }

    fn finish(&self, endpoint: &str) {
        let mut counts = self.counts.lock().expect("in-flight lock");
        let Some(n) = counts.get_mut(endpoint) else {
            return;
        };
        let was_saturated = *n >= self.limit;
        *n -= 1;
        if *n == 0 {
            counts.remove(endpoint);
        }
        if was_saturated {
            self.freed.notify_one();
        }
    }
}

/// Writes outcomes in batches: one store transaction for however many
/// attempts finished since the last write.
async fn record_outcomes(store: Arc<dyn Store>, mut rx: mpsc::UnboundedReceiver<DeliveryOutcome>) {
    let mut batch = Vec::with_capacity(1024);
    while rx.recv_many(&mut batch, 1024).await > 0 {
        let outcomes = std::mem::take(&mut batch);
        if let Err(e) = store.record_outcomes(outcomes).await {
            // The deliveries stay leased and will be attempted again: at-least-once.
            tracing::error!(error = %e, "recording delivery outcomes failed");
        }
    }
}
