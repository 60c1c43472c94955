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

use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;
use switchboard_core::Clock;
use switchboard_core::retry::RetrySchedule;
use switchboard_core::url_policy::UrlPolicy;

use switchboard_store::{ClaimRequest, DeliveryOutcome, Store};
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use attempt::{MAX_RECORDED_BODY, classify};
pub use switchboard_store::relay::{LISTENER_SCHEME, Relay, RelayError, RelayResponse};

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
    /// Which internal addresses live endpoints may reach anyway (none by default).
    pub url_policy: UrlPolicy,
    /// How long a shutdown waits for attempts in flight; those still running
    /// then are abandoned unrecorded (their leases make them due again).
    pub shutdown_timeout: Duration,
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
            url_policy: UrlPolicy::default(),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl DispatcherConfig {
    /// A claim outlives the attempt it covers, its wait in its endpoint's
    /// queue (at most two attempts' worth), and the recording of the outcome.
    fn lease_ms(&self) -> i64 {
        (1 + QUEUE_PER_ENDPOINT_SLOT as i64) * self.timeout.as_millis() as i64 + 5_000
    }
}

/// Most deliveries claimed in one store round trip.
const CLAIM_BATCH: usize = 256;

/// Builds the HTTP client deliveries use: pooled keep-alive connections, no
/// redirects (Stripe counts a 3xx as a failure), no ambient proxies.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    builder(timeout)
        .build()
        .expect("static client configuration is valid")
}

/// The client for live endpoints: names resolve only to addresses the
/// policy permits, checked after resolution, so a name that resolves to an
/// internal address (DNS rebinding included) is never connected to.
pub fn live_http_client(timeout: Duration, policy: UrlPolicy) -> reqwest::Client {
    builder(timeout)
        .dns_resolver(Arc::new(attempt::PolicyResolver(policy)))
        .build()
        .expect("static client configuration is valid")
}

fn builder(timeout: Duration) -> reqwest::ClientBuilder {
    // reqwest is built without a default TLS provider; install ring once.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        // Every in-flight delivery may go to the same host (a local receiver
        // behind many endpoints): keep all their connections, or they churn.
        .pool_max_idle_per_host(1024)
        .pool_idle_timeout(Duration::from_secs(60))
        .no_proxy()
        .user_agent(attempt::USER_AGENT)
}

/// Runs until `shutdown` is cancelled, then waits up to `shutdown_timeout`
/// for attempts in flight and records their outcomes. Deliveries still
/// waiting for a slot are not started; attempts still running at the
/// deadline are abandoned. Neither is recorded, so at-least-once holds: their
/// leases make them due again (at once on the next start of a SQLite node).
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
    let clients = attempt::Clients {
        test: http_client(config.timeout),
        live: live_http_client(config.timeout, config.url_policy.clone()),
    };
    let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let (outcomes_tx, outcomes_rx) = mpsc::unbounded_channel();
    let recorder = tokio::spawn(record_outcomes(store.clone(), outcomes_rx));
    let tasks = TaskTracker::new();
    // Cancelled at the shutdown deadline: abandons attempts still running.
    let abandon = CancellationToken::new();
    let work = store.work_signal();
    let config = Arc::new(config);
    let held = Arc::new(Held::new(
        config.per_endpoint_concurrency,
        config.concurrency.max(1) * HELD_PER_SLOT,
    ));
    while !shutdown.is_cancelled() {
        let room = held.room();
        if room == 0 {
            tokio::select! {
                _ = held.freed.notified() => {}
                _ = shutdown.cancelled() => break,
            }
            continue;
        }
        let want = room.min(CLAIM_BATCH);
        let request = ClaimRequest {
            now_ms: clock.now_ms(),
            lease_ms: config.lease_ms(),
            limit: want,
            per_endpoint: config.per_endpoint_concurrency,
            exclude: held.saturated(),
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
            let endpoint_slots = held.start(&delivery.endpoint_id);
            let (clients, clock, config, tx) = (
                clients.clone(),
                clock.clone(),
                config.clone(),
                outcomes_tx.clone(),
            );
            let (relay, held, permits) = (relay.clone(), held.clone(), permits.clone());
            let (shutdown, abandon) = (shutdown.clone(), abandon.clone());
            tasks.spawn(async move {
                let endpoint = delivery.endpoint_id.clone();
                // The endpoint's slot first: a delivery waiting for a busy
                // endpoint must not hold one of the global slots meanwhile.
                // Once shutting down, a delivery still waiting is not started.
                let slots = async {
                    let endpoint_slot = endpoint_slots.acquire_owned().await.expect("never closed");
                    let slot = permits.acquire_owned().await.expect("never closed");
                    (endpoint_slot, slot)
                };
                let slots = tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => None,
                    s = slots => Some(s),
                };
                if let Some(slots) = slots {
                    let attempt = attempt::deliver(
                        &clients,
                        relay.as_deref(),
                        clock.as_ref(),
                        &config,
                        delivery,
                    );
                    tokio::select! {
                        outcome = attempt => { let _ = tx.send(outcome); }
                        _ = abandon.cancelled() => {}
                    }
                    drop(slots);
                }
                held.finish(&endpoint);
            });
        }
        if full_batch {
            continue;
        }
        // Sleep until the next delivery is due (a retry fires on time, not
        // at the next poll), or a wake-up, or the poll as a fallback.
        let wait = match store.next_due_ms().await {
            Ok(Some(due)) if due > clock.now_ms() => {
                Duration::from_millis((due - clock.now_ms()) as u64).min(config.poll_interval)
            }
            // Due already but not claimed (its endpoint is saturated): the
            // endpoint's freed slot wakes the loop.
            _ => config.poll_interval,
        };
        tokio::select! {
            _ = work.notified() => {}
            _ = held.freed.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    tasks.close();
    if tokio::time::timeout(config.shutdown_timeout, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            in_flight = tasks.len(),
            "shutdown deadline: abandoning attempts still running (they are due again on the next start)"
        );
        abandon.cancel();
        tasks.wait().await;
    }
    drop(outcomes_tx);
    let _ = recorder.await;
}

/// Claimed deliveries kept in memory per delivery slot: enough to keep
/// every slot busy between claims, few enough to bound memory.
const HELD_PER_SLOT: usize = 4;
/// Claimed deliveries one endpoint may have waiting or in flight, per slot it may use.
const QUEUE_PER_ENDPOINT_SLOT: usize = 2;

/// Deliveries claimed and not yet finished, per endpoint, each endpoint with
/// its own concurrency limit.
struct Held {
    per_endpoint: usize,
    limit: usize,
    state: std::sync::Mutex<HeldState>,
    /// Signalled when there is room to claim again (overall or for a saturated endpoint).
    freed: Notify,
}

#[derive(Default)]
struct HeldState {
    total: usize,
    endpoints: HashMap<String, (usize, Arc<Semaphore>)>,
}

impl Held {
    fn new(per_endpoint: usize, limit: usize) -> Self {
        Held {
            per_endpoint: per_endpoint.max(1),
            limit,
            state: Default::default(),
            freed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HeldState> {
        self.state.lock().expect("held deliveries lock")
    }

    fn room(&self) -> usize {
        self.limit.saturating_sub(self.lock().total)
    }

    /// Endpoints with a full queue: the next claim skips them.
    fn saturated(&self) -> Vec<String> {
        let full = self.per_endpoint * QUEUE_PER_ENDPOINT_SLOT;
        self.lock()
            .endpoints
            .iter()
            .filter(|(_, (n, _))| *n >= full)
            .map(|(e, _)| e.clone())
            .collect()
    }

    /// Records a claimed delivery; returns its endpoint's slots.
    fn start(&self, endpoint: &str) -> Arc<Semaphore> {
        let mut st = self.lock();
        st.total += 1;
        let per_endpoint = self.per_endpoint;
        let entry = st
            .endpoints
            .entry(endpoint.to_owned())
            .or_insert_with(|| (0, Arc::new(Semaphore::new(per_endpoint))));
        entry.0 += 1;
        entry.1.clone()
    }

    fn finish(&self, endpoint: &str) {
        let full = self.per_endpoint * QUEUE_PER_ENDPOINT_SLOT;
        let mut st = self.lock();
        st.total -= 1;
        let refill = st.total == self.limit / 2;
        let Some(entry) = st.endpoints.get_mut(endpoint) else {
            return;
        };
        let was_full = entry.0 >= full;
        entry.0 -= 1;
        if entry.0 == 0 {
            st.endpoints.remove(endpoint);
        }
        if was_full || refill {
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
