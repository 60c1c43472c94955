//! Queries on pooled connections (and, for a few helpers, a transaction's).

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::pg;
use crate::secrets::SecretBox;
use crate::*;
use switchboard_core::attempt::{AttemptError, NextAction};

type Param = Box<dyn ToSql + Sync + Send>;

fn get<'r, T: tokio_postgres::types::FromSql<'r>>(r: &'r Row, i: usize) -> Result<T> {
    r.try_get(i).map_err(StoreError::backend)
}

fn refs(args: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter().map(|a| &**a as &(dyn ToSql + Sync)).collect()
}

async fn query<C: GenericClient>(c: &C, sql: &str, args: &[Param]) -> Result<Vec<Row>> {
    let stmt = c.prepare_cached(sql).await.map_err(pg)?;
    c.query(&stmt, &refs(args)).await.map_err(pg)
}

pub(super) fn platform_row(r: &Row) -> Result<Platform> {
    Ok(Platform {
        id: get(r, 0)?,
        client_id: get(r, 1)?,
        test_key: get(r, 2)?,
        live_key: get(r, 3)?,
        created: get(r, 4)?,
    })
}

pub(super) async fn platform_by_key<C: GenericClient>(
    c: &C,
    key: &str,
) -> Result<Option<(Platform, bool)>> {
    // A digest found in a stolen database is no key.
    if switchboard_core::ids::is_at_rest(key) {
        return Ok(None);
    }
    let at_rest = switchboard_core::ids::live_key_at_rest(key);
    let rows = query(
        c,
        "SELECT id, client_id, test_key, live_key, created FROM platforms WHERE test_key = $1 OR live_key = $2",
        &[Box::new(key.to_owned()), Box::new(at_rest.clone())],
    )
    .await?;
    rows.first()
        .map(|r| {
            let p = platform_row(r)?;
            let live = p.live_key == at_rest;
            Ok((p, live))
        })
        .transpose()
}

pub(super) async fn platform<C: GenericClient>(c: &C, id: &str) -> Result<Option<Platform>> {
    let rows = query(
        c,
        "SELECT id, client_id, test_key, live_key, created FROM platforms WHERE id = $1 OR client_id = $1",
        &[Box::new(id.to_owned())],
    )
    .await?;
    rows.first().map(platform_row).transpose()
}

pub(super) async fn platforms<C: GenericClient>(c: &C) -> Result<Vec<Platform>> {
    let rows = query(
        c,
        "SELECT id, client_id, test_key, live_key, created FROM platforms ORDER BY created, id",
        &[],
    )
    .await?;
    rows.iter().map(platform_row).collect()
}

/// What a page is read from and ordered by.
struct Order<'a> {
    table: &'a str,
    columns: &'a str,
    /// The increasing integer column pages follow (newest first).
    column: &'a str,
}

/// A paginated, newest-first query restricted by `cond` (whose parameters
/// are `args`). Cursors resolve to `seq` inside the same scope, so a cursor
/// from another tenant is simply "not found".
async fn paginate<C: GenericClient, T>(
    c: &C,
    order: &Order<'_>,
    cond: &str,
    mut args: Vec<Param>,
    page: &PageRequest,
    by_seq: bool,
    map: impl Fn(&Row) -> Result<T>,
) -> Result<Page<T>> {
    let limit = page.limit.clamp(1, 100);
    let col = order.column;
    let cursor = page.ending_before.as_ref().or(page.starting_after.as_ref());
    let position = match cursor {
        None => None,
        Some(id) if by_seq => {
            let sql = format!(
                "SELECT seq FROM {} WHERE {cond} AND id = ${}",
                order.table,
                args.len() + 1
            );
            let mut with_id: Vec<&(dyn ToSql + Sync)> = refs(&args);
            with_id.push(id);
            let stmt = c.prepare_cached(&sql).await.map_err(pg)?;
            let rows = c.query(&stmt, &with_id).await.map_err(pg)?;
            let row = rows
                .first()
                .ok_or_else(|| StoreError::CursorNotFound(id.clone()))?;
            Some(get::<i64>(row, 0)?)
        }
        // Attempts: the cursor is the id itself, as `att_<n>`.
        Some(id) => Some(
            id.strip_prefix("att_")
                .and_then(|n| n.parse::<i64>().ok())
                .ok_or_else(|| StoreError::CursorNotFound(id.clone()))?,
        ),
    };
    let (extra, direction) = match (position, page.ending_before.is_some()) {
        (Some(p), true) => {
            args.push(Box::new(p));
            (format!(" AND {col} > ${}", args.len()), "ASC")
        }
        (Some(p), false) => {
            args.push(Box::new(p));
            (format!(" AND {col} < ${}", args.len()), "DESC")
        }
        (None, _) => (String::new(), "DESC"),
    };
    let sql = format!(
        "SELECT {} FROM {} WHERE {cond}{extra} ORDER BY {col} {direction} LIMIT {}",
        order.columns,
        order.table,
        limit + 1
    );
    let rows = query(c, &sql, &args).await?;
    let mut data = rows.iter().map(map).collect::<Result<Vec<_>>>()?;
    let has_more = data.len() > limit;
    data.truncate(limit);
    if direction == "ASC" {
        data.reverse();
    }
    Ok(Page { data, has_more })
}

fn scope_args(scope: &Scope) -> Vec<Param> {
    vec![
        Box::new(scope.platform.clone()),
        Box::new(scope.livemode),
        Box::new(scope.account.clone().unwrap_or_default()),
    ]
}

const OBJECT_COLUMNS: &str = "id, kind, version, created, deleted, data";

fn object_row(r: &Row) -> Result<StoredObject> {
    let data: tokio_postgres::types::Json<serde_json::Value> = get(r, 5)?;
    Ok(StoredObject {
        id: get(r, 0)?,
        kind: get(r, 1)?,
        version: get(r, 2)?,
        created: get(r, 3)?,
        deleted: get(r, 4)?,
        data: data.0,
    })
}

pub(super) async fn object<C: GenericClient>(
    c: &C,
    scope: &Scope,
    kind: &str,
    id: &str,
) -> Result<Option<StoredObject>> {
    let sql = format!(
        "SELECT {OBJECT_COLUMNS} FROM objects WHERE platform = $1 AND livemode = $2 AND account = $3 AND kind = $4 AND id = $5"
    );
    let mut a = scope_args(scope);
    a.push(Box::new(kind.to_owned()));
    a.push(Box::new(id.to_owned()));
    query(c, &sql, &a)
        .await?
        .first()
        .map(object_row)
        .transpose()
}

pub(super) async fn objects<C: GenericClient>(
    c: &C,
    scope: &Scope,
    kind: &str,
    page: &PageRequest,
) -> Result<Page<StoredObject>> {
    let mut a = scope_args(scope);
    a.push(Box::new(kind.to_owned()));
    let mut cond = String::from(
        "platform = $1 AND livemode = $2 AND account = $3 AND kind = $4 AND NOT deleted",
    );
    for (field, value) in &page.filters {
        let path: Vec<String> = field.segments().map(str::to_owned).collect();
        a.push(Box::new(path));
        a.push(Box::new(value.clone()));
        cond.push_str(&format!(
            " AND (data #> ${})::jsonb = ${}::jsonb",
            a.len() - 1,
            a.len()
        ));
    }
    let order = Order {
        table: "objects",
        columns: OBJECT_COLUMNS,
        column: "seq",
    };
    paginate(c, &order, &cond, a, page, true, object_row).await
}

const ENDPOINT_COLUMNS: &str = "id, platform, livemode, version, created, url, connect, enabled, enabled_events, \
     api_version, description, metadata, secrets, deleted, failing_since, kind, chaos, destination";

fn endpoint_row(r: &Row, sealed: &SecretBox) -> Result<EndpointRecord> {
    fn json<T: serde::de::DeserializeOwned + Default>(s: &str) -> T {
        serde_json::from_str(s).unwrap_or_default()
    }
    Ok(EndpointRecord {
        id: get(r, 0)?,
        platform: get(r, 1)?,
        livemode: get(r, 2)?,
        version: get(r, 3)?,
        created: get(r, 4)?,
        url: get(r, 5)?,
        connect: get(r, 6)?,
        enabled: get(r, 7)?,
        enabled_events: json(get(r, 8)?),
        api_version: get(r, 9)?,
        description: get(r, 10)?,
        metadata: json(get(r, 11)?),
        secrets: crate::engine::parse_secrets(get(r, 12)?, sealed)?,
        deleted: get(r, 13)?,
        failing_since: get(r, 14)?,
        listener: get::<&str>(r, 15)? == "listener",
        chaos: get(r, 16)?,
        destination: get::<Option<&str>>(r, 17)?.and_then(|d| serde_json::from_str(d).ok()),
    })
}

pub(super) async fn endpoint<C: GenericClient>(
    c: &C,
    platform: &str,
    livemode: bool,
    id: &str,
    sealed: &SecretBox,
) -> Result<Option<EndpointRecord>> {
    let sql = format!(
        "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE platform = $1 AND livemode = $2 AND id = $3 AND NOT deleted"
    );
    let a: Vec<Param> = vec![
        Box::new(platform.to_owned()),
        Box::new(livemode),
        Box::new(id.to_owned()),
    ];
    query(c, &sql, &a)
        .await?
        .first()
        .map(|r| endpoint_row(r, sealed))
        .transpose()
}

pub(super) async fn endpoints<C: GenericClient>(
    c: &C,
    platform: &str,
    livemode: bool,
    kind: EndpointKind,
    page: &PageRequest,
    sealed: &SecretBox,
) -> Result<Page<EndpointRecord>> {
    let order = Order {
        table: "endpoints",
        columns: ENDPOINT_COLUMNS,
        column: "seq",
    };
    let a: Vec<Param> = vec![
        Box::new(platform.to_owned()),
        Box::new(livemode),
        Box::new(kind.as_str().to_owned()),
    ];
    paginate(
        c,
        &order,
        "platform = $1 AND livemode = $2 AND NOT deleted AND kind = $3",
        a,
        page,
        true,
        |r| endpoint_row(r, sealed),
    )
    .await
}

pub(super) async fn listeners<C: GenericClient>(
    c: &C,
    platform: &str,
    livemode: bool,
    sealed: &SecretBox,
) -> Result<Vec<EndpointRecord>> {
    let sql = format!(
        "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE platform = $1 AND livemode = $2 AND kind = 'listener' AND NOT deleted ORDER BY seq"
    );
    let a: Vec<Param> = vec![Box::new(platform.to_owned()), Box::new(livemode)];
    query(c, &sql, &a)
        .await?
        .iter()
        .map(|r| endpoint_row(r, sealed))
        .collect()
}

const EVENT_COLUMNS: &str = "id, livemode, account, type, created, pending_webhooks, payload";

fn event_row(r: &Row) -> Result<EventRecord> {
    let account: String = get(r, 2)?;
    let payload: &[u8] = get(r, 6)?;
    Ok(EventRecord {
        id: get(r, 0)?,
        livemode: get(r, 1)?,
        account: (!account.is_empty()).then_some(account),
        event_type: get(r, 3)?,
        created: get(r, 4)?,
        pending_webhooks: get(r, 5)?,
        payload: bytes::Bytes::copy_from_slice(payload),
    })
}

pub(super) async fn event<C: GenericClient>(
    c: &C,
    scope: &Scope,
    id: &str,
) -> Result<Option<EventRecord>> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE platform = $1 AND livemode = $2 AND account = $3 AND id = $4"
    );
    let mut a = scope_args(scope);
    a.push(Box::new(id.to_owned()));
    query(c, &sql, &a).await?.first().map(event_row).transpose()
}

pub(super) async fn events<C: GenericClient>(
    c: &C,
    scope: &Scope,
    f: &EventFilter,
    page: &PageRequest,
) -> Result<Page<EventRecord>> {
    let mut a = scope_args(scope);
    let mut cond = String::from("platform = $1 AND livemode = $2 AND account = $3");
    use crate::engine::EventCond;
    for c in crate::engine::event_conditions(f) {
        let (sql, v): (&str, Param) = match c {
            EventCond::TypeLike(p) => (" AND type LIKE ? ESCAPE '\\'", Box::new(p)),
            EventCond::Type(t) => (" AND type = ?", Box::new(t.to_owned())),
            EventCond::TypeIn(ts) => (" AND type = ANY(?)", Box::new(ts.to_vec())),
            EventCond::Created(op, v) => {
                a.push(Box::new(v));
                cond.push_str(&format!(" AND created {op} ${}", a.len()));
                continue;
            }
            EventCond::Delivered(true) => {
                cond.push_str(" AND pending_webhooks = 0");
                continue;
            }
            EventCond::Delivered(false) => {
                cond.push_str(" AND pending_webhooks > 0");
                continue;
            }
            EventCond::ObjectId(id) => (
                " AND coalesce(convert_from(payload, 'UTF8')::jsonb #>> '{data,object,id}', \
                 convert_from(payload, 'UTF8')::jsonb #>> '{related_object,id}') = ?",
                Box::new(id.to_owned()),
            ),
            EventCond::V2(v2) => {
                cond.push_str(if v2 {
                    " AND type LIKE 'v2.%'"
                } else {
                    " AND type NOT LIKE 'v2.%'"
                });
                continue;
            }
        };
        a.push(v);
        cond.push_str(&sql.replace('?', &format!("${}", a.len())));
    }
    let order = Order {
        table: "events",
        columns: EVENT_COLUMNS,
        column: "seq",
    };
    paginate(c, &order, &cond, a, page, true, event_row).await
}

pub(super) async fn attempts<C: GenericClient>(
    c: &C,
    platform: &str,
    f: &AttemptFilter,
    page: &PageRequest,
) -> Result<Page<AttemptRecord>> {
    let (cond, id) = match f {
        AttemptFilter::Event(id) => ("platform = $1 AND event_id = $2", id),
        AttemptFilter::Endpoint(id) => ("platform = $1 AND endpoint_id = $2", id),
    };
    let order = Order {
        table: "attempts",
        columns: "id, event_id, endpoint_id, attempt, started_at_ms, duration_ms, status_code, error, \
                  response_body, succeeded, next_action, next_at_ms, chaos",
        column: "id",
    };
    let a: Vec<Param> = vec![Box::new(platform.to_owned()), Box::new(id.clone())];
    paginate(c, &order, cond, a, page, false, |r| {
        let spelled = |i: usize, text: &str| {
            StoreError::backend(format!("column {i}: unknown value {text:?}"))
        };
        let error: Option<String> = get(r, 7)?;
        let action: String = get(r, 10)?;
        let chaos: Option<String> = get(r, 12)?;
        Ok(AttemptRecord {
            id: get(r, 0)?,
            event_id: get(r, 1)?,
            endpoint_id: get(r, 2)?,
            attempt: get::<i32>(r, 3)? as u32,
            started_at_ms: get(r, 4)?,
            duration_ms: get(r, 5)?,
            status_code: get::<Option<i32>>(r, 6)?.map(|s| s as u16),
            error: error
                .map(|e| AttemptError::parse(&e).ok_or_else(|| spelled(7, &e)))
                .transpose()?,
            response_body: get(r, 8)?,
            succeeded: get(r, 9)?,
            next_action: NextAction::parse(&action).ok_or_else(|| spelled(10, &action))?,
            next_at_ms: get(r, 11)?,
            chaos: chaos
                .map(|c| c.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
        })
    })
    .await
}

pub(super) async fn idempotent_response<C: GenericClient>(
    c: &C,
    scope: &Scope,
    key: &str,
    now: i64,
) -> Result<Option<StoredResponse>> {
    let expired = now - switchboard_core::IDEMPOTENCY_TTL_SECS;
    let mut a = scope_args(scope);
    a.push(Box::new(key.to_owned()));
    a.push(Box::new(expired));
    let rows = query(
        c,
        "SELECT fingerprint, status, body FROM idempotency
         WHERE platform = $1 AND livemode = $2 AND account = $3 AND key = $4 AND created > $5 AND status > 0",
        &a,
    )
    .await?;
    rows.first()
        .map(|r| {
            let body: &[u8] = get(r, 2)?;
            Ok(StoredResponse {
                fingerprint: get(r, 0)?,
                status: get::<i32>(r, 1)? as u16,
                body: bytes::Bytes::copy_from_slice(body),
            })
        })
        .transpose()
}

pub(super) async fn delivery_stats<C: GenericClient>(c: &C) -> Result<DeliveryStats> {
    use switchboard_core::delivery::DeliveryState;
    let mut stats = DeliveryStats::default();
    for r in query(
        c,
        "SELECT state, count(*) FROM deliveries GROUP BY state",
        &[],
    )
    .await?
    {
        let (state, n): (i16, i64) = (get(&r, 0)?, get(&r, 1)?);
        match DeliveryState::from_code(state.into()) {
            Some(DeliveryState::Pending) => stats.pending = n,
            Some(DeliveryState::Succeeded) => stats.succeeded = n,
            Some(DeliveryState::Failed) => stats.failed = n,
            Some(DeliveryState::Cancelled) | None => stats.cancelled += n,
        }
    }
    let rows = query(c, "SELECT count(*) FROM attempts", &[]).await?;
    stats.attempts = rows.first().map(|r| get(r, 0)).transpose()?.unwrap_or(0);
    Ok(stats)
}
