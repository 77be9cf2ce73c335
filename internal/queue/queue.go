// Package queue runs agent tasks durably: workers lease tasks from the
// database, heartbeat while they run, checkpoint every message of the turn,
// retry failures with exponential backoff and jitter, and move tasks that
// exhaust their retries to the dead-letter list. A task whose worker stops
// heartbeating (it crashed, or lost its network) is taken over by another
// worker after the stale threshold and continues from its checkpoints.
package queue

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/live"
	"github.com/hector-run/hector/internal/observe"
	"github.com/hector-run/hector/internal/snapshot"
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
	// Runtime is the main configuration's: its store holds every tenant's
	// tasks, and its queue section sets the queue's settings.
	Runtime *snapshot.Runtime
	// Tenants, if set, finds the runtime whose agents run a task of an app
	// (the task's tenant); without it only the main tenant's tasks run.
	Tenants snapshot.Tenants
	Log     *slog.Logger
	// Instance names this process in task leases (lease owner
	// INSTANCE/wN).
	Instance string
	// Override adjusts settings read from the configuration (the
	// --queue-* flags).
	Override func(Settings) Settings
	// Observe, if set, is told how each attempt ended: completed, retried,
	// failed, canceled, waiting, released or lost.
	Observe func(outcome Outcome)
	// OnTurn, if set, is told how each attempt's turn of agent (of tenant
	// app) ended, as agent.TurnStatus names it, and how long the attempt
	// took; a turn handed back at shutdown is not reported.
	OnTurn func(app, agent, status string, elapsed time.Duration)
	// Tracing, if set, traces each attempt as an invoke_agent span that
	// continues the trace of the request that made the task.
	Tracing *observe.Tracing
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
	running  int           // worker goroutines alive
	wake     chan struct{} // idle workers: a task may be runnable
	// resize asks the supervisor (the goroutine Start runs, which owns
	// the workers' context) to start workers up to settings.Workers; it
	// closes the channel sent once they run. nil before Start.
	resize  chan chan struct{}
	stopped chan struct{} // closed when the supervisor has stopped
	wg      sync.WaitGroup
	claims  atomic.Int64 // claim attempts, for tests
}

// Start applies the current configuration's settings and starts the
// workers; they stop when ctx ends (each running task is handed back to
// the queue with its checkpoints) and Wait returns. Start needs a
// committed snapshot (Runtime.Commit before it): it panics without one.
// Call it once.
func (q *Queue) Start(ctx context.Context) {
	snap, release := q.Runtime.Acquire()
	if snap == nil {
		release()
		panic("queue: Start before a snapshot was committed (or after the runtime closed)")
	}
	cfg := snap.Config.Queue
	release()
	q.mu.Lock()
	q.wake = make(chan struct{}, 1)
	q.resize, q.stopped = make(chan chan struct{}), make(chan struct{})
	q.mu.Unlock()
	q.wg.Add(3)
	go func() { defer q.wg.Done(); q.supervise(ctx) }()
	go func() { defer q.wg.Done(); q.listen(ctx) }()
	go func() { defer q.wg.Done(); q.sweep(ctx) }()
	q.Apply(cfg)
}

// supervise starts workers when Apply asks, with ctx, until ctx ends.
func (q *Queue) supervise(ctx context.Context) {
	defer close(q.stopped)
	for {
		select {
		case <-ctx.Done():
			return
		case done := <-q.resize:
			q.mu.Lock()
			for q.running < q.settings.Workers {
				q.running++
				q.wg.Add(1)
				go q.worker(ctx, q.running)
			}
			q.mu.Unlock()
			close(done)
		}
	}
}

// sweep deletes finished tasks older than the retention, every tenth of
// it (between 1s and 1h); with retention 0 it only looks, every second,
// for a change (Start applies the configuration's retention just after it
// starts sweep, so a longer first wait would delay the first purge).
func (q *Queue) sweep(ctx context.Context) {
	for {
		r := q.Settings().Retention
		every := min(max(r/10, time.Second), time.Hour)
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
	q.settings = s
	resize, stopped := q.resize, q.stopped
	q.wakeLocked()
	q.mu.Unlock()
	if resize == nil {
		return // not started: Start applies the settings
	}
	done := make(chan struct{})
	select {
	case resize <- done:
		<-done
	case <-stopped: // stopping: no new workers
	}
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
