-- A2A: the ID of the message that started a task, and the webhooks told
-- of its progress (push notifications).
ALTER TABLE tasks ADD COLUMN message_id TEXT NOT NULL DEFAULT '';
CREATE INDEX tasks_session ON tasks (session_id, created_at);
CREATE TABLE task_push_configs (
    task_id    TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    config     TEXT NOT NULL,
    -- the last task state announced to this webhook, so one instance
    -- sends each change once
    sent_state TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    PRIMARY KEY (task_id, id)
);
-- Announce every change of a task (not heartbeats) and every checkpoint,
-- so A2A streams and push notifications on any instance follow a task
-- another instance runs.
CREATE OR REPLACE FUNCTION hector_task_events_notify() RETURNS trigger AS $$
BEGIN
	IF TG_TABLE_NAME = 'tasks' THEN
		PERFORM pg_notify('hector_task_events', NEW.id);
	ELSE
		PERFORM pg_notify('hector_task_events', NEW.task_id);
	END IF;
	RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER hector_task_events_tasks AFTER INSERT OR UPDATE OF state, updated_at ON tasks
	FOR EACH ROW EXECUTE FUNCTION hector_task_events_notify();
CREATE TRIGGER hector_task_events_steps AFTER INSERT ON task_steps
	FOR EACH ROW EXECUTE FUNCTION hector_task_events_notify();
