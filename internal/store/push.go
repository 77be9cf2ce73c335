package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// PushConfig is a webhook told of a task's progress (A2A push
// notifications). Config is the protocol's JSON for it, stored as given.
type PushConfig struct {
	TaskID    string
	ID        string
	Config    string
	SentState TaskState
	Owner     string // who registered it ("" before owners were recorded)
	CreatedAt time.Time
}

// ErrOwned is a change to a webhook another caller registered.
var ErrOwned = errors.New("registered by another caller")

// SavePushConfig stores or replaces the webhook id of task taskID, with
// no owner and no limits.
func (s *Store) SavePushConfig(ctx context.Context, taskID, id, config string) error {
	return s.SavePushConfigFor(ctx, taskID, id, "", config, PushLimits{})
}

// PushLimits bound the webhooks a registration may add: PerTask on one
// task, PerOwner on the unfinished tasks of one owner (webhooks of
// finished tasks do not count). Zero means no bound.
type PushLimits struct {
	PerTask, PerOwner int
}

// PushLimitError is a webhook refused because a PushLimits bound is
// reached.
type PushLimitError struct {
	PerTask bool // the task's bound, else the owner's
	Limit   int
}

func (e *PushLimitError) Error() string {
	if e.PerTask {
		return fmt.Sprintf("the task has %d push notification configs, the most one task may have", e.Limit)
	}
	return fmt.Sprintf("%d push notification configs are registered on unfinished tasks by this caller, the most one caller may have", e.Limit)
}

// SavePushConfigFor stores or replaces the webhook id of task taskID,
// registered by owner; replacing another owner's webhook is ErrOwned. A
// new webhook must fit lim, else the error is a *PushLimitError and nothing is
// stored. The count and the insert are one transaction, serialized per
// task and per owner on PostgreSQL (row and advisory locks) and by the
// write lock on SQLite, so concurrent registrations cannot overshoot.
func (s *Store) SavePushConfigFor(ctx context.Context, taskID, id, owner, config string, lim PushLimits) error {
	defer s.lockWrite()()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save push config of %s: %w", taskID, err)
	}
	defer tx.Rollback()
	if s.pg && (lim.PerTask > 0 || lim.PerOwner > 0) {
		if _, err := tx.ExecContext(ctx, `SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE`, taskID); err != nil {
			return fmt.Errorf("save push config of %s: %w", taskID, err)
		}
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('hector_push_owner:' || $1))`, owner); err != nil {
			return fmt.Errorf("save push config of %s: %w", taskID, err)
		}
	}
	prevOwner, exists := "", true
	err = tx.QueryRowContext(ctx, s.q(`SELECT owner FROM task_push_configs WHERE task_id = ? AND id = ?`), taskID, id).Scan(&prevOwner)
	if errors.Is(err, sql.ErrNoRows) {
		exists = false
	} else if err != nil {
		return fmt.Errorf("save push config of %s: %w", taskID, err)
	}
	if exists && prevOwner != "" && prevOwner != owner {
		return ErrOwned
	}
	if !exists && lim.PerTask > 0 {
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM task_push_configs WHERE task_id = ?`), taskID).Scan(&n); err != nil {
			return fmt.Errorf("save push config of %s: %w", taskID, err)
		}
		if n >= lim.PerTask {
			return &PushLimitError{PerTask: true, Limit: lim.PerTask}
		}
	}
	if (!exists || prevOwner != owner) && lim.PerOwner > 0 {
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM task_push_configs p JOIN tasks t ON t.id = p.task_id
			WHERE p.owner = ? AND t.state NOT IN (?, ?, ?)`), owner, TaskCompleted, TaskFailed, TaskCanceled).Scan(&n); err != nil {
			return fmt.Errorf("save push config of %s: %w", taskID, err)
		}
		if n >= lim.PerOwner {
			return &PushLimitError{Limit: lim.PerOwner}
		}
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO task_push_configs (task_id, id, config, owner, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (task_id, id) DO UPDATE SET config = excluded.config, owner = excluded.owner`), taskID, id, config, owner, ms(time.Now())); err != nil {
		return fmt.Errorf("save push config of %s: %w", taskID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save push config of %s: %w", taskID, err)
	}
	s.changed(taskID) // a new webhook hears the current state
	return nil
}

// PushConfigs returns the webhooks of a task, oldest first.
func (s *Store) PushConfigs(ctx context.Context, taskID string) ([]PushConfig, error) {
	return s.pushConfigs(ctx, `WHERE task_id = ? ORDER BY created_at, id`, taskID)
}

// PushConfig returns one webhook of a task, or ErrNotFound.
func (s *Store) PushConfig(ctx context.Context, taskID, id string) (*PushConfig, error) {
	cs, err := s.pushConfigs(ctx, `WHERE task_id = ? AND id = ?`, taskID, id)
	if err != nil {
		return nil, err
	}
	if len(cs) == 0 {
		return nil, ErrNotFound
	}
	return &cs[0], nil
}

// DeletePushConfig removes a webhook; ErrNotFound if there was none.
func (s *Store) DeletePushConfig(ctx context.Context, taskID, id string) error {
	defer s.lockWrite()()
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM task_push_configs WHERE task_id = ? AND id = ?`), taskID, id)
	if err != nil {
		return fmt.Errorf("delete push config of %s: %w", taskID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeletePushConfigFor is DeletePushConfig for owner: a webhook another
// owner registered is ErrOwned and stays.
func (s *Store) DeletePushConfigFor(ctx context.Context, taskID, id, owner string) error {
	defer s.lockWrite()()
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM task_push_configs WHERE task_id = ? AND id = ? AND owner IN (?, '')`), taskID, id, owner)
	if err != nil {
		return fmt.Errorf("delete push config of %s: %w", taskID, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	var n int
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM task_push_configs WHERE task_id = ? AND id = ?`), taskID, id).Scan(&n); err != nil {
		return fmt.Errorf("delete push config of %s: %w", taskID, err)
	}
	if n > 0 {
		return ErrOwned
	}
	return ErrNotFound
}

// PendingPushes returns the webhooks whose task's state differs from the
// last state sent to them, with that task state in SentState's place.
func (s *Store) PendingPushes(ctx context.Context) ([]PushConfig, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT p.task_id, p.id, p.config, t.state, p.owner, p.created_at
		FROM task_push_configs p JOIN tasks t ON t.id = p.task_id WHERE p.sent_state <> t.state ORDER BY p.created_at LIMIT 100`))
	if err != nil {
		return nil, fmt.Errorf("pending pushes: %w", err)
	}
	return scanPushConfigs(rows)
}

// ClaimPush marks state as sent to a webhook, unless it was already
// (another instance took it): true means the caller sends it.
func (s *Store) ClaimPush(ctx context.Context, taskID, id string, state TaskState) (bool, error) {
	defer s.lockWrite()()
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE task_push_configs SET sent_state = ? WHERE task_id = ? AND id = ? AND sent_state <> ?`),
		state, taskID, id, state)
	if err != nil {
		return false, fmt.Errorf("claim push of %s: %w", taskID, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func (s *Store) pushConfigs(ctx context.Context, where string, args ...any) ([]PushConfig, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT task_id, id, config, sent_state, owner, created_at FROM task_push_configs `+where), args...)
	if err != nil {
		return nil, fmt.Errorf("push configs: %w", err)
	}
	return scanPushConfigs(rows)
}

func scanPushConfigs(rows *sql.Rows) ([]PushConfig, error) {
	defer rows.Close()
	var out []PushConfig
	for rows.Next() {
		var c PushConfig
		var created int64
		if err := rows.Scan(&c.TaskID, &c.ID, &c.Config, &c.SentState, &c.Owner, &created); err != nil {
			return nil, err
		}
		c.CreatedAt = fromMS(created)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	return out, nil
}
