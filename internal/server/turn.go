package server

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/hector-run/hector/internal/agent"
	"github.com/hector-run/hector/internal/llm"
	"github.com/hector-run/hector/internal/snapshot"
	"github.com/hector-run/hector/internal/store"
)

// turnView shows one REST turn to its client: as one JSON reply
// (jsonView) or as a stream of Server-Sent Events (sseView). runTurn
// calls begin once, then emit for each event of the model and its tools,
// then exactly one of done, waiting, failed or unstored.
type turnView interface {
	// namesSessionEarly reports whether begin shows the session id to the
	// client, before the turn is stored.
	namesSessionEarly() bool
	// begin is told which turn runs, before the model is called.
	begin(sessionID, agentName string, version int64)
	// emit is the turn's event hook, nil when events are not shown.
	emit() func(agent.Event)
	// done shows the finished turn, stored in its session.
	done(messageResponse)
	// waiting shows the task the turn became: it waits for a decision on
	// a tool call.
	waiting(*store.Task)
	// failed shows that the model or a tool failed the turn.
	failed(err error)
	// unstored shows that the turn ran but what it produced (what: "reply"
	// or "approval request") could not be stored.
	unstored(what string)
}

// postMessage runs one turn of an agent's session: as JSON, or as an SSE
// stream when the client accepts text/event-stream.
func (s *Server) postMessage(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot) {
	ag, req, ok := turnRequest(w, r, snap)
	if !ok {
		return
	}
	var view turnView = &jsonView{w: w}
	if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		if view, ok = newSSEView(w); !ok {
			return
		}
	}
	s.runTurn(w, r, snap, ag, req, view)
}

// runTurn is the one REST turn path. It holds the session (this process's
// lock, then the database's lease, so no task or other instance runs a
// turn on it meanwhile) from reading its history to storing the turn, runs
// the agent from the history with req's message, and stores the turn, or
// the task it became when a tool call needs approval. Errors before the
// model is called are answered in JSON; from begin on, view shows them.
func (s *Server) runTurn(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot, ag *agent.Agent, req messageRequest, view turnView) {
	ctx := r.Context()
	unlock := s.sessions.lock(req.SessionID)
	defer unlock()
	// A session this request minted is known to nobody else until the
	// response names it; a JSON response names it only once the turn is
	// stored, so no other turn can contend for it and the database lease
	// (two writes) is skipped.
	var lease *store.SessionLease
	if !req.minted || view.namesSessionEarly() {
		var err error
		if lease, err = snap.Store.TakeSession(ctx, req.SessionID); err != nil {
			s.sessionUnavailable(w, ctx, req.SessionID, err)
			return
		}
		defer lease.Release() // a no-op once the append gave it back
	}
	g := grantOf(r)
	history, err := s.history(ctx, snap.Store, req.SessionID, ag.Name, g)
	if err != nil {
		writeHTTPError(w, err)
		return
	}
	if req.minted {
		history = req.prior
	}
	view.begin(req.SessionID, ag.Name, snap.Version)
	user := llm.Message{Role: llm.RoleUser, Content: req.Message}
	turn := []llm.Message{user}
	res, err := ag.RunFrom(snap.WithDelegation(llm.WithConversation(ctx, req.SessionID)), history, []llm.Message{user},
		agent.Hooks{Save: func(m llm.Message) error { turn = append(turn, m); return nil }, Emit: view.emit()})
	var wait *agent.ApprovalRequired
	switch {
	case errors.As(err, &wait):
		if len(req.prior) > 0 { // the task resumes from the session's history
			if err := snap.Store.AppendTurn(ctx, req.SessionID, ag.Name, g.owner(), snap.Version, req.prior); err != nil {
				s.Log.ErrorContext(ctx, "store the conversation", "session", req.SessionID, "error", err)
				view.unstored("approval request")
				return
			}
		}
		if t, ok := s.waitForApproval(r, snap, ag.Name, req, turn, wait); ok {
			view.waiting(t)
		} else {
			view.unstored("approval request")
		}
	case err != nil:
		s.Log.WarnContext(r.Context(), "turn failed", "agent", ag.Name, "error", err)
		view.failed(err)
	default:
		stored := res.Messages
		if len(req.prior) > 0 {
			stored = append(append([]llm.Message(nil), req.prior...), res.Messages...)
		}
		save := func() error {
			return snap.Store.AppendTurn(ctx, req.SessionID, ag.Name, g.owner(), snap.Version, stored)
		}
		if lease != nil {
			save = func() error {
				return snap.Store.AppendTurnReleasing(ctx, lease, ag.Name, g.owner(), snap.Version, stored)
			}
		}
		if err := save(); err != nil {
			s.Log.ErrorContext(r.Context(), "store turn", "session", req.SessionID, "error", err)
			view.unstored("reply")
			return
		}
		view.done(response(req.SessionID, ag.Name, snap.Version, res))
	}
}

// sessionUnavailable answers a turn whose session lease was not taken:
// the client left while it waited, or the database failed.
func (s *Server) sessionUnavailable(w http.ResponseWriter, ctx context.Context, id string, err error) {
	if ctx.Err() != nil {
		writeError(w, 499, "client_closed", "the client went away")
		return
	}
	s.Log.ErrorContext(ctx, "lock session", "session", id, "error", err)
	errUnavailable.write(w)
}

func (v *jsonView) namesSessionEarly() bool { return false }

// jsonView answers a turn with one JSON body.
type jsonView struct {
	w         http.ResponseWriter
	sessionID string
	agent     string
	version   int64
}

func (v *jsonView) begin(sessionID, agentName string, version int64) {
	v.sessionID, v.agent, v.version = sessionID, agentName, version
}

func (v *jsonView) emit() func(agent.Event) { return nil }

func (v *jsonView) done(res messageResponse) { writeJSON(v.w, http.StatusOK, res) }

func (v *jsonView) waiting(t *store.Task) {
	v.w.Header().Set("Location", "/v1/tasks/"+t.ID)
	writeJSON(v.w, http.StatusAccepted, map[string]any{"session_id": v.sessionID, "agent": v.agent, "state": t.State,
		"task_id": t.ID, "approval": t.Approval, "config_version": v.version})
}

// failed answers 499 when the client went away (nobody reads it; it is
// logged as such), else 502 with the failure's code.
func (v *jsonView) failed(err error) {
	if errors.Is(err, context.Canceled) {
		writeError(v.w, 499, "client_closed", "the client went away")
		return
	}
	writeError(v.w, http.StatusBadGateway, turnErrorCode(err), err.Error())
}

func (v *jsonView) unstored(string) { errUnavailable.write(v.w) }
