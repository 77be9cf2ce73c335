-- Announce runnable tasks, so idle workers of every instance wake at once
-- instead of at their next poll.
CREATE OR REPLACE FUNCTION hector_tasks_notify() RETURNS trigger AS $$
BEGIN
	PERFORM pg_notify('hector_tasks', NEW.id);
	RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER hector_tasks_notify AFTER INSERT OR UPDATE OF state ON tasks
	FOR EACH ROW WHEN (NEW.state = 'pending') EXECUTE FUNCTION hector_tasks_notify();
