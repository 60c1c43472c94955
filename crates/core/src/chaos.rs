//! Chaos mode: faults injected into deliveries on purpose, so a platform can
//! prove its webhook handlers idempotent and order-independent (Stripe
//! warns that events may arrive twice and out of order, but never lets you
//! rehearse it). `--chaos duplicate=0.1,reorder=0.2,delay=5s,fail=0.05,seed=7`.
//!
//! Every decision is a pure function of the seed, the delivery and the
//! attempt number, so a run can be reproduced; each injected fault is
//! recorded on its attempt.

use crate::duration;

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Chaos {
    /// Probability that a delivered event is sent a second time.
    pub duplicate: f64,
    /// Probability that an attempt is held back by up to `delay_ms`, so
    /// later events overtake it.
    pub reorder: f64,
    /// The longest hold of a reordered attempt (1 s if not given).
    pub delay_ms: u64,
    /// Probability that an attempt fails without being sent (and is retried).
    pub fail: f64,
    pub seed: u64,
}

/// What chaos does to one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Plan {
    pub fail: bool,
    pub hold_ms: u64,
    pub duplicate: bool,
}

impl Plan {
    /// The faults, as the attempt log names them.
    pub fn faults(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.fail {
            out.push("fail");
        }
        if self.hold_ms > 0 {
            out.push("reorder");
        }
        if self.duplicate {
            out.push("duplicate");
        }
        out
    }
}

/// splitmix64: a well-mixed 64-bit hash, enough for reproducible dice.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Chaos {
    pub fn is_off(&self) -> bool {
        self.duplicate == 0.0 && self.reorder == 0.0 && self.fail == 0.0
    }

    /// `duplicate=0.1,reorder=0.2,delay=5s,fail=0.05,seed=7`.
    pub fn parse(s: &str) -> Result<Chaos, String> {
        let mut c = Chaos {
            delay_ms: 1000,
            ..Chaos::default()
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected key=value"))?;
            let probability = || {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=1.0).contains(p))
                    .ok_or_else(|| format!("{key}: {value:?} is not a probability from 0 to 1"))
            };
            match key {
                "duplicate" => c.duplicate = probability()?,
                "reorder" => c.reorder = probability()?,
                "fail" => c.fail = probability()?,
                "delay" => {
                    c.delay_ms = duration::parse_millis(value).map_err(|e| format!("delay: {e}"))?
                }
                "seed" => {
                    c.seed = value
                        .parse()
                        .map_err(|_| format!("seed: {value:?} is not a number"))?
                }
                other => {
                    return Err(format!(
                        "unknown chaos {other:?}: use duplicate, reorder, delay, fail, seed"
                    ));
                }
            }
        }
        Ok(c)
    }

    /// The faults for attempt `attempt` of delivery `delivery`.
    pub fn plan(&self, delivery: i64, attempt: u32) -> Plan {
        let base = mix(self.seed ^ mix(delivery as u64 ^ (u64::from(attempt) << 48)));
        let die = |n: u64| (mix(base ^ n) >> 11) as f64 / (1u64 << 53) as f64;
        let fail = die(1) < self.fail;
        let hold_ms = if !fail && die(2) < self.reorder {
            (die(3) * self.delay_ms as f64) as u64 + 1
        } else {
            0
        };
        Plan {
            fail,
            hold_ms,
            duplicate: !fail && die(4) < self.duplicate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_names_what_is_wrong() {
        let c = Chaos::parse("duplicate=0.1,reorder=0.2,delay=5s,fail=0.05,seed=7").unwrap();
        assert_eq!(
            c,
            Chaos {
                duplicate: 0.1,
                reorder: 0.2,
                delay_ms: 5000,
                fail: 0.05,
                seed: 7
            }
        );
        assert!(
            Chaos::parse("duplicate=2")
                .unwrap_err()
                .contains("duplicate")
        );
        assert!(Chaos::parse("explode=1").unwrap_err().contains("explode"));
        assert!(Chaos::parse("").unwrap().is_off());
    }

    #[test]
    fn plans_are_reproducible_and_follow_the_probabilities() {
        let c = Chaos::parse("duplicate=0.3,fail=0.1,reorder=0.5,delay=2s,seed=42").unwrap();
        assert_eq!(c.plan(17, 1), c.plan(17, 1));
        let other_seed = Chaos { seed: 43, ..c };
        let plans: Vec<Plan> = (0..10_000).map(|d| c.plan(d, 1)).collect();
        assert_ne!(
            plans[..50],
            (0..50).map(|d| other_seed.plan(d, 1)).collect::<Vec<_>>()[..]
        );
        let share = |f: &dyn Fn(&Plan) -> bool| plans.iter().filter(|p| f(p)).count() as f64 / 1e4;
        assert!((share(&|p| p.fail) - 0.1).abs() < 0.02);
        assert!(
            (share(&|p| p.duplicate) - 0.27).abs() < 0.03,
            "duplicates only of sent attempts"
        );
        assert!(plans.iter().all(|p| p.hold_ms <= 2001));
        assert!(plans.iter().all(|p| !(p.fail && p.duplicate)));
        assert_eq!(Chaos::default().plan(1, 1), Plan::default());
    }
}
