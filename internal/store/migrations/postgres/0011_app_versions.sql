-- Each app (tenant) numbers its configuration versions on its own: the
-- history is keyed by (app, version), '' being the main configuration.
ALTER TABLE config_versions ADD COLUMN app TEXT NOT NULL DEFAULT '';
ALTER TABLE config_versions DROP CONSTRAINT config_versions_pkey;
ALTER TABLE config_versions ADD PRIMARY KEY (app, version);
