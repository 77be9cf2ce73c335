-- Durable agent work. Times are Unix milliseconds, so they compare as numbers.
CREATE TABLE tasks (
    id               TEXT PRIMARY KEY,
    agent            TEXT NOT NULL,
    session_id       TEXT NOT NULL,
    input            TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    run_at           INTEGER NOT NULL,
    lease_owner      TEXT NOT NULL DEFAULT '',
    heartbeat_at     INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    dead             INTEGER NOT NULL DEFAULT 0,
    result           TEXT NOT NULL DEFAULT '',
    error            TEXT NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    finished_at      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tasks_ready ON tasks (state, run_at);
CREATE INDEX tasks_created ON tasks (created_at, id);

-- A task's checkpoints: every message of its turn, saved as it happens.
CREATE TABLE task_steps (
    task_id    TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    attempt    INTEGER NOT NULL,
    message    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (task_id, seq)
);
