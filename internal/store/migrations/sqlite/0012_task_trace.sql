-- The W3C traceparent of the request that created a task, so that the
-- worker that runs it (maybe in another instance, maybe after a restart)
-- continues the caller's trace. '' when the request was not traced.
ALTER TABLE tasks ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';
