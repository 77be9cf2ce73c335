-- A2A push notifications: who registered each webhook, so the number of
-- webhooks one caller keeps on unfinished tasks can be limited.
ALTER TABLE task_push_configs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
CREATE INDEX task_push_configs_owner ON task_push_configs (owner);
