// Package queue runs agent tasks durably: workers lease tasks from the
// database, heartbeat while they run, checkpoint every message of the turn,
// retry failures with exponential backoff and jitter, and move tasks that
// exhaust their retries to the dead-letter list. A task whose worker stops
// heartbeating (it crashed, or lost its network) is taken over by another
// worker after the stale threshold and continues from its checkpoints.
package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hector-run/hector/internal/agent"
	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/live"
	"github.com/hector-run/hector/internal/llm"
	"github.com/hector-run/hector/internal/snapshot"
	"github.com/hector-run/hector/internal/store"
	"github.com/hector-run/hector/internal/tool"
)

// Settings are the queue's tunables (config.Queue after defaults, with
// command-line overrides).
type Settings struct {
	Workers        int
	MaxRetries     int
	InitialDelay   time.Duration
	MaxDelay       time.Duration
	StaleThreshold time.Duration
	Retention      time.Duration // 0: keep finished tasks
}

// FromConfig reads the settings of a defaulted configuration.
func FromConfig(q config.Queue) Settings {
	s := Settings{Workers: q.Workers, InitialDelay: time.Duration(q.InitialDelay), MaxDelay: time.Duration(q.MaxDelay),
		StaleThreshold: time.Duration(q.StaleThreshold), Retention: time.Duration(q.Retention)}
	if q.MaxRetries != nil {
		s.MaxRetries = *q.MaxRetries
	}
	return s
}

// Backoff is the wait before retry number attempt (1 for the first
// retry): InitialDelay doubled per attempt, capped at MaxDelay, then drawn
// uniformly from its upper half, so retries of many tasks spread out.
func (s Settings) Backoff(attempt int) time.Duration {
	d := s.InitialDelay
	for i := 1; i < attempt && d < s.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, s.MaxDelay)
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// Queue runs tasks. Set the fields, then Start.
type Queue struct {
	Runtime *snapshot.Runtime
	Log     *slog.Logger
	// Instance names this process in task leases (lease owner
	// INSTANCE/wN).
	Instance string
	// Override adjusts settings read from the configuration (the
	// --queue-* flags).
	Override func(Settings) Settings
	// Observe, if set, is told how each attempt ended: completed, retried,
	// failed, canceled, waiting, released or lost.
	Observe func(outcome string)
	// Live, if set, receives the model's text as it streams, for tasks
	// that someone in this process follows (an A2A stream).
	Live *live.Hub
	// PollInterval is how often idle workers look for runnable tasks that
	// were not announced (retries coming due; on SQLite, tasks enqueued by
	// other processes); default 200ms. On PostgreSQL every task that
	// becomes runnable is announced to all instances.
	PollInterval time.Duration

	mu       sync.Mutex
	settings Settings
	running  int // worker goroutines alive
	wake     chan struct{}
	ctx      context.Context
	wg       sync.WaitGroup
	claims   atomic.Int64 // claim attempts, for tests
}

// Start applies the current configuration's settings and starts the
// workers; they stop when ctx ends (each running task is handed back to
// the queue with its checkpoints) and Wait returns.
func (q *Queue) Start(ctx context.Context) {
	q.mu.Lock()
	q.wake = make(chan struct{}, 1)
	q.ctx = ctx
	q.mu.Unlock()
	snap, release := q.Runtime.Acquire()
	cfg := snap.Config.Queue
	release()
	q.Apply(cfg)
	q.wg.Add(2)
	go func() { defer q.wg.Done(); q.listen(ctx) }()
	go func() { defer q.wg.Done(); q.sweep(ctx) }()
}

// sweep deletes finished tasks older than the retention, every tenth of
// it (between 1s and 1h); with retention 0 it only watches for a change.
func (q *Queue) sweep(ctx context.Context) {
	for {
		r := q.Settings().Retention
		every := min(max(r/10, time.Second), time.Hour)
		if r == 0 {
			every = 5 * time.Second
		}
		if !sleep(ctx, every) {
			return
		}
		if r == 0 {
			continue
		}
		snap, release := q.Runtime.Acquire()
		if snap == nil {
			release()
			return
		}
		n, err := snap.Store.PurgeTasks(ctx, time.Now().Add(-r))
		release()
		switch {
		case err != nil && ctx.Err() == nil:
			q.Log.Warn("finished tasks not purged", "error", err)
		case n > 0:
			q.Log.Info("finished tasks purged", "count", n, "retention", r)
		}
	}
}

// Wait blocks until every worker has stopped.
func (q *Queue) Wait() { q.wg.Wait() }

// Settings returns the settings in force.
func (q *Queue) Settings() Settings {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.settings
}

// Apply puts a configuration's queue settings in force: added workers
// start at once, surplus workers stop after their current task.
func (q *Queue) Apply(c config.Queue) {
	s := FromConfig(c)
	if q.Override != nil {
		s = q.Override(s)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.settings = s
	if q.ctx == nil {
		return // not started: Start applies the settings
	}
	for q.running < s.Workers {
		q.running++
		q.wg.Add(1)
		go q.worker(q.running)
	}
	q.wakeLocked()
}

// MaxAttempts is how many attempts a task enqueued now gets: the first
// and MaxRetries more.
func (q *Queue) MaxAttempts() int { return q.Settings().MaxRetries + 1 }

// Wake tells idle workers that a task may be runnable.
func (q *Queue) Wake() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.wakeLocked()
}

func (q *Queue) wakeLocked() {
	if q.wake == nil {
		return
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// retire reports whether worker n is surplus, and if so counts it out.
func (q *Queue) retire(n int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n > q.settings.Workers && n == q.running {
		q.running--
		return true
	}
	return false
}

func (q *Queue) worker(n int) {
	defer q.wg.Done()
	owner := fmt.Sprintf("%s/w%d", q.Instance, n)
	poll := q.PollInterval
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	for q.ctx.Err() == nil {
		if q.retire(n) {
			return
		}
		if q.runOne(owner) {
			// There may be more: look again, and have one idle worker look
			// too. A worker that finds nothing wakes nobody, so wake-ups
			// stop with the work (passing every wake-up on would keep
			// idle workers claiming in a loop).
			q.Wake()
			continue
		}
		select {
		case <-q.ctx.Done():
		case <-q.wake:
		case <-time.After(poll):
		}
	}
	q.mu.Lock()
	q.running--
	q.mu.Unlock()
}

var (
	errCanceled  = errors.New("task canceled")
	errLeaseLost = errors.New("lease lost: another worker took the task over")
)

// runOne claims and runs one task; false when none was runnable.
func (q *Queue) runOne(owner string) bool {
	snap, release := q.Runtime.Acquire()
	defer release()
	st := snap.Store
	settings := q.Settings()
	q.claims.Add(1)
	task, err := st.ClaimTask(q.ctx, owner, time.Now().Add(-settings.StaleThreshold))
	if err != nil {
		if q.ctx.Err() == nil {
			q.Log.Error("task queue: claim failed", "error", err)
		}
		return false
	}
	if task == nil {
		return false
	}
	log := q.Log.With("task", task.ID, "agent", task.Agent, "attempt", task.Attempts, "worker", owner)
	ag, ok := snap.Agents[task.Agent]
	if !ok {
		msg := fmt.Sprintf("agent %q is not in the configuration (version %d): it was removed or renamed", task.Agent, snap.Version)
		q.finish(log, st, task, owner, store.TaskOutcome{State: store.TaskFailed, Error: msg, Dead: true})
		return true
	}

	ctx, cancel := context.WithCancelCause(q.ctx)
	defer cancel(nil)
	hbDone := make(chan struct{})
	cancels, unwatch := st.WatchCancel(task.ID)
	go func() {
		defer close(hbDone)
		defer unwatch()
		t := time.NewTicker(settings.StaleThreshold / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-cancels: // from this instance, or any on PostgreSQL: stop at once
				if canceled, err := st.CancelRequested(ctx, task.ID); err == nil && canceled {
					cancel(errCanceled)
					return
				}
				continue
			case <-t.C:
			}
			canceled, err := st.Heartbeat(context.WithoutCancel(ctx), task.ID, owner)
			switch {
			case errors.Is(err, store.ErrConflict):
				cancel(errLeaseLost)
				return
			case err != nil:
				log.Warn("task heartbeat failed", "error", err)
			case canceled:
				cancel(errCanceled)
				return
			}
		}
	}()
	defer func() { cancel(nil); <-hbDone }()

	steps, err := st.Steps(ctx, task.ID)
	var history []llm.Message
	if err == nil {
		history, err = st.History(ctx, task.SessionID)
	}
	if err != nil {
		q.interrupted(ctx, log, st, task, owner, settings, err)
		return true
	}
	turn := []llm.Message{{Role: llm.RoleUser, Content: task.Input}}
	for _, s := range steps[min(1, len(steps)):] { // step 1 is the user message
		turn = append(turn, s.Message)
	}
	save := func(m llm.Message) error { return st.SaveStep(ctx, task.ID, owner, task.Attempts, m) }
	if len(steps) == 0 {
		if err := save(turn[0]); err != nil {
			q.interrupted(ctx, log, st, task, owner, settings, err)
			return true
		}
	}
	decide := func(c llm.ToolCall) agent.Decision {
		d, ok := task.Decisions[c.ID]
		return agent.Decision{Decided: ok, Approved: d.Approved, Reason: d.Reason, By: d.By}
	}
	// One model call per step, each with the agent of the configuration
	// current then: a reload reaches a running task at its next step.
	// (The task's database stays the one it was claimed from.)
	var res *agent.Result
	var usage llm.Usage
	for {
		step, release := q.Runtime.Acquire()
		if step == nil {
			release()
			err = context.Canceled
			break
		}
		ag, ok = step.Agents[task.Agent]
		if !ok {
			release()
			err = fmt.Errorf("agent %q was removed from the configuration (version %d) while the task ran", task.Agent, step.Version)
			break
		}
		hooks := agent.Hooks{Save: save, Decide: decide}
		if q.Live.Followed(task.ID) { // stream the model's text only when it is read
			hooks.Emit = func(e agent.Event) {
				if e.Type == "text" {
					q.Live.Publish(task.ID, e.Text)
				}
			}
		}
		res, err = ag.Step(step.WithDelegation(llm.WithConversation(tool.WithIdempotencyScope(ctx, task.ID), task.SessionID)), history, turn, hooks)
		release()
		if err != nil {
			break
		}
		usage.InputTokens += res.Usage.InputTokens
		usage.OutputTokens += res.Usage.OutputTokens
		if res.StopReason != "" {
			res.Usage = usage
			break
		}
		turn = res.Messages
	}
	var wait *agent.ApprovalRequired
	if errors.As(err, &wait) {
		a := store.Approval{CallID: wait.Call.ID, Tool: wait.Call.Name, Arguments: wait.Call.Arguments, Prompt: wait.Prompt, RequestedAt: time.Now().UTC()}
		if err := st.PauseTask(context.WithoutCancel(ctx), task.ID, owner, a); err != nil {
			log.Error("task not paused for approval", "error", err)
		} else {
			q.observe("waiting")
			log.Info("task waits for approval", "tool", a.Tool, "call", a.CallID)
		}
		return true
	}
	if err != nil {
		q.interrupted(ctx, log, st, task, owner, settings, err)
		return true
	}
	result := map[string]any{"reply": res.Reply, "stop_reason": res.StopReason, "iterations": res.Iterations, "usage": res.Usage}
	switch err := st.CompleteTask(context.WithoutCancel(ctx), task, owner, snap.Version, res.Messages, result); {
	case errors.Is(err, store.ErrConflict):
		q.observe("lost")
		log.Warn("task finished after its lease was lost; the other worker's result stands")
	case err != nil:
		log.Error("task result not saved; it will run again from its checkpoints", "error", err)
	default:
		q.observe("completed")
		log.Info("task completed", "iterations", res.Iterations)
	}
	return true
}

// interrupted ends an attempt that stopped with err.
func (q *Queue) interrupted(ctx context.Context, log *slog.Logger, st *store.Store, task *store.Task, owner string, s Settings, err error) {
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, errCanceled):
		q.finish(log, st, task, owner, store.TaskOutcome{State: store.TaskCanceled, Error: "canceled while running"})
	case errors.Is(cause, errLeaseLost), errors.Is(err, store.ErrConflict):
		q.observe("lost")
		log.Warn("task lease lost; leaving it to the worker that took it over")
	case q.ctx.Err() != nil: // shutting down: hand it back, checkpoints kept
		if err := st.ReleaseTask(context.Background(), task.ID, owner); err != nil {
			log.Error("task not released at shutdown; it will be taken over after the stale threshold", "error", err)
		} else {
			q.observe("released")
			log.Info("task handed back to the queue at shutdown")
		}
	default:
		q.retry(log, st, task, owner, s, err)
	}
}

// retry schedules another attempt, or fails the task onto the
// dead-letter list when its attempts are used up.
func (q *Queue) retry(log *slog.Logger, st *store.Store, task *store.Task, owner string, s Settings, err error) {
	// The error is stored and shown to every reader of the task: URLs in
	// it (an LLM's base_url) lose their credentials.
	msg := config.RedactText(fmt.Sprintf("attempt %d of %d: %v", task.Attempts, task.MaxAttempts, err))
	if task.Attempts >= task.MaxAttempts {
		q.finish(log, st, task, owner, store.TaskOutcome{State: store.TaskFailed, Dead: true, Error: msg})
		return
	}
	wait := s.Backoff(task.Attempts)
	q.finish(log, st, task, owner, store.TaskOutcome{State: store.TaskPending, RunAt: time.Now().Add(wait), Error: msg})
	log.Warn("task attempt failed; retrying", "error", err, "retry_in", wait.Round(time.Millisecond))
}

func (q *Queue) observe(outcome string) {
	if q.Observe != nil {
		q.Observe(outcome)
	}
}

func (q *Queue) finish(log *slog.Logger, st *store.Store, task *store.Task, owner string, o store.TaskOutcome) {
	err := st.FinishAttempt(context.Background(), task.ID, owner, o)
	switch {
	case errors.Is(err, store.ErrConflict):
		q.observe("lost")
		log.Warn("task lease lost before its outcome was saved", "state", o.State)
	case err != nil:
		log.Error("task outcome not saved", "state", o.State, "error", err)
	case o.State == store.TaskPending:
		q.observe("retried")
	case o.State == store.TaskFailed:
		q.observe("failed")
		log.Error("task failed", "error", o.Error, "dead_letter", o.Dead)
	case o.State == store.TaskCanceled:
		q.observe("canceled")
		log.Info("task canceled")
	}
}
