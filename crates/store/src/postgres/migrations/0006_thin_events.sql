-- The thin (API v2) rendering of an event, when a thin destination receives it.
ALTER TABLE events ADD COLUMN thin_payload BYTEA;
