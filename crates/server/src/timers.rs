//! Time that passes: the task that fires objects' timers when they come due
//! (funds becoming available, payouts arriving, authorizations expiring),
//! and the test clock that brings them forward.
//!
//! A timer is armed in the same change as the object it belongs to (see
//! `switchboard_store::Timer`), in real time; firing it runs the object's
//! own `tick` through the API module that owns it, which does the work and
//! re-arms or disarms the timer in one change. Ticks are idempotent (a
//! timer fired twice, by two nodes or after a crash, finds nothing left to
//! do the second time), so the task needs no lease.

use std::time::Duration;

use switchboard_store::Timer;
use tokio_util::sync::CancellationToken;

use crate::api;
use crate::context::Ctx;
use crate::error::ApiError;
use crate::state::AppState;

/// How many timers one round reads.
const BATCH: usize = 100;
/// How often the task looks for due timers: the resolution of time passing
/// on its own (the test clock fires what it makes due at once).
const POLL: Duration = Duration::from_secs(1);
/// A timer whose work failed is tried again this much later.
const RETRY_MS: i64 = 60_000;

/// Fires due timers until `shutdown`.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    loop {
        let fired = fire_due(&state, None).await;
        if fired < BATCH {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(POLL) => {}
            }
        } else if shutdown.is_cancelled() {
            return;
        }
    }
}

/// Fires the timers due now (only `platform`'s, if given); returns how
/// many fired.
pub async fn fire_due(state: &AppState, platform: Option<&str>) -> usize {
    let due = match state.store.due_timers(state.clock.now_ms(), BATCH).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "reading due timers failed");
            return 0;
        }
    };
    let mut fired = 0;
    for timer in due
        .iter()
        .filter(|t| platform.is_none_or(|p| p == t.scope.platform))
    {
        fired += 1;
        if let Err(e) = fire(state, timer).await {
            tracing::warn!(error = %e, kind = %timer.kind, object = %timer.object_id, "a timer's work failed; trying again later");
            postpone(state, timer).await;
        }
    }
    fired
}

/// Runs one timer's work.
async fn fire(state: &AppState, timer: &Timer) -> Result<(), ApiError> {
    let platform = state
        .store
        .platform(&timer.scope.platform)
        .await?
        .ok_or_else(|| {
            ApiError::Internal(format!(
                "a timer of an unknown platform {}",
                timer.scope.platform
            ))
        })?;
    let ctx = Ctx::automatic(state.clone(), platform, timer.scope.clone()).await?;
    match timer.kind.as_str() {
        "balance" => api::balance::tick(&ctx, &timer.scope).await,
        "payout" => api::payouts::tick(&ctx, &timer.object_id).await,
        "payment_intent" => api::payments::tick(&ctx, &timer.object_id).await,
        other => Err(ApiError::Internal(format!(
            "a timer of unknown kind {other}"
        ))),
    }
}

async fn postpone(state: &AppState, timer: &Timer) {
    let mut change = switchboard_store::Change {
        platform: timer.scope.platform.clone(),
        now: state.clock.now(),
        now_ms: state.clock.now_ms(),
        api_version: state.config.api_version.clone(),
        writes: Vec::new(),
        events: Vec::new(),
        idempotency: None,
    };
    change.writes.push(switchboard_store::Write::Timer(Timer {
        due_ms: Some(state.clock.now_ms() + RETRY_MS),
        ..timer.clone()
    }));
    if let Err(e) = state.store.commit(change).await {
        tracing::warn!(error = %e, "postponing a timer failed");
    }
}

/// Moves `platform`'s test clock forward by `seconds` and fires what that
/// made due before returning: the new offset (seconds) and how many timers
/// fired. Due webhook retries are brought forward by the store and wake the
/// dispatcher.
pub async fn advance(
    state: &AppState,
    platform: &str,
    seconds: i64,
) -> Result<(i64, usize), ApiError> {
    let offset = state
        .store
        .advance_test_clock(platform, seconds * 1000)
        .await?;
    state.set_offset_ms(platform, offset);
    let mut fired = 0;
    // A tick can arm another timer that is already due (a payout arriving
    // in the same advance as the funds it paid out): a few rounds.
    for _ in 0..8 {
        let n = fire_due(state, Some(platform)).await;
        fired += n;
        if n == 0 {
            break;
        }
    }
    Ok((offset.div_euclid(1000), fired))
}
