-- Which node holds a `stripe listen` device's socket, until when (renewed
-- while connected): only that node claims the device's deliveries, and a
-- dead node's hold simply runs out.
CREATE TABLE listener_presence (
    endpoint_id  TEXT NOT NULL,
    node         TEXT NOT NULL,
    until_ms     BIGINT NOT NULL,
    PRIMARY KEY (endpoint_id, node)
);
