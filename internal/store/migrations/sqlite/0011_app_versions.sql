-- Each app (tenant) numbers its configuration versions on its own: the
-- history is keyed by (app, version), '' being the main configuration.
-- SQLite cannot change a primary key in place, so the table is rebuilt.
CREATE TABLE config_versions_apps (
    app        TEXT NOT NULL DEFAULT '',
    version    INTEGER NOT NULL,
    hash       TEXT NOT NULL,
    source     TEXT NOT NULL,
    trigger    TEXT NOT NULL,
    actor      TEXT NOT NULL DEFAULT '',
    format     TEXT NOT NULL,
    content    TEXT NOT NULL,
    plan       TEXT NOT NULL DEFAULT '{}',
    applied_at TEXT NOT NULL,
    PRIMARY KEY (app, version)
);
INSERT INTO config_versions_apps (app, version, hash, source, trigger, actor, format, content, plan, applied_at)
    SELECT '', version, hash, source, trigger, actor, format, content, plan, applied_at FROM config_versions;
DROP TABLE config_versions;
ALTER TABLE config_versions_apps RENAME TO config_versions;
