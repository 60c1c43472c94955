//! The pure heart of Switchboard: everything here is a function of its inputs.
//!
//! No I/O, no async, no clock reads, no environment access. Time arrives as a
//! `now: i64` (unix seconds) parameter and randomness as a `&mut impl Rng`,
//! so every rule here is unit-testable without sleeping.
//!
//! Layout:
//! - [`ids`]: Stripe-style prefixed identifiers.
//! - [`form`]: Stripe's bracket-notation form encoding (decode and encode) and
//!   typed parameter extraction that names the offending parameter.
//! - [`catalog`]: the event types Stripe knows.
//! - [`connect`]: Connect rules: account requirements, test-mode magic values, fees.
//! - [`event`]: rendering an event once, in Stripe's byte layout.
//! - [`routing`]: which webhook endpoints receive which event.
//! - [`signature`]: the `Stripe-Signature` scheme.
//! - [`retry`]: delivery retry schedules.
//! - [`object`]: helpers for Stripe-shaped JSON objects.

pub mod attempt;
pub mod catalog;
pub mod chaos;
pub mod connect;
pub mod delivery;
pub mod duration;
pub mod event;
pub mod form;
pub mod ids;
pub mod object;
pub mod retry;
pub mod rfc3339;
pub mod routing;
pub mod schema;
pub mod signature;
pub mod url_policy;

/// Stripe's two separate worlds, chosen by the API key's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    Test,
    Live,
}

impl Mode {
    pub fn livemode(self) -> bool {
        self == Mode::Live
    }

    pub fn from_livemode(livemode: bool) -> Mode {
        if livemode { Mode::Live } else { Mode::Test }
    }
}

/// The API version Switchboard renders objects in unless told otherwise
/// (the version stripe-python 16.1.0 pins).
pub const DEFAULT_API_VERSION: &str = "2026-10-28.endive";

/// How long an idempotency key's answer is replayed, as on Stripe: after
/// 24 hours the key may be reused for a new request.
pub const IDEMPOTENCY_TTL_SECS: i64 = 24 * 3600;

/// A request holds its idempotency key "in flight" (others get Stripe's 409)
/// until it commits; a reservation older than this was left by a node that
/// died mid-request, and the key is free again.
pub const IDEMPOTENCY_IN_FLIGHT_SECS: i64 = 60;

/// Where "now" comes from. Production reads the system clock; tests move a
/// [`ManualClock`] by hand so retry schedules and tolerances are exact.
pub trait Clock: Send + Sync + 'static {
    /// Unix time in milliseconds.
    fn now_ms(&self) -> i64;

    /// Unix time in seconds.
    fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Default)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    pub fn new(now_ms: i64) -> Self {
        ManualClock(std::sync::atomic::AtomicI64::new(now_ms))
    }

    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn set_ms(&self, ms: i64) {
        self.0.store(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}
