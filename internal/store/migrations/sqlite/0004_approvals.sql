-- Human approval: the call a task waits on, and the decisions taken.
ALTER TABLE tasks ADD COLUMN approval TEXT NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN decisions TEXT NOT NULL DEFAULT '{}';
