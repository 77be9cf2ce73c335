package a2ahttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2asrv"

	"github.com/hector-run/hector/internal/live"
	"github.com/hector-run/hector/internal/observe"
	"github.com/hector-run/hector/internal/snapshot"
	"github.com/hector-run/hector/internal/store"
)

// handler implements the protocol's methods on Hector's durable tasks,
// for the agent named in the request's context. One handler serves every
// agent, binding and protocol version.
type handler struct{ s *Service }

var _ a2asrv.RequestHandler = handler{}

// caller is who sent a request, set by the HTTP layer.
type caller struct {
	agent string
	Caller
}

type callerKey struct{}

func callerFrom(ctx context.Context) caller {
	c, _ := ctx.Value(callerKey{}).(caller)
	return c
}

// pinned runs f with the current snapshot held.
func (s *Service) pinned(f func(*snapshot.Snapshot) error) error {
	snap, release := s.Runtime.Acquire()
	defer release()
	if snap == nil {
		return a2a.NewError(a2a.ErrServerError, "the server is shutting down")
	}
	return f(snap)
}

// hasAgent checks that the caller's tenant (the main one or an app) has
// the caller's agent now.
func (s *Service) hasAgent(c caller) error {
	rt := s.Runtime
	if t := c.Owner.Tenant; t != "" {
		rt = nil
		if s.Tenants != nil {
			rt = s.Tenants.Runtime(t)
		}
	}
	var snap *snapshot.Snapshot
	release := func() {}
	if rt != nil {
		snap, release = rt.Acquire()
	}
	defer release()
	if snap == nil || snap.Agents[c.agent] == nil {
		return a2a.NewError(a2a.ErrInvalidParams, fmt.Sprintf("agent %q is not in the configuration", c.agent))
	}
	return nil
}

// load reads a task of the caller's agent, and its checkpoints.
func (s *Service) load(ctx context.Context, id a2a.TaskID) (*store.Task, []store.Step, error) {
	return s.read(ctx, id, true)
}

// read is load, with the checkpoints only if withSteps.
func (s *Service) read(ctx context.Context, id a2a.TaskID, withSteps bool) (*store.Task, []store.Step, error) {
	var t *store.Task
	var steps []store.Step
	err := s.pinned(func(snap *snapshot.Snapshot) error {
		var err error
		t, err = snap.Store.GetTask(ctx, string(id))
		if c := callerFrom(ctx); errors.Is(err, store.ErrNotFound) || (err == nil && (t.Agent != c.agent || !c.Scope.Sees(t.Owner))) {
			return a2a.NewError(a2a.ErrTaskNotFound, fmt.Sprintf("task %q not found for agent %q", id, callerFrom(ctx).agent))
		}
		if err != nil {
			return s.internal("load task", err)
		}
		if !withSteps {
			return nil
		}
		steps, err = snap.Store.Steps(ctx, t.ID)
		if err != nil {
			return s.internal("load task steps", err)
		}
		return nil
	})
	return t, steps, err
}

// internal logs err and returns a protocol error that does not leak it.
func (s *Service) internal(what string, err error) error {
	s.Log.Error("a2a: "+what, "error", err)
	return a2a.NewError(a2a.ErrInternalError, what+" failed")
}

func (h handler) GetTask(ctx context.Context, req *a2a.GetTaskRequest) (*a2a.Task, error) {
	if err := checkHistoryLength(req.HistoryLength); err != nil {
		return nil, err
	}
	t, steps, err := h.s.load(ctx, req.ID)
	if err != nil {
		return nil, err
	}
	return view(t, steps, req.HistoryLength), nil
}

func (h handler) ListTasks(ctx context.Context, req *a2a.ListTasksRequest) (*a2a.ListTasksResponse, error) {
	c := callerFrom(ctx)
	f := store.TaskFilter{Agent: c.agent, SessionID: req.ContextID, PageToken: req.PageToken, Limit: req.PageSize, Scope: &c.Scope}
	if req.PageSize < 0 || req.PageSize > 100 {
		return nil, a2a.NewError(a2a.ErrInvalidParams, fmt.Sprintf("pageSize: want 1 to 100, got %d", req.PageSize))
	}
	if err := checkHistoryLength(req.HistoryLength); err != nil {
		return nil, err
	}
	if req.Status != a2a.TaskStateUnspecified {
		st, ok := storeState(req.Status)
		if !ok {
			return nil, a2a.NewError(a2a.ErrInvalidParams, fmt.Sprintf("status: %q is not a state Hector tasks take", req.Status))
		}
		f.State = st
	}
	if req.StatusTimestampAfter != nil {
		f.UpdatedAfter = *req.StatusTimestampAfter // filtered before paging, so pages are full and totalSize agrees
	}
	resp := &a2a.ListTasksResponse{Tasks: []*a2a.Task{}}
	err := h.s.pinned(func(snap *snapshot.Snapshot) error {
		tasks, next, err := snap.Store.ListTasks(ctx, f)
		if errors.Is(err, store.ErrBadPageToken) {
			return a2a.NewError(a2a.ErrInvalidParams, "pageToken: not a token from this server")
		}
		if err != nil {
			return h.s.internal("list tasks", err)
		}
		total, err := snap.Store.CountMatching(ctx, f)
		if err != nil {
			return h.s.internal("count tasks", err)
		}
		zero := 0
		for _, t := range tasks {
			v := view(t, nil, &zero)
			if !req.IncludeArtifacts {
				v.Artifacts = nil
			}
			resp.Tasks = append(resp.Tasks, v)
		}
		resp.NextPageToken, resp.TotalSize, resp.PageSize = next, total, len(resp.Tasks)
		return nil
	})
	return resp, err
}

func (h handler) CancelTask(ctx context.Context, req *a2a.CancelTaskRequest) (*a2a.Task, error) {
	t, _, err := h.s.read(ctx, req.ID, false)
	if err != nil {
		return nil, err
	}
	// As for REST: the owner may cancel its task, the operator role any.
	if c := callerFrom(ctx); !c.MayApprove && t.Principal != c.Name {
		return nil, a2a.NewError(a2a.ErrUnauthorized, fmt.Sprintf("cancelling another principal's task needs the operator role; %s has less", c.Name))
	}
	err = h.s.pinned(func(snap *snapshot.Snapshot) error {
		_, err := snap.Store.CancelTask(ctx, string(req.ID))
		if errors.Is(err, store.ErrConflict) {
			return a2a.NewError(a2a.ErrTaskNotCancelable, err.Error())
		}
		if err != nil {
			return h.s.internal("cancel task", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// A running task stops at its worker's next look, at once when the
	// worker is told of the change: wait a little for it.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	t, steps, err := h.s.wait(wctx, req.ID, func(t *store.Task) bool { return t.State != store.TaskRunning })
	if err != nil && wctx.Err() == nil {
		return nil, err
	}
	if t == nil {
		return h.GetTask(ctx, &a2a.GetTaskRequest{ID: req.ID})
	}
	return view(t, steps, nil), nil
}

func (h handler) SendMessage(ctx context.Context, req *a2a.SendMessageRequest) (a2a.SendMessageResult, error) {
	t, err := h.s.accept(ctx, req)
	if err != nil {
		return nil, err
	}
	var historyLength *int
	if req.Config != nil {
		historyLength = req.Config.HistoryLength
		if req.Config.ReturnImmediately {
			_, steps, err := h.s.load(ctx, a2a.TaskID(t.ID))
			if err != nil {
				return nil, err
			}
			return view(t, steps, historyLength), nil
		}
	}
	t, steps, err := h.s.wait(ctx, a2a.TaskID(t.ID), final)
	if err != nil {
		return nil, err
	}
	return view(t, steps, historyLength), nil
}

func (h handler) SendStreamingMessage(ctx context.Context, req *a2a.SendMessageRequest) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {
		// Follow the task's text before it can start, so that no model
		// output is missed.
		id := store.NewTaskID()
		if req.Message != nil && req.Message.TaskID != "" {
			id = string(req.Message.TaskID)
		}
		text := h.s.followText(id)
		t, err := h.s.acceptAs(ctx, req, id)
		if err != nil {
			if text != nil {
				text.Stop()
			}
			yield(nil, err)
			return
		}
		h.s.follow(ctx, a2a.TaskID(t.ID), text, yield)
	}
}

// followText subscribes to the model text of task id, when this process
// has a hub for it.
func (s *Service) followText(id string) *live.Sub {
	if s.Live == nil {
		return nil
	}
	return s.Live.Follow(id)
}

// SubscribeToTask streams a task that is not finished. The HTTP layer
// checks that before the stream opens (see subscribable), so that a
// refusal is a plain error response; the check here covers a task that
// finished in between.
func (h handler) SubscribeToTask(ctx context.Context, req *a2a.SubscribeToTaskRequest) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {
		if err := h.s.subscribable(ctx, req.ID); err != nil {
			yield(nil, err)
			return
		}
		h.s.follow(ctx, req.ID, h.s.followText(string(req.ID)), yield)
	}
}

// subscribable returns nil when the caller's agent has task id and it is
// not finished; else TaskNotFound, or UnsupportedOperation for a finished
// task, as A2A asks.
func (s *Service) subscribable(ctx context.Context, id a2a.TaskID) error {
	t, _, err := s.read(ctx, id, false)
	if err != nil {
		return err
	}
	if t.State == store.TaskCompleted || t.State == store.TaskFailed || t.State == store.TaskCanceled {
		return a2a.NewError(a2a.ErrUnsupportedOperation, fmt.Sprintf("task %s is %s: there is nothing to subscribe to", t.ID, t.State))
	}
	return nil
}

// checkHistoryLength refuses a negative historyLength.
func checkHistoryLength(n *int) error {
	if n != nil && *n < 0 {
		return a2a.NewError(a2a.ErrInvalidParams, fmt.Sprintf("historyLength: want 0 or more, got %d", *n))
	}
	return nil
}

func (h handler) GetExtendedAgentCard(ctx context.Context, req *a2a.GetExtendedAgentCardRequest) (*a2a.AgentCard, error) {
	return nil, a2a.ErrExtendedCardNotConfigured
}

// accept starts the task a message asks for: a new task, or, for a
// message naming a task that waits for approval, the decision on it.
func (s *Service) accept(ctx context.Context, req *a2a.SendMessageRequest) (*store.Task, error) {
	return s.acceptAs(ctx, req, store.NewTaskID())
}

// acceptAs is accept with the ID a new task gets.
func (s *Service) acceptAs(ctx context.Context, req *a2a.SendMessageRequest, id string) (*store.Task, error) {
	c := callerFrom(ctx)
	if err := checkMessage(req); err != nil {
		return nil, err
	}
	msg := req.Message
	if msg.TaskID != "" {
		return s.answer(ctx, req)
	}
	var pc *a2a.PushConfig
	if req.Config != nil && req.Config.PushConfig != nil {
		// The webhook is checked before the task exists, and stored once
		// it does.
		pc = req.Config.PushConfig
		if err := s.pinned(func(snap *snapshot.Snapshot) error {
			return checkWebhook(ctx, pc.URL, snap.Config.A2A.Push.AllowPrivateNetworks)
		}); err != nil {
			return nil, err
		}
	}
	text, _ := textOf(msg.Parts) // checked
	t := &store.Task{ID: id, Agent: c.agent, SessionID: msg.ContextID, Owner: c.Owner, Input: text, MessageID: msg.ID, MaxAttempts: s.Queue.MaxAttempts(),
		TraceParent: observe.TraceParent(ctx)}
	if t.SessionID == "" {
		t.SessionID = store.NewSessionID()
	}
	if err := s.hasAgent(c); err != nil {
		return nil, err
	}
	err := s.pinned(func(snap *snapshot.Snapshot) error {
		if sess, err := snap.Store.Session(ctx, t.SessionID); err == nil && (!c.Scope.Sees(sess.Owner) || !sess.Owner.MayContinue(c.Owner)) {
			return a2a.NewError(a2a.ErrInvalidParams, fmt.Sprintf("message.contextId: context %q is not yours; choose another contextId", t.SessionID))
		} else if err == nil && sess.Agent != c.agent {
			return a2a.NewError(a2a.ErrInvalidParams, fmt.Sprintf("message.contextId: context %q belongs to agent %q", t.SessionID, sess.Agent))
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return s.internal("load session", err)
		}
		if err := snap.Store.CreateTask(ctx, t); err != nil {
			return s.internal("create task", err)
		}
		if pc != nil {
			c := *pc
			c.TaskID = a2a.TaskID(t.ID)
			if _, err := s.savePushConfig(ctx, snap, &c); err != nil {
				// Refused (a limit): the message is refused, and its task
				// never runs.
				if _, cerr := snap.Store.CancelTask(context.WithoutCancel(ctx), t.ID); cerr != nil {
					s.Log.Warn("a2a: cancel a task whose webhook was refused", "task", t.ID, "error", cerr)
				}
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.Queue.Wake()
	return t, nil
}

// checkMessage checks what a message must hold, before anything is
// stored: an ID, the user role, a non-negative historyLength; for a new
// task, text to send and a usable contextId.
func checkMessage(req *a2a.SendMessageRequest) error {
	msg := req.Message
	if msg == nil {
		return a2a.NewError(a2a.ErrInvalidParams, "message: required")
	}
	if msg.ID == "" {
		return a2a.NewError(a2a.ErrInvalidParams, "message.messageId: required")
	}
	if msg.Role == a2a.MessageRoleUnspecified {
		return a2a.NewError(a2a.ErrInvalidParams, "message.role: required (the sender's role: user)")
	}
	if msg.Role != a2a.MessageRoleUser {
		return a2a.NewError(a2a.ErrInvalidParams, fmt.Sprintf("message.role: want %s (user), got %q", a2a.MessageRoleUser, string(msg.Role)))
	}
	if req.Config != nil {
		if err := checkHistoryLength(req.Config.HistoryLength); err != nil {
			return a2a.NewError(a2a.ErrInvalidParams, "configuration."+err.Error())
		}
	}
	if msg.TaskID != "" {
		return nil // a decision: see answer
	}
	if _, err := textOf(msg.Parts); err != nil {
		return err
	}
	if c := msg.ContextID; c != "" && !store.ValidSessionID(c) { // a context is a session: the same rule as REST
		return a2a.NewError(a2a.ErrInvalidParams, "message.contextId: "+store.SessionIDRule)
	}
	return nil
}

// answer applies a message sent to an existing task: only a task waiting
// for approval takes one, and the message is the decision. A webhook the
// message names is registered on the task first.
func (s *Service) answer(ctx context.Context, req *a2a.SendMessageRequest) (*store.Task, error) {
	c := callerFrom(ctx)
	t, _, err := s.load(ctx, req.Message.TaskID)
	if err != nil {
		return nil, err
	}
	if t.State != store.TaskInputRequired || t.Approval == nil {
		return nil, a2a.NewError(a2a.ErrInvalidParams, fmt.Sprintf("message.taskId: task %s is %s; only a task in input-required takes a message", t.ID, state(t)))
	}
	if req.Message.ContextID != "" && req.Message.ContextID != t.SessionID {
		return nil, a2a.NewError(a2a.ErrInvalidParams, fmt.Sprintf("message.contextId: task %s is in context %q", t.ID, t.SessionID))
	}
	if !c.MayApprove {
		return nil, a2a.NewError(a2a.ErrUnauthorized, fmt.Sprintf("deciding on a tool call needs the operator role; %s has less", c.Name))
	}
	d, err := decision(req.Message.Parts, t.Approval.Tool)
	if err != nil {
		return nil, err
	}
	d.By = c.Name
	err = s.pinned(func(snap *snapshot.Snapshot) error {
		if req.Config != nil && req.Config.PushConfig != nil {
			pc := *req.Config.PushConfig
			pc.TaskID = a2a.TaskID(t.ID)
			if _, err := s.savePushConfig(ctx, snap, &pc); err != nil {
				return err
			}
		}
		var err error
		t, err = snap.Store.DecideTask(ctx, t.ID, t.Approval.CallID, d)
		if errors.Is(err, store.ErrConflict) {
			return a2a.NewError(a2a.ErrInvalidParams, err.Error())
		}
		if err != nil {
			return s.internal("decide task", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.Queue.Wake()
	return t, nil
}

// decision reads an approver's answer: a data part {"approved": bool,
// "reason": "…"}, or text "approve" / "reject" (or yes / no), optionally
// followed by ": reason".
func decision(parts a2a.ContentParts, tool string) (store.Decision, error) {
	for _, p := range parts {
		if d, ok := p.Data().(map[string]any); ok {
			if v, ok := d["approved"].(bool); ok {
				reason, _ := d["reason"].(string)
				return store.Decision{Approved: v, Reason: reason}, nil
			}
		}
	}
	text, _ := textOf(parts)
	word, reason, _ := strings.Cut(strings.TrimSpace(text), ":")
	switch strings.ToLower(strings.TrimSpace(word)) {
	case "approve", "approved", "yes", "y":
		return store.Decision{Approved: true, Reason: strings.TrimSpace(reason)}, nil
	case "reject", "rejected", "deny", "denied", "no", "n":
		return store.Decision{Approved: false, Reason: strings.TrimSpace(reason)}, nil
	}
	return store.Decision{}, a2a.NewError(a2a.ErrInvalidParams, fmt.Sprintf(
		"message.parts: the task waits for approval of tool %s: answer \"approve\" or \"reject: REASON\", or a data part {\"approved\": true|false, \"reason\": \"…\"}", tool))
}

// textOf joins a message's text parts; data parts are added as JSON.
// Files are refused: no Hector model input takes them yet.
func textOf(parts a2a.ContentParts) (string, error) {
	var b strings.Builder
	for i, p := range parts {
		if p == nil {
			continue
		}
		switch c := p.Content.(type) {
		case a2a.Text:
			b.WriteString(string(c))
		case a2a.Data:
			j, err := json.Marshal(c.Value)
			if err != nil {
				return "", a2a.NewError(a2a.ErrInvalidParams, fmt.Sprintf("message.parts[%d]: %v", i, err))
			}
			b.Write(j)
		default:
			return "", a2a.NewError(a2a.ErrUnsupportedContentType, fmt.Sprintf("message.parts[%d]: only text and data parts are accepted", i))
		}
		if i < len(parts)-1 {
			b.WriteString("\n")
		}
	}
	if strings.TrimSpace(b.String()) == "" {
		return "", a2a.NewError(a2a.ErrInvalidParams, "message.parts: no text to send to the agent")
	}
	return b.String(), nil
}

// wait returns the task once done(task) holds, reading it again whenever
// it changes (and every half second, for changes SQLite does not
// announce across processes).
func (s *Service) wait(ctx context.Context, id a2a.TaskID, done func(*store.Task) bool) (*store.Task, []store.Step, error) {
	var out *store.Task
	err := s.watch(ctx, id, false, sideline{}, func(t *store.Task, _ []store.Step) bool {
		out = t
		return done(t)
	})
	if err != nil {
		return out, nil, err
	}
	t, steps, err := s.load(ctx, id) // the steps once, at the end
	return t, steps, err
}

// follow streams a task: the task as it is, then an event per change,
// until it needs the client (input-required) or finishes. While a worker
// of this process runs the task, the model's text arrives as it is
// generated, as chunks of the artifact "response": the first chunk of
// each model message replaces what the artifact held, the next ones
// append. When the turn completes, the reply replaces it all, as the last
// chunk, so the artifact ends as the reply whatever was streamed.
func (s *Service) follow(ctx context.Context, id a2a.TaskID, text *live.Sub, yield func(a2a.Event, error) bool) {
	var tr *tracker
	var contextID string
	fresh := true // the next text starts a model message
	stream := func() bool {
		for _, piece := range text.Take() {
			ev := &a2a.TaskArtifactUpdateEvent{TaskID: id, ContextID: contextID, Append: !fresh,
				Artifact: &a2a.Artifact{ID: ResponseArtifact, Name: "response", Parts: a2a.ContentParts{a2a.NewTextPart(piece)}}}
			fresh = false
			if !yield(ev, nil) {
				return false
			}
		}
		return true
	}
	var side sideline
	if text != nil {
		defer text.Stop()
		side = sideline{ready: text.Ready(), do: stream}
	}
	err := s.watch(ctx, id, true, side, func(t *store.Task, steps []store.Step) bool {
		contextID = t.SessionID
		if tr == nil {
			tr = newTracker(t, steps)
			return !yield(view(t, steps, nil), nil) || final(t)
		}
		// Text first: a model message's text is published before the
		// message is saved, so it goes out before the checkpoint's event.
		if text != nil && !stream() {
			return true
		}
		seq := tr.seq
		for _, e := range tr.events(t, steps) {
			if !yield(e, nil) {
				return true
			}
		}
		if tr.seq != seq {
			fresh = true // a message was saved: the next text is a new one
		}
		return final(t)
	})
	if err != nil && ctx.Err() == nil {
		yield(nil, err)
	}
}

// sideline is work a watch does whenever ready fires, between readings
// of the task; do returns false to end the watch. The zero value never
// fires.
type sideline struct {
	ready <-chan struct{}
	do    func() bool
}

// watch calls f with the task (and, if withSteps, its checkpoints) now
// and after every change until f returns true, ctx ends, or reading
// fails; side runs in between.
func (s *Service) watch(ctx context.Context, id a2a.TaskID, withSteps bool, side sideline, f func(*store.Task, []store.Step) bool) error {
	var w follower
	defer w.close()
	tick := time.NewTicker(s.pollInterval())
	defer tick.Stop()
	for {
		// The snapshot is taken afresh each time: a stream outlives reloads.
		err := s.pinned(func(snap *snapshot.Snapshot) error {
			w.follow(snap.Store, func(st *store.Store) (<-chan struct{}, func()) { return st.WatchTask(string(id)) })
			return nil
		})
		if err != nil {
			return err
		}
		t, steps, err := s.read(ctx, id, withSteps)
		if err != nil {
			return err
		}
		if f(t, steps) {
			return nil
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-w.changes:
				break wait
			case <-tick.C:
				break wait
			case <-side.ready:
				if !side.do() {
					return nil
				}
			}
		}
	}
}

// follower keeps a watch on the store of the current configuration,
// moving it when a reload changes the database.
type follower struct {
	watched *store.Store
	changes <-chan struct{}
	stop    func()
}

func (f *follower) follow(st *store.Store, watch func(*store.Store) (<-chan struct{}, func())) {
	if st == f.watched {
		return
	}
	f.close()
	f.changes, f.stop = watch(st)
	f.watched = st
}

func (f *follower) close() {
	if f.stop != nil {
		f.stop()
	}
}
