-- One turn at a time per session, across every instance on the database:
-- a lease row, taken by one statement and held (renewed) for the turn.
-- expires_at is Unix milliseconds; an expired lease (its holder crashed)
-- may be taken over.
CREATE TABLE session_locks (
	session_id TEXT PRIMARY KEY,
	owner TEXT NOT NULL,
	expires_at BIGINT NOT NULL
);
