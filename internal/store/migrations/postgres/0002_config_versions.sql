-- Every applied configuration version, secrets redacted.
CREATE TABLE config_versions (
    version    BIGINT PRIMARY KEY,
    hash       TEXT NOT NULL,
    source     TEXT NOT NULL,
    trigger    TEXT NOT NULL,
    actor      TEXT NOT NULL DEFAULT '',
    format     TEXT NOT NULL,
    content    TEXT NOT NULL,
    plan       TEXT NOT NULL DEFAULT '{}',
    applied_at TEXT NOT NULL
);
