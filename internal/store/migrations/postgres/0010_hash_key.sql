-- Secrets this database's instances share. config_hash keys the hashes of
-- configuration documents shown to API callers (see Store.PublicHash), so
-- a caller who can read a redacted document cannot test guesses of its
-- secrets against the hash of the real one.
CREATE TABLE hector_keys (
	name TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
