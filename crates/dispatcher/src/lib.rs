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

use switchboard_store::handoff::Handoff;
use switchboard_store::{ClaimRequest, ClaimedDelivery, DeliveryOutcome, Store};
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
    /// Faults injected on purpose (chaos mode; off by default).
    pub chaos: switchboard_core::chaos::Chaos,
    /// How long a shutdown waits for attempts in flight; those still running
    /// then are abandoned unrecorded (their leases make them due again).
    pub shutdown_timeout: Duration,
    /// This node, as claims name it (deliveries to `stripe listen` devices
    /// go only to the node holding their socket).
    pub node: String,
    /// Where attempts are counted (`GET /metrics`).
    pub metrics: std::sync::Arc<switchboard_store::metrics::Metrics>,
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
            chaos: Default::default(),
            node: String::new(),
            metrics: switchboard_store::metrics::Metrics::new(),
        }
    }
}

impl DispatcherConfig {
    /// A claim outlives the attempt it covers, its wait in its endpoint's
    /// queue (at most two attempts' worth), and the recording of the outcome.
    fn lease_ms(&self) -> i64 {
        (1 + QUEUE_PER_ENDPOINT_SLOT as i64) * self.timeout.as_millis() as i64
            + 2 * LEASE_MARGIN.as_millis() as i64
    }
}

/// What an attempt must leave of its lease: time to record its outcome.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

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
        urls: Default::default(),
    };
    let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let (outcomes_tx, outcomes_rx) = mpsc::unbounded_channel();
    let recorder = tokio::spawn(record_outcomes(
        store.clone(),
        outcomes_rx,
        config.metrics.clone(),
    ));
    let tasks = TaskTracker::new();
    // Cancelled at the shutdown deadline: abandons attempts still running.
    let abandon = CancellationToken::new();
    let work = store.work_signal();
    let config = Arc::new(config);
    let held = Arc::new(Held::new(
        config.per_endpoint_concurrency,
        config.concurrency.max(1) * HELD_PER_SLOT,
    ));
    // Deliveries this node's commits queue come straight here (see
    // `switchboard_store::handoff`); claims find the rest.
    let (handed_tx, mut handed) = mpsc::unbounded_channel();
    store.set_handoff(Some(Arc::new(Inbox {
        held: held.clone(),
        lease_ms: config.lease_ms(),
        to: handed_tx,
    })));
    let launcher = Launcher {
        clients,
        clock: clock.clone(),
        config: config.clone(),
        outcomes: outcomes_tx.clone(),
        relay,
        held: held.clone(),
        permits,
        shutdown: shutdown.clone(),
        abandon: abandon.clone(),
        tasks: tasks.clone(),
    };
    'claims: while !shutdown.is_cancelled() {
        let room = held.room();
        if room == 0 {
            tokio::select! {
                _ = held.freed.notified() => {}
                Some(batch) = handed.recv() => launcher.handed(batch),
                _ = shutdown.cancelled() => break,
            }
            continue;
        }
        let want = room.min(CLAIM_BATCH);
        let request = ClaimRequest {
            node: config.node.clone(),
            now_ms: clock.now_ms(),
            lease_ms: config.lease_ms(),
            limit: want,
            // Endpoints not held yet start at the initial limit.
            per_endpoint: INITIAL_LIMIT.min(config.per_endpoint_concurrency)
                * QUEUE_PER_ENDPOINT_SLOT,
            endpoint_room: held.endpoint_room(),
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
            launcher.launch(delivery, endpoint_slots);
        }
        if full_batch {
            continue;
        }
        // Sleep until the next delivery is due (a retry fires on time, not
        // at the next poll), or a wake-up, or the poll as a fallback.
        let now = clock.now_ms();
        let (wait, caught_up) = match store.next_due_ms().await {
            Ok(Some(due)) if due > now => (
                Duration::from_millis((due - now) as u64).min(config.poll_interval),
                true,
            ),
            Ok(None) => (config.poll_interval, true),
            // Due already but not claimed (its endpoint is saturated): the
            // endpoint's freed slot wakes the loop.
            _ => (config.poll_interval, false),
        };
        if caught_up {
            // Nothing due waits in the store: commits may hand work over again.
            held.backlog
                .store(false, std::sync::atomic::Ordering::Relaxed);
        }
        let deadline = tokio::time::Instant::now() + wait;
        // Handed deliveries start without a claim: a busy node hands off
        // most of its work and claims only when woken for the rest.
        loop {
            tokio::select! {
                _ = work.notified() => break,
                _ = held.freed.notified() => break,
                Some(batch) = handed.recv() => launcher.handed(batch),
                _ = tokio::time::sleep_until(deadline) => break,
                _ = shutdown.cancelled() => break 'claims,
            }
        }
    }
    // No more hand-offs: what is handed now stays leased, due again later.
    store.set_handoff(None);
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
    // The recorder ends when every sender is gone (the launcher holds one).
    drop((outcomes_tx, launcher));
    let _ = recorder.await;
}

/// Starts attempts of deliveries this node holds (claimed or handed).
struct Launcher {
    clients: attempt::Clients,
    clock: Arc<dyn Clock>,
    config: Arc<DispatcherConfig>,
    outcomes: mpsc::UnboundedSender<DeliveryOutcome>,
    relay: Option<Arc<dyn Relay>>,
    held: Arc<Held>,
    permits: Arc<Semaphore>,
    shutdown: CancellationToken,
    abandon: CancellationToken,
    tasks: TaskTracker,
}

impl Launcher {
    /// Deliveries a commit handed over, already counted in `held`.
    fn handed(&self, batch: Vec<ClaimedDelivery>) {
        for delivery in batch {
            let endpoint_slots = self.held.slots(&delivery.endpoint_id);
            self.launch(delivery, endpoint_slots);
        }
    }

    /// One task per delivery: waits for its endpoint's slot and a global
    /// one, attempts it, and sends the outcome to the recorder.
    fn launch(&self, delivery: ClaimedDelivery, endpoint_slots: Arc<Semaphore>) {
        let (clients, clock, config, tx) = (
            self.clients.clone(),
            self.clock.clone(),
            self.config.clone(),
            self.outcomes.clone(),
        );
        let (relay, held, permits) = (self.relay.clone(), self.held.clone(), self.permits.clone());
        let (shutdown, abandon) = (self.shutdown.clone(), self.abandon.clone());
        let claimed_at = tokio::time::Instant::now();
        self.tasks.spawn(async move {
            let endpoint = delivery.endpoint_id.clone();
            // The endpoint's slot first: a delivery waiting for a busy
            // endpoint must not hold one of the global slots meanwhile.
            // Once shutting down, a delivery still waiting is not started.
            let endpoint_slot = tokio::select! {
                biased;
                _ = shutdown.cancelled() => None,
                s = endpoint_slots.acquire_owned() => Some(s.expect("never closed")),
            };
            let Some(endpoint_slot) = endpoint_slot else {
                held.finish(&endpoint, None, None);
                return;
            };
            let slot = tokio::select! {
                biased;
                _ = shutdown.cancelled() => None,
                s = permits.acquire_owned() => Some(s.expect("never closed")),
            };
            // Its endpoint slowed down while it waited: an attempt now
            // could outlast the lease (and run beside the next claimer's),
            // so leave it unattempted for the lease to bring it back.
            let lease_left = Duration::from_millis(config.lease_ms() as u64)
                .saturating_sub(claimed_at.elapsed());
            let slot = slot.filter(|_| lease_left > config.timeout + LEASE_MARGIN);
            let mut verdict = None;
            if let Some(slot) = slot {
                let attempt = attempt::deliver(
                    &clients,
                    relay.as_deref(),
                    clock.as_ref(),
                    &config,
                    delivery,
                );
                tokio::select! {
                    outcome = attempt => {
                        verdict = Some(Verdict::of(&outcome));
                        let _ = tx.send(outcome);
                    }
                    _ = abandon.cancelled() => {}
                }
                drop(slot);
            }
            held.finish(&endpoint, Some(endpoint_slot), verdict);
        });
    }
}

/// Where this node's commits hand the deliveries they queue: room is taken
/// in `held` as a claim would take it, so hand-offs obey the same global and
/// per-endpoint limits, and what does not fit waits for a claim.
struct Inbox {
    held: Arc<Held>,
    lease_ms: i64,
    to: mpsc::UnboundedSender<Vec<ClaimedDelivery>>,
}

impl Handoff for Inbox {
    fn lease_ms(&self) -> i64 {
        self.lease_ms
    }

    fn reserve(&self, endpoint_id: &str) -> bool {
        // A closed inbox (the loop ended) takes nothing more.
        !self.to.is_closed() && self.held.try_start(endpoint_id)
    }

    fn release(&self, endpoint_id: &str) {
        self.held.finish(endpoint_id, None, None);
    }

    fn hand(&self, deliveries: Vec<ClaimedDelivery>) {
        // Sent into a closed inbox they are dropped, leased: due again later.
        let _ = self.to.send(deliveries);
    }
}

/// Claimed deliveries kept in memory per delivery slot: enough to keep
/// every slot busy between claims, few enough to bound memory.
const HELD_PER_SLOT: usize = 4;
/// Claimed deliveries one endpoint may have waiting or in flight, per slot it may use.
const QUEUE_PER_ENDPOINT_SLOT: usize = 2;

/// An endpoint's first concurrency limit: it grows by one with each success
/// (doubling per round trip, like TCP's slow start) up to
/// `per_endpoint_concurrency`, so a new endpoint that hangs holds this many
/// slots, not `per_endpoint_concurrency`, while its first attempts time out.
const INITIAL_LIMIT: usize = 4;

/// How an attempt bears on its endpoint's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// 2xx: the endpoint keeps up; one more in flight.
    Healthy,
    /// Timeout, no connection, 429 or 5xx: it does not; half as many.
    Struggling,
    /// Anything else (a 4xx, a redirect) says nothing about its capacity.
    Neutral,
}

impl Verdict {
    fn of(outcome: &DeliveryOutcome) -> Verdict {
        let a = &outcome.attempt;
        match a.status_code {
            _ if a.succeeded => Verdict::Healthy,
            None => Verdict::Struggling,
            Some(429) | Some(500..) => Verdict::Struggling,
            Some(_) => Verdict::Neutral,
        }
    }
}

/// Deliveries claimed and not yet finished, per endpoint, each endpoint with
/// its own adaptive concurrency limit (AIMD): a success raises it by one up
/// to the configured maximum, a struggling answer halves it (never below
/// one). A hanging or failing endpoint thus ends up with one delivery in
/// flight and two queued, never the global slots healthy endpoints need.
struct Held {
    per_endpoint: usize,
    limit: usize,
    /// Due deliveries wait in the store: hand-offs stop until claims have
    /// caught up, so newer work never overtakes older work indefinitely.
    backlog: std::sync::atomic::AtomicBool,
    state: std::sync::Mutex<HeldState>,
    /// Signalled when there is room to claim again (overall or for a saturated endpoint).
    freed: Notify,
}

#[derive(Default)]
struct HeldState {
    total: usize,
    endpoints: HashMap<String, Gate>,
}

/// One endpoint's deliveries and limit. `slots` holds `limit` permits in
/// all (handed out or not) plus `debt` still to be taken back: a halved
/// limit takes permits back as in-flight attempts return them.
struct Gate {
    queued: usize,
    limit: usize,
    debt: usize,
    slots: Arc<Semaphore>,
    /// Since when nothing of this endpoint has been held.
    idle_since: Option<std::time::Instant>,
}

impl Gate {
    fn new(limit: usize) -> Self {
        Gate {
            queued: 0,
            limit,
            debt: 0,
            slots: Arc::new(Semaphore::new(limit)),
            idle_since: None,
        }
    }
}

/// How long an endpoint's learned limit outlives its last delivery.
const FORGET_IDLE_AFTER: Duration = Duration::from_secs(600);

impl Held {
    fn new(per_endpoint: usize, limit: usize) -> Self {
        Held {
            per_endpoint: per_endpoint.max(1),
            limit,
            backlog: Default::default(),
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

    /// How many more deliveries each endpoint below its maximum may be
    /// claimed for (two per slot: one in flight, one waiting), so a claim's
    /// lease always covers its wait; endpoints at zero are skipped.
    fn endpoint_room(&self) -> HashMap<String, usize> {
        let mut st = self.lock();
        // An endpoint idle for long is forgotten: it starts again at the
        // initial limit, as a new one would.
        st.endpoints
            .retain(|_, g| g.idle_since.is_none_or(|t| t.elapsed() < FORGET_IDLE_AFTER));
        st.endpoints
            .iter()
            .map(|(e, g)| {
                let cap = g.limit * QUEUE_PER_ENDPOINT_SLOT;
                (e.clone(), cap.saturating_sub(g.queued))
            })
            .collect()
    }

    /// Records a delivery handed over by a commit if there is room for it
    /// (overall and at its endpoint, as a claim counts room).
    fn try_start(&self, endpoint: &str) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        if self.backlog.load(Relaxed) {
            return false;
        }
        let mut st = self.lock();
        let initial = INITIAL_LIMIT.min(self.per_endpoint);
        let full = st.total >= self.limit
            || st
                .endpoints
                .get(endpoint)
                .is_some_and(|g| g.queued >= g.limit * QUEUE_PER_ENDPOINT_SLOT);
        if full {
            // This delivery waits in the store; so do the next ones, until
            // the claims have taken what is due.
            self.backlog.store(true, Relaxed);
            return false;
        }
        Self::count(&mut st, endpoint, initial);
        true
    }

    /// Counts one more delivery held for `endpoint`; returns its slots.
    fn count(st: &mut HeldState, endpoint: &str, initial: usize) -> Arc<Semaphore> {
        st.total += 1;
        let gate = st
            .endpoints
            .entry(endpoint.to_owned())
            .or_insert_with(|| Gate::new(initial));
        gate.queued += 1;
        gate.idle_since = None;
        gate.slots.clone()
    }

    /// The slots of an endpoint with deliveries held.
    fn slots(&self, endpoint: &str) -> Arc<Semaphore> {
        let initial = INITIAL_LIMIT.min(self.per_endpoint);
        let mut st = self.lock();
        st.endpoints
            .entry(endpoint.to_owned())
            .or_insert_with(|| Gate::new(initial))
            .slots
            .clone()
    }

    /// Records a claimed delivery; returns its endpoint's slots.
    fn start(&self, endpoint: &str) -> Arc<Semaphore> {
        let initial = INITIAL_LIMIT.min(self.per_endpoint);
        Self::count(&mut self.lock(), endpoint, initial)
    }

    /// A delivery is done (`verdict: None`: abandoned before its attempt);
    /// `slot` is its endpoint permit, if it got one.
    fn finish(
        &self,
        endpoint: &str,
        slot: Option<tokio::sync::OwnedSemaphorePermit>,
        verdict: Option<Verdict>,
    ) {
        let mut st = self.lock();
        st.total -= 1;
        let refill = st.total == self.limit / 2;
        let max = self.per_endpoint;
        let Some(gate) = st.endpoints.get_mut(endpoint) else {
            return;
        };
        let was_full = gate.queued >= gate.limit * QUEUE_PER_ENDPOINT_SLOT;
        gate.queued -= 1;
        match verdict {
            Some(Verdict::Healthy) if gate.limit < max => {
                gate.limit += 1;
                if gate.debt > 0 {
                    gate.debt -= 1;
                } else {
                    gate.slots.add_permits(1);
                }
            }
            Some(Verdict::Struggling) if gate.limit > 1 => {
                let halved = (gate.limit / 2).max(1);
                gate.debt += gate.limit - halved;
                gate.limit = halved;
                // Idle permits go at once; the rest as they come back.
                gate.debt -= gate.slots.forget_permits(gate.debt);
            }
            _ => {}
        }
        if let Some(slot) = slot {
            if gate.debt > 0 {
                slot.forget();
                gate.debt -= 1;
            } else {
                drop(slot);
            }
        }
        gate.idle_since = (gate.queued == 0).then(std::time::Instant::now);
        if was_full || refill {
            self.freed.notify_one();
        }
    }
}

/// Writes outcomes in batches: one store transaction for however many
/// attempts finished since the last write.
async fn record_outcomes(
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<DeliveryOutcome>,
    metrics: Arc<switchboard_store::metrics::Metrics>,
) {
    let mut batch = Vec::with_capacity(1024);
    while rx.recv_many(&mut batch, 1024).await > 0 {
        let outcomes = std::mem::take(&mut batch);
        match store.record_outcomes(outcomes).await {
            Ok(disabled) => {
                if disabled > 0 {
                    tracing::warn!(disabled, "endpoints disabled after failing for too long");
                    metrics.endpoints_disabled.inc_by(disabled);
                }
            }
            // The deliveries stay leased and will be attempted again: at-least-once.
            Err(e) => tracing::error!(error = %e, "recording delivery outcomes failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit_of(held: &Held, endpoint: &str) -> usize {
        held.lock().endpoints.get(endpoint).map_or(0, |g| g.limit)
    }

    #[test]
    fn hand_offs_stop_once_work_waits_in_the_store() {
        let held = Held::new(16, 1000);
        // A new endpoint takes its initial limit's queue (4 × 2), then no more.
        for _ in 0..INITIAL_LIMIT * QUEUE_PER_ENDPOINT_SLOT {
            assert!(held.try_start("we_1"));
        }
        assert!(!held.try_start("we_1"), "its queue is full");
        // That delivery waits for a claim: so does the next one, even to
        // another endpoint with room, until the claims have caught up.
        assert!(!held.try_start("we_2"));
        held.backlog
            .store(false, std::sync::atomic::Ordering::Relaxed);
        assert!(held.try_start("we_2"));
        // A reservation given back frees its room.
        held.finish("we_1", None, None);
        assert!(held.try_start("we_1"));
    }

    #[tokio::test]
    async fn limits_grow_with_successes_and_halve_when_an_endpoint_struggles() {
        let held = Held::new(16, 1000);
        // Slow start: 4, then one more per success, up to the maximum.
        let mut last = None;
        for _ in 0..20 {
            let slots = held.start("we_ok");
            let permit = slots.clone().acquire_owned().await.unwrap();
            held.start("we_ok"); // keep the endpoint held between rounds
            held.finish("we_ok", Some(permit), Some(Verdict::Healthy));
            last = Some(slots);
        }
        assert_eq!(limit_of(&held, "we_ok"), 16);
        assert_eq!(last.unwrap().available_permits(), 16);

        // A struggling endpoint: 4 in flight time out one after another.
        let slots = held.start("we_hang");
        let mut permits = vec![slots.clone().acquire_owned().await.unwrap()];
        for _ in 0..3 {
            held.start("we_hang");
            permits.push(slots.clone().acquire_owned().await.unwrap());
        }
        held.start("we_hang"); // one more waits
        assert_eq!(slots.available_permits(), 0);
        for p in permits {
            held.finish("we_hang", Some(p), Some(Verdict::Struggling));
        }
        // 4 → 2 → 1 → 1 → 1, and the permits taken back as they returned.
        assert_eq!(limit_of(&held, "we_hang"), 1);
        assert_eq!(slots.available_permits(), 1, "one slot, and it is free");
        // Its claims shrink with it: one slot, two held, one already queued.
        assert_eq!(held.endpoint_room()["we_hang"], 1);
    }
}
