//! Several nodes on PostgreSQL: events created and delivered by one node and
//! by two nodes on one database, beside `pgbench`'s TPS on the same server
//! in the same run (each run in a fresh schema, dropped at the end).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use switchboard::{Node, NodeConfig, Role};
use switchboard_store::SystemClock;

use crate::load::{self, MakeRequest};
use crate::sink::Sink;
use crate::{Args, KEY, client, node_config, report};

async fn admin(url: &str, sql: &str) {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL reachable (--database-url)");
    tokio::spawn(conn);
    c.batch_execute(sql).await.expect("admin statement");
}

fn in_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-csearch_path%3D{schema}")
}

/// `pgbench -N` (simple updates, the write mix closest to ours) for 10 s with
/// 16 clients, in its own schema; its TPS.
fn pgbench(url: &str, schema: &str) -> f64 {
    let run = |args: &[&str]| {
        std::process::Command::new("pgbench")
            .args(args)
            .arg(url)
            .env("PGOPTIONS", format!("-csearch_path={schema}"))
            .output()
            .expect("pgbench (Debian package postgresql-contrib / postgresql) on PATH")
    };
    let init = run(&["-i", "-q", "-s", "4"]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let out = run(&["-N", "-c", "16", "-j", "2", "-T", "10", "-n"]);
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no tps in pgbench output:\n{text}"))
}

async fn start(url: &str, dir: &std::path::Path) -> (Node, String) {
    let mut config: NodeConfig = node_config(dir, true);
    config.database_url = Some(url.to_owned());
    config.role = Role::All;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let node = Node::start(config, listener, Arc::new(SystemClock))
        .await
        .expect("node starts on PostgreSQL");
    let base = format!("http://{}", node.addr);
    (node, base)
}

/// Creates customers round-robin through `bases`.
fn creates(bases: Vec<String>) -> MakeRequest {
    let client = client();
    Arc::new(move |i| {
        client
            .post(format!("{}/v1/customers", bases[i % bases.len()]))
            .bearer_auth(KEY)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("name=pg-{i}&email=pg{i}%40example.com"))
    })
}

/// Events created through `bases` and delivered to the sink, per second.
async fn e2e(args: &Args, sink: &Sink, bases: Vec<String>) -> f64 {
    let n = args.events;
    sink.reset();
    let start = Instant::now();
    let run = load::closed_loop(n, args.connections, creates(bases)).await;
    let done = sink.wait_for(n, Duration::from_secs(600)).await;
    assert_eq!(run.failures, 0, "API failures");
    assert_eq!(
        sink.invalid.load(Ordering::SeqCst),
        0,
        "a delivery failed verification"
    );
    done.map_or(0.0, |d| n as f64 / (d - start).as_secs_f64())
}

pub async fn scenario(args: &Args) {
    let url = args.database_url.clone();
    let (sink, addr) = Sink::start().await;
    let tag = format!("{:08x}", rand_u32());
    let (s_pgbench, s_one, s_two) = (
        format!("bench_pgbench_{tag}"),
        format!("bench_one_{tag}"),
        format!("bench_two_{tag}"),
    );
    for s in [&s_pgbench, &s_one, &s_two] {
        admin(&url, &format!("CREATE SCHEMA {s}")).await;
    }
    let tps = {
        let (url, schema) = (url.clone(), s_pgbench.clone());
        tokio::task::spawn_blocking(move || pgbench(&url, &schema))
            .await
            .unwrap()
    };

    let dir = tempfile::tempdir().unwrap();
    let (one, base) = start(&in_schema(&url, &s_one), dir.path()).await;
    let secret =
        crate::Bench::endpoint_at(&client(), &base, &format!("http://{addr}/hook/one")).await;
    sink.secret("one", &secret);
    let one_rate = e2e(args, &sink, vec![base]).await;
    one.shutdown().await;

    let schema = in_schema(&url, &s_two);
    let (a, base_a) = start(&schema, dir.path()).await;
    let (b, base_b) = start(&schema, dir.path()).await;
    let secret =
        crate::Bench::endpoint_at(&client(), &base_a, &format!("http://{addr}/hook/two")).await;
    sink.secret("two", &secret);
    let two_rate = e2e(args, &sink, vec![base_a, base_b]).await;
    a.shutdown().await;
    b.shutdown().await;

    println!(
        "  {} events, {} connections; pgbench -N -c 16: {tps:.0} TPS",
        args.events, args.connections
    );
    report(
        "pg one node",
        &format!("{one_rate:.0} created+delivered/s"),
        &format!("{tps:.0} pgbench TPS"),
        one_rate / tps,
        "report",
        true,
    );
    report(
        "pg two nodes",
        &format!("{two_rate:.0} created+delivered/s"),
        &format!("{one_rate:.0}/s one node"),
        two_rate / one_rate,
        "report",
        true,
    );
    for s in [&s_pgbench, &s_one, &s_two] {
        admin(&url, &format!("DROP SCHEMA {s} CASCADE")).await;
    }
}

fn rand_u32() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or(0)
}
