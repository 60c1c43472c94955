//! Queries on the read-only connections (and, for a few helpers, the writer's).

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::backend;
use crate::secrets::SecretBox;
use crate::*;
use switchboard_core::attempt::{AttemptError, NextAction};

pub(super) fn platform_row(r: &Row<'_>) -> rusqlite::Result<Platform> {
    Ok(Platform {
        id: r.get(0)?,
        client_id: r.get(1)?,
        test_key: r.get(2)?,
        live_key: r.get(3)?,
        created: r.get(4)?,
    })
}

pub(super) fn platform_by_key(c: &Connection, key: &str) -> Result<Option<(Platform, bool)>> {
    // A digest found in a stolen database is no key.
    if switchboard_core::ids::is_at_rest(key) {
        return Ok(None);
    }
    let at_rest = switchboard_core::ids::live_key_at_rest(key);
    c.prepare_cached("SELECT id, client_id, test_key, live_key, created FROM platforms WHERE test_key = ?1 OR live_key = ?2")
        .and_then(|mut s| s.query_row([key, &at_rest], platform_row).optional())
        .map(|p| p.map(|p| {
            let live = p.live_key == at_rest;
            (p, live)
        }))
        .map_err(backend)
}

pub(super) fn platform(c: &Connection, id: &str) -> Result<Option<Platform>> {
    c.prepare_cached(
        "SELECT id, client_id, test_key, live_key, created FROM platforms WHERE id = ?1 OR client_id = ?1",
    )
    .and_then(|mut s| s.query_row([id], platform_row).optional())
    .map_err(backend)
}

pub(super) fn platforms(c: &Connection) -> Result<Vec<Platform>> {
    let mut stmt = c
        .prepare_cached(
            "SELECT id, client_id, test_key, live_key, created FROM platforms ORDER BY created, id",
        )
        .map_err(backend)?;
    let rows = stmt.query_map([], platform_row).map_err(backend)?;
    rows.collect::<rusqlite::Result<_>>().map_err(backend)
}

pub(super) fn test_clock(c: &Connection, platform: &str) -> Result<i64> {
    c.prepare_cached("SELECT offset_ms FROM test_clocks WHERE platform = ?1")
        .and_then(|mut s| s.query_row([platform], |r| r.get(0)).optional())
        .map(|o| o.unwrap_or(0))
        .map_err(backend)
}

pub(super) fn due_timers(c: &Connection, now_ms: i64, limit: usize) -> Result<Vec<Timer>> {
    let mut stmt = c
        .prepare_cached(
            "SELECT object_id, platform, livemode, account, kind, due_ms FROM timers
             WHERE due_ms <= ?1 ORDER BY due_ms LIMIT (SELECT ?2)",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map(params![now_ms, limit as i64], |r| {
            Ok(Timer {
                object_id: r.get(0)?,
                scope: Scope {
                    platform: r.get(1)?,
                    livemode: r.get(2)?,
                    account: r.get(3)?,
                },
                kind: r.get(4)?,
                due_ms: r.get(5)?,
            })
        })
        .map_err(backend)?;
    rows.collect::<rusqlite::Result<_>>().map_err(backend)
}

/// A paginated, newest-first query over `table` restricted by `cond`.
/// `starting_after`/`ending_before` are resolved to `seq` inside the same scope,
/// so a cursor from another tenant is simply "not found".
fn paginate<T>(
    c: &Connection,
    table: &str,
    columns: &str,
    cond: &str,
    args: Vec<Sql>,
    page: &PageRequest,
    map: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Page<T>> {
    let cursor = |id: &str| -> Result<i64> {
        let mut a = args.clone();
        a.push(Sql::Text(id.to_owned()));
        let sql = format!("SELECT seq FROM {table} WHERE {cond} AND id = ?{}", a.len());
        c.query_row(&sql, params_from_iter(a.iter()), |r| r.get(0))
            .optional()
            .map_err(backend)?
            .ok_or_else(|| StoreError::CursorNotFound(id.to_owned()))
    };
    let order = Order {
        table,
        columns,
        column: "seq",
    };
    paginate_by(c, &order, cond, args.clone(), page, cursor, map)
}

/// What a page is read from and ordered by.
struct Order<'a> {
    table: &'a str,
    columns: &'a str,
    /// The increasing integer column pages follow (newest first).
    column: &'a str,
}

/// [`paginate`] with the cursor → position resolution supplied by the caller.
fn paginate_by<T>(
    c: &Connection,
    order: &Order<'_>,
    cond: &str,
    mut a: Vec<Sql>,
    page: &PageRequest,
    cursor: impl Fn(&str) -> Result<i64>,
    map: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Page<T>> {
    let limit = page.limit.clamp(1, 100);
    let col = order.column;
    let (extra, direction) = if let Some(id) = &page.ending_before {
        a.push(Sql::Integer(cursor(id)?));
        (format!(" AND {col} > ?{}", a.len()), "ASC")
    } else if let Some(id) = &page.starting_after {
        a.push(Sql::Integer(cursor(id)?));
        (format!(" AND {col} < ?{}", a.len()), "DESC")
    } else {
        (String::new(), "DESC")
    };
    let sql = format!(
        "SELECT {} FROM {} WHERE {cond}{extra} ORDER BY {col} {direction} LIMIT {}",
        order.columns,
        order.table,
        limit + 1
    );
    let mut stmt = c.prepare_cached(&sql).map_err(backend)?;
    let mut data = stmt
        .query_map(params_from_iter(a.iter()), map)
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    let has_more = data.len() > limit;
    data.truncate(limit);
    if direction == "ASC" {
        data.reverse();
    }
    Ok(Page { data, has_more })
}

fn scope_args(scope: &Scope) -> Vec<Sql> {
    vec![
        Sql::Text(scope.platform.clone()),
        Sql::Integer(scope.livemode as i64),
        scope.account.clone().map_or(Sql::Null, Sql::Text),
    ]
}

const OBJECT_COLUMNS: &str = "id, kind, version, created, deleted, data";

fn object_row(r: &Row<'_>) -> rusqlite::Result<StoredObject> {
    let data: String = r.get(5)?;
    Ok(StoredObject {
        id: r.get(0)?,
        kind: r.get(1)?,
        version: r.get(2)?,
        created: r.get(3)?,
        deleted: r.get(4)?,
        data: serde_json::from_str(&data)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
    })
}

pub(super) fn object(
    c: &Connection,
    scope: &Scope,
    kind: &str,
    id: &str,
) -> Result<Option<StoredObject>> {
    let sql = format!(
        "SELECT {OBJECT_COLUMNS} FROM objects WHERE platform = ?1 AND livemode = ?2 AND account IS ?3 AND kind = ?4 AND id = ?5"
    );
    let mut a = scope_args(scope);
    a.push(Sql::Text(kind.into()));
    a.push(Sql::Text(id.into()));
    query_one(c, &sql, &a, object_row)
}

/// At most one row of a cached statement.
fn query_one<T>(
    c: &Connection,
    sql: &str,
    args: &[Sql],
    map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>> {
    c.prepare_cached(sql)
        .and_then(|mut s| s.query_row(params_from_iter(args.iter()), map).optional())
        .map_err(backend)
}

pub(super) fn objects(
    c: &Connection,
    scope: &Scope,
    kind: &str,
    page: &PageRequest,
) -> Result<Page<StoredObject>> {
    let mut a = scope_args(scope);
    a.push(Sql::Text(kind.into()));
    let mut cond = String::from(
        "platform = ?1 AND livemode = ?2 AND account IS ?3 AND kind = ?4 AND deleted = 0",
    );
    for (path, value) in &page.filters {
        a.push(Sql::Text(format!("$.{}", path.0)));
        a.push(match value {
            serde_json::Value::Bool(b) => Sql::Integer(*b as i64),
            serde_json::Value::Number(n) => Sql::Integer(n.as_i64().unwrap_or_default()),
            other => Sql::Text(other.as_str().unwrap_or_default().to_owned()),
        });
        cond.push_str(&format!(
            " AND json_extract(data, ?{}) = ?{}",
            a.len() - 1,
            a.len()
        ));
    }
    paginate(c, "objects", OBJECT_COLUMNS, &cond, a, page, object_row)
}

const ENDPOINT_COLUMNS: &str = "id, platform, livemode, version, created, url, connect, enabled, enabled_events, \
     api_version, description, metadata, secrets, deleted, failing_since, kind, chaos, destination";

fn endpoint_row(r: &Row<'_>, sealed: &SecretBox) -> rusqlite::Result<EndpointRecord> {
    fn json<T: serde::de::DeserializeOwned + Default>(s: String) -> T {
        serde_json::from_str(&s).unwrap_or_default()
    }
    let secrets: String = r.get(12)?;
    Ok(EndpointRecord {
        id: r.get(0)?,
        platform: r.get(1)?,
        livemode: r.get(2)?,
        version: r.get(3)?,
        created: r.get(4)?,
        url: r.get(5)?,
        connect: r.get(6)?,
        enabled: r.get(7)?,
        enabled_events: json(r.get(8)?),
        api_version: r.get(9)?,
        description: r.get(10)?,
        metadata: json(r.get(11)?),
        secrets: crate::engine::parse_secrets(&secrets, sealed).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(12, rusqlite::types::Type::Text, Box::new(e))
        })?,
        deleted: r.get(13)?,
        failing_since: r.get(14)?,
        listener: r.get::<_, String>(15)? == "listener",
        chaos: r.get(16)?,
        destination: r
            .get::<_, Option<String>>(17)?
            .and_then(|d| serde_json::from_str(&d).ok()),
    })
}

pub(super) fn endpoint(
    c: &Connection,
    platform: &str,
    livemode: bool,
    id: &str,
    sealed: &SecretBox,
) -> Result<Option<EndpointRecord>> {
    let sql = format!(
        "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE platform = ?1 AND livemode = ?2 AND id = ?3 AND deleted = 0"
    );
    c.prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_row(params![platform, livemode, id], |r| endpoint_row(r, sealed))
                .optional()
        })
        .map_err(backend)
}

pub(super) fn endpoints(
    c: &Connection,
    platform: &str,
    livemode: bool,
    kind: EndpointKind,
    page: &PageRequest,
    sealed: &SecretBox,
) -> Result<Page<EndpointRecord>> {
    paginate(
        c,
        "endpoints",
        ENDPOINT_COLUMNS,
        "platform = ?1 AND livemode = ?2 AND deleted = 0 AND kind = ?3",
        vec![
            Sql::Text(platform.into()),
            Sql::Integer(livemode as i64),
            Sql::Text(kind.as_str().into()),
        ],
        page,
        |r| endpoint_row(r, sealed),
    )
}

pub(super) fn listeners(
    c: &Connection,
    platform: &str,
    livemode: bool,
    sealed: &SecretBox,
) -> Result<Vec<EndpointRecord>> {
    let sql = format!(
        "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE platform = ?1 AND livemode = ?2 AND kind = 'listener' AND deleted = 0 ORDER BY seq"
    );
    let mut stmt = c.prepare_cached(&sql).map_err(backend)?;
    stmt.query_map(params![platform, livemode], |r| endpoint_row(r, sealed))
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)
}

const EVENT_COLUMNS: &str = "id, livemode, account, type, created, pending_webhooks, payload";

fn event_row(r: &Row<'_>) -> rusqlite::Result<EventRecord> {
    let payload: Vec<u8> = r.get(6)?;
    Ok(EventRecord {
        id: r.get(0)?,
        livemode: r.get(1)?,
        account: r.get(2)?,
        event_type: r.get(3)?,
        created: r.get(4)?,
        pending_webhooks: r.get(5)?,
        payload: payload.into(),
    })
}

pub(super) fn event(c: &Connection, scope: &Scope, id: &str) -> Result<Option<EventRecord>> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE platform = ?1 AND livemode = ?2 AND account IS ?3 AND id = ?4"
    );
    let mut a = scope_args(scope);
    a.push(Sql::Text(id.into()));
    query_one(c, &sql, &a, event_row)
}

pub(super) fn events(
    c: &Connection,
    scope: &Scope,
    f: &EventFilter,
    page: &PageRequest,
) -> Result<Page<EventRecord>> {
    let mut a = scope_args(scope);
    let mut cond = String::from("platform = ?1 AND livemode = ?2 AND account IS ?3");
    use crate::engine::EventCond;
    for c in crate::engine::event_conditions(f) {
        let (sql, v) = match c {
            EventCond::TypeLike(p) => (" AND type LIKE ? ESCAPE '\\'", Sql::Text(p)),
            EventCond::Type(t) => (" AND type = ?", Sql::Text(t.to_owned())),
            EventCond::TypeIn(ts) => (
                " AND type IN (SELECT value FROM json_each(?))",
                Sql::Text(serde_json::to_string(ts).expect("strings serialize")),
            ),
            EventCond::Created(op, v) => {
                a.push(Sql::Integer(v));
                cond.push_str(&format!(" AND created {op} ?{}", a.len()));
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
            // As text: SQLite reads a BLOB given to json_extract as JSONB.
            EventCond::ObjectId(id) => (
                " AND coalesce(json_extract(CAST(payload AS TEXT), '$.data.object.id'), \
                 json_extract(CAST(payload AS TEXT), '$.related_object.id')) = ?",
                Sql::Text(id.to_owned()),
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
        cond.push_str(&sql.replace('?', &format!("?{}", a.len())));
    }
    paginate(c, "events", EVENT_COLUMNS, &cond, a, page, event_row)
}

pub(super) fn attempts(
    c: &Connection,
    platform: &str,
    f: &AttemptFilter,
    page: &PageRequest,
) -> Result<Page<AttemptRecord>> {
    let (cond, id) = match f {
        AttemptFilter::Event(id) => ("platform = ?1 AND event_id = ?2", id),
        AttemptFilter::Endpoint(id) => ("platform = ?1 AND endpoint_id = ?2", id),
    };
    // Attempts are listed by their own numeric id; cursors are those ids as strings.
    let parse = |s: &str| {
        s.strip_prefix("att_")
            .and_then(|n| n.parse::<i64>().ok())
            .ok_or_else(|| StoreError::CursorNotFound(s.into()))
    };
    let order = Order {
        table: "attempts",
        columns: "id, event_id, endpoint_id, attempt, started_at_ms, duration_ms, status_code, error, \
                  response_body, succeeded, next_action, next_at_ms, chaos",
        column: "id",
    };
    let args = vec![Sql::Text(platform.into()), Sql::Text(id.clone())];
    paginate_by(c, &order, cond, args, page, parse, |r| {
        Ok(AttemptRecord {
            id: r.get(0)?,
            event_id: r.get(1)?,
            endpoint_id: r.get(2)?,
            attempt: r.get(3)?,
            started_at_ms: r.get(4)?,
            duration_ms: r.get(5)?,
            status_code: r.get(6)?,
            error: r
                .get::<_, Option<String>>(7)?
                .map(|e| spelled(7, &e, AttemptError::parse))
                .transpose()?,
            response_body: r.get(8)?,
            succeeded: r.get(9)?,
            next_action: spelled(10, &r.get::<_, String>(10)?, NextAction::parse)?,
            next_at_ms: r.get(11)?,
            chaos: r
                .get::<_, Option<String>>(12)?
                .map(|c| c.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
        })
    })
}

pub(super) fn idempotent_response(
    c: &Connection,
    scope: &Scope,
    key: &str,
    now: i64,
) -> Result<Option<StoredResponse>> {
    c.prepare_cached(
        "SELECT fingerprint, status, body FROM idempotency
         WHERE platform = ?1 AND livemode = ?2 AND account = ?3 AND key = ?4 AND created > ?5 AND status > 0",
    )
    .and_then(|mut s| {
        let expired = now - switchboard_core::IDEMPOTENCY_TTL_SECS;
        s.query_row(
            params![
                scope.platform,
                scope.livemode,
                scope.account.as_deref().unwrap_or(""),
                key,
                expired
            ],
            |r| {
                let body: Vec<u8> = r.get(2)?;
                Ok(StoredResponse {
                    fingerprint: r.get(0)?,
                    status: r.get(1)?,
                    body: body.into(),
                })
            },
        )
        .optional()
    })
    .map_err(backend)
}

pub(super) fn delivery_stats(c: &Connection) -> Result<DeliveryStats> {
    let mut stats = DeliveryStats::default();
    let mut stmt = c
        .prepare_cached("SELECT state, count(*) FROM deliveries GROUP BY state")
        .map_err(backend)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
        .map_err(backend)?;
    for row in rows {
        let (state, n) = row.map_err(backend)?;
        match state {
            0 => stats.pending = n,
            1 => stats.succeeded = n,
            2 => stats.failed = n,
            _ => stats.cancelled += n,
        }
    }
    stats.attempts = c
        .query_row("SELECT count(*) FROM attempts", [], |r| r.get(0))
        .map_err(backend)?;
    Ok(stats)
}

/// A column holding one of a typed enum's spellings.
fn spelled<T>(column: usize, text: &str, parse: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    parse(text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            format!("unknown value {text:?}").into(),
        )
    })
}
