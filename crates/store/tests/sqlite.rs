//! The SQLite store's contract: atomic changes, group commits that isolate a
//! failing command, and the delivery queue's leases.

use std::sync::Arc;

use serde_json::json;
use switchboard_core::event::{EventDraft, RequestInfo};
use switchboard_store::sqlite::SqliteStore;
use switchboard_store::*;

const T0: i64 = 1_767_225_600_000;

fn platform() -> Platform {
    Platform {
        id: "acct_platform".into(),
        client_id: "ca_platform".into(),
        test_key: "sk_test_store".into(),
        live_key: "sk_live_store".into(),
        created: 0,
    }
}

fn scope() -> Scope {
    Scope {
        platform: "acct_platform".into(),
        livemode: false,
        account: None,
    }
}

fn change(writes: Vec<Write>, events: Vec<NewEvent>) -> Change {
    Change {
        platform: "acct_platform".into(),
        now: T0 / 1000,
        now_ms: T0,
        api_version: "2026-10-28.endive".into(),
        writes,
        events,
        idempotency: None,
    }
}

fn object(id: &str, version: i64, expected: Option<i64>) -> Write {
    Write::Object(ObjectWrite {
        scope: scope(),
        object: StoredObject {
            id: id.into(),
            kind: "customer".into(),
            version,
            created: 0,
            deleted: false,
            data: json!({"id": id, "v": version}),
        },
        expected_version: expected,
    })
}

fn endpoint(id: &str) -> Write {
    Write::Endpoint(
        Box::new(EndpointRecord {
            id: id.into(),
            platform: "acct_platform".into(),
            livemode: false,
            version: 1,
            created: 0,
            url: "http://127.0.0.1:9/hook".into(),
            connect: false,
            enabled: true,
            enabled_events: vec!["*".into()],
            api_version: None,
            description: None,
            metadata: Default::default(),
            secrets: vec![SigningSecret {
                secret: "whsec_x".into(),
                expires_at: None,
            }],
            deleted: false,
            failing_since: None,
            listener: false,
        }),
        None,
    )
}

fn event(id: &str) -> NewEvent {
    NewEvent {
        id: id.into(),
        draft: EventDraft {
            event_type: "customer.created".into(),
            object: json!({"id": "cus_1", "object": "customer"}),
            previous_attributes: None,
            livemode: false,
            account: None,
            request: RequestInfo::default(),
        },
    }
}

async fn open(dir: &std::path::Path) -> Arc<SqliteStore> {
    let store = Arc::new(SqliteStore::open(&dir.join("db.sqlite")).unwrap());
    store
        .bootstrap_platform(PlatformInit {
            generated: platform(),
            test_key_override: None,
            live_key_override: None,
        })
        .await
        .unwrap();
    store
}

fn claim(now_ms: i64) -> ClaimRequest {
    ClaimRequest {
        now_ms,
        lease_ms: 10_000,
        limit: 10,
        per_endpoint: 10,
        endpoint_room: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_command_does_not_sink_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store
        .commit(change(vec![object("cus_1", 1, None)], vec![]))
        .await
        .unwrap();
    // Submitted together so that they share a group: a stale update and good inserts.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        let write = if i == 7 {
            object("cus_1", 2, Some(99))
        } else {
            object(&format!("cus_new{i}"), 1, None)
        };
        tasks.push(tokio::spawn(async move {
            store.commit(change(vec![write], vec![])).await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let result = t.await.unwrap();
        if i == 7 {
            assert!(matches!(result, Err(StoreError::Conflict)), "{result:?}");
        } else {
            assert!(result.is_ok(), "{i}: {result:?}");
        }
    }
    let all = store
        .objects(
            &scope(),
            "customer",
            &PageRequest {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(all.data.len(), 20);
    let original = store
        .object(&scope(), "customer", "cus_1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(original.version, 1, "the failed update left no trace");
}

#[tokio::test]
async fn events_route_to_endpoints_in_the_same_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store
        .commit(change(vec![endpoint("we_1"), endpoint("we_2")], vec![]))
        .await
        .unwrap();
    store
        .commit(change(vec![], vec![event("evt_1")]))
        .await
        .unwrap();
    let rec = store.event(&scope(), "evt_1").await.unwrap().unwrap();
    assert_eq!(rec.pending_webhooks, 2);
    let payload: serde_json::Value = serde_json::from_slice(&rec.payload).unwrap();
    assert_eq!(payload["pending_webhooks"], 2);
    assert_eq!(store.delivery_stats().await.unwrap().pending, 2);
}

#[tokio::test]
async fn leases_hide_claimed_work_until_they_end_or_the_store_reopens() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path()).await;
        store
            .commit(change(vec![endpoint("we_1")], vec![event("evt_1")]))
            .await
            .unwrap();
        let first = store.claim_due(claim(T0)).await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].attempt, 1);
        assert_eq!(first[0].secrets, ["whsec_x"]);
        assert!(
            store.claim_due(claim(T0 + 1_000)).await.unwrap().is_empty(),
            "leased"
        );
        let again = store.claim_due(claim(T0 + 10_001)).await.unwrap();
        assert_eq!(again.len(), 1, "the lease ended");
        assert_eq!(again[0].attempt, 2);
    }
    // Wait for the previous writer to let go of the database.
    let store = loop {
        match SqliteStore::open(&dir.path().join("db.sqlite")) {
            Ok(s) => break s,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    };
    let reopened = store.claim_due(claim(T0 + 10_002)).await.unwrap();
    assert_eq!(
        reopened.len(),
        1,
        "a new process takes over a dead process's claims at once"
    );
    let d = &reopened[0];
    let attempt = AttemptRecord {
        id: 0,
        event_id: d.event_id.clone(),
        endpoint_id: d.endpoint_id.clone(),
        attempt: d.attempt,
        started_at_ms: T0 + 10_002,
        duration_ms: 1,
        status_code: Some(200),
        error: None,
        response_body: "ok".into(),
        succeeded: true,
        next_action: switchboard_core::attempt::NextAction::Retry,
        chaos: Vec::new(),
        next_at_ms: None,
    };
    store
        .record_outcomes(vec![DeliveryOutcome {
            delivery_id: d.delivery_id,
            attempt,
            next: Next::Done,
            now_ms: T0 + 10_003,
            disable_after_ms: 0,
        }])
        .await
        .unwrap();
    assert_eq!(
        store
            .event(&scope(), "evt_1")
            .await
            .unwrap()
            .unwrap()
            .pending_webhooks,
        0
    );
    let stats = store.delivery_stats().await.unwrap();
    assert_eq!((stats.pending, stats.succeeded, stats.attempts), (0, 1, 1));
}

/// The fault probe's WAL of 954 MB beside an 81 MB database: under sustained
/// writes with readers open, passive checkpoints never reset the WAL. Past
/// its limit the checkpointer truncates it, so it comes back under the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_comes_back_under_its_limit() {
    const LIMIT: u64 = 256 << 10;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal.db");
    let store = Arc::new(SqliteStore::open_with(&path, LIMIT).unwrap());
    let wal = dir.path().join("wal.db-wal");
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..400 {
                let _ = store.object(&scope(), "customer", "cus_0").await;
            }
        })
    };
    let mut biggest = 0;
    for i in 0..300 {
        let mut w = object(&format!("cus_{i}"), 1, None);
        if let Write::Object(o) = &mut w {
            o.object.data = json!({"id": o.object.id, "blob": "x".repeat(4096)});
        }
        store.commit(change(vec![w], Vec::new())).await.unwrap();
        biggest = biggest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    reader.await.unwrap();
    assert!(
        biggest > LIMIT,
        "the load must push the WAL past its limit ({biggest} bytes)"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
        if size <= LIMIT {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the WAL stays at {size} bytes"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Nothing was lost on the way.
    assert!(
        store
            .object(&scope(), "customer", "cus_299")
            .await
            .unwrap()
            .is_some()
    );
}
