-- An endpoint's own chaos mode (`--chaos` syntax), in place of the server's.
ALTER TABLE endpoints ADD COLUMN chaos TEXT;
