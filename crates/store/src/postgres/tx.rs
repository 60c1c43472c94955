//! The engine's primitives on a PostgreSQL transaction.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use deadpool_postgres::Transaction;
use switchboard_core::attempt::{AttemptError, NextAction};
use switchboard_core::delivery::{DeliveryState, Move};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::{RoutesCache, is_deadlock, pg};
use crate::engine::{self, Due, EventRow, Moved, RouteEntry, Target, Tx};
use crate::*;

pub(super) struct PgTx<'a> {
    t: &'a Transaction<'a>,
    routes: &'a RoutesCache,
    sealed: &'a crate::secrets::SecretBox,
    pub new_work: bool,
    /// PostgreSQL aborted the transaction to break a deadlock: run it again.
    pub deadlocked: bool,
    /// Routing tables already checked in this transaction: a group commit's
    /// changes read a platform's `routes_version` once, not once each.
    checked: HashMap<String, Arc<Vec<RouteEntry>>>,
    /// Deliveries this transaction hands to the local dispatcher once it commits.
    pub handing: Option<crate::handoff::Handing>,
}

fn account(scope: &Scope) -> &str {
    scope.account.as_deref().unwrap_or("")
}

impl<'a> PgTx<'a> {
    pub fn new(
        t: &'a Transaction<'a>,
        routes: &'a RoutesCache,
        sealed: &'a crate::secrets::SecretBox,
        handing: Option<crate::handoff::Handing>,
    ) -> Self {
        PgTx {
            t,
            routes,
            sealed,
            new_work: false,
            deadlocked: false,
            checked: HashMap::new(),
            handing,
        }
    }

    fn fail(&mut self, e: tokio_postgres::Error) -> StoreError {
        self.deadlocked |= is_deadlock(&e);
        pg(e)
    }

    /// The transaction's cached statement for `sql`.
    async fn prepare(&mut self, sql: &str) -> Result<tokio_postgres::Statement> {
        match self.t.prepare_cached(sql).await {
            Ok(s) => Ok(s),
            Err(e) => Err(self.fail(e)),
        }
    }

    async fn exec(&mut self, sql: &str, p: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let stmt = self.prepare(sql).await?;
        match self.t.execute(&stmt, p).await {
            Ok(n) => Ok(n),
            Err(e) => Err(self.fail(e)),
        }
    }

    async fn rows(
        &mut self,
        sql: &str,
        p: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>> {
        let stmt = self.prepare(sql).await?;
        match self.t.query(&stmt, p).await {
            Ok(r) => Ok(r),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Every node's cached routes of `platform` are stale from this commit on
    /// (this transaction's own check of them too).
    async fn bump_routes(&mut self, platform: &str) -> Result<()> {
        self.checked.remove(platform);
        self.exec(
            "UPDATE platforms SET routes_version = routes_version + 1 WHERE id = $1",
            &[&platform],
        )
        .await
        .map(drop)
    }

    /// A write of one row, or a lost optimistic race (version or unique id).
    async fn one_row(&mut self, sql: &str, p: &[&(dyn ToSql + Sync)]) -> Result<()> {
        let stmt = self.prepare(sql).await?;
        match self.t.execute(&stmt, p).await {
            Ok(1) => Ok(()),
            Ok(_) => Err(StoreError::Conflict),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(StoreError::Conflict),
            Err(e) => Err(self.fail(e)),
        }
    }
}

fn get<'r, T: tokio_postgres::types::FromSql<'r>>(
    r: &'r tokio_postgres::Row,
    i: usize,
) -> Result<T> {
    r.try_get(i).map_err(StoreError::backend)
}

impl Tx for PgTx<'_> {
    async fn put_idempotency(&mut self, idem: &IdempotencyRecord, expired: i64) -> Result<bool> {
        let scope = &idem.scope;
        let status = i32::from(idem.response.status);
        // A concurrent request with the same key waits here for the other's
        // transaction, then sees its record (and replays it) or, if that one
        // rolled back, takes the key.
        let n = self
            .exec(
                "INSERT INTO idempotency (platform, livemode, account, key, fingerprint, status, body, created)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (platform, livemode, account, key) DO UPDATE SET fingerprint = excluded.fingerprint,
                     status = excluded.status, body = excluded.body, created = excluded.created
                 WHERE idempotency.created <= $9 OR idempotency.status = 0",
                &[
                    &scope.platform,
                    &scope.livemode,
                    &account(scope),
                    &idem.key,
                    &idem.response.fingerprint,
                    &status,
                    &idem.response.body.as_ref(),
                    &idem.created,
                    &expired,
                ],
            )
            .await?;
        Ok(n > 0)
    }

    async fn reserve_idempotency(&mut self, r: &engine::Reserve<'_>) -> Result<bool> {
        // status 0: in flight, no answer yet. A node reserving the same key
        // at once waits here for this transaction, then finds the key taken.
        let n = self
            .exec(
                "INSERT INTO idempotency (platform, livemode, account, key, fingerprint, status, body, created)
                 VALUES ($1, $2, $3, $4, $5, 0, ''::bytea, $6)
                 ON CONFLICT (platform, livemode, account, key) DO UPDATE SET fingerprint = excluded.fingerprint,
                     status = 0, body = ''::bytea, created = excluded.created
                 WHERE idempotency.created <= $7 OR (idempotency.status = 0 AND idempotency.created <= $8)",
                &[
                    &r.scope.platform,
                    &r.scope.livemode,
                    &account(r.scope),
                    &r.key,
                    &r.fingerprint,
                    &r.now,
                    &r.expired,
                    &r.stale,
                ],
            )
            .await?;
        Ok(n > 0)
    }

    async fn abandon_idempotency(&mut self, scope: &Scope, key: &str) -> Result<()> {
        self.exec(
            "DELETE FROM idempotency WHERE platform = $1 AND livemode = $2 AND account = $3 AND key = $4 AND status = 0",
            &[&scope.platform, &scope.livemode, &account(scope), &key],
        )
        .await
        .map(drop)
    }

    async fn purge_idempotency(&mut self, expired: i64) -> Result<()> {
        self.exec(
            "DELETE FROM idempotency WHERE ctid = ANY(ARRAY(
                 SELECT ctid FROM idempotency WHERE created <= $1 LIMIT 16 FOR UPDATE SKIP LOCKED))",
            &[&expired],
        )
        .await
        .map(drop)
    }

    async fn idempotent_response(
        &mut self,
        scope: &Scope,
        key: &str,
        now: i64,
    ) -> Result<Option<StoredResponse>> {
        super::read::idempotent_response(self.t, scope, key, now).await
    }

    async fn write_timer(&mut self, t: &Timer) -> Result<()> {
        match t.due_ms {
            Some(due) => {
                self.exec(
                    "INSERT INTO timers (object_id, platform, livemode, account, kind, due_ms) VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (object_id) DO UPDATE SET due_ms = excluded.due_ms",
                    &[&t.object_id, &t.scope.platform, &t.scope.livemode, &account(&t.scope), &t.kind, &due],
                )
                .await
            }
            None => {
                self.exec("DELETE FROM timers WHERE object_id = $1", &[&t.object_id])
                    .await
            }
        }
        .map(drop)
    }

    async fn add_clock_offset(&mut self, platform: &str, by_ms: i64) -> Result<i64> {
        let rows = self
            .rows(
                "INSERT INTO test_clocks (platform, offset_ms) VALUES ($1, $2)
                 ON CONFLICT (platform) DO UPDATE SET offset_ms = test_clocks.offset_ms + excluded.offset_ms
                 RETURNING offset_ms",
                &[&platform, &by_ms],
            )
            .await?;
        rows.first()
            .ok_or_else(|| StoreError::backend("no test clock row"))?
            .try_get(0)
            .map_err(pg)
    }

    async fn bring_forward(&mut self, platform: &str, by_ms: i64) -> Result<()> {
        self.exec(
            "UPDATE timers SET due_ms = due_ms - $2 WHERE platform = $1 AND NOT livemode",
            &[&platform, &by_ms],
        )
        .await?;
        let moved = self
            .exec(
                "UPDATE deliveries SET next_at_ms = next_at_ms - $2 WHERE state = 0 AND NOT leased
                 AND endpoint_seq IN (SELECT seq FROM endpoints WHERE platform = $1 AND NOT livemode)",
                &[&platform, &by_ms],
            )
            .await?;
        self.new_work |= moved > 0;
        Ok(())
    }

    async fn write_object(&mut self, o: &ObjectWrite) -> Result<()> {
        let obj = &o.object;
        let data = tokio_postgres::types::Json(&obj.data);
        match o.expected_version {
            None => {
                self.one_row(
                    "INSERT INTO objects (id, platform, livemode, account, kind, created, version, deleted, data)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    &[
                        &obj.id,
                        &o.scope.platform,
                        &o.scope.livemode,
                        &account(&o.scope),
                        &obj.kind,
                        &obj.created,
                        &obj.version,
                        &obj.deleted,
                        &data,
                    ],
                )
                .await
            }
            Some(v) => {
                self.one_row(
                    "UPDATE objects SET version = $2, deleted = $3, data = $4 WHERE id = $1 AND version = $5",
                    &[&obj.id, &obj.version, &obj.deleted, &data, &v],
                )
                .await
            }
        }
    }

    async fn write_endpoint(&mut self, e: &EndpointRecord, expected: Option<i64>) -> Result<()> {
        let events = serde_json::to_string(&e.enabled_events).map_err(StoreError::backend)?;
        let metadata = serde_json::to_string(&e.metadata).map_err(StoreError::backend)?;
        let secrets = engine::secrets_json(&e.secrets, self.sealed);
        let destination = match &e.destination {
            Some(d) => Some(serde_json::to_string(d).map_err(StoreError::backend)?),
            None => None,
        };
        match expected {
            None => {
                let kind = e.kind();
                self.one_row(
                    "INSERT INTO endpoints (id, platform, livemode, version, created, url, connect, enabled, enabled_events,
                         api_version, description, metadata, secrets, deleted, failing_since, kind, chaos, destination)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
                    &[
                        &e.id, &e.platform, &e.livemode, &e.version, &e.created, &e.url, &e.connect, &e.enabled,
                        &events, &e.api_version, &e.description, &metadata, &secrets, &e.deleted,
                        &e.failing_since, &kind, &e.chaos, &destination,
                    ],
                )
                .await?
            }
            // Re-enabling an endpoint forgets its failure streak.
            Some(v) => {
                self.one_row(
                    "UPDATE endpoints SET version = $2, url = $3, enabled = $4, enabled_events = $5, description = $6,
                         metadata = $7, secrets = $8, deleted = $9, chaos = $11, destination = $12,
                         failing_since = CASE WHEN NOT enabled AND $4 THEN NULL ELSE failing_since END
                     WHERE id = $1 AND version = $10",
                    &[
                        &e.id, &e.version, &e.url, &e.enabled, &events, &e.description, &metadata, &secrets,
                        &e.deleted, &v, &e.chaos, &destination,
                    ],
                )
                .await?
            }
        }
        self.bump_routes(&e.platform).await
    }

    async fn queue_resend(
        &mut self,
        event_id: &str,
        endpoint_id: &str,
        due_ms: i64,
    ) -> Result<bool> {
        let n = self
            .exec(
                "INSERT INTO deliveries (event_seq, endpoint_seq, next_at_ms, one_shot)
                 SELECT e.seq, w.seq, $3, true FROM events e, endpoints w WHERE e.id = $1 AND w.id = $2",
                &[&event_id, &endpoint_id, &due_ms],
            )
            .await?;
        self.new_work |= n > 0;
        Ok(n > 0)
    }

    async fn routes(&mut self, platform: &str) -> Result<Arc<Vec<RouteEntry>>> {
        if let Some(t) = self.checked.get(platform) {
            return Ok(t.clone());
        }
        let version: i64 = match self
            .rows(
                "SELECT routes_version FROM platforms WHERE id = $1",
                &[&platform],
            )
            .await?
            .first()
        {
            Some(r) => get(r, 0)?,
            None => 0,
        };
        if let Some(t) = self.routes.get(platform, version) {
            self.checked.insert(platform.to_owned(), t.clone());
            return Ok(t);
        }
        let rows = self
            .rows(
                "SELECT seq, livemode, connect, enabled, enabled_events, kind, id, url, secrets, chaos, destination
                 FROM endpoints WHERE platform = $1 AND NOT deleted",
                &[&platform],
            )
            .await?;
        let mut table = Vec::with_capacity(rows.len());
        for r in &rows {
            let events: String = get(r, 4)?;
            let (audience, thin) = RouteEntry::audience(get(r, 5)?, get(r, 2)?, get(r, 10)?);
            table.push(RouteEntry {
                seq: get(r, 0)?,
                livemode: get(r, 1)?,
                audience,
                enabled: get(r, 3)?,
                enabled_events: serde_json::from_str(&events).unwrap_or_default(),
                id: get(r, 6)?,
                url: get(r, 7)?,
                secrets: engine::parse_secrets(get(r, 8)?, self.sealed).ok(),
                chaos: get(r, 9)?,
                thin,
            });
        }
        let table = Arc::new(table);
        // Read after the version: a write committed in between only makes
        // this table newer than its version says, and the next read reloads.
        self.routes.put(platform, version, table.clone());
        self.checked.insert(platform.to_owned(), table.clone());
        Ok(table)
    }

    async fn insert_event(&mut self, row: EventRow<'_>) -> Result<i64> {
        let stmt = "INSERT INTO events (id, platform, livemode, account, type, created, pending_webhooks, payload, thin_payload)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING seq";
        let rows = self
            .rows(
                stmt,
                &[
                    &row.id,
                    &row.platform,
                    &row.livemode,
                    &row.account.unwrap_or(""),
                    &row.event_type,
                    &row.created,
                    &row.pending_webhooks,
                    &row.payload.as_ref(),
                    &row.thin_payload.as_deref(),
                ],
            )
            .await?;
        let r = rows
            .first()
            .ok_or_else(|| StoreError::backend("INSERT returned no seq"))?;
        get(r, 0)
    }

    async fn insert_deliveries(
        &mut self,
        event_seq: i64,
        endpoints: &[i64],
        due_ms: i64,
    ) -> Result<()> {
        // One statement for all of an event's deliveries.
        self.exec(
            "INSERT INTO deliveries (event_seq, endpoint_seq, next_at_ms) SELECT $1, unnest($2::bigint[]), $3",
            &[&event_seq, &endpoints, &due_ms],
        )
        .await?;
        self.new_work = true;
        Ok(())
    }

    async fn insert_leased(&mut self, event_seq: i64, endpoint: i64, until_ms: i64) -> Result<i64> {
        let rows = self
            .rows(
                "INSERT INTO deliveries (event_seq, endpoint_seq, next_at_ms, attempts, leased)
                 VALUES ($1, $2, $3, 1, true) RETURNING id",
                &[&event_seq, &endpoint, &until_ms],
            )
            .await?;
        match rows.first() {
            Some(r) => get(r, 0),
            None => Err(StoreError::backend("INSERT … RETURNING returned no row")),
        }
    }

    fn handing(&mut self) -> Option<&mut crate::handoff::Handing> {
        self.handing.as_mut()
    }

    async fn due(&mut self, req: &ClaimRequest, scan: usize) -> Result<Vec<Due>> {
        let full: Vec<&str> = req
            .endpoint_room
            .iter()
            .filter(|(_, room)| **room == 0)
            .map(|(e, _)| e.as_str())
            .collect();
        // SKIP LOCKED: nodes claiming at once take different rows, and none
        // waits for another; the row locks end with this short transaction.
        let rows = self
            .rows(
                "SELECT d.id, d.attempts, d.one_shot, e.id,
                        CASE WHEN (w.destination::jsonb ->> 'event_payload') = 'thin'
                             THEN coalesce(e.thin_payload, e.payload) ELSE e.payload END,
                        w.id, w.url, w.secrets, w.enabled, w.deleted,
                        d.event_seq, w.livemode, CASE WHEN w.kind = 'listener' THEN w.platform END, w.chaos
                 FROM deliveries d
                 JOIN events e ON e.seq = d.event_seq
                 JOIN endpoints w ON w.seq = d.endpoint_seq
                 WHERE d.state = 0 AND d.next_at_ms <= $1 AND NOT (w.id = ANY($3))
                 ORDER BY d.next_at_ms LIMIT $2
                 FOR UPDATE OF d SKIP LOCKED",
                &[&req.now_ms, &(scan as i64), &full],
            )
            .await?;
        let now = req.now_ms / 1000;
        let mut out = Vec::with_capacity(rows.len());
        let mut memo = engine::SecretsMemo::new(now, self.sealed);
        for r in &rows {
            let target = match (get::<bool>(r, 8)?, get::<bool>(r, 9)?) {
                (_, true) => Target::Deleted,
                (false, false) => Target::Disabled,
                (true, false) => Target::Live,
            };
            let payload: &[u8] = get(r, 4)?;
            let secrets: &str = get(r, 7)?;
            out.push(Due {
                delivery: ClaimedDelivery {
                    delivery_id: get(r, 0)?,
                    attempt: get::<i32>(r, 1)? as u32 + 1,
                    one_shot: get(r, 2)?,
                    event_id: get(r, 3)?,
                    payload: Bytes::copy_from_slice(payload),
                    endpoint_id: get(r, 5)?,
                    url: get(r, 6)?,
                    livemode: get(r, 11)?,
                    secrets: memo.active(secrets)?,
                    chaos: get(r, 13)?,
                },
                target,
                event_seq: get(r, 10)?,
                listener: get(r, 12)?,
            });
        }
        Ok(out)
    }

    async fn lease(&mut self, deliveries: &[i64], until_ms: i64) -> Result<()> {
        self.exec(
            "UPDATE deliveries SET attempts = attempts + 1, next_at_ms = $2, leased = true WHERE id = ANY($1)",
            &[&deliveries, &until_ms],
        )
        .await
        .map(drop)
    }

    async fn cancel(&mut self, delivery: i64) -> Result<()> {
        self.exec(
            "UPDATE deliveries SET state = $2 WHERE id = $1",
            &[&delivery, &DeliveryState::Cancelled.code()],
        )
        .await
        .map(drop)
    }

    async fn settle_pending(&mut self, event_seq: i64) -> Result<()> {
        self.exec(
            "UPDATE events SET pending_webhooks = pending_webhooks - 1 WHERE seq = $1 AND pending_webhooks > 0",
            &[&event_seq],
        )
        .await
        .map(drop)
    }

    async fn insert_attempt(
        &mut self,
        delivery: i64,
        a: &AttemptRecord,
        action: NextAction,
        next_at_ms: Option<i64>,
    ) -> Result<()> {
        let chaos = (!a.chaos.is_empty()).then(|| a.chaos.join(","));
        let attempt = a.attempt as i32;
        let status = a.status_code.map(i32::from);
        self.exec(
            "INSERT INTO attempts (platform, delivery_id, event_id, endpoint_id, attempt, started_at_ms, duration_ms,
                 status_code, error, response_body, succeeded, next_action, next_at_ms, chaos)
             SELECT w.platform, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 FROM endpoints w WHERE w.id = $3",
            &[
                &delivery,
                &a.event_id,
                &a.endpoint_id,
                &attempt,
                &a.started_at_ms,
                &a.duration_ms,
                &status,
                &a.error.map(AttemptError::as_str),
                &a.response_body,
                &a.succeeded,
                &action.as_str(),
                &next_at_ms,
                &chaos,
            ],
        )
        .await
        .map(drop)
    }

    async fn move_delivery(
        &mut self,
        delivery: i64,
        attempt: u32,
        to: Move,
    ) -> Result<Option<Moved>> {
        let next_at = match to {
            Move::Retry(t) => Some(t),
            Move::Succeed | Move::Fail => None,
        };
        let rows = self
            .rows(
                "UPDATE deliveries SET state = $3, leased = false, next_at_ms = coalesce($4, next_at_ms)
                 WHERE id = $1 AND state = 0 AND attempts = $2 RETURNING event_seq, endpoint_seq, one_shot",
                &[&delivery, &(attempt as i32), &to.state().code(), &next_at],
            )
            .await?;
        self.new_work |= !rows.is_empty() && matches!(to, Move::Retry(_));
        rows.first()
            .map(|r| {
                Ok(Moved {
                    event_seq: get(r, 0)?,
                    endpoint_seq: get(r, 1)?,
                    one_shot: get(r, 2)?,
                })
            })
            .transpose()
    }

    async fn end_streak(&mut self, endpoint_seq: i64) -> Result<()> {
        self.exec(
            "UPDATE endpoints SET failing_since = NULL WHERE seq = $1 AND failing_since IS NOT NULL",
            &[&endpoint_seq],
        )
        .await
        .map(drop)
    }

    async fn continue_streak(&mut self, endpoint_seq: i64, now_ms: i64) -> Result<()> {
        self.exec(
            "UPDATE endpoints SET failing_since = $2 WHERE seq = $1 AND failing_since IS NULL",
            &[&endpoint_seq, &now_ms],
        )
        .await
        .map(drop)
    }

    async fn disable_failing(&mut self, endpoint_seq: i64, cutoff_ms: i64) -> Result<bool> {
        let rows = self
            .rows(
                "UPDATE endpoints SET enabled = false, version = version + 1
                 WHERE seq = $1 AND enabled AND failing_since IS NOT NULL AND failing_since <= $2
                 RETURNING platform",
                &[&endpoint_seq, &cutoff_ms],
            )
            .await?;
        let Some(r) = rows.first() else {
            return Ok(false);
        };
        let platform: String = get(r, 0)?;
        self.bump_routes(&platform).await?;
        Ok(true)
    }

    async fn put_presence(
        &mut self,
        endpoint_id: &str,
        node: &str,
        until_ms: Option<i64>,
    ) -> Result<()> {
        match until_ms {
            Some(until) => {
                self.exec(
                    "INSERT INTO listener_presence (endpoint_id, node, until_ms) VALUES ($1, $2, $3)
                     ON CONFLICT (endpoint_id, node) DO UPDATE SET until_ms = excluded.until_ms",
                    &[&endpoint_id, &node, &until],
                )
                .await
            }
            None => {
                self.exec(
                    "DELETE FROM listener_presence WHERE endpoint_id = $1 AND node = $2",
                    &[&endpoint_id, &node],
                )
                .await
            }
        }
        .map(drop)
    }

    async fn holders(&mut self, endpoint_id: &str, now_ms: i64) -> Result<Vec<String>> {
        let rows = self
            .rows(
                "SELECT node FROM listener_presence WHERE endpoint_id = $1 AND until_ms > $2",
                &[&endpoint_id, &now_ms],
            )
            .await?;
        rows.iter().map(|r| get(r, 0)).collect()
    }

    async fn set_listener_enabled(
        &mut self,
        platform: &str,
        endpoint_id: &str,
        enabled: bool,
    ) -> Result<()> {
        let n = self
            .exec(
                "UPDATE endpoints SET enabled = $2, version = version + 1 WHERE id = $1 AND kind = 'listener' AND enabled <> $2",
                &[&endpoint_id, &enabled],
            )
            .await?;
        if n > 0 {
            self.bump_routes(platform).await?;
        }
        Ok(())
    }
}
