package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/hector-run/hector/internal/config"
	"net/http"

	"github.com/hector-run/hector/internal/agent"
	"github.com/hector-run/hector/internal/llm"
	"github.com/hector-run/hector/internal/snapshot"
)

// sseWriter writes Server-Sent Events, flushing after each.
type sseWriter struct {
	w http.ResponseWriter
	f http.Flusher
}

func (e sseWriter) send(event string, data any) {
	b, _ := json.Marshal(data)
	fmt.Fprintf(e.w, "event: %s\ndata: %s\n\n", event, b)
	e.f.Flush()
}

// stream runs a turn as an SSE stream: "session" first, then "text",
// "tool_call" and "tool_result" events as they happen, and finally "done"
// (the same body as the JSON reply) or "error".
func (s *Server) stream(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot, ag *agent.Agent, req messageRequest, history []llm.Message) {
	f, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusNotAcceptable, "streaming_unsupported", "streaming is not supported on this connection")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ev := sseWriter{w: w, f: f}
	ev.send("session", map[string]any{"session_id": req.SessionID, "agent": ag.Name, "config_version": snap.Version})
	var turn []llm.Message
	res, err := ag.RunFrom(snap.WithDelegation(llm.WithConversation(r.Context(), req.SessionID)), history, []llm.Message{{Role: llm.RoleUser, Content: req.Message}}, agent.Hooks{
		Save: func(m llm.Message) error { turn = append(turn, m); return nil },
		Emit: func(e agent.Event) {
			switch e.Type {
			case "text":
				ev.send("text", map[string]string{"text": e.Text})
			case "tool_call":
				ev.send("tool_call", e.ToolCall)
			case "tool_result":
				ev.send("tool_result", map[string]any{"tool_call_id": e.ToolID, "result": e.Result, "is_error": e.IsError})
			}
		}})
	var wait *agent.ApprovalRequired
	if errors.As(err, &wait) {
		t, ok := s.waitForApproval(w, r, snap, ag.Name, req, append([]llm.Message{{Role: llm.RoleUser, Content: req.Message}}, turn...), wait)
		if !ok {
			ev.send("error", map[string]any{"error": map[string]string{"code": "database_unavailable", "message": "the approval request could not be stored; retry"}})
			return
		}
		ev.send("approval_required", map[string]any{"task_id": t.ID, "state": t.State, "approval": t.Approval})
		return
	}
	if err != nil {
		s.Log.Warn("turn failed", "agent", ag.Name, "error", err)
		ev.send("error", map[string]any{"error": map[string]string{"code": turnErrorCode(err), "message": config.RedactText(err.Error())}})
		return
	}
	if err := snap.Store.AppendTurn(r.Context(), req.SessionID, ag.Name, snap.Version, res.Messages); err != nil {
		s.Log.Error("store turn", "session", req.SessionID, "error", err)
		ev.send("error", map[string]any{"error": map[string]string{"code": "database_unavailable", "message": "the reply could not be stored; retry"}})
		return
	}
	ev.send("done", response(req.SessionID, ag.Name, snap.Version, res))
}
