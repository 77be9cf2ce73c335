package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hector-run/hector/internal/agent"
	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/llm"
	"github.com/hector-run/hector/internal/observe"
	"github.com/hector-run/hector/internal/snapshot"
	"github.com/hector-run/hector/internal/store"
	"github.com/hector-run/hector/internal/tool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// worker claims and runs tasks until ctx ends or it is surplus.
func (q *Queue) worker(ctx context.Context, n int) {
	defer q.wg.Done()
	owner := fmt.Sprintf("%s/w%d", q.Instance, n)
	poll := q.PollInterval
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	for ctx.Err() == nil {
		if q.retire(n) {
			return
		}
		if q.runOne(ctx, owner) {
			// There may be more: look again, and have one idle worker look
			// too. A worker that finds nothing wakes nobody, so wake-ups
			// stop with the work (passing every wake-up on would keep
			// idle workers claiming in a loop).
			q.Wake()
			continue
		}
		select {
		case <-ctx.Done():
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

// attempt is one claimed run of a task: what its pieces share. It holds
// the task's store, never a snapshot: each step takes the configuration
// current when it starts.
type attempt struct {
	st       *store.Store
	task     *store.Task
	owner    string
	settings Settings
	log      *slog.Logger
	version  int64 // the configuration version the task was claimed under, recorded with its messages
	started  time.Time
}

// runOne claims and runs one task; false when none was runnable. ctx is
// the queue's lifetime: when it ends, a running task is handed back.
func (q *Queue) runOne(ctx context.Context, owner string) bool {
	a, release, claimed := q.claim(ctx, owner)
	if a == nil {
		return claimed
	}
	defer release()
	q.run(ctx, a)
	return true
}

// claim leases a runnable task from the current configuration's store.
// With a task, it returns the attempt and a release for the store it
// holds open; claimed without an attempt means the task was settled here
// (its agent is gone).
func (q *Queue) claim(ctx context.Context, owner string) (a *attempt, release func(), claimed bool) {
	snap, unpin := q.Runtime.Acquire()
	defer unpin()
	if snap == nil {
		return nil, nil, false
	}
	settings := q.Settings()
	q.claims.Add(1)
	task, err := snap.Store.ClaimTask(ctx, owner, time.Now().Add(-settings.StaleThreshold))
	if err != nil {
		if ctx.Err() == nil {
			q.Log.Error("task queue: claim failed", "error", err)
		}
		return nil, nil, false
	}
	if task == nil {
		return nil, nil, false
	}
	a = &attempt{st: snap.Store, task: task, owner: owner, settings: settings, started: time.Now(),
		log: q.Log.With("task", task.ID, "agent", task.Agent, "attempt", task.Attempts, "worker", owner)}
	if task.Tenant != "" {
		a.log = a.log.With("app", task.Tenant)
	}
	if !q.runnable(a) {
		return nil, nil, true
	}
	// The task's database stays the one it was claimed from, also if a
	// reload moves the configuration to another.
	a.st, release = snap.RetainStore()
	return a, release, true
}

// runtime is the runtime whose agents run tasks of tenant; nil when the
// tenant has no app.
func (q *Queue) runtime(tenant string) *snapshot.Runtime {
	switch {
	case tenant == "":
		return q.Runtime
	case q.Tenants == nil:
		return nil
	}
	return q.Tenants.Runtime(tenant)
}

// runnable checks that a's agent exists in its tenant's configuration,
// and stamps a with that configuration's version. Otherwise it settles the
// task and reports false: failed when the app or the agent is gone,
// retried later when the app has no valid configuration yet.
func (q *Queue) runnable(a *attempt) bool {
	task := a.task
	rt := q.runtime(task.Tenant)
	if rt == nil {
		q.finish(a, store.TaskOutcome{State: store.TaskFailed, Dead: true, Error: fmt.Sprintf("app %q does not exist: it was deleted", task.Tenant)})
		return false
	}
	snap, release := rt.Acquire()
	defer release()
	switch {
	case snap == nil:
		q.retry(a, fmt.Errorf("app %q has no valid configuration", task.Tenant))
		return false
	case snap.Agents[task.Agent] == nil:
		msg := fmt.Sprintf("agent %q is not in the configuration (version %d): it was removed or renamed", task.Agent, snap.Version)
		q.finish(a, store.TaskOutcome{State: store.TaskFailed, Error: msg, Dead: true})
		return false
	}
	a.version = snap.Version
	return true
}

// run runs a claimed attempt to its end: under heartbeat, holding the
// session's lease from reading the history to storing the outcome.
func (q *Queue) run(base context.Context, a *attempt) {
	ctx, cancel := context.WithCancelCause(base)
	// The attempt continues the trace of the request that made the task.
	ctx, span := q.Tracing.Tracer().Start(observe.WithTraceParent(ctx, a.task.TraceParent), "invoke_agent "+a.task.Agent,
		trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attribute.String("gen_ai.operation.name", "invoke_agent"),
			attribute.String("gen_ai.agent.name", a.task.Agent), attribute.String("gen_ai.conversation.id", a.task.SessionID),
			attribute.String("hector.task.id", a.task.ID), attribute.Int("hector.task.attempt", a.task.Attempts)))
	defer span.End()
	if sc := span.SpanContext(); sc.IsValid() {
		a.log = a.log.With("trace_id", sc.TraceID().String(), "span_id", sc.SpanID().String())
	}
	stopped := q.heartbeat(ctx, cancel, a)
	defer func() { cancel(nil); <-stopped }()
	unlock, err := a.st.LockSession(ctx, a.task.SessionID)
	if err != nil {
		q.interrupted(base, ctx, a, err)
		return
	}
	defer unlock()
	if err := mayContinue(ctx, a); err != nil {
		q.finish(a, store.TaskOutcome{State: store.TaskFailed, Error: err.Error(), Dead: true})
		return
	}
	history, turn, err := q.resume(ctx, a)
	if err != nil {
		q.interrupted(base, ctx, a, err)
		return
	}
	res, err := q.steps(ctx, a, history, turn)
	q.settle(base, ctx, a, res, err)
}

// heartbeat renews the task's lease every third of the stale threshold
// until ctx ends, and ends ctx (cancel) with errCanceled when the task is
// canceled or errLeaseLost when another worker took it over. The returned
// channel is closed once it has stopped.
func (q *Queue) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, a *attempt) <-chan struct{} {
	done := make(chan struct{})
	cancels, unwatch := a.st.WatchCancel(a.task.ID)
	go func() {
		defer close(done)
		defer unwatch()
		t := time.NewTicker(a.settings.StaleThreshold / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-cancels: // from this instance, or any on PostgreSQL: stop at once
				if canceled, err := a.st.CancelRequested(ctx, a.task.ID); err == nil && canceled {
					cancel(errCanceled)
					return
				}
				continue
			case <-t.C:
			}
			canceled, err := a.st.Heartbeat(context.WithoutCancel(ctx), a.task.ID, a.owner)
			switch {
			case errors.Is(err, store.ErrConflict):
				cancel(errLeaseLost)
				return
			case err != nil:
				a.log.Warn("task heartbeat failed", "error", err)
			case canceled:
				cancel(errCanceled)
				return
			}
		}
	}()
	return done
}

// resume reads the session's history and the task's checkpoints: the
// turn so far, its first message the task's input (stored as step 1 when
// the task starts afresh).
func (q *Queue) resume(ctx context.Context, a *attempt) (history, turn []llm.Message, err error) {
	steps, err := a.st.Steps(ctx, a.task.ID)
	if err != nil {
		return nil, nil, err
	}
	if history, err = a.st.History(ctx, a.task.SessionID); err != nil {
		return nil, nil, err
	}
	turn = []llm.Message{{Role: llm.RoleUser, Content: a.task.Input}}
	for _, s := range steps[min(1, len(steps)):] { // step 1 is the user message
		turn = append(turn, s.Message)
	}
	if len(steps) == 0 {
		if err := a.save(ctx, turn[0]); err != nil {
			return nil, nil, err
		}
	}
	return history, turn, nil
}

// mayContinue refuses a task whose session, made after the task was
// queued, belongs to another principal: the task would read that
// conversation and add to it. The check runs under the session's lease;
// storing the turn checks again (store.Owner.MayContinue).
func mayContinue(ctx context.Context, a *attempt) error {
	sess, err := a.st.Session(ctx, a.task.SessionID)
	if err != nil || sess.Owner.MayContinue(a.task.Owner) {
		return nil // no session yet; or a failed read, which the history read that follows reports
	}
	return fmt.Errorf("session %q belongs to another principal; the task may not continue it", a.task.SessionID)
}

// save checkpoints one message of the turn.
func (a *attempt) save(ctx context.Context, m llm.Message) error {
	return a.st.SaveStep(ctx, a.task.ID, a.owner, a.task.Attempts, m)
}

// steps runs the turn one model call per step, each with the agent of the
// configuration current then: a reload reaches a running task at its next
// step. No snapshot is held between steps. It returns the finished turn,
// or the error that stopped it (*agent.ApprovalRequired for a call that
// waits on a decision).
func (q *Queue) steps(ctx context.Context, a *attempt, history, turn []llm.Message) (*agent.Result, error) {
	task := a.task
	decide := func(c llm.ToolCall) agent.Decision {
		d, ok := task.Decisions[c.ID]
		return agent.Decision{Decided: ok, Approved: d.Approved, Reason: d.Reason, By: d.By}
	}
	hooks := agent.Hooks{Save: func(m llm.Message) error { return a.save(ctx, m) }, Decide: decide}
	var usage llm.Usage
	for {
		if q.Live.Followed(task.ID) { // stream the model's text only when it is read
			hooks.Emit = func(e agent.Event) {
				if e.Type == agent.EventText {
					q.Live.Publish(task.ID, e.Text)
				}
			}
		} else {
			hooks.Emit = nil
		}
		res, err := q.step(ctx, a, history, turn, hooks)
		if err != nil {
			return nil, err
		}
		usage.InputTokens += res.Usage.InputTokens
		usage.OutputTokens += res.Usage.OutputTokens
		if res.StopReason != "" {
			res.Usage = usage
			return res, nil
		}
		turn = res.Messages
	}
}

// step makes one model call with the current configuration's agent,
// holding that snapshot for the call only.
func (q *Queue) step(ctx context.Context, a *attempt, history, turn []llm.Message, hooks agent.Hooks) (*agent.Result, error) {
	rt := q.runtime(a.task.Tenant)
	if rt == nil {
		return nil, fmt.Errorf("app %q was deleted while the task ran", a.task.Tenant)
	}
	snap, release := rt.Acquire()
	defer release()
	switch {
	case snap == nil && a.task.Tenant != "":
		return nil, fmt.Errorf("app %q stopped while the task ran", a.task.Tenant)
	case snap == nil:
		return nil, context.Canceled
	}
	ag, ok := snap.Agents[a.task.Agent]
	if !ok {
		return nil, fmt.Errorf("agent %q was removed from the configuration (version %d) while the task ran", a.task.Agent, snap.Version)
	}
	return ag.Step(snap.WithDelegation(llm.WithConversation(tool.WithIdempotencyScope(ctx, a.task.ID), a.task.SessionID)), history, turn, hooks)
}

// settle stores how the attempt's turn ended: paused for approval,
// completed with its messages appended to the session, or interrupted.
func (q *Queue) settle(base, ctx context.Context, a *attempt, res *agent.Result, err error) {
	status := agent.TurnStatus(res, err)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attribute.String("hector.turn.status", status))
		if status == "error" {
			span.SetStatus(codes.Error, "the attempt failed")
		}
	}
	if q.OnTurn != nil && base.Err() == nil { // a turn handed back at shutdown goes on elsewhere
		q.OnTurn(a.task.Tenant, a.task.Agent, status, time.Since(a.started))
	}
	var wait *agent.ApprovalRequired
	if errors.As(err, &wait) {
		ap := store.Approval{CallID: wait.Call.ID, Tool: wait.Call.Name, Arguments: wait.Call.Arguments, Prompt: wait.Prompt, RequestedAt: time.Now().UTC()}
		if err := a.st.PauseTask(context.WithoutCancel(ctx), a.task.ID, a.owner, ap); err != nil {
			a.log.Error("task not paused for approval", "error", err)
		} else {
			q.observe(AttemptWaiting)
			a.log.Info("task waits for approval", "tool", ap.Tool, "call", ap.CallID)
		}
		return
	}
	if err != nil {
		q.interrupted(base, ctx, a, err)
		return
	}
	result := map[string]any{"reply": res.Reply, "stop_reason": res.StopReason, "iterations": res.Iterations, "usage": res.Usage}
	switch err := a.st.CompleteTask(context.WithoutCancel(ctx), a.task, a.owner, a.version, res.Messages, result); {
	case errors.Is(err, store.ErrConflict):
		q.observe(AttemptLost)
		a.log.Warn("task finished after its lease was lost; the other worker's result stands")
	case err != nil:
		a.log.Error("task result not saved; it will run again from its checkpoints", "error", err)
	default:
		q.observe(AttemptCompleted)
		a.log.Info("task completed", "iterations", res.Iterations)
	}
}

// interrupted ends an attempt that stopped with err. base is the queue's
// lifetime (ended: shutting down), ctx the attempt's (its cause tells a
// cancel or a lost lease).
func (q *Queue) interrupted(base, ctx context.Context, a *attempt, err error) {
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, errCanceled):
		q.finish(a, store.TaskOutcome{State: store.TaskCanceled, Error: "canceled while running"})
	case errors.Is(cause, errLeaseLost), errors.Is(err, store.ErrConflict):
		q.observe(AttemptLost)
		a.log.Warn("task lease lost; leaving it to the worker that took it over")
	case base.Err() != nil: // shutting down: hand it back, checkpoints kept
		if err := a.st.ReleaseTask(context.Background(), a.task.ID, a.owner); err != nil {
			a.log.Error("task not released at shutdown; it will be taken over after the stale threshold", "error", err)
		} else {
			q.observe(AttemptReleased)
			a.log.Info("task handed back to the queue at shutdown")
		}
	default:
		q.retry(a, err)
	}
}

// retry schedules another attempt, or fails the task onto the
// dead-letter list when its attempts are used up.
func (q *Queue) retry(a *attempt, err error) {
	task := a.task
	// The error is stored and shown to every reader of the task: URLs in
	// it (an LLM's base_url) lose their credentials.
	msg := config.RedactText(fmt.Sprintf("attempt %d of %d: %v", task.Attempts, task.MaxAttempts, err))
	if task.Attempts >= task.MaxAttempts {
		q.finish(a, store.TaskOutcome{State: store.TaskFailed, Dead: true, Error: msg})
		return
	}
	wait := a.settings.Backoff(task.Attempts)
	q.finish(a, store.TaskOutcome{State: store.TaskPending, RunAt: time.Now().Add(wait), Error: msg})
	a.log.Warn("task attempt failed; retrying", "error", err, "retry_in", wait.Round(time.Millisecond))
}

// Outcome is how an attempt ended, as Queue.Observe is told.
type Outcome string

// Outcomes of an attempt.
const (
	AttemptCompleted Outcome = "completed"
	AttemptRetried   Outcome = "retried"  // failed, to be tried again
	AttemptFailed    Outcome = "failed"   // failed for good
	AttemptCanceled  Outcome = "canceled" // canceled while running
	AttemptWaiting   Outcome = "waiting"  // paused for a human decision
	AttemptReleased  Outcome = "released" // given back uncounted (shutdown)
	AttemptLost      Outcome = "lost"     // the lease was taken over
)

func (q *Queue) observe(outcome Outcome) {
	if q.Observe != nil {
		q.Observe(outcome)
	}
}

// finish stores the attempt's outcome.
func (q *Queue) finish(a *attempt, o store.TaskOutcome) {
	err := a.st.FinishAttempt(context.Background(), a.task.ID, a.owner, o)
	switch {
	case errors.Is(err, store.ErrConflict):
		q.observe(AttemptLost)
		a.log.Warn("task lease lost before its outcome was saved", "state", o.State)
	case err != nil:
		a.log.Error("task outcome not saved", "state", o.State, "error", err)
	case o.State == store.TaskPending:
		q.observe(AttemptRetried)
	case o.State == store.TaskFailed:
		q.observe(AttemptFailed)
		a.log.Error("task failed", "error", o.Error, "dead_letter", o.Dead)
	case o.State == store.TaskCanceled:
		q.observe(AttemptCanceled)
		a.log.Info("task canceled")
	}
}
