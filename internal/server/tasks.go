package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hector-run/hector/internal/agent"
	"github.com/hector-run/hector/internal/llm"
	"github.com/hector-run/hector/internal/observe"
	"github.com/hector-run/hector/internal/queue"
	"github.com/hector-run/hector/internal/snapshot"
	"github.com/hector-run/hector/internal/store"
)

// Queue is what the task routes need of the task queue.
type Queue interface {
	Wake()
	MaxAttempts() int
	Settings() queue.Settings
}

func (s *Server) createTask(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot) {
	if s.Queue == nil {
		writeError(w, http.StatusServiceUnavailable, "queue_unavailable", "this server runs no task queue")
		return
	}
	ag, req, ok := turnRequest(w, r, snap)
	if !ok {
		return
	}
	g := grantOf(r)
	if _, err := s.history(r.Context(), snap.Store, req.SessionID, ag.Name, g); err != nil {
		writeHTTPError(w, err)
		return
	}
	t := &store.Task{ID: store.NewTaskID(), Agent: ag.Name, SessionID: req.SessionID, Owner: g.owner(), Input: req.Message, MaxAttempts: s.Queue.MaxAttempts(),
		TraceParent: observe.TraceParent(r.Context())}
	if err := snap.Store.CreateTask(r.Context(), t); err != nil {
		s.Log.ErrorContext(r.Context(), "create task", "error", err)
		errUnavailable.write(w)
		return
	}
	s.Queue.Wake()
	w.Header().Set("Location", "/v1/tasks/"+t.ID)
	writeJSON(w, http.StatusAccepted, t)
}

// taskView is a task with its checkpoints.
type taskView struct {
	*store.Task
	Steps []store.Step `json:"steps"`
}

func (s *Server) getTask(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot) {
	t, ok := s.loadTask(w, r, snap)
	if !ok {
		return
	}
	steps, err := snap.Store.Steps(r.Context(), t.ID)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "task steps", "task", t.ID, "error", err)
		errUnavailable.write(w)
		return
	}
	if steps == nil {
		steps = []store.Step{}
	}
	writeJSON(w, http.StatusOK, taskView{t, steps})
}

// loadTask reads the task the path names, when the caller may see it:
// another principal's task is 404 like one that does not exist.
func (s *Server) loadTask(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot) (*store.Task, bool) {
	id := r.PathValue("id")
	t, err := snap.Store.GetTask(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || err == nil && !grantOf(r).scope().Sees(t.Owner) {
		writeError(w, http.StatusNotFound, "task_not_found", fmt.Sprintf("no task %q", id))
		return nil, false
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "load task", "task", id, "error", err)
		errUnavailable.write(w)
		return nil, false
	}
	return t, true
}

func (s *Server) listTasks(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot) {
	s.writeTaskList(w, r, snap, false)
}

func (s *Server) deadLetters(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot) {
	s.writeTaskList(w, r, snap, true)
}

// writeTaskList serves ?status=&agent=&limit=&page_token=.
func (s *Server) writeTaskList(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot, dead bool) {
	q := r.URL.Query()
	sc := grantOf(r).scope()
	f := store.TaskFilter{State: store.TaskState(q.Get("status")), Agent: q.Get("agent"), PageToken: q.Get("page_token"), Dead: dead, Scope: &sc}
	if f.State != "" && !slices.Contains(store.TaskStates, f.State) {
		writeError(w, http.StatusBadRequest, "invalid_parameter",
			fmt.Sprintf("parameter status: %q is not one of %s", f.State, strings.Join(store.TaskStateNames(), ", ")))
		return
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			writeError(w, http.StatusBadRequest, "invalid_parameter", fmt.Sprintf("parameter limit: want 1 to 500, got %q", l))
			return
		}
		f.Limit = n
	}
	tasks, next, err := snap.Store.ListTasks(r.Context(), f)
	if errors.Is(err, store.ErrBadPageToken) {
		writeError(w, http.StatusBadRequest, "invalid_parameter", "parameter page_token: not a token from this API")
		return
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "list tasks", "error", err)
		errUnavailable.write(w)
		return
	}
	if tasks == nil {
		tasks = []*store.Task{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tasks": tasks, "next_page_token": next})
}

func (s *Server) requeueTask(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot) {
	s.changeTask(w, r, snap, snap.Store.RequeueTask)
	if s.Queue != nil {
		s.Queue.Wake()
	}
}

// cancelTask cancels a task: its owner may, and the operator role may
// cancel any task of its tenant.
func (s *Server) cancelTask(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot) {
	t, ok := s.loadTask(w, r, snap)
	if !ok {
		return
	}
	if g := grantOf(r); t.Principal != g.who.ID() && !g.who.Has(operator) {
		writeError(w, http.StatusForbidden, "forbidden", "cancelling another principal's task needs the operator role; "+g.who.ID()+" has "+string(g.who.Role))
		return
	}
	s.changeTask(w, r, snap, snap.Store.CancelTask)
}

// changeTask applies change to the task the path names, once loadTask
// found the caller may see it.
func (s *Server) changeTask(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot, change func(ctx context.Context, id string) (*store.Task, error)) {
	if _, ok := s.loadTask(w, r, snap); !ok {
		return
	}
	id := r.PathValue("id")
	t, err := change(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "task_not_found", fmt.Sprintf("no task %q", id))
	case errors.Is(err, store.ErrConflict):
		writeError(w, http.StatusConflict, "task_state", err.Error())
	case err != nil:
		s.Log.ErrorContext(r.Context(), "change task", "task", id, "error", err)
		errUnavailable.write(w)
	default:
		writeJSON(w, http.StatusOK, t)
	}
}

type decisionRequest struct {
	Reason string `json:"reason"`
	CallID string `json:"call_id"` // optional: refuse if the task now waits on another call
}

func (s *Server) approveTask(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot) {
	s.decide(w, r, snap, true)
}

func (s *Server) rejectTask(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot) {
	s.decide(w, r, snap, false)
}

// decide records an approver's verdict; the body is optional.
func (s *Server) decide(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot, approved bool) {
	var req decisionRequest
	if r.ContentLength != 0 && !decodeBody(w, r, &req) {
		return
	}
	by := actor(r)
	s.changeTask(w, r, snap, func(ctx context.Context, id string) (*store.Task, error) {
		return snap.Store.DecideTask(ctx, id, req.CallID, store.Decision{Approved: approved, Reason: req.Reason, By: by})
	})
	if s.Queue != nil {
		s.Queue.Wake()
	}
}

// waitForApproval turns a synchronous turn that reached a call needing
// approval into a task waiting in input_required, with the turn so far as
// its checkpoints; false when it could not be stored (logged).
func (s *Server) waitForApproval(r *http.Request, snap *snapshot.Snapshot, agentName string, req messageRequest,
	turn []llm.Message, wait *agent.ApprovalRequired) (*store.Task, bool) {
	maxAttempts := 4
	if s.Queue != nil {
		maxAttempts = s.Queue.MaxAttempts()
	}
	t := &store.Task{ID: store.NewTaskID(), Agent: agentName, SessionID: req.SessionID, Owner: grantOf(r).owner(), Input: req.Message, MaxAttempts: maxAttempts,
		TraceParent: observe.TraceParent(r.Context())}
	a := store.Approval{CallID: wait.Call.ID, Tool: wait.Call.Name, Arguments: wait.Call.Arguments, Prompt: wait.Prompt, RequestedAt: time.Now().UTC()}
	if err := snap.Store.CreateWaitingTask(context.WithoutCancel(r.Context()), t, turn, a); err != nil {
		s.Log.ErrorContext(r.Context(), "create waiting task", "error", err)
		return nil, false
	}
	s.Log.InfoContext(r.Context(), "turn waits for approval", "task", t.ID, "agent", agentName, "tool", a.Tool)
	return t, true
}
