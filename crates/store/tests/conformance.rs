//! The store's contract, written once and run on every backend: atomic
//! changes, a failing change that sinks nothing else, routing, idempotency,
//! the delivery queue's leases and outcomes. PostgreSQL tests each run in a
//! schema of their own on `SWITCHBOARD_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). SQLite-only behaviour (WAL,
//! the lock file) is at the end.

use std::sync::Arc;

use serde_json::json;
use switchboard_core::event::{EventDraft, RequestInfo};
use switchboard_store::postgres::PostgresStore;
use switchboard_store::sqlite::SqliteStore;
use switchboard_store::*;

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty store and what keeps it alive (a temporary directory or
/// schema), with the default platform bootstrapped.
struct Fixture {
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
    schema: Option<String>,
}

fn database_url() -> String {
    std::env::var("SWITCHBOARD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The URL of a new, empty schema of the test database.
async fn fresh_schema() -> (String, String) {
    let url = database_url();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL reachable (see .ci/run)");
    tokio::spawn(connection);
    let schema = format!("conformance_{:016x}", rand::random::<u64>());
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    (
        format!("{url}{sep}options=-csearch_path%3D{schema}"),
        schema,
    )
}

async fn drop_schema(schema: &str) {
    let (client, connection) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}

impl Fixture {
    async fn new(backend: Backend) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let (store, schema): (Arc<dyn Store>, _) = match backend {
            Backend::Sqlite => (
                Arc::new(SqliteStore::open(&dir.path().join("db.sqlite")).unwrap()),
                None,
            ),
            Backend::Postgres => {
                let (url, schema) = fresh_schema().await;
                (
                    Arc::new(PostgresStore::connect(&url).await.unwrap()),
                    Some(schema),
                )
            }
        };
        store
            .bootstrap_platform(PlatformInit {
                generated: platform(),
                test_key_override: None,
                live_key_override: None,
            })
            .await
            .unwrap();
        Fixture {
            store,
            _dir: dir,
            schema,
        }
    }

    /// Releases the store (and drops a PostgreSQL schema): call at the end of a passing test.
    async fn finish(self) {
        self.store.close().await;
        if let Some(schema) = &self.schema {
            drop_schema(schema).await;
        }
    }
}

/// Each test of the suite, run on each backend.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::Backend::Sqlite).await
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::Backend::Postgres).await
            })*
        }
    };
}

suite!(
    a_failing_change_sinks_nothing_else,
    events_route_to_endpoints_in_the_same_transaction,
    leases_hide_claimed_work_until_they_end,
    concurrent_claimers_never_share_a_delivery,
    an_idempotency_key_commits_once_and_replays,
    outcomes_settle_retry_give_up_and_disable,
    resends_are_one_shot,
    lists_paginate_and_filter_by_field,
    a_closed_store_refuses_work,
    a_listener_is_claimed_only_by_the_nodes_holding_it,
    a_key_in_flight_is_refused_until_committed_abandoned_or_stale,
    platforms_are_found_by_key_and_by_id,
    timers_come_due_and_a_test_clock_brings_them_forward,
    fresh_deliveries_are_handed_leased_to_the_local_dispatcher,
);

fn timer(id: &str, livemode: bool, due_ms: Option<i64>) -> Write {
    Write::Timer(Timer {
        scope: Scope {
            livemode,
            ..scope()
        },
        kind: "payout".into(),
        object_id: id.into(),
        due_ms,
    })
}

async fn timers_come_due_and_a_test_clock_brings_them_forward(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let store = &fx.store;
    let ids = |ts: Vec<Timer>| ts.into_iter().map(|t| t.object_id).collect::<Vec<_>>();
    store
        .commit(change(
            vec![
                timer("po_test", false, Some(T0 + 5_000)),
                timer("po_live", true, Some(T0 + 5_000)),
                timer("po_soon", false, Some(T0 + 1_000)),
                endpoint("we_1"),
            ],
            vec![],
        ))
        .await
        .unwrap();
    assert!(store.due_timers(T0, 10).await.unwrap().is_empty());
    assert_eq!(
        ids(store.due_timers(T0 + 1_000, 10).await.unwrap()),
        ["po_soon"]
    );
    // Writing a timer again moves it; writing none disarms it.
    store
        .commit(change(
            vec![
                timer("po_soon", false, Some(T0 + 2_000)),
                timer("po_gone", false, Some(T0)),
            ],
            vec![],
        ))
        .await
        .unwrap();
    store
        .commit(change(vec![timer("po_gone", false, None)], vec![]))
        .await
        .unwrap();
    let due = store.due_timers(T0 + 2_000, 10).await.unwrap();
    assert_eq!(ids(due.clone()), ["po_soon"]);
    assert_eq!(
        (due[0].kind.as_str(), due[0].scope.clone()),
        ("payout", scope())
    );

    // A delivery due in ten seconds.
    let mut later = change(vec![], vec![event("evt_later")]);
    later.now_ms = T0 + 10_000;
    store.commit(later).await.unwrap();
    assert_eq!(store.next_due_ms().await.unwrap(), Some(T0 + 10_000));

    // The test clock moves 4 s: test-mode timers and deliveries come 4 s
    // sooner, live ones stay.
    assert_eq!(store.test_clock("acct_platform").await.unwrap(), 0);
    assert_eq!(
        store
            .advance_test_clock("acct_platform", 4_000)
            .await
            .unwrap(),
        4_000
    );
    assert_eq!(store.test_clock("acct_platform").await.unwrap(), 4_000);
    assert_eq!(
        ids(store.due_timers(T0 + 1_000, 10).await.unwrap()),
        ["po_test", "po_soon"]
            .map(String::from)
            .iter()
            .rev()
            .cloned()
            .collect::<Vec<_>>()
    );
    assert_eq!(store.next_due_ms().await.unwrap(), Some(T0 + 6_000));
    assert_eq!(
        ids(store.due_timers(T0 + 5_000, 10).await.unwrap()).len(),
        3
    );
    assert_eq!(
        store
            .advance_test_clock("acct_platform", 1_000)
            .await
            .unwrap(),
        5_000
    );
    // Another platform's clock is its own.
    assert_eq!(store.test_clock("acct_other").await.unwrap(), 0);
    fx.finish().await;
}

async fn platforms_are_found_by_key_and_by_id(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let p = platform();
    let (by_key, live) = fx
        .store
        .platform_by_key(&p.test_key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((by_key.id.as_str(), live), (p.id.as_str(), false));
    let by_id = fx.store.platform(&p.id).await.unwrap().unwrap();
    assert_eq!(
        (&by_id.test_key, &by_id.client_id),
        (&p.test_key, &p.client_id)
    );
    // OAuth's `/oauth/authorize` names the platform by its Connect client id.
    let by_client = fx.store.platform(&p.client_id).await.unwrap().unwrap();
    assert_eq!(by_client.id, p.id);
    assert!(fx.store.platform("acct_nobody").await.unwrap().is_none());
    fx.finish().await;
}

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
            chaos: None,
            destination: None,
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
            data: None,
        },
    }
}

fn claim(now_ms: i64) -> ClaimRequest {
    ClaimRequest {
        node: "node_a".into(),
        now_ms,
        lease_ms: 10_000,
        limit: 10,
        per_endpoint: 10,
        endpoint_room: Default::default(),
    }
}

fn outcome(d: &ClaimedDelivery, succeeded: bool, next: Next, now_ms: i64) -> DeliveryOutcome {
    DeliveryOutcome {
        delivery_id: d.delivery_id,
        attempt: AttemptRecord {
            id: 0,
            event_id: d.event_id.clone(),
            endpoint_id: d.endpoint_id.clone(),
            attempt: d.attempt,
            started_at_ms: now_ms,
            duration_ms: 1,
            status_code: Some(if succeeded { 200 } else { 500 }),
            error: None,
            response_body: "answer".into(),
            succeeded,
            next_action: switchboard_core::attempt::NextAction::Done,
            chaos: Vec::new(),
            next_at_ms: None,
        },
        next,
        now_ms,
        disable_after_ms: 1_000,
    }
}

/// The event's `pending_webhooks` as stored.
async fn pending(store: &Arc<dyn Store>, event_id: &str) -> i64 {
    store
        .event(&scope(), event_id)
        .await
        .unwrap()
        .expect("the event exists")
        .pending_webhooks
}

async fn webhook_endpoint(store: &Arc<dyn Store>, id: &str) -> EndpointRecord {
    store
        .endpoint("acct_platform", false, id)
        .await
        .unwrap()
        .expect("the endpoint exists")
}

fn all() -> PageRequest {
    PageRequest {
        limit: 100,
        ..Default::default()
    }
}

async fn a_failing_change_sinks_nothing_else(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let store = fx.store.clone();
    store
        .commit(change(vec![object("cus_1", 1, None)], vec![]))
        .await
        .unwrap();
    // Submitted together (SQLite folds them into one group): a stale update and good inserts.
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
    // A change whose second write conflicts leaves no trace of its first.
    let half = change(
        vec![object("cus_half", 1, None), object("cus_1", 2, Some(99))],
        vec![event("evt_half")],
    );
    assert!(matches!(
        store.commit(half).await,
        Err(StoreError::Conflict)
    ));
    assert!(
        store
            .object(&scope(), "customer", "cus_half")
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.event(&scope(), "evt_half").await.unwrap().is_none());
    // A duplicate id is a conflict, not a backend failure.
    let dup = store
        .commit(change(vec![object("cus_new0", 1, None)], vec![]))
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict)), "{dup:?}");
    let all_customers = store.objects(&scope(), "customer", &all()).await.unwrap();
    assert_eq!(all_customers.data.len(), 20);
    let original = store
        .object(&scope(), "customer", "cus_1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(original.version, 1, "the failed update left no trace");
    fx.finish().await;
}

async fn events_route_to_endpoints_in_the_same_transaction(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let store = &fx.store;
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
    // A third endpoint written after the routes were cached receives the next event.
    store
        .commit(change(vec![endpoint("we_3")], vec![]))
        .await
        .unwrap();
    store
        .commit(change(vec![], vec![event("evt_2")]))
        .await
        .unwrap();
    assert_eq!(
        pending(store, "evt_2").await,
        3,
        "routes follow endpoint writes"
    );
    // Another scope sees nothing.
    let other = Scope {
        livemode: true,
        ..scope()
    };
    assert!(store.event(&other, "evt_1").await.unwrap().is_none());
    fx.finish().await;
}

async fn leases_hide_claimed_work_until_they_end(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let store = &fx.store;
    store
        .commit(change(vec![endpoint("we_1")], vec![event("evt_1")]))
        .await
        .unwrap();
    assert_eq!(store.next_due_ms().await.unwrap(), Some(T0));
    let first = store.claim_due(claim(T0)).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].attempt, 1);
    assert_eq!(first[0].secrets, ["whsec_x"]);
    assert_eq!(
        store.next_due_ms().await.unwrap(),
        Some(T0 + 10_000),
        "due again when the lease ends"
    );
    assert!(
        store.claim_due(claim(T0 + 1_000)).await.unwrap().is_empty(),
        "leased"
    );
    let again = store.claim_due(claim(T0 + 10_001)).await.unwrap();
    assert_eq!(again.len(), 1, "the lease ended");
    assert_eq!(again[0].attempt, 2);
    // The first claimer's late answer moves nothing: it was overtaken.
    store
        .record_outcomes(vec![outcome(&first[0], true, Next::Done, T0 + 10_002)])
        .await
        .unwrap();
    assert_eq!(store.delivery_stats().await.unwrap().pending, 1);
    store
        .record_outcomes(vec![outcome(&again[0], true, Next::Done, T0 + 10_003)])
        .await
        .unwrap();
    assert_eq!(pending(store, "evt_1").await, 0);
    let stats = store.delivery_stats().await.unwrap();
    assert_eq!((stats.pending, stats.succeeded, stats.attempts), (0, 1, 2));
    assert_eq!(store.next_due_ms().await.unwrap(), None);
    fx.finish().await;
}

async fn concurrent_claimers_never_share_a_delivery(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let store = fx.store.clone();
    store
        .commit(change(vec![endpoint("we_1"), endpoint("we_2")], vec![]))
        .await
        .unwrap();
    let events: Vec<NewEvent> = (0..100).map(|i| event(&format!("evt_{i}"))).collect();
    store.commit(change(vec![], events)).await.unwrap();
    let mut claimers = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        claimers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store
                    .claim_due(ClaimRequest {
                        limit: 7,
                        per_endpoint: 7,
                        ..claim(T0)
                    })
                    .await
                    .unwrap();
                if got.is_empty() {
                    break mine;
                }
                mine.extend(got.into_iter().map(|d| d.delivery_id));
            }
        }));
    }
    let mut seen = std::collections::HashSet::new();
    for c in claimers {
        for id in c.await.unwrap() {
            assert!(seen.insert(id), "delivery {id} claimed twice");
        }
    }
    assert_eq!(seen.len(), 200, "every delivery claimed once");
    // Per-endpoint room: a full endpoint is skipped, others still served.
    store
        .commit(change(vec![], vec![event("evt_more")]))
        .await
        .unwrap();
    let room = [("we_1".to_owned(), 0)].into_iter().collect();
    let got = store
        .claim_due(ClaimRequest {
            endpoint_room: room,
            ..claim(T0 + 1)
        })
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].endpoint_id, "we_2");
    fx.finish().await;
}

fn keyed(key: &str, body: &str, writes: Vec<Write>) -> Change {
    let mut c = change(writes, vec![]);
    c.idempotency = Some(IdempotencyRecord {
        scope: scope(),
        key: key.into(),
        response: StoredResponse {
            fingerprint: "fp".into(),
            status: 200,
            body: bytes::Bytes::from(body.to_owned()),
        },
        created: c.now,
    });
    c
}

async fn an_idempotency_key_commits_once_and_replays(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let store = fx.store.clone();
    // Racing requests with one key: exactly one commits, the others replay its answer.
    let mut racers = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            let c = keyed(
                "key-1",
                &format!("answer {i}"),
                vec![object(&format!("cus_r{i}"), 1, None)],
            );
            store.commit(c).await.unwrap()
        }));
    }
    let mut committed = 0;
    let mut replays = Vec::new();
    for r in racers {
        match r.await.unwrap() {
            CommitOutcome::Committed => committed += 1,
            CommitOutcome::Replay(stored) => replays.push(stored.body),
        }
    }
    assert_eq!(committed, 1);
    assert_eq!(replays.len(), 7);
    let objects = store.objects(&scope(), "customer", &all()).await.unwrap();
    assert_eq!(objects.data.len(), 1, "one object for one key");
    let winner = format!("answer {}", &objects.data[0].id["cus_r".len()..]);
    assert!(replays.iter().all(|b| *b == winner.as_bytes()));
    let stored = store
        .idempotent_response(&scope(), "key-1", T0 / 1000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.body, winner.as_bytes());
    // Keys expire after 24 hours: then the key is free again.
    let later = T0 / 1000 + switchboard_core::IDEMPOTENCY_TTL_SECS + 1;
    assert!(
        store
            .idempotent_response(&scope(), "key-1", later)
            .await
            .unwrap()
            .is_none()
    );
    let mut again = keyed("key-1", "fresh", vec![object("cus_late", 1, None)]);
    // Keys expire in real time (`now_ms`), whatever a test clock says.
    again.now = later;
    again.now_ms = later * 1000;
    if let Some(i) = &mut again.idempotency {
        i.created = later;
    }
    assert!(matches!(
        store.commit(again).await.unwrap(),
        CommitOutcome::Committed
    ));
    fx.finish().await;
}

async fn outcomes_settle_retry_give_up_and_disable(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let store = &fx.store;
    store
        .commit(change(vec![endpoint("we_1")], vec![event("evt_1")]))
        .await
        .unwrap();
    let d = store.claim_due(claim(T0)).await.unwrap().remove(0);
    store
        .record_outcomes(vec![outcome(&d, false, Next::RetryAt(T0 + 500), T0 + 1)])
        .await
        .unwrap();
    let ep = webhook_endpoint(store, "we_1").await;
    assert_eq!(ep.failing_since, Some(T0 + 1), "the failure streak starts");
    assert_eq!(store.next_due_ms().await.unwrap(), Some(T0 + 500));
    assert!(store.claim_due(claim(T0 + 499)).await.unwrap().is_empty());
    let d = store.claim_due(claim(T0 + 500)).await.unwrap().remove(0);
    assert_eq!(d.attempt, 2);
    // Giving up after failing for longer than disable_after (1 s) disables the endpoint.
    store
        .record_outcomes(vec![outcome(&d, false, Next::GiveUp, T0 + 2_000)])
        .await
        .unwrap();
    let ep = webhook_endpoint(store, "we_1").await;
    assert!(
        !ep.enabled,
        "disabled after failing since {:?}",
        ep.failing_since
    );
    assert_eq!(ep.version, 2);
    let stats = store.delivery_stats().await.unwrap();
    assert_eq!((stats.pending, stats.failed, stats.attempts), (0, 1, 2));
    assert_eq!(pending(store, "evt_1").await, 1, "still owed");
    // A disabled endpoint receives no new events, and its queued deliveries are cancelled.
    store
        .commit(change(vec![], vec![event("evt_2")]))
        .await
        .unwrap();
    assert_eq!(pending(store, "evt_2").await, 0);
    let attempts = store
        .attempts(
            "acct_platform",
            false,
            &AttemptFilter::Event("evt_1".into()),
            &all(),
        )
        .await
        .unwrap();
    assert_eq!(attempts.data.len(), 2);
    assert_eq!(
        attempts.data[0].next_action,
        switchboard_core::attempt::NextAction::GiveUp
    );
    assert_eq!(
        attempts.data[1].next_action,
        switchboard_core::attempt::NextAction::Retry
    );
    assert_eq!(attempts.data[1].next_at_ms, Some(T0 + 500));
    // Re-enabling forgets the streak.
    let mut ep2 = ep.clone();
    ep2.enabled = true;
    ep2.version = 3;
    store
        .commit(change(
            vec![Write::Endpoint(Box::new(ep2), Some(2))],
            vec![],
        ))
        .await
        .unwrap();
    let ep = webhook_endpoint(store, "we_1").await;
    assert_eq!((ep.enabled, ep.failing_since), (true, None));
    fx.finish().await;
}

async fn resends_are_one_shot(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let store = &fx.store;
    store
        .commit(change(vec![endpoint("we_1")], vec![event("evt_1")]))
        .await
        .unwrap();
    let d = store.claim_due(claim(T0)).await.unwrap().remove(0);
    store
        .record_outcomes(vec![outcome(&d, true, Next::Done, T0 + 1)])
        .await
        .unwrap();
    let resend = Write::Resend {
        event_id: "evt_1".into(),
        endpoint_id: "we_1".into(),
    };
    store.commit(change(vec![resend], vec![])).await.unwrap();
    let d = store.claim_due(claim(T0 + 2)).await.unwrap().remove(0);
    assert!(d.one_shot);
    store
        .record_outcomes(vec![outcome(&d, false, Next::Done, T0 + 5_000)])
        .await
        .unwrap();
    let stats = store.delivery_stats().await.unwrap();
    assert_eq!((stats.pending, stats.succeeded, stats.failed), (0, 1, 1));
    assert_eq!(pending(store, "evt_1").await, 0, "a resend never counts");
    let ep = webhook_endpoint(store, "we_1").await;
    assert!(ep.enabled, "a failed resend never disables");
    fx.finish().await;
}

async fn lists_paginate_and_filter_by_field(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let store = &fx.store;
    for i in 0..5 {
        let mut w = object(&format!("cus_{i}"), 1, None);
        if let Write::Object(o) = &mut w {
            o.object.data = json!({"id": o.object.id, "email": format!("{}@x", i % 2), "nested": {"flag": i == 3}});
        }
        store.commit(change(vec![w], vec![])).await.unwrap();
    }
    let page = |limit, after: Option<&str>, before: Option<&str>| PageRequest {
        limit,
        starting_after: after.map(Into::into),
        ending_before: before.map(Into::into),
        filters: Vec::new(),
    };
    let ids = |p: &Page<StoredObject>| p.data.iter().map(|o| o.id.clone()).collect::<Vec<_>>();
    let first = store
        .objects(&scope(), "customer", &page(2, None, None))
        .await
        .unwrap();
    assert_eq!(
        (ids(&first), first.has_more),
        (vec!["cus_4".to_owned(), "cus_3".into()], true)
    );
    let next = store
        .objects(&scope(), "customer", &page(2, Some("cus_3"), None))
        .await
        .unwrap();
    assert_eq!(ids(&next), ["cus_2", "cus_1"]);
    let back = store
        .objects(&scope(), "customer", &page(2, None, Some("cus_1")))
        .await
        .unwrap();
    assert_eq!(ids(&back), ["cus_3", "cus_2"]);
    let missing = store
        .objects(&scope(), "customer", &page(2, Some("cus_nope"), None))
        .await;
    assert!(matches!(missing, Err(StoreError::CursorNotFound(_))));
    let mut by_email = page(10, None, None);
    by_email.filters.push((Field("email"), json!("1@x")));
    let found = store
        .objects(&scope(), "customer", &by_email)
        .await
        .unwrap();
    assert_eq!(ids(&found), ["cus_3", "cus_1"]);
    let mut nested = page(10, None, None);
    nested.filters.push((Field("nested.flag"), json!(true)));
    let found = store.objects(&scope(), "customer", &nested).await.unwrap();
    assert_eq!(ids(&found), ["cus_3"]);
    // Data comes back with its keys in the order written.
    let o = store
        .object(&scope(), "customer", "cus_3")
        .await
        .unwrap()
        .unwrap();
    let keys: Vec<&String> = o.data.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "email", "nested"]);
    // Events filter by type prefix and list newest first.
    store
        .commit(change(vec![], vec![event("evt_a"), event("evt_b")]))
        .await
        .unwrap();
    let filter = EventFilter {
        event_type: Some("customer.*".into()),
        ..Default::default()
    };
    let evs = store.events(&scope(), &filter, &all()).await.unwrap();
    assert_eq!(
        evs.data.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["evt_b", "evt_a"]
    );
    for (object, expected) in [("cus_1", 2), ("cus_2", 0)] {
        let about = EventFilter {
            object_id: Some(object.into()),
            ..Default::default()
        };
        let found = store.events(&scope(), &about, &all()).await.unwrap();
        assert_eq!(found.data.len(), expected, "events about {object}");
    }
    let none = EventFilter {
        types: vec!["account.updated".into()],
        ..Default::default()
    };
    assert!(
        store
            .events(&scope(), &none, &all())
            .await
            .unwrap()
            .data
            .is_empty()
    );
    fx.finish().await;
}

async fn a_closed_store_refuses_work(backend: Backend) {
    let fx = Fixture::new(backend).await;
    fx.store.close().await;
    let refused = fx
        .store
        .commit(change(vec![object("cus_1", 1, None)], vec![]))
        .await;
    assert!(matches!(refused, Err(StoreError::Closed)), "{refused:?}");
    fx.finish().await;
}

async fn a_listener_is_claimed_only_by_the_nodes_holding_it(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let store = &fx.store;
    let mut device = match endpoint("we_cli") {
        Write::Endpoint(e, _) => *e,
        _ => unreachable!(),
    };
    device.listener = true;
    device.enabled = false;
    store
        .commit(change(
            vec![Write::Endpoint(Box::new(device), None)],
            vec![],
        ))
        .await
        .unwrap();
    let hold = |node: &str, until_ms: Option<i64>, now_ms: i64| ListenerHold {
        platform: "acct_platform".into(),
        endpoint_id: "we_cli".into(),
        node: node.into(),
        until_ms,
        now_ms,
    };
    let enabled = || async { store.listeners("acct_platform", false).await.unwrap()[0].enabled };
    assert!(!enabled().await, "no node holds it yet");
    store
        .hold_listener(hold("node_b", Some(T0 + 15_000), T0))
        .await
        .unwrap();
    assert!(enabled().await, "held by node B");
    store
        .commit(change(vec![], vec![event("evt_1")]))
        .await
        .unwrap();
    assert_eq!(pending(store, "evt_1").await, 1);
    // Node A does not hold the socket: the delivery is node B's.
    assert!(store.claim_due(claim(T0)).await.unwrap().is_empty());
    assert_eq!(store.delivery_stats().await.unwrap().pending, 1);
    let on_b = store
        .claim_due(ClaimRequest {
            node: "node_b".into(),
            ..claim(T0)
        })
        .await
        .unwrap();
    assert_eq!(on_b.len(), 1, "node B claims what it holds");
    store
        .record_outcomes(vec![outcome(&on_b[0], true, Next::Done, T0 + 1)])
        .await
        .unwrap();
    // Node B dies: its hold runs out, and an undeliverable delivery is cancelled, not stuck.
    store
        .commit(change(vec![], vec![event("evt_2")]))
        .await
        .unwrap();
    assert!(
        store
            .claim_due(claim(T0 + 15_001))
            .await
            .unwrap()
            .is_empty()
    );
    let stats = store.delivery_stats().await.unwrap();
    assert_eq!((stats.pending, stats.cancelled), (0, 1));
    assert!(
        !enabled().await,
        "a device no live node holds is disconnected: events stop routing to it"
    );
    store
        .commit(change(vec![], vec![event("evt_2b")]))
        .await
        .unwrap();
    assert_eq!(pending(store, "evt_2b").await, 0);
    // Letting go disables the device: no more events route to it.
    store
        .hold_listener(hold("node_b", None, T0 + 2))
        .await
        .unwrap();
    assert!(!enabled().await);
    store
        .commit(change(vec![], vec![event("evt_3")]))
        .await
        .unwrap();
    assert_eq!(pending(store, "evt_3").await, 0);
    fx.finish().await;
}

async fn a_key_in_flight_is_refused_until_committed_abandoned_or_stale(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let store = &fx.store;
    let now = T0 / 1000;
    assert_eq!(
        store
            .begin_idempotent(&scope(), "k1", "fp", now)
            .await
            .unwrap(),
        Begun::Fresh
    );
    assert_eq!(
        store
            .begin_idempotent(&scope(), "k1", "fp", now)
            .await
            .unwrap(),
        Begun::InFlight
    );
    assert!(
        store
            .idempotent_response(&scope(), "k1", now)
            .await
            .unwrap()
            .is_none(),
        "no answer yet"
    );
    // Other scopes have keys of their own.
    let live = Scope {
        livemode: true,
        ..scope()
    };
    assert_eq!(
        store
            .begin_idempotent(&live, "k1", "fp", now)
            .await
            .unwrap(),
        Begun::Fresh
    );
    // The commit stores the answer over the reservation.
    let committed = store
        .commit(keyed("k1", "answer", vec![object("cus_1", 1, None)]))
        .await
        .unwrap();
    assert!(matches!(committed, CommitOutcome::Committed));
    match store
        .begin_idempotent(&scope(), "k1", "fp", now)
        .await
        .unwrap()
    {
        Begun::Done(stored) => assert_eq!(stored.body, "answer".as_bytes()),
        other => panic!("{other:?}"),
    }
    // An abandoned reservation frees the key at once; a stale one after a minute.
    assert_eq!(
        store
            .begin_idempotent(&scope(), "k2", "fp", now)
            .await
            .unwrap(),
        Begun::Fresh
    );
    store.abandon_idempotent(&scope(), "k2").await.unwrap();
    assert_eq!(
        store
            .begin_idempotent(&scope(), "k2", "fp", now)
            .await
            .unwrap(),
        Begun::Fresh
    );
    let later = now + switchboard_core::IDEMPOTENCY_IN_FLIGHT_SECS;
    assert_eq!(
        store
            .begin_idempotent(&scope(), "k2", "fp", later - 1)
            .await
            .unwrap(),
        Begun::InFlight
    );
    assert_eq!(
        store
            .begin_idempotent(&scope(), "k2", "fp", later)
            .await
            .unwrap(),
        Begun::Fresh
    );
    // Abandoning never drops a stored answer.
    store.abandon_idempotent(&scope(), "k1").await.unwrap();
    assert!(
        store
            .idempotent_response(&scope(), "k1", now)
            .await
            .unwrap()
            .is_some()
    );
    fx.finish().await;
}

// -- SQLite only ---------------------------------------------------------------

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

#[tokio::test]
async fn sqlite_a_reopened_file_takes_over_a_dead_process_claims_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store
        .commit(change(vec![endpoint("we_1")], vec![event("evt_1")]))
        .await
        .unwrap();
    assert_eq!(store.claim_due(claim(T0)).await.unwrap().len(), 1);
    assert!(
        SqliteStore::open(&dir.path().join("db.sqlite")).is_err(),
        "one process owns the file"
    );
    store.close().await;
    let store = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
    let reopened = store.claim_due(claim(T0 + 1)).await.unwrap();
    assert_eq!(
        reopened.len(),
        1,
        "claims of the closed store are released at once"
    );
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

/// A dispatcher stand-in with room for `room` deliveries.
#[derive(Default)]
struct Inbox {
    room: std::sync::Mutex<usize>,
    handed: std::sync::Mutex<Vec<ClaimedDelivery>>,
}

impl handoff::Handoff for Inbox {
    fn lease_ms(&self) -> i64 {
        10_000
    }
    fn reserve(&self, _endpoint_id: &str) -> bool {
        let mut room = self.room.lock().unwrap();
        let taken = *room > 0;
        *room -= usize::from(taken);
        taken
    }
    fn release(&self, _endpoint_id: &str) {
        *self.room.lock().unwrap() += 1;
    }
    fn hand(&self, deliveries: Vec<ClaimedDelivery>) {
        self.handed.lock().unwrap().extend(deliveries);
    }
}

async fn fresh_deliveries_are_handed_leased_to_the_local_dispatcher(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let store = &fx.store;
    let inbox = Arc::new(Inbox::default());
    *inbox.room.lock().unwrap() = 1;
    store.set_handoff(Some(inbox.clone()));
    store
        .commit(change(vec![endpoint("we_1"), endpoint("we_2")], vec![]))
        .await
        .unwrap();
    store
        .commit(change(vec![], vec![event("evt_1")]))
        .await
        .unwrap();
    // Room for one: it is handed over, leased; the other waits for a claim.
    let handed = std::mem::take(&mut *inbox.handed.lock().unwrap());
    assert_eq!(handed.len(), 1);
    let d = &handed[0];
    assert_eq!(
        (d.attempt, d.one_shot, d.event_id.as_str()),
        (1, false, "evt_1")
    );
    assert_eq!(d.secrets, ["whsec_x"]);
    assert_eq!(d.url, "http://127.0.0.1:9/hook");
    let stored = store.event(&scope(), "evt_1").await.unwrap().unwrap();
    assert_eq!(d.payload, stored.payload, "the stored bytes, rendered once");
    let claimed = store.claim_due(claim(T0)).await.unwrap();
    assert_eq!(claimed.len(), 1, "only the delivery left for a claim");
    assert_ne!(claimed[0].endpoint_id, d.endpoint_id);
    assert!(store.claim_due(claim(T0 + 1)).await.unwrap().is_empty());

    // A change that fails after its first event was handed (the second
    // event's id is taken) gives the reservation back and hands nothing.
    *inbox.room.lock().unwrap() = 1;
    let failing = change(vec![], vec![event("evt_lost"), event("evt_1")]);
    assert!(store.commit(failing).await.is_err());
    assert!(store.event(&scope(), "evt_lost").await.unwrap().is_none());
    assert!(inbox.handed.lock().unwrap().is_empty());
    assert_eq!(*inbox.room.lock().unwrap(), 1, "the reservation came back");

    // The handed delivery's outcome settles it like a claimed one's.
    store
        .record_outcomes(vec![outcome(d, true, Next::Done, T0 + 5)])
        .await
        .unwrap();
    store
        .record_outcomes(vec![outcome(&claimed[0], true, Next::Done, T0 + 5)])
        .await
        .unwrap();
    assert_eq!(pending(store, "evt_1").await, 0);

    // Handed but never attempted (the node died): due again when its lease ends.
    store
        .commit(change(vec![], vec![event("evt_2")]))
        .await
        .unwrap();
    let lost = std::mem::take(&mut *inbox.handed.lock().unwrap());
    assert_eq!(lost.len(), 1);
    let later = store.claim_due(claim(T0 + 10_001)).await.unwrap();
    let again: Vec<_> = later
        .iter()
        .filter(|c| c.delivery_id == lost[0].delivery_id)
        .collect();
    assert_eq!(again.len(), 1, "at least once: {later:?}");
    assert_eq!(again[0].attempt, 2);

    // No dispatcher: everything waits for claims.
    store.set_handoff(None);
    store
        .commit(change(vec![], vec![event("evt_3")]))
        .await
        .unwrap();
    assert!(inbox.handed.lock().unwrap().is_empty());
    fx.finish().await;
}
