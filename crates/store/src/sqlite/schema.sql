-- Switchboard's SQLite schema. Timestamps named *_ms are unix milliseconds,
-- others unix seconds. `seq` columns give list order and pagination cursors.

CREATE TABLE IF NOT EXISTS platforms (
    id          TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL,
    test_key    TEXT NOT NULL UNIQUE,
    live_key    TEXT NOT NULL UNIQUE,
    created     INTEGER NOT NULL,
    is_default  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS objects (
    seq       INTEGER PRIMARY KEY,
    id        TEXT NOT NULL UNIQUE,
    platform  TEXT NOT NULL,
    livemode  INTEGER NOT NULL,
    account   TEXT,
    kind      TEXT NOT NULL,
    created   INTEGER NOT NULL,
    version   INTEGER NOT NULL,
    deleted   INTEGER NOT NULL DEFAULT 0,
    data      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS objects_list ON objects (platform, livemode, account, kind, seq);

CREATE TABLE IF NOT EXISTS endpoints (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    platform        TEXT NOT NULL,
    livemode        INTEGER NOT NULL,
    version         INTEGER NOT NULL,
    created         INTEGER NOT NULL,
    url             TEXT NOT NULL,
    connect         INTEGER NOT NULL,
    enabled         INTEGER NOT NULL,
    enabled_events  TEXT NOT NULL,
    api_version     TEXT,
    description     TEXT,
    metadata        TEXT NOT NULL,
    secrets         TEXT NOT NULL,
    deleted         INTEGER NOT NULL DEFAULT 0,
    failing_since   INTEGER,
    -- 'webhook' (the Stripe API's endpoints), 'listener' (a `stripe listen`
    -- device) or 'destination' (an API v2 event destination)
    kind            TEXT NOT NULL DEFAULT 'webhook',
    -- this endpoint's own chaos mode (`--chaos` syntax), if any
    chaos           TEXT,
    -- a destination's own fields (JSON: `Destination`)
    destination     TEXT
);
CREATE INDEX IF NOT EXISTS endpoints_list ON endpoints (platform, livemode, seq);

CREATE TABLE IF NOT EXISTS events (
    seq               INTEGER PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    platform          TEXT NOT NULL,
    livemode          INTEGER NOT NULL,
    account           TEXT,
    type              TEXT NOT NULL,
    created           INTEGER NOT NULL,
    pending_webhooks  INTEGER NOT NULL,
    -- the thin (API v2) rendering, when a thin destination receives it
    thin_payload      BLOB,
    payload           BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_list ON events (platform, livemode, account, seq);

-- state: 0 pending, 1 succeeded, 2 failed (gave up), 3 cancelled (endpoint gone)
-- A claim moves next_at_ms past the lease and sets leased: an abandoned claim
-- becomes due again when the lease ends, or at once when the store reopens.
CREATE TABLE IF NOT EXISTS deliveries (
    id            INTEGER PRIMARY KEY,
    event_seq     INTEGER NOT NULL,
    endpoint_seq  INTEGER NOT NULL,
    state         INTEGER NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at_ms    INTEGER NOT NULL,
    one_shot      INTEGER NOT NULL DEFAULT 0,
    leased        INTEGER NOT NULL DEFAULT 0
);
-- Claims walk due deliveries oldest first and skip saturated endpoints by
-- seq: with the seq in the index, a skipped row costs no table lookup.
DROP INDEX IF EXISTS deliveries_due;
CREATE INDEX IF NOT EXISTS deliveries_due_by_endpoint ON deliveries (next_at_ms, endpoint_seq) WHERE state = 0;

CREATE TABLE IF NOT EXISTS attempts (
    id             INTEGER PRIMARY KEY,
    platform       TEXT NOT NULL,
    delivery_id    INTEGER NOT NULL,
    event_id       TEXT NOT NULL,
    endpoint_id    TEXT NOT NULL,
    attempt        INTEGER NOT NULL,
    started_at_ms  INTEGER NOT NULL,
    duration_ms    INTEGER NOT NULL,
    status_code    INTEGER,
    error          TEXT,
    response_body  TEXT NOT NULL,
    succeeded      INTEGER NOT NULL,
    next_action    TEXT NOT NULL,
    next_at_ms     INTEGER,
    chaos          TEXT
);
CREATE INDEX IF NOT EXISTS attempts_event ON attempts (event_id, id);
CREATE INDEX IF NOT EXISTS attempts_endpoint ON attempts (endpoint_id, id);

CREATE TABLE IF NOT EXISTS idempotency (
    platform     TEXT NOT NULL,
    livemode     INTEGER NOT NULL,
    account      TEXT NOT NULL,
    key          TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    status       INTEGER NOT NULL,
    body         BLOB NOT NULL,
    created      INTEGER NOT NULL,
    PRIMARY KEY (platform, livemode, account, key)
);
-- Expired keys (older than 24 h) are purged a few at a time.
CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency (created);

-- Which node holds a `stripe listen` device's socket, until when (renewed
-- while connected). A process that opens the file holds none yet.
CREATE TABLE IF NOT EXISTS listener_presence (
    endpoint_id  TEXT NOT NULL,
    node         TEXT NOT NULL,
    until_ms     INTEGER NOT NULL,
    PRIMARY KEY (endpoint_id, node)
);

-- One timer per object that has work to do as time passes (funds becoming
-- available, a payout arriving, an authorization expiring); due_ms is real
-- time. Written in the same transaction as the object.
CREATE TABLE IF NOT EXISTS timers (
    object_id  TEXT PRIMARY KEY,
    platform   TEXT NOT NULL,
    livemode   INTEGER NOT NULL,
    account    TEXT,
    kind       TEXT NOT NULL,
    due_ms     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS timers_due ON timers (due_ms);

-- How far a platform's test-mode clock runs ahead of real time.
CREATE TABLE IF NOT EXISTS test_clocks (
    platform   TEXT PRIMARY KEY,
    offset_ms  INTEGER NOT NULL
);
