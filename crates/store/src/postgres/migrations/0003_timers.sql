-- One timer per object that has work to do as time passes (funds becoming
-- available, a payout arriving, an authorization expiring); due_ms is real
-- time. Written in the same transaction as the object. `account` is '' for
-- a platform's own objects, as in `objects`.
CREATE TABLE timers (
    object_id  TEXT PRIMARY KEY,
    platform   TEXT NOT NULL,
    livemode   BOOLEAN NOT NULL,
    account    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    due_ms     BIGINT NOT NULL
);
CREATE INDEX timers_due ON timers (due_ms);

-- How far a platform's test-mode clock runs ahead of real time.
CREATE TABLE test_clocks (
    platform   TEXT PRIMARY KEY,
    offset_ms  BIGINT NOT NULL
);
