package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hector-run/hector/internal/llm"
)

// TaskState is where a task is in its lifecycle.
type TaskState string

// Task states. They map one-to-one onto A2A's submitted, working,
// input-required, completed, failed and canceled.
const (
	TaskPending       TaskState = "pending"
	TaskRunning       TaskState = "running"
	TaskInputRequired TaskState = "input_required"
	TaskCompleted     TaskState = "completed"
	TaskFailed        TaskState = "failed"
	TaskCanceled      TaskState = "canceled"
)

// TaskStates lists every state, in lifecycle order.
var TaskStates = []TaskState{TaskPending, TaskRunning, TaskInputRequired, TaskCompleted, TaskFailed, TaskCanceled}

// TaskStateNames is TaskStates as strings, for messages and metrics.
func TaskStateNames() []string {
	names := make([]string, len(TaskStates))
	for i, st := range TaskStates {
		names[i] = string(st)
	}
	return names
}

// ErrConflict is a change the task's current state does not allow.
var ErrConflict = errors.New("conflict")

// Task is one durable run of an agent on an input.
type Task struct {
	ID        string `json:"id"`
	Agent     string `json:"agent"`
	SessionID string `json:"session_id"`
	Owner
	Input string `json:"input"`
	// MessageID is the A2A ID of the message that started the task.
	MessageID string `json:"message_id,omitempty"`
	// TraceParent is the W3C traceparent of the request that created the
	// task ("" when untraced); its attempts continue that trace.
	TraceParent     string          `json:"-"`
	State           TaskState       `json:"state"`
	Attempts        int             `json:"attempts"`
	MaxAttempts     int             `json:"max_attempts"`
	RunAt           time.Time       `json:"run_at"`
	LeaseOwner      string          `json:"lease_owner,omitempty"`
	HeartbeatAt     time.Time       `json:"heartbeat_at,omitzero"`
	CancelRequested bool            `json:"cancel_requested,omitempty"`
	Dead            bool            `json:"dead_letter,omitempty"`
	Result          json.RawMessage `json:"result,omitempty"`
	Error           string          `json:"error,omitempty"`
	CreatedAt       time.Time       `json:"created_at"`
	UpdatedAt       time.Time       `json:"updated_at"`
	FinishedAt      time.Time       `json:"finished_at,omitzero"`
	// Approval is the tool call the task waits on in input_required.
	Approval *Approval `json:"approval,omitempty"`
	// Decisions are the approvers' verdicts, by tool call ID.
	Decisions map[string]Decision `json:"decisions,omitempty"`
}

// Approval is a tool call waiting for a human.
type Approval struct {
	CallID      string          `json:"call_id"`
	Tool        string          `json:"tool"`
	Arguments   json.RawMessage `json:"arguments"`
	Prompt      string          `json:"prompt,omitempty"`
	RequestedAt time.Time       `json:"requested_at"`
}

// Decision is an approver's verdict on one call.
type Decision struct {
	Approved bool      `json:"approved"`
	Reason   string    `json:"reason,omitempty"`
	By       string    `json:"by,omitempty"`
	At       time.Time `json:"at"`
}

// Step is one checkpoint of a task's turn: a message saved as it happened.
type Step struct {
	Seq       int         `json:"seq"`
	Attempt   int         `json:"attempt"`
	Message   llm.Message `json:"message"`
	CreatedAt time.Time   `json:"created_at"`
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

const taskColumns = `id, agent, session_id, input, state, attempts, max_attempts, run_at, lease_owner, heartbeat_at,
	cancel_requested, dead, result, error, created_at, updated_at, finished_at, approval, decisions, message_id, tenant, owner, traceparent`

func scanTask(row interface{ Scan(...any) error }) (*Task, error) {
	var t Task
	var runAt, hb, created, updated, finished int64
	var result, approval, decisions string
	if err := row.Scan(&t.ID, &t.Agent, &t.SessionID, &t.Input, &t.State, &t.Attempts, &t.MaxAttempts, &runAt, &t.LeaseOwner, &hb,
		&t.CancelRequested, &t.Dead, &result, &t.Error, &created, &updated, &finished, &approval, &decisions, &t.MessageID, &t.Tenant, &t.Principal, &t.TraceParent); err != nil {
		return nil, err
	}
	if approval != "" {
		t.Approval = &Approval{}
		if err := json.Unmarshal([]byte(approval), t.Approval); err != nil {
			return nil, fmt.Errorf("task %s: approval: %w", t.ID, err)
		}
	}
	if decisions != "" && decisions != "{}" {
		if err := json.Unmarshal([]byte(decisions), &t.Decisions); err != nil {
			return nil, fmt.Errorf("task %s: decisions: %w", t.ID, err)
		}
	}
	t.RunAt, t.HeartbeatAt, t.CreatedAt, t.UpdatedAt, t.FinishedAt = fromMS(runAt), fromMS(hb), fromMS(created), fromMS(updated), fromMS(finished)
	if result != "" {
		t.Result = json.RawMessage(result)
	}
	return &t, nil
}

// CreateTask stores a new pending task, runnable at once.
func (s *Store) CreateTask(ctx context.Context, t *Task) (err error) {
	ctx, end := s.span(ctx, "INSERT", "tasks")
	defer func() { end(err) }()
	defer s.lockWrite()()
	now := time.Now()
	t.State, t.RunAt, t.CreatedAt, t.UpdatedAt = TaskPending, now.UTC(), now.UTC(), now.UTC()
	_, err = s.db.ExecContext(ctx, s.q(`INSERT INTO tasks (id, agent, session_id, input, state, max_attempts, run_at, created_at, updated_at, message_id, tenant, owner, traceparent)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), t.ID, t.Agent, t.SessionID, t.Input, t.State, t.MaxAttempts, ms(now), ms(now), ms(now), t.MessageID, t.Tenant, t.Principal, t.TraceParent)
	if err != nil {
		return fmt.Errorf("create task: %w", err)
	}
	s.changed(t.ID)
	return nil
}

// GetTask returns a task, or ErrNotFound.
func (s *Store) GetTask(ctx context.Context, id string) (*Task, error) {
	t, err := scanTask(s.db.QueryRowContext(ctx, s.q(`SELECT `+taskColumns+` FROM tasks WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load task %s: %w", id, err)
	}
	return t, nil
}

// TaskFilter selects tasks for ListTasks. Empty fields match everything.
type TaskFilter struct {
	State     TaskState
	Agent     string
	SessionID string
	Dead      bool // only the dead-letter list
	// Scope, if set, selects only the tasks the caller may see.
	Scope *Scope
	// UpdatedAfter, if set, selects tasks whose state last changed after
	// it (to the millisecond), on every page and in CountMatching.
	UpdatedAfter time.Time
	Limit        int    // default 50, at most 500
	PageToken    string // from the previous page
}

// ListTasks returns tasks, newest first, and the token of the next page
// ("" on the last page).
func (s *Store) ListTasks(ctx context.Context, f TaskFilter) ([]*Task, string, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	f.Limit = min(f.Limit, 500)
	where, args := f.where()
	if f.PageToken != "" {
		created, id, err := decodeToken(f.PageToken)
		if err != nil {
			return nil, "", fmt.Errorf("list tasks: %w", err)
		}
		where, args = append(where, "(created_at < ? OR (created_at = ? AND id < ?))"), append(args, created, created, id)
	}
	query := `SELECT ` + taskColumns + ` FROM tasks`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY created_at DESC, id DESC LIMIT ?"
	args = append(args, f.Limit+1)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, "", fmt.Errorf("list tasks: %w", err)
	}
	defer rows.Close()
	var out []*Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, "", fmt.Errorf("list tasks: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list tasks: %w", err)
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		last := out[len(out)-1]
		next = base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(ms(last.CreatedAt), 10) + "|" + last.ID))
	}
	return out, next, nil
}

// where is the filter's condition, without the page.
func (f TaskFilter) where() ([]string, []any) {
	var where []string
	var args []any
	if f.State != "" {
		where, args = append(where, "state = ?"), append(args, f.State)
	}
	if f.Agent != "" {
		where, args = append(where, "agent = ?"), append(args, f.Agent)
	}
	if f.SessionID != "" {
		where, args = append(where, "session_id = ?"), append(args, f.SessionID)
	}
	if f.Dead {
		where, args = append(where, "dead = ?"), append(args, true)
	}
	if f.Scope != nil {
		where, args = append(where, "tenant = ?"), append(args, f.Scope.Tenant)
		if f.Scope.Principal != "" {
			where, args = append(where, "owner = ?"), append(args, f.Scope.Principal)
		}
	}
	if !f.UpdatedAfter.IsZero() {
		where, args = append(where, "updated_at > ?"), append(args, ms(f.UpdatedAfter))
	}
	return where, args
}

// CountMatching counts the tasks a filter selects, on every page.
func (s *Store) CountMatching(ctx context.Context, f TaskFilter) (int, error) {
	where, args := f.where()
	query := `SELECT COUNT(*) FROM tasks`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	var n int
	if err := s.db.QueryRowContext(ctx, s.q(query), args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count tasks: %w", err)
	}
	return n, nil
}

// ErrBadPageToken is a page token this store did not make.
var ErrBadPageToken = errors.New("invalid page_token")

func decodeToken(tok string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, "", ErrBadPageToken
	}
	c, id, ok := strings.Cut(string(b), "|")
	created, err := strconv.ParseInt(c, 10, 64)
	if !ok || err != nil {
		return 0, "", ErrBadPageToken
	}
	return created, id, nil
}

// ClaimTask leases the next runnable task to owner and marks it running
// with one more attempt: a pending task whose time has come, or a running
// one whose worker stopped heartbeating before staleBefore (its worker is
// presumed dead). It returns nil when nothing is runnable. On PostgreSQL
// concurrent claimers skip each other's rows, so no task is leased twice.
func (s *Store) ClaimTask(ctx context.Context, owner string, staleBefore time.Time) (*Task, error) {
	defer s.lockWrite()()
	now := ms(time.Now())
	// Two picks, each served by the (state, run_at) index, where one
	// condition with OR would scan every finished task.
	picks := []struct {
		query string
		arg   int64
	}{
		{`SELECT id FROM tasks WHERE state = 'pending' AND run_at <= ? ORDER BY run_at LIMIT 1`, now},
		{`SELECT id FROM tasks WHERE state = 'running' AND heartbeat_at < ? LIMIT 1`, ms(staleBefore)},
	}
	for _, p := range picks {
		pick := p.query
		if s.pg {
			pick += " FOR UPDATE SKIP LOCKED"
		}
		t, err := scanTask(s.db.QueryRowContext(ctx, s.q(`UPDATE tasks SET state = 'running', attempts = attempts + 1, lease_owner = ?,
			heartbeat_at = ?, updated_at = ? WHERE id = (`+pick+`) RETURNING `+taskColumns), owner, now, now, p.arg))
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("claim task: %w", err)
		}
		s.changed(t.ID)
		return t, nil
	}
	return nil, nil
}

// Heartbeat renews owner's lease on a running task and reports whether
// cancellation was requested. ErrConflict means the lease is lost: the task
// is no longer running under owner, and the worker must stop.
func (s *Store) Heartbeat(ctx context.Context, id, owner string) (cancel bool, err error) {
	defer s.lockWrite()()
	err = s.db.QueryRowContext(ctx, s.q(`UPDATE tasks SET heartbeat_at = ? WHERE id = ? AND state = 'running' AND lease_owner = ?
		RETURNING cancel_requested`), ms(time.Now()), id, owner).Scan(&cancel)
	if errors.Is(err, sql.ErrNoRows) {
		return false, ErrConflict
	}
	if err != nil {
		return false, fmt.Errorf("heartbeat task %s: %w", id, err)
	}
	return cancel, nil
}

// CancelRequested reports whether cancellation of a task was asked for.
func (s *Store) CancelRequested(ctx context.Context, id string) (bool, error) {
	var c bool
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT cancel_requested FROM tasks WHERE id = ?`), id).Scan(&c); err != nil {
		return false, fmt.Errorf("cancel requested of %s: %w", id, err)
	}
	return c, nil
}

// TaskOutcome is how an attempt ended.
type TaskOutcome struct {
	State  TaskState // completed, failed, canceled, or pending (retry at RunAt)
	Result any       // completed: stored as JSON
	Error  string    // failed, or the retried attempt's error
	RunAt  time.Time // pending: when to try again
	Dead   bool      // failed: put on the dead-letter list
}

// FinishAttempt records the end of owner's attempt. ErrConflict means the
// lease was lost (another worker took the task over, or it was canceled);
// nothing is changed then.
func (s *Store) FinishAttempt(ctx context.Context, id, owner string, o TaskOutcome) error {
	defer s.lockWrite()()
	now := time.Now()
	var result string
	if o.Result != nil {
		b, err := json.Marshal(o.Result)
		if err != nil {
			return fmt.Errorf("finish task %s: result: %w", id, err)
		}
		result = string(b)
	}
	finished := int64(0)
	if o.State != TaskPending {
		finished = ms(now)
	}
	runAt := ms(o.RunAt)
	if o.RunAt.IsZero() {
		runAt = ms(now)
	}
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE tasks SET state = ?, result = ?, error = ?, run_at = ?, dead = ?, lease_owner = '',
		updated_at = ?, finished_at = ? WHERE id = ? AND state = 'running' AND lease_owner = ?`),
		o.State, result, o.Error, runAt, o.Dead, ms(now), finished, id, owner)
	if err != nil {
		return fmt.Errorf("finish task %s: %w", id, err)
	}
	if err := leaseHeld(res); err != nil {
		return err
	}
	s.changed(id)
	return nil
}

// CancelTask cancels a task: at once when it is pending or waiting for
// input; a running task is asked to stop (its worker ends it as canceled
// at its next heartbeat). It returns the task as it is now. Finished tasks
// give ErrConflict.
func (s *Store) CancelTask(ctx context.Context, id string) (*Task, error) {
	now := ms(time.Now())
	t, err := s.changeTask(ctx, id, "cancel", func(t *Task) string { return "is " + string(t.State) }, func() (bool, error) {
		return s.execChanged(ctx, `UPDATE tasks SET
		state = CASE WHEN state = 'running' THEN state ELSE 'canceled' END,
		cancel_requested = ?, updated_at = ?,
		finished_at = CASE WHEN state = 'running' THEN finished_at ELSE ? END
		WHERE id = ? AND state IN ('pending', 'running', 'input_required')`, true, now, now, id)
	})
	if err == nil && t.State == TaskRunning {
		s.changed(cancelKey + id) // tell the worker
	}
	return t, err
}

// changeTask runs change under the write lock and returns the task as it
// is then. When change reports that it changed nothing, the error is
// ErrConflict with the task's why; a task that does not exist is
// ErrNotFound.
func (s *Store) changeTask(ctx context.Context, id, verb string, why func(*Task) string, change func() (bool, error)) (*Task, error) {
	unlock := s.lockWrite()
	changed, err := change()
	unlock()
	if err != nil {
		return nil, fmt.Errorf("%s task %s: %w", verb, id, err)
	}
	if changed {
		s.changed(id)
	}
	t, err := s.GetTask(ctx, id)
	if err != nil {
		return nil, err
	}
	if !changed {
		return t, fmt.Errorf("%w: task %s %s", ErrConflict, id, why(t))
	}
	return t, nil
}

// leaseHeld is ErrConflict when an update of a task under a lease changed
// no row: the lease was lost (or the task is not in the state the update
// requires).
func leaseHeld(res sql.Result) error {
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrConflict
	}
	return nil
}

// execChanged runs an update and reports whether it changed a row.
func (s *Store) execChanged(ctx context.Context, query string, args ...any) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.q(query), args...)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// RequeueTask puts a dead-lettered task back in the queue with its
// attempts reset. Other tasks give ErrConflict.
func (s *Store) RequeueTask(ctx context.Context, id string) (*Task, error) {
	now := ms(time.Now())
	return s.changeTask(ctx, id, "requeue", func(*Task) string { return "is not on the dead-letter list" }, func() (bool, error) {
		return s.execChanged(ctx, `UPDATE tasks SET state = 'pending', attempts = 0, dead = ?, error = '', run_at = ?,
		updated_at = ?, finished_at = 0, cancel_requested = ? WHERE id = ? AND dead = ?`, false, now, now, false, id, true)
	})
}

// SaveStep appends a checkpoint to owner's running task. ErrConflict means
// the lease was lost and the step was not saved.
func (s *Store) SaveStep(ctx context.Context, id, owner string, attempt int, m llm.Message) (err error) {
	ctx, end := s.span(ctx, "INSERT", "task_steps")
	defer func() { end(err) }()
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", id, err)
	}
	defer s.lockWrite()()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", id, err)
	}
	defer tx.Rollback()
	var state TaskState
	var lease string
	lock := ""
	if s.pg {
		lock = " FOR UPDATE"
	}
	if err := tx.QueryRowContext(ctx, s.q(`SELECT state, lease_owner FROM tasks WHERE id = ?`+lock), id).Scan(&state, &lease); err != nil {
		return fmt.Errorf("checkpoint %s: %w", id, err)
	}
	if state != TaskRunning || lease != owner {
		return ErrConflict
	}
	now := ms(time.Now())
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO task_steps (task_id, seq, attempt, message, created_at)
		VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM task_steps WHERE task_id = ?), ?, ?, ?)`), id, id, attempt, string(b), now); err != nil {
		return fmt.Errorf("checkpoint %s: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE tasks SET heartbeat_at = ?, updated_at = ? WHERE id = ?`), now, now, id); err != nil {
		return fmt.Errorf("checkpoint %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("checkpoint %s: %w", id, err)
	}
	s.changed(id)
	return nil
}

// Steps returns a task's checkpoints in order.
func (s *Store) Steps(ctx context.Context, id string) ([]Step, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT seq, attempt, message, created_at FROM task_steps WHERE task_id = ? ORDER BY seq`), id)
	if err != nil {
		return nil, fmt.Errorf("steps of %s: %w", id, err)
	}
	defer rows.Close()
	var out []Step
	for rows.Next() {
		var st Step
		var msg string
		var created int64
		if err := rows.Scan(&st.Seq, &st.Attempt, &msg, &created); err != nil {
			return nil, fmt.Errorf("steps of %s: %w", id, err)
		}
		if err := json.Unmarshal([]byte(msg), &st.Message); err != nil {
			return nil, fmt.Errorf("step %d of %s: %w", st.Seq, id, err)
		}
		st.CreatedAt = fromMS(created)
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("steps of %s: %w", id, err)
	}
	return out, nil
}

// CompleteTask ends owner's attempt as completed and appends the turn's
// messages to the task's session, in one transaction: a crash leaves
// either both or neither. ErrConflict means the lease was lost.
func (s *Store) CompleteTask(ctx context.Context, t *Task, owner string, configVersion int64, msgs []llm.Message, result any) (err error) {
	ctx, end := s.span(ctx, "UPDATE", "tasks")
	defer func() { end(err) }()
	b, err := json.Marshal(result)
	if err != nil {
		return fmt.Errorf("complete task %s: result: %w", t.ID, err)
	}
	defer s.lockWrite()()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("complete task %s: %w", t.ID, err)
	}
	defer tx.Rollback()
	now := ms(time.Now())
	res, err := tx.ExecContext(ctx, s.q(`UPDATE tasks SET state = 'completed', result = ?, error = '', lease_owner = '',
		updated_at = ?, finished_at = ? WHERE id = ? AND state = 'running' AND lease_owner = ?`), string(b), now, now, t.ID, owner)
	if err != nil {
		return fmt.Errorf("complete task %s: %w", t.ID, err)
	}
	if err := leaseHeld(res); err != nil {
		return err
	}
	if err := s.appendTurn(ctx, tx, t.SessionID, t.Agent, t.Owner, configVersion, msgs); err != nil {
		return fmt.Errorf("complete task %s: %w", t.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("complete task %s: %w", t.ID, err)
	}
	s.changed(t.ID)
	return nil
}

// ReleaseTask gives owner's running task back to the queue without
// counting the attempt (a graceful shutdown); its checkpoints stay, so the
// next worker continues where this one stopped.
func (s *Store) ReleaseTask(ctx context.Context, id, owner string) error {
	defer s.lockWrite()()
	now := ms(time.Now())
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE tasks SET state = 'pending', attempts = attempts - 1, lease_owner = '', run_at = ?,
		updated_at = ? WHERE id = ? AND state = 'running' AND lease_owner = ?`), now, now, id, owner)
	if err != nil {
		return fmt.Errorf("release task %s: %w", id, err)
	}
	s.changed(id)
	return nil
}

// CountTasks counts the tasks in a state.
func (s *Store) CountTasks(ctx context.Context, state TaskState) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM tasks WHERE state = ?`), state).Scan(&n); err != nil {
		return 0, fmt.Errorf("count tasks: %w", err)
	}
	return n, nil
}

// PauseTask ends owner's attempt waiting for a human decision on a call:
// the task goes to input_required with the approval request, and the
// attempt is not counted (waiting is not failing).
func (s *Store) PauseTask(ctx context.Context, id, owner string, a Approval) error {
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("pause task %s: %w", id, err)
	}
	defer s.lockWrite()()
	now := ms(time.Now())
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE tasks SET state = 'input_required', approval = ?, attempts = attempts - 1,
		lease_owner = '', updated_at = ? WHERE id = ? AND state = 'running' AND lease_owner = ?`), string(b), now, id, owner)
	if err != nil {
		return fmt.Errorf("pause task %s: %w", id, err)
	}
	if err := leaseHeld(res); err != nil {
		return err
	}
	s.changed(id)
	return nil
}

// CreateWaitingTask stores a task that is already waiting for approval:
// a synchronous turn that reached a call needing it. steps are the turn's
// messages so far, saved as the task's checkpoints.
func (s *Store) CreateWaitingTask(ctx context.Context, t *Task, steps []llm.Message, a Approval) error {
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("create task: %w", err)
	}
	defer s.lockWrite()()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create task: %w", err)
	}
	defer tx.Rollback()
	now := time.Now()
	t.State, t.RunAt, t.CreatedAt, t.UpdatedAt, t.Attempts, t.Approval = TaskInputRequired, now.UTC(), now.UTC(), now.UTC(), 0, &a
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO tasks (id, agent, session_id, input, state, max_attempts, run_at, created_at, updated_at, approval, tenant, owner, traceparent)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), t.ID, t.Agent, t.SessionID, t.Input, t.State, t.MaxAttempts, ms(now), ms(now), ms(now), string(b), t.Tenant, t.Principal, t.TraceParent); err != nil {
		return fmt.Errorf("create task: %w", err)
	}
	for i, m := range steps {
		mb, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("create task: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO task_steps (task_id, seq, attempt, message, created_at) VALUES (?, ?, 0, ?, ?)`),
			t.ID, i+1, string(mb), ms(now)); err != nil {
			return fmt.Errorf("create task: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create task: %w", err)
	}
	s.changed(t.ID)
	return nil
}

// DecideTask records a decision on the call a task waits on and puts the
// task back in the queue. callID, if set, must be the call waited on.
// ErrConflict when the task is not waiting (or waits on another call).
func (s *Store) DecideTask(ctx context.Context, id, callID string, d Decision) (*Task, error) {
	why := func(t *Task) string {
		return fmt.Sprintf("is %s, not waiting for approval of call %q", t.State, callID)
	}
	return s.changeTask(ctx, id, "decide", why, func() (bool, error) {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return false, err
		}
		defer tx.Rollback()
		lock := ""
		if s.pg {
			lock = " FOR UPDATE"
		}
		t, err := scanTask(tx.QueryRowContext(ctx, s.q(`SELECT `+taskColumns+` FROM tasks WHERE id = ?`+lock), id))
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil // GetTask reports it
		}
		if err != nil {
			return false, err
		}
		if t.State != TaskInputRequired || t.Approval == nil || (callID != "" && callID != t.Approval.CallID) {
			return false, nil
		}
		if t.Decisions == nil {
			t.Decisions = map[string]Decision{}
		}
		d.At = time.Now().UTC()
		t.Decisions[t.Approval.CallID] = d
		b, _ := json.Marshal(t.Decisions)
		now := ms(time.Now())
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE tasks SET state = 'pending', approval = '', decisions = ?, run_at = ?, updated_at = ?
			WHERE id = ?`), string(b), now, now, id); err != nil {
			return false, err
		}
		return true, tx.Commit()
	})
}

// PurgeTasks deletes tasks that finished before before, with their steps,
// and returns how many.
func (s *Store) PurgeTasks(ctx context.Context, before time.Time) (int64, error) {
	defer s.lockWrite()()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("purge tasks: %w", err)
	}
	defer tx.Rollback()
	const finished = `state IN ('completed', 'failed', 'canceled') AND finished_at > 0 AND finished_at < ?`
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM task_push_configs WHERE task_id IN (SELECT id FROM tasks WHERE `+finished+`)`), ms(before)); err != nil {
		return 0, fmt.Errorf("purge tasks: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM task_steps WHERE task_id IN (SELECT id FROM tasks WHERE `+finished+`)`), ms(before)); err != nil {
		return 0, fmt.Errorf("purge tasks: %w", err)
	}
	res, err := tx.ExecContext(ctx, s.q(`DELETE FROM tasks WHERE `+finished), ms(before))
	if err != nil {
		return 0, fmt.Errorf("purge tasks: %w", err)
	}
	n, _ := res.RowsAffected()
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("purge tasks: %w", err)
	}
	return n, nil
}

// PurgeTenant deletes everything stored for tenant — its tasks with their
// steps and webhooks, its sessions with their messages and leases, and its
// configuration history (app tenant) — in one transaction. The main
// tenant ("") cannot be purged.
func (s *Store) PurgeTenant(ctx context.Context, tenant string) error {
	if tenant == "" {
		return errors.New("purge: the main tenant cannot be purged")
	}
	defer s.lockWrite()()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("purge tenant %s: %w", tenant, err)
	}
	defer tx.Rollback()
	for _, q := range []string{
		`DELETE FROM task_push_configs WHERE task_id IN (SELECT id FROM tasks WHERE tenant = ?)`,
		`DELETE FROM task_steps WHERE task_id IN (SELECT id FROM tasks WHERE tenant = ?)`,
		`DELETE FROM tasks WHERE tenant = ?`,
		`DELETE FROM messages WHERE session_id IN (SELECT id FROM sessions WHERE tenant = ?)`,
		`DELETE FROM session_locks WHERE session_id IN (SELECT id FROM sessions WHERE tenant = ?)`,
		`DELETE FROM sessions WHERE tenant = ?`,
		`DELETE FROM config_versions WHERE app = ?`,
	} {
		if _, err := tx.ExecContext(ctx, s.q(q), tenant); err != nil {
			return fmt.Errorf("purge tenant %s: %w", tenant, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("purge tenant %s: %w", tenant, err)
	}
	return nil
}
