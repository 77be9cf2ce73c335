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
-- Announce every change of a task's state on one channel,
-- hector_task_events, so A2A streams, waiting requests and push
-- notifications on any instance follow a task another instance runs, and
-- idle workers wake for a runnable task. This replaces 0005's
-- hector_tasks channel: one NOTIFY per change instead of two when a task
-- becomes runnable. Payloads: "pending:ID" (runnable: workers wake),
-- "ID" (another state), "cancel:ID" (cancellation asked: its worker
-- stops).
--
-- Only state changes: every NOTIFY serializes the commits of all
-- notifying transactions (PostgreSQL holds a database-wide lock from
-- NOTIFY's pre-commit through the commit); announcing each checkpoint too
-- cut the task queue's throughput by a factor of 4.5 in bench/taskbench.
-- Checkpoints written elsewhere reach a stream at its next poll.
DROP TRIGGER hector_tasks_notify ON tasks;
DROP FUNCTION hector_tasks_notify();
CREATE FUNCTION hector_task_events_notify() RETURNS trigger AS $$
BEGIN
	IF NEW.state = 'pending' THEN
		PERFORM pg_notify('hector_task_events', 'pending:' || NEW.id);
	ELSE
		PERFORM pg_notify('hector_task_events', NEW.id);
	END IF;
	RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE FUNCTION hector_task_cancel_notify() RETURNS trigger AS $$
BEGIN
	PERFORM pg_notify('hector_task_events', 'cancel:' || NEW.id);
	RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER hector_task_events_insert AFTER INSERT ON tasks
	FOR EACH ROW EXECUTE FUNCTION hector_task_events_notify();
CREATE TRIGGER hector_task_events_update AFTER UPDATE OF state ON tasks
	FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.attempts IS DISTINCT FROM NEW.attempts)
	EXECUTE FUNCTION hector_task_events_notify();
CREATE TRIGGER hector_task_cancel AFTER UPDATE OF cancel_requested ON tasks
	FOR EACH ROW WHEN (NEW.cancel_requested AND NOT OLD.cancel_requested)
	EXECUTE FUNCTION hector_task_cancel_notify();
