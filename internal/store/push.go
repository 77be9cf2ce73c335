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
	SentState string
	CreatedAt time.Time
}

// SavePushConfig stores or replaces the webhook id of task taskID.
func (s *Store) SavePushConfig(ctx context.Context, taskID, id, config string) error {
	defer s.lockWrite()()
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO task_push_configs (task_id, id, config, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (task_id, id) DO UPDATE SET config = excluded.config`), taskID, id, config, ms(time.Now()))
	if err != nil {
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

// PendingPushes returns the webhooks whose task's state differs from the
// last state sent to them, with that task state in SentState's place.
func (s *Store) PendingPushes(ctx context.Context) ([]PushConfig, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT p.task_id, p.id, p.config, t.state, p.created_at
		FROM task_push_configs p JOIN tasks t ON t.id = p.task_id WHERE p.sent_state <> t.state ORDER BY p.created_at LIMIT 100`))
	if err != nil {
		return nil, fmt.Errorf("pending pushes: %w", err)
	}
	return scanPushConfigs(rows)
}

// ClaimPush marks state as sent to a webhook, unless it was already
// (another instance took it): true means the caller sends it.
func (s *Store) ClaimPush(ctx context.Context, taskID, id, state string) (bool, error) {
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
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT task_id, id, config, sent_state, created_at FROM task_push_configs `+where), args...)
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
		if err := rows.Scan(&c.TaskID, &c.ID, &c.Config, &c.SentState, &created); err != nil {
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
