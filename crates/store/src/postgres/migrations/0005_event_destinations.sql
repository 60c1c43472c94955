-- An API v2 event destination's own fields (JSON), on endpoints of kind 'destination'.
ALTER TABLE endpoints ADD COLUMN destination TEXT;
