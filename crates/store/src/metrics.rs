//! Prometheus metrics (`GET /metrics`), names prefixed `switchboard_`. The
//! server counts API requests, commits and events; the dispatcher counts
//! attempts; gauges of the queue are read from the store when scraped. It
//! lives here, below both, like [`crate::relay`], so neither depends on the other.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub r#type: String,
    pub mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `succeeded`, `retry`, `gave_up`, `one_shot_failed`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The route's template (`/v1/customers/{id}`), never the raw path.
    pub route: String,
    pub status: u16,
}

/// Every metric Switchboard exports. Updates are lock-free atomics (the
/// labelled families take a read lock once a label set exists).
pub struct Metrics {
    registry: Registry,
    pub events_created: Family<EventLabels, Counter>,
    pub deliveries: Family<OutcomeLabels, Counter>,
    pub attempt_seconds: Histogram,
    pub api_requests: Family<RequestLabels, Counter>,
    pub commit_seconds: Histogram,
    pub endpoints_disabled: Counter,
    pub listen_sessions: Gauge,
    pub queue_pending: Gauge,
    pub queue_oldest_due_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Registers `metric` under `name` and hands it back to keep.
fn reg<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

impl Default for Metrics {
    fn default() -> Self {
        let mut r = Registry::with_prefix("switchboard");
        Metrics {
            events_created: reg(
                &mut r,
                "events_created",
                "Events created, by type and mode",
                Family::default(),
            ),
            deliveries: reg(
                &mut r,
                "deliveries",
                "Delivery attempts, by outcome",
                Family::default(),
            ),
            // 1 ms … ~65 s
            attempt_seconds: reg(
                &mut r,
                "attempt_duration_seconds",
                "Duration of delivery attempts",
                Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            ),
            api_requests: reg(
                &mut r,
                "api_requests",
                "API requests, by method, route and status",
                Family::default(),
            ),
            // 50 µs … ~3 s
            commit_seconds: reg(
                &mut r,
                "store_commit_duration_seconds",
                "Duration of API commits to the store",
                Histogram::new(exponential_buckets(0.00005, 2.0, 16)),
            ),
            endpoints_disabled: reg(
                &mut r,
                "endpoints_disabled",
                "Endpoints disabled after failing for too long",
                Counter::default(),
            ),
            listen_sessions: reg(
                &mut r,
                "listen_sessions",
                "stripe listen sockets connected to this node",
                Gauge::default(),
            ),
            queue_pending: reg(
                &mut r,
                "queue_pending_deliveries",
                "Deliveries not yet done (all nodes)",
                Gauge::default(),
            ),
            queue_oldest_due_seconds: reg(
                &mut r,
                "queue_oldest_due_age_seconds",
                "How long the oldest due delivery has waited (0 when none is due)",
                Gauge::default(),
            ),
            registry: r,
        }
    }
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// The Prometheus text exposition (OpenMetrics flavour, as prometheus-client writes it).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
