//! The benchmark scenarios of issue 7, each with its in-run baseline.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use switchboard_core::signature;

use crate::load::{self, MakeRequest, percentile};
use crate::sink::Sink;
use crate::{Args, Bench, KEY, report, rss_mib};

const BASELINE_SECRET: &str = "whsec_baseline_secret_for_the_raw_client";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn create_customers(bench: &Bench, tag: &'static str) -> MakeRequest {
    let (client, url) = (bench.client.clone(), format!("{}/v1/customers", bench.base));
    Arc::new(move |i| {
        client
            .post(&url)
            .bearer_auth(KEY)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "name={tag}-{i}&email={tag}{i}%40example.com&metadata[order]={i}"
            ))
    })
}

/// The same client posting a signed event straight to the receiver.
fn raw_posts(client: &reqwest::Client, sink: std::net::SocketAddr, payload: Bytes) -> MakeRequest {
    let (client, url) = (client.clone(), format!("http://{sink}/raw"));
    Arc::new(move |_| {
        client
            .post(&url)
            .header("content-type", "application/json; charset=utf-8")
            .header(
                "stripe-signature",
                signature::header([BASELINE_SECRET], now(), &payload),
            )
            .body(payload.clone())
    })
}

/// A real customer.created event as Switchboard renders it, to size the baseline's bodies.
async fn sample_payload(bench: &Bench) -> Bytes {
    let resp = bench
        .client
        .get(format!("{}/v1/events?limit=1", bench.base))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    Bytes::from(serde_json::to_vec_pretty(&list["data"][0]).unwrap())
}

async fn warm_up(bench: &Bench, sink: &Sink) -> Bytes {
    sink.reset();
    bench.post("/v1/customers", "name=warmup".into()).await;
    sink.wait_for(1, Duration::from_secs(10))
        .await
        .expect("warm-up delivery");
    sample_payload(bench).await
}

/// A node with one endpoint at the sink, warmed up; also a real event's bytes for the baseline.
async fn one_endpoint() -> (Arc<Sink>, std::net::SocketAddr, Bench, Bytes) {
    let (sink, addr) = Sink::start().await;
    sink.secret("raw", BASELINE_SECRET);
    let bench = Bench::start().await;
    let secret = bench.endpoint(&format!("http://{addr}/hook/main")).await;
    sink.secret("main", &secret);
    let payload = warm_up(&bench, &sink).await;
    (sink, addr, bench, payload)
}

pub async fn throughput(args: &Args) {
    let (sink, addr, bench, payload) = one_endpoint().await;
    let n = args.events;

    sink.reset();
    let base = load::closed_loop(
        n,
        args.connections,
        raw_posts(&bench.client, addr, payload.clone()),
    )
    .await;
    let base_rate = n as f64 / base.elapsed.as_secs_f64();

    sink.reset();
    let start = Instant::now();
    let run = load::closed_loop(n, args.connections, create_customers(&bench, "tp")).await;
    let created_rate = n as f64 / run.elapsed.as_secs_f64();
    let done = sink.wait_for(n, Duration::from_secs(600)).await;
    let delivered_rate = done.map_or(0.0, |d| n as f64 / (d - start).as_secs_f64());
    assert_eq!(
        sink.invalid.load(Ordering::SeqCst),
        0,
        "a delivery failed signature verification"
    );
    println!(
        "  {n} events, {} connections, payload {} bytes, {} API failures",
        args.connections,
        payload.len(),
        run.failures
    );
    report(
        "throughput",
        &format!("{created_rate:.0} created/s, {delivered_rate:.0} delivered/s"),
        &format!("{base_rate:.0} raw POST/s"),
        delivered_rate / base_rate,
        ">= 20000 delivered/s",
        delivered_rate >= 20_000.0,
    );
    bench.node.shutdown().await;
}

/// Milliseconds from each API answer to its event's arrival at the sink,
/// sorted, and how many arrived before the answer was read.
fn arrival_latencies(answered: &[load::Answer], sink: &Sink) -> (Vec<f64>, usize) {
    let arrivals = sink.arrivals.lock().unwrap().clone();
    let mut early = 0;
    let mut lat: Vec<f64> = answered
        .iter()
        .filter_map(|(_, at, body)| {
            let v: serde_json::Value = serde_json::from_slice(body.as_ref()?).ok()?;
            let arrived = arrivals.get(v["id"].as_str()?)?;
            // A delivery can land before the client has read the API response.
            Some(match arrived.checked_duration_since(*at) {
                Some(d) => d.as_secs_f64() * 1000.0,
                None => {
                    early += 1;
                    0.0
                }
            })
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    (lat, early)
}

pub async fn latency(args: &Args) {
    let (sink, addr, bench, payload) = one_endpoint().await;
    let n = (1000 * args.latency_seconds) as usize;

    sink.reset();
    sink.track_arrivals.store(true, Ordering::SeqCst);
    let answered = load::open_loop(n, 1000, create_customers(&bench, "lat")).await;
    sink.wait_for(n, Duration::from_secs(120)).await;
    let (lat, early) = arrival_latencies(&answered, &sink);

    let raw = load::open_loop(n, 1000, raw_posts(&bench.client, addr, payload)).await;
    let mut base: Vec<f64> = raw
        .iter()
        .map(|(sent, at, _)| (*at - *sent).as_secs_f64() * 1000.0)
        .collect();
    base.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
    let (b50, b99) = (percentile(&base, 0.5), percentile(&base, 0.99));
    println!(
        "  {n} events at 1000/s; {} measured, {early} arrived before the API answer was read",
        lat.len()
    );
    report(
        "latency p50",
        &format!("{p50:.2} ms response→arrival"),
        &format!("{b50:.2} ms raw POST"),
        p50 / b50,
        "<= 2 ms",
        p50 <= 2.0,
    );
    report(
        "latency p99",
        &format!("{p99:.2} ms response→arrival"),
        &format!("{b99:.2} ms raw POST"),
        p99 / b99,
        "<= 20 ms",
        p99 <= 20.0,
    );
    bench.node.shutdown().await;
}

pub async fn fanout(args: &Args) {
    let (sink, addr) = Sink::start().await;
    sink.secret("raw", BASELINE_SECRET);
    let bench = Bench::start().await;
    let k = args.fanout;
    for i in 0..k {
        let secret = bench.endpoint(&format!("http://{addr}/hook/f{i}")).await;
        sink.secret(&format!("f{i}"), &secret);
    }
    let payload = warm_up_many(&bench, &sink, k).await;
    let mut times = Vec::new();
    for _ in 0..3 {
        sink.reset();
        let start = Instant::now();
        bench.post("/v1/customers", "name=fanout".into()).await;
        let done = sink
            .wait_for(k, Duration::from_secs(60))
            .await
            .expect("fan-out completes");
        times.push((done - start).as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    sink.reset();
    let base = load::closed_loop(k, k, raw_posts(&bench.client, addr, payload)).await;
    let base_ms = base.elapsed.as_secs_f64() * 1000.0;
    let median = times[1];
    report(
        "fan-out",
        &format!("{k} endpoints in {median:.0} ms (median of 3)"),
        &format!("{k} raw POSTs in {base_ms:.0} ms"),
        median / base_ms,
        "<= 1000 ms",
        median <= 1000.0,
    );
    bench.node.shutdown().await;
}

async fn warm_up_many(bench: &Bench, sink: &Sink, k: usize) -> Bytes {
    sink.reset();
    bench.post("/v1/customers", "name=warmup".into()).await;
    sink.wait_for(k, Duration::from_secs(60))
        .await
        .expect("warm-up fan-out");
    sample_payload(bench).await
}

/// Healthy endpoints' delivery rate, with and without one endpoint that times out.
pub async fn isolation(args: &Args) {
    let n = (args.events / 10).max(1000);
    let healthy = 10;
    let mut rates = Vec::new();
    for with_bad in [false, true] {
        let (sink, addr) = Sink::start().await;
        *sink.slow_for.lock().unwrap() = Duration::from_secs(5);
        let bench = Bench::start().await;
        for i in 0..healthy {
            let secret = bench.endpoint(&format!("http://{addr}/hook/h{i}")).await;
            sink.secret(&format!("h{i}"), &secret);
        }
        if with_bad {
            bench.endpoint(&format!("http://{addr}/slow/bad")).await;
        }
        sink.reset();
        let start = Instant::now();
        load::closed_loop(n, args.connections, create_customers(&bench, "iso")).await;
        let done = sink.wait_for(n * healthy, Duration::from_secs(600)).await;
        let rate = done.map_or(0.0, |d| (n * healthy) as f64 / (d - start).as_secs_f64());
        rates.push(rate);
        // The slow endpoint's attempts would hold the graceful shutdown for seconds.
        drop(bench);
    }
    report(
        "isolation",
        &format!(
            "{:.0} healthy deliveries/s beside a timing-out endpoint",
            rates[1]
        ),
        &format!("{:.0}/s without it", rates[0]),
        rates[1] / rates[0],
        ">= 0.90 of baseline",
        rates[1] >= 0.9 * rates[0],
    );
}

/// A healthy endpoint's delivery latency beside 50 endpoints that hang
/// (never answer within the run), against the same endpoint alone and beside
/// 50 endpoints that answer at once (the same fan-out, no starvation), in one run.
pub async fn starvation(args: &Args) {
    let rate = 200;
    let n = rate * args.latency_seconds.max(3) as usize;
    let mut p99s = Vec::new();
    for (others, path) in [(0, "hook"), (50, "hook"), (50, "slow")] {
        let (sink, addr) = Sink::start().await;
        *sink.slow_for.lock().unwrap() = Duration::from_secs(600);
        let bench = Bench::start().await;
        let secret = bench.endpoint(&format!("http://{addr}/hook/main")).await;
        sink.secret("main", &secret);
        for i in 0..others {
            let secret = bench.endpoint(&format!("http://{addr}/{path}/o{i}")).await;
            sink.secret(&format!("o{i}"), &secret);
        }
        sink.reset();
        sink.track_arrivals.store(true, Ordering::SeqCst);
        let answered = load::open_loop(n, rate as u64, create_customers(&bench, "starve")).await;
        sink.wait_for(
            n * if path == "hook" { others + 1 } else { 1 },
            Duration::from_secs(120),
        )
        .await;
        let (lat, _) = arrival_latencies(&answered, &sink);
        let what = match (others, path) {
            (0, _) => "alone".to_owned(),
            (n, "hook") => format!("beside {n} endpoints that answer at once"),
            (n, _) => format!("beside {n} hanging endpoints"),
        };
        println!(
            "  {what}: p50 {:.2} ms, p99 {:.2} ms ({} events at {rate}/s)",
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            lat.len()
        );
        p99s.push(percentile(&lat, 0.99));
        drop(bench);
    }
    report(
        "starvation p99",
        &format!("{:.2} ms healthy p99 beside 50 hanging endpoints", p99s[2]),
        &format!("{:.2} ms beside 50 answering ones", p99s[1]),
        p99s[2] / p99s[1],
        "<= 2x the same fan-out",
        p99s[2] <= 2.0 * p99s[1],
    );
    println!(
        "  against the endpoint alone ({:.2} ms): {:.1}x",
        p99s[0],
        p99s[2] / p99s[0]
    );
}

/// `construct_event` on a 1 KB event, per core, beside a bare HMAC and stripe-python.
pub fn verify() {
    let body = {
        let mut v = serde_json::json!({"id": "evt_1", "object": "event", "type": "customer.created", "created": 1,
            "livemode": false, "pending_webhooks": 1, "api_version": "2026-10-28.endive", "data": {"object": {"id": "cus_1", "object": "customer"}}});
        let pad = 1024 - serde_json::to_vec_pretty(&v).unwrap().len();
        v["data"]["object"]["description"] = "x".repeat(pad.saturating_sub(30)).into();
        serde_json::to_vec_pretty(&v).unwrap()
    };
    let secret = "whsec_verification_benchmark_secret";
    let t = now();
    let header = signature::header([secret], t, &body);
    let run = |f: &dyn Fn()| {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_secs(2) {
            for _ in 0..1000 {
                f();
            }
            n += 1000;
        }
        n as f64 / start.elapsed().as_secs_f64()
    };
    let ours = run(&|| {
        std::hint::black_box(
            switchboard_receiver::construct_event_at(&body, &header, secret, 300, t).unwrap(),
        );
    });
    let secrets = switchboard_receiver::WebhookSecrets::new([secret]);
    let prepared = run(&|| {
        std::hint::black_box(secrets.construct_event_at(&body, &header, t).unwrap());
    });
    let hmac_only = run(&|| {
        std::hint::black_box(signature::compute(secret, t, &body));
    });
    let header_only = run(&|| {
        switchboard_receiver::verify_header_at(&body, &header, secret, 300, t).unwrap();
    });
    println!("  verify_header_at alone (no JSON parsing): {header_only:.0}/s");
    println!("  WebhookSecrets::construct_event_at (HMAC keyed once): {prepared:.0}/s");
    let python = python_verifications_per_second(&body, &header, secret);
    report(
        "verify",
        &format!("{ours:.0} construct_event/s ({} B)", body.len()),
        &format!("{hmac_only:.0} bare HMAC/s"),
        ours / hmac_only,
        ">= 1000000/s per core",
        ours >= 1_000_000.0,
    );
    match python {
        Some(py) => println!(
            "  stripe-python 16.1.0 construct_event on the same vector: {py:.0}/s (ours is {:.0}x)",
            ours / py
        ),
        None => {
            println!("  stripe-python not available (run scripts/test.sh to create compat/.venv)")
        }
    }
}

fn python_verifications_per_second(body: &[u8], header: &str, secret: &str) -> Option<f64> {
    let python =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../compat/.venv/bin/python");
    let script = r#"
import sys, time, stripe
body, header, secret = sys.stdin.buffer.read(), sys.argv[1], sys.argv[2]
n, start = 0, time.perf_counter()
while time.perf_counter() - start < 2:
    for _ in range(1000):
        stripe.Webhook.construct_event(body, header, secret)
    n += 1000
print(n / (time.perf_counter() - start))
"#;
    let mut child = std::process::Command::new(python)
        .args(["-c", script, header, secret])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    use std::io::Write as _;
    child.stdin.take()?.write_all(body).ok()?;
    let out = child.wait_with_output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// A million deliveries queued with no node delivering, then released.
pub async fn backlog(args: &Args) {
    let (sink, addr) = Sink::start().await;
    sink.secret("raw", BASELINE_SECRET);
    let dir = tempfile::tempdir().expect("temp dir");
    let endpoints = 20;
    let events = args.backlog.div_ceil(endpoints);
    let total = events * endpoints;
    let peak = Arc::new(std::sync::Mutex::new(rss_mib()));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                {
                    let now = rss_mib();
                    let mut p = peak.lock().unwrap();
                    *p = p.max(now);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    // An API-only node queues; nothing is attempted.
    let api = Bench::on(dir.path(), false).await;
    for i in 0..endpoints {
        let secret = api.endpoint(&format!("http://{addr}/hook/b{i}")).await;
        sink.secret(&format!("b{i}"), &secret);
    }
    let start = Instant::now();
    load::closed_loop(events, args.connections, create_customers(&api, "bl")).await;
    let queued_in = start.elapsed();
    let payload = sample_payload(&api).await;
    api.node.shutdown().await;
    let rss_queued = *peak.lock().unwrap();

    // The raw baseline, then a delivering node releases the backlog.
    let base = load::closed_loop(
        50_000,
        args.connections,
        raw_posts(&api.client, addr, payload),
    )
    .await;
    let base_rate = 50_000.0 / base.elapsed.as_secs_f64();
    sink.reset();
    let worker = loop {
        // The previous node's database lock goes with its writer thread.
        match tokio::time::timeout(Duration::from_secs(5), Bench::on_checked(dir.path())).await {
            Ok(Some(b)) => break b,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let start = Instant::now();
    let done = sink.wait_for(total, Duration::from_secs(1200)).await;
    let rate = done.map_or(0.0, |d| total as f64 / (d - start).as_secs_f64());
    sampler.abort();
    let rss_peak = *peak.lock().unwrap();
    println!(
        "  {total} deliveries ({events} events x {endpoints} endpoints) queued in {:.1} s; RSS peak {rss_queued:.0} MiB while queueing",
        queued_in.as_secs_f64()
    );
    report(
        "backlog",
        &format!("drained {rate:.0}/s, RSS peak {rss_peak:.0} MiB"),
        &format!("{base_rate:.0} raw POST/s"),
        rate / base_rate,
        ">= 10000/s, <= 200 MiB",
        rate >= 10_000.0 && rss_peak <= 200.0,
    );
    worker.node.shutdown().await;
}

impl Bench {
    async fn on_checked(dir: &std::path::Path) -> Option<Bench> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.ok()?;
        let node = switchboard::Node::start(
            crate::node_config(dir, true),
            listener,
            Arc::new(switchboard_store::SystemClock),
        )
        .await
        .ok()?;
        let base = format!("http://{}", node.addr);
        Some(Bench {
            node,
            base,
            client: crate::client(),
            _dir: None,
        })
    }
}

/// The API alone (no endpoints, so nothing to deliver), beside `GET /healthz`.
pub async fn api_only(args: &Args) {
    let bench = Bench::start().await;
    let n = args.events;
    let (client, url) = (bench.client.clone(), format!("{}/healthz", bench.base));
    let health = load::closed_loop(n, args.connections, Arc::new(move |_| client.get(&url))).await;
    let run = load::closed_loop(n, args.connections, create_customers(&bench, "api")).await;
    let (rate, base) = (
        n as f64 / run.elapsed.as_secs_f64(),
        n as f64 / health.elapsed.as_secs_f64(),
    );
    report(
        "api",
        &format!("{rate:.0} customers created/s"),
        &format!("{base:.0} GET /healthz/s"),
        rate / base,
        "-",
        true,
    );
    bench.node.shutdown().await;
}

/// The same create-and-deliver run against localstripe (a fake Stripe server
/// that sends webhooks) and against Switchboard, with the same client.
pub async fn peer(args: &Args) {
    let python = args.localstripe_python.clone().unwrap_or_else(|| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../compat/.venv/bin/python")
    });
    let has_it = std::process::Command::new(&python)
        .args(["-c", "import localstripe"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_it {
        println!(
            "peer         skipped: `{} -m pip install localstripe` to compare with localstripe",
            python.display()
        );
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(&python)
        .args(["-m", "localstripe", "--port", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("localstripe starts");
    let ls = format!("http://127.0.0.1:{port}");
    let client = crate::client();
    for _ in 0..100 {
        if client
            .get(format!("{ls}/v1/customers"))
            .bearer_auth(KEY)
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (sink, addr) = Sink::start().await;
    let secret = "whsec_localstripe_peer_secret";
    sink.secret("peer", secret);
    client
        .post(format!("{ls}/_config/webhooks/peer"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "url=http://{addr}/hook/peer&secret={secret}&events[]=customer.created"
        ))
        .send()
        .await
        .expect("localstripe webhook configured");
    let n = args.peer_events;
    let theirs = create_and_deliver(&client, &ls, &sink, n, "ls").await;
    let _ = child.kill();
    let _ = child.wait();
    let bench = Bench::start().await;
    let ours_secret = bench.endpoint(&format!("http://{addr}/hook/ours")).await;
    sink.secret("ours", &ours_secret);
    let ours = create_and_deliver(&client, &bench.base, &sink, n, "sb").await;
    report(
        "peer",
        &format!("{:.0} events/s, lone event {:.1} ms", ours.0, ours.1),
        &format!("localstripe {:.0}/s, {:.0} ms", theirs.0, theirs.1),
        ours.0 / theirs.0,
        "(comparison)",
        true,
    );
    bench.node.shutdown().await;
}

/// (events/s for `n` customers created by 16 clients and delivered, median
/// ms from request to delivery of a lone event, over 5).
async fn create_and_deliver(
    client: &reqwest::Client,
    base: &str,
    sink: &Arc<Sink>,
    n: usize,
    tag: &'static str,
) -> (f64, f64) {
    let url = format!("{base}/v1/customers");
    let create = |i: usize| {
        client
            .post(&url)
            .bearer_auth(KEY)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("name={tag}-{i}&email={tag}{i}%40example.com"))
    };
    let mut lone = Vec::new();
    for i in 0..5 {
        sink.reset();
        let start = Instant::now();
        create(i).send().await.expect("create");
        let done = sink
            .wait_for(1, Duration::from_secs(30))
            .await
            .expect("delivered");
        lone.push((done - start).as_secs_f64() * 1000.0);
    }
    lone.sort_by(f64::total_cmp);
    sink.reset();
    let (c, u) = (client.clone(), url.clone());
    let make: MakeRequest = Arc::new(move |i| {
        c.post(&u)
            .bearer_auth(KEY)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("name={tag}-{i}&email={tag}{i}%40example.com"))
    });
    let start = Instant::now();
    load::closed_loop(n, 16, make).await;
    let done = sink.wait_for(n, Duration::from_secs(300)).await;
    (
        done.map_or(0.0, |d| n as f64 / (d - start).as_secs_f64()),
        lone[2],
    )
}
