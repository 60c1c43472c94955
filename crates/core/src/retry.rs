//! Retry schedules: after a failed attempt, when is the next one due?
//!
//! A schedule is a list of delays; attempt *n* (1-based) that fails is retried
//! after `delays[n-1]`, with ±10 % jitter so that a recovering receiver is not
//! hit by a thundering herd. When the list is exhausted the delivery gives up.
//! Everything here is a pure function of (attempt, now, rng).

use rand::Rng;

use crate::duration;

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;

/// Upper bound on how far a receiver's `Retry-After` may push a retry.
pub const MAX_RETRY_AFTER_MS: u64 = HOUR;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    name: String,
    /// Delay before retry *i+1*, in milliseconds.
    delays_ms: Vec<u64>,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextAttempt {
    /// Retry at this unix time in milliseconds.
    At(i64),
    /// The schedule is exhausted.
    GiveUp,
}

impl RetrySchedule {
    /// Stripe's live mode: exponential backoff over up to three days
    /// (12 retries, the last about 71 h after the first attempt).
    pub fn live() -> Self {
        let delays = [1, 5, 30, 60, 120, 240, 480, 720, 720, 720, 720, 480];
        RetrySchedule {
            name: "live".into(),
            delays_ms: delays.iter().map(|m| m * MINUTE).collect(),
        }
    }

    /// Stripe's sandbox: three retries over a few hours.
    pub fn test() -> Self {
        RetrySchedule {
            name: "test".into(),
            delays_ms: vec![10 * MINUTE, HOUR, 3 * HOUR],
        }
    }

    /// Seconds apart, for CI and demos.
    pub fn fast() -> Self {
        RetrySchedule {
            name: "fast".into(),
            delays_ms: vec![1_000, 2_000, 4_000, 8_000],
        }
    }

    pub fn from_delays_ms(delays_ms: Vec<u64>) -> Self {
        let name = delays_ms
            .iter()
            .map(|d| format!("{d}ms"))
            .collect::<Vec<_>>()
            .join(",");
        RetrySchedule { name, delays_ms }
    }

    /// `live`, `test`, `fast`, or a comma-separated list such as `1s,30s,5m`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "live" => Ok(Self::live()),
            "test" => Ok(Self::test()),
            "fast" => Ok(Self::fast()),
            "none" | "" => Ok(RetrySchedule {
                name: "none".into(),
                delays_ms: Vec::new(),
            }),
            list => {
                let delays = list
                    .split(',')
                    .map(duration::parse_millis)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(RetrySchedule {
                    name: list.into(),
                    delays_ms: delays,
                })
            }
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Total attempts a delivery may make (the first plus every retry).
    pub fn max_attempts(&self) -> u32 {
        self.delays_ms.len() as u32 + 1
    }

    pub fn delays_ms(&self) -> &[u64] {
        &self.delays_ms
    }

    /// After attempt number `attempt` (1-based) failed at `now_ms`.
    ///
    /// `retry_after_ms` is the receiver's `Retry-After` on a 429/503: it may
    /// postpone the retry, up to [`MAX_RETRY_AFTER_MS`], never hasten it.
    pub fn next(
        &self,
        attempt: u32,
        now_ms: i64,
        retry_after_ms: Option<u64>,
        rng: &mut impl Rng,
    ) -> NextAttempt {
        let Some(&base) = self.delays_ms.get(attempt.saturating_sub(1) as usize) else {
            return NextAttempt::GiveUp;
        };
        let jitter_span = base / 10;
        let jittered = if jitter_span == 0 {
            base
        } else {
            base - jitter_span + rng.random_range(0..=2 * jitter_span)
        };
        let delay = match retry_after_ms {
            Some(ra) => jittered.max(ra.min(MAX_RETRY_AFTER_MS)),
            None => jittered,
        };
        NextAttempt::At(now_ms + delay as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(1)
    }

    #[test]
    fn live_spans_about_three_days_with_growing_delays() {
        let s = RetrySchedule::live();
        let total: u64 = s.delays_ms().iter().sum();
        assert!(total > 70 * HOUR && total <= 72 * HOUR, "{total}");
        assert!(s.delays_ms().windows(2).take(7).all(|w| w[0] < w[1]));
        assert_eq!(s.max_attempts(), 13);
    }

    #[test]
    fn test_mode_retries_three_times_over_hours() {
        let s = RetrySchedule::test();
        assert_eq!(s.max_attempts(), 4);
        assert!(s.delays_ms().iter().sum::<u64>() < 5 * HOUR);
    }

    #[test]
    fn next_applies_bounded_jitter_and_gives_up_at_the_end() {
        let s = RetrySchedule::parse("10s,20s").unwrap();
        let mut r = rng();
        for _ in 0..100 {
            let NextAttempt::At(t) = s.next(1, 1_000_000, None, &mut r) else {
                panic!()
            };
            assert!((1_000_000 + 9_000..=1_000_000 + 11_000).contains(&t), "{t}");
        }
        let NextAttempt::At(t) = s.next(2, 0, None, &mut r) else {
            panic!()
        };
        assert!((18_000..=22_000).contains(&t));
        assert_eq!(s.next(3, 0, None, &mut r), NextAttempt::GiveUp);
    }

    #[test]
    fn retry_after_postpones_within_bounds() {
        let s = RetrySchedule::parse("1s").unwrap();
        assert_eq!(
            s.next(1, 0, Some(120_000), &mut rng()),
            NextAttempt::At(120_000)
        );
        assert_eq!(
            s.next(1, 0, Some(10 * HOUR), &mut rng()),
            NextAttempt::At(MAX_RETRY_AFTER_MS as i64)
        );
        // A Retry-After shorter than the schedule does not hasten the retry.
        let NextAttempt::At(t) = s.next(1, 0, Some(1), &mut rng()) else {
            panic!()
        };
        assert!(t >= 900);
    }

    #[test]
    fn parse_rejects_garbage() {
        assert!(RetrySchedule::parse("soon").is_err());
        assert_eq!(RetrySchedule::parse("none").unwrap().max_attempts(), 1);
        assert_eq!(RetrySchedule::parse("fast").unwrap(), RetrySchedule::fast());
    }
}
