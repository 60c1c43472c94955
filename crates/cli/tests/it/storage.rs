//! Storage faults under the real binary: the data dir on a small tmpfs that
//! the test fills up, or remounts read-only. Every answer must be either a
//! success that committed or a retryable Stripe error; nothing acknowledged
//! may be lost or corrupted; service resumes by itself once storage returns.
//!
//! Mounting needs root (CI runs as root); elsewhere these tests say so and
//! pass without running.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::{
    KillOnDrop, Seen, TEST_KEY, all_event_ids, await_all, counting_receivers, create_endpoint,
    get_json, spawn,
};

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc_geteuid() } != 0 {
            eprintln!("storage tests need root to mount a tmpfs: not run");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount -t tmpfs failed as root");
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount(&self, mode: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(self.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount {mode}");
    }

    /// Writes a file until the filesystem has no room left.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        for chunk in [1 << 16, 4096, 512, 1] {
            let buf = vec![0u8; chunk];
            while f.write_all(&buf).is_ok() {}
        }
        let _ = f.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// The outcome of one create: its id when acknowledged.
enum Outcome {
    Committed(String),
    Refused,
}

async fn create(http: &reqwest::Client, base: &str, n: usize) -> Outcome {
    let resp = http
        .post(format!("{base}/v1/customers"))
        .bearer_auth(TEST_KEY)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("name=Customer+{n}&description={}", "x".repeat(200)))
        .send()
        .await
        .expect("the server stays up");
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("stripe-should-retry")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    if status == 200 {
        return Outcome::Committed(body["id"].as_str().unwrap().to_owned());
    }
    assert!(
        status >= 500,
        "a storage fault is the server's, not the client's: {status} {body}"
    );
    assert_eq!(body["error"]["type"], "api_error", "{body}");
    assert_eq!(retry.as_deref(), Some("true"), "and it says to retry");
    Outcome::Refused
}

async fn status(http: &reqwest::Client, url: &str) -> u16 {
    http.get(url).send().await.unwrap().status().as_u16()
}

/// Creates until `want` consecutive refusals (or acknowledgements, when
/// `until_ok`), returning the ids acknowledged on the way.
async fn creates_until(
    http: &reqwest::Client,
    base: &str,
    until_ok: bool,
    counter: &mut usize,
) -> (Vec<String>, usize) {
    let mut acked = Vec::new();
    let mut refused = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "storage state never reached"
        );
        *counter += 1;
        match create(http, base, *counter).await {
            Outcome::Committed(id) => {
                acked.push(id);
                if until_ok {
                    return (acked, refused);
                }
            }
            Outcome::Refused => {
                refused += 1;
                if !until_ok && refused >= 20 {
                    return (acked, refused);
                }
                if until_ok {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// Every acknowledged customer is there and every event reached the endpoint.
async fn assert_kept(http: &reqwest::Client, base: &str, acked: &[String], seen: &Seen) {
    for id in acked {
        let c = get_json(http, &format!("{base}/v1/customers/{id}")).await;
        assert_eq!(c["id"], id.as_str(), "acknowledged {id} was lost: {c}");
    }
    let events = all_event_ids(http, base).await;
    assert!(events.len() >= acked.len());
    await_all(seen, &events, 1, Duration::from_secs(60)).await;
}

/// SQLite's own verdict on the database file the server left.
fn assert_intact(data: &Path) {
    let db = rusqlite::Connection::open(data.join("switchboard.db")).unwrap();
    let verdict: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(verdict, "ok");
}

/// A node on the tmpfs with one endpoint counting what it receives.
struct Node {
    data: PathBuf,
    seen: Seen,
    http: reqwest::Client,
    child: KillOnDrop,
    base: String,
}

impl Node {
    async fn start(fs: &Tmpfs) -> Node {
        let data = fs.path().join("data");
        let seen: Seen = Default::default();
        let urls = counting_receivers(1, &seen, Duration::ZERO).await;
        let http = switchboard_dispatcher::http_client(Duration::from_secs(30));
        let (child, base) = serve(&data);
        create_endpoint(&http, &base, &urls[0]).await;
        Node {
            data,
            seen,
            http,
            child,
            base,
        }
    }
}

fn serve(dir: &Path) -> (KillOnDrop, String) {
    spawn(dir, &["--retry-schedule", "1s", "--delivery-timeout", "2s"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_and_service_resumes_when_space_returns() {
    let Some(fs) = Tmpfs::mount("24m") else {
        return;
    };
    let Node {
        data,
        seen,
        http,
        mut child,
        base,
    } = Node::start(&fs).await;
    let mut n = 0;
    let mut acked = Vec::new();
    for _ in 0..50 {
        n += 1;
        match create(&http, &base, n).await {
            Outcome::Committed(id) => acked.push(id),
            Outcome::Refused => panic!("refused with room to spare"),
        }
    }

    let filler = fs.fill();
    let (more, refused) = creates_until(&http, &base, false, &mut n).await;
    acked.extend(more);
    assert!(refused >= 20);
    assert_eq!(
        status(&http, &format!("{base}/readyz")).await,
        503,
        "readiness reports storage that refuses writes"
    );
    assert_eq!(status(&http, &format!("{base}/healthz")).await, 200);
    // Reads go on.
    let first = get_json(&http, &format!("{base}/v1/customers/{}", acked[0])).await;
    assert_eq!(first["id"], acked[0].as_str());

    std::fs::remove_file(filler).unwrap();
    // Readiness finds out by itself (a node out of rotation gets no writes
    // that would tell it), and then writes succeed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while status(&http, &format!("{base}/readyz")).await != 200 {
        assert!(tokio::time::Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..50 {
        n += 1;
        match create(&http, &base, n).await {
            Outcome::Committed(id) => acked.push(id),
            Outcome::Refused => panic!("refused after space returned"),
        }
    }
    assert_eq!(status(&http, &format!("{base}/readyz")).await, 200);
    assert_kept(&http, &base, &acked, &seen).await;

    // And what is on disk is whole: a SIGKILL and a restart keep it all.
    child.kill();
    let (mut child, base) = serve(&data);
    assert_kept(&http, &base, &acked, &seen).await;
    child.kill();
    assert_intact(&data);
}

/// A filesystem cannot turn read-only under open files (the kernel refuses
/// the remount while anything is open for writing), so the read-only case
/// is the one operators meet: a node started on a read-only volume. It must
/// refuse to start, saying why, and start normally once the volume is
/// writable again, with everything it had acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_storage_is_refused_at_start_and_nothing_is_lost() {
    let Some(fs) = Tmpfs::mount("64m") else {
        return;
    };
    let Node {
        data,
        seen,
        http,
        mut child,
        base,
    } = Node::start(&fs).await;
    let mut acked = Vec::new();
    for n in 0..20 {
        match create(&http, &base, n).await {
            Outcome::Committed(id) => acked.push(id),
            Outcome::Refused => panic!("refused on writable storage"),
        }
    }
    child.kill();

    fs.remount("ro");
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--addr", "127.0.0.1:0", "--test-key", TEST_KEY])
        .arg("--data-dir")
        .arg(&data)
        .env("SWITCHBOARD_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a clean refusal, not a crash: {stderr}"
    );
    assert!(
        stderr.to_lowercase().contains("read-only") && stderr.contains(&*data.to_string_lossy()),
        "the error names the storage and what is wrong with it: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    fs.remount("rw");
    let (mut child, base) = serve(&data);
    assert_kept(&http, &base, &acked, &seen).await;
    child.kill();
    assert_intact(&data);
}
