//! A closed-loop HTTP load generator: `concurrency` workers send `n` requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub type MakeRequest = Arc<dyn Fn(usize) -> reqwest::RequestBuilder + Send + Sync>;

pub struct Run {
    pub elapsed: Duration,
    pub failures: usize,
}

/// Sends requests `0..n` built by `make` from `concurrency` workers and waits for all.
pub async fn closed_loop(n: usize, concurrency: usize, make: MakeRequest) -> Run {
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (next, failures, make) = (next.clone(), failures.clone(), make.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let ok = match make(i).send().await {
                    Ok(resp) => resp.status().is_success() && resp.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if !ok {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for w in workers {
        w.await.expect("load worker");
    }
    Run {
        elapsed: start.elapsed(),
        failures: failures.load(Ordering::Relaxed),
    }
}

/// One request of an open loop: when it was sent, when it was answered, and the answer.
pub type Answer = (Instant, Instant, Option<bytes::Bytes>);

/// Sends one request every `1/rate` seconds (open loop) and records when each was answered.
pub async fn open_loop(n: usize, rate: u64, make: MakeRequest) -> Vec<Answer> {
    let mut ticker = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate.max(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        ticker.tick().await;
        let req = make(i);
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let body = match req.send().await {
                Ok(r) => r.bytes().await.ok(),
                Err(_) => None,
            };
            (sent, Instant::now(), body)
        }));
    }
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.expect("open-loop request"));
    }
    out
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}
