-- Switchboard's PostgreSQL schema, version 1. The same tables as SQLite's
-- (crates/store/src/sqlite/schema.sql), in PostgreSQL's types. Timestamps
-- named *_ms are unix milliseconds, others unix seconds; `seq` columns give
-- list order and pagination cursors. `account` is '' for a platform's own
-- rows (not NULL), so that equality uses the list indexes.

CREATE TABLE platforms (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL,
    test_key        TEXT NOT NULL UNIQUE,
    live_key        TEXT NOT NULL UNIQUE,
    created         BIGINT NOT NULL,
    is_default      BOOLEAN NOT NULL DEFAULT false,
    -- Bumped in the same transaction as every endpoint write of the
    -- platform: each node's routes cache is valid while it matches.
    routes_version  BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX platforms_one_default ON platforms (is_default) WHERE is_default;

CREATE TABLE objects (
    seq       BIGSERIAL PRIMARY KEY,
    id        TEXT NOT NULL UNIQUE,
    platform  TEXT NOT NULL,
    livemode  BOOLEAN NOT NULL,
    account   TEXT NOT NULL,
    kind      TEXT NOT NULL,
    created   BIGINT NOT NULL,
    version   BIGINT NOT NULL,
    deleted   BOOLEAN NOT NULL DEFAULT false,
    -- json, not jsonb: it keeps the object's key order.
    data      JSON NOT NULL
);
CREATE INDEX objects_list ON objects (platform, livemode, account, kind, seq);

CREATE TABLE endpoints (
    seq             BIGSERIAL PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    platform        TEXT NOT NULL,
    livemode        BOOLEAN NOT NULL,
    version         BIGINT NOT NULL,
    created         BIGINT NOT NULL,
    url             TEXT NOT NULL,
    connect         BOOLEAN NOT NULL,
    enabled         BOOLEAN NOT NULL,
    enabled_events  TEXT NOT NULL,
    api_version     TEXT,
    description     TEXT,
    metadata        TEXT NOT NULL,
    secrets         TEXT NOT NULL,
    deleted         BOOLEAN NOT NULL DEFAULT false,
    failing_since   BIGINT,
    -- 'webhook' (the Stripe API's endpoints) or 'listener' (a `stripe listen` device)
    kind            TEXT NOT NULL DEFAULT 'webhook'
);
CREATE INDEX endpoints_list ON endpoints (platform, livemode, seq);

CREATE TABLE events (
    seq               BIGSERIAL PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    platform          TEXT NOT NULL,
    livemode          BOOLEAN NOT NULL,
    account           TEXT NOT NULL,
    type              TEXT NOT NULL,
    created           BIGINT NOT NULL,
    pending_webhooks  BIGINT NOT NULL,
    payload           BYTEA NOT NULL
);
CREATE INDEX events_list ON events (platform, livemode, account, seq);

-- state: switchboard_core::delivery::DeliveryState codes (0 pending).
-- A claim moves next_at_ms past the lease: work claimed by a node that dies
-- becomes due again when the lease ends, and another node takes it.
CREATE TABLE deliveries (
    id            BIGSERIAL PRIMARY KEY,
    event_seq     BIGINT NOT NULL,
    endpoint_seq  BIGINT NOT NULL,
    state         SMALLINT NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at_ms    BIGINT NOT NULL,
    one_shot      BOOLEAN NOT NULL DEFAULT false,
    leased        BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX deliveries_due_by_endpoint ON deliveries (next_at_ms, endpoint_seq) WHERE state = 0;

CREATE TABLE attempts (
    id             BIGSERIAL PRIMARY KEY,
    platform       TEXT NOT NULL,
    delivery_id    BIGINT NOT NULL,
    event_id       TEXT NOT NULL,
    endpoint_id    TEXT NOT NULL,
    attempt        INTEGER NOT NULL,
    started_at_ms  BIGINT NOT NULL,
    duration_ms    BIGINT NOT NULL,
    status_code    INTEGER,
    error          TEXT,
    response_body  TEXT NOT NULL,
    succeeded      BOOLEAN NOT NULL,
    next_action    TEXT NOT NULL,
    next_at_ms     BIGINT,
    chaos          TEXT
);
CREATE INDEX attempts_event ON attempts (event_id, id);
CREATE INDEX attempts_endpoint ON attempts (endpoint_id, id);

CREATE TABLE idempotency (
    platform     TEXT NOT NULL,
    livemode     BOOLEAN NOT NULL,
    account      TEXT NOT NULL,
    key          TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    status       INTEGER NOT NULL,
    body         BYTEA NOT NULL,
    created      BIGINT NOT NULL,
    PRIMARY KEY (platform, livemode, account, key)
);
CREATE INDEX idempotency_created ON idempotency (created);
