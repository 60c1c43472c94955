//! The store alone, for instruction counts (`valgrind --tool=callgrind`):
//! N changes, each a customer and its event routed to one endpoint, then
//! every delivery claimed and its success recorded, on SQLite in a temp dir.
//! No HTTP and no clock-driven waits, so the count is the same run after run.

use switchboard_core::event::{EventDraft, RequestInfo};
use switchboard_store::sqlite::SqliteStore;
use switchboard_store::*;

const T0: i64 = 1_767_225_600_000;

fn change(now_ms: i64, writes: Vec<Write>, events: Vec<NewEvent>) -> Change {
    Change {
        platform: "acct_bench".into(),
        now: now_ms / 1000,
        now_ms,
        api_version: switchboard_core::DEFAULT_API_VERSION.into(),
        writes,
        events,
        idempotency: None,
    }
}

pub async fn scenario(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    store
        .bootstrap_platform(PlatformInit {
            generated: Platform {
                id: "acct_bench".into(),
                client_id: "ca_bench".into(),
                test_key: "sk_test_bench".into(),
                live_key: "sk_live_bench".into(),
                created: 0,
            },
            test_key_override: None,
            live_key_override: None,
        })
        .await
        .unwrap();
    let endpoint = EndpointRecord {
        id: "we_bench".into(),
        platform: "acct_bench".into(),
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
            secret: "whsec_bench".into(),
            expires_at: None,
        }],
        deleted: false,
        failing_since: None,
        listener: false,
        chaos: None,
        destination: None,
    };
    store
        .commit(change(
            T0,
            vec![Write::Endpoint(Box::new(endpoint), None)],
            vec![],
        ))
        .await
        .unwrap();
    let scope = Scope {
        platform: "acct_bench".into(),
        livemode: false,
        account: None,
    };
    let started = std::time::Instant::now();
    for i in 0..n {
        let id = format!("cus_{i:08}");
        let object = serde_json::json!({"id": id, "object": "customer", "name": format!("n{i}")});
        let write = Write::Object(ObjectWrite {
            scope: scope.clone(),
            object: StoredObject {
                id: id.clone(),
                kind: "customer".into(),
                version: 1,
                created: T0 / 1000,
                deleted: false,
                data: object.clone(),
            },
            expected_version: None,
        });
        let event = NewEvent {
            id: format!("evt_{i:08}"),
            draft: EventDraft {
                event_type: "customer.created".into(),
                object,
                previous_attributes: None,
                livemode: false,
                account: None,
                request: RequestInfo::default(),
                data: None,
            },
        };
        store
            .commit(change(T0, vec![write], vec![event]))
            .await
            .unwrap();
    }
    let mut recorded = 0;
    loop {
        let claimed = store
            .claim_due(ClaimRequest {
                now_ms: T0,
                lease_ms: 60_000,
                limit: 100,
                per_endpoint: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        if claimed.is_empty() {
            break;
        }
        let outcomes = claimed
            .iter()
            .map(|d| DeliveryOutcome {
                delivery_id: d.delivery_id,
                attempt: AttemptRecord {
                    id: 0,
                    event_id: d.event_id.clone(),
                    endpoint_id: d.endpoint_id.clone(),
                    attempt: d.attempt,
                    started_at_ms: T0,
                    duration_ms: 1,
                    status_code: Some(200),
                    error: None,
                    response_body: String::new(),
                    succeeded: true,
                    next_action: switchboard_core::attempt::NextAction::Done,
                    next_at_ms: None,
                    chaos: Vec::new(),
                },
                next: Next::Done,
                now_ms: T0,
                disable_after_ms: 0,
            })
            .collect::<Vec<_>>();
        recorded += outcomes.len();
        store.record_outcomes(outcomes).await.unwrap();
    }
    assert_eq!(recorded, n, "every delivery claimed and recorded");
    println!(
        "store        {n} commits, claims and outcomes in {:.0} ms (count instructions with callgrind)",
        started.elapsed().as_secs_f64() * 1000.0
    );
}
