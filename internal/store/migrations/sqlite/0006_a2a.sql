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
    created_at INTEGER NOT NULL,
    PRIMARY KEY (task_id, id)
);
