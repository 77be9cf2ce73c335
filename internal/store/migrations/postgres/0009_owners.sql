-- Who each session and task belongs to: the principal (API key name or
-- issuer:subject of a JWT) and its tenant ('' is the main tenant). Rows
-- from before keep '' for both: visible to viewer and stronger roles of
-- the main tenant only.
ALTER TABLE sessions ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN owner TEXT NOT NULL DEFAULT '';
CREATE INDEX tasks_owner ON tasks (tenant, owner, created_at);
