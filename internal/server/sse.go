package server

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/hector-run/hector/internal/agent"
	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/store"
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

// sseView shows a turn as an SSE stream: "session" first, then "text",
// "tool_call" and "tool_result" events as they happen, and finally "done"
// (the same body as the JSON reply), "approval_required" or "error".
type sseView struct{ ev sseWriter }

// newSSEView returns the stream view of w, or answers 406 and returns
// false when the connection cannot stream.
func newSSEView(w http.ResponseWriter) (*sseView, bool) {
	f, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusNotAcceptable, "streaming_unsupported", "streaming is not supported on this connection")
		return nil, false
	}
	return &sseView{sseWriter{w: w, f: f}}, true
}

func (v *sseView) namesSessionEarly() bool { return true } // its first event, session

func (v *sseView) begin(sessionID, agentName string, version int64) {
	h := v.ev.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	v.ev.w.WriteHeader(http.StatusOK)
	v.ev.send("session", map[string]any{"session_id": sessionID, "agent": agentName, "config_version": version})
}

func (v *sseView) emit() func(agent.Event) {
	return func(e agent.Event) {
		switch e.Type {
		case agent.EventText:
			v.ev.send("text", map[string]string{"text": e.Text})
		case agent.EventToolCall:
			v.ev.send("tool_call", e.ToolCall)
		case agent.EventToolResult:
			v.ev.send("tool_result", map[string]any{"tool_call_id": e.ToolID, "result": e.Result, "is_error": e.IsError})
		}
	}
}

func (v *sseView) done(res messageResponse) { v.ev.send("done", res) }

func (v *sseView) waiting(t *store.Task) {
	v.ev.send("approval_required", map[string]any{"task_id": t.ID, "state": t.State, "approval": t.Approval})
}

func (v *sseView) failed(err error) { v.error(turnErrorCode(err), config.RedactText(err.Error())) }

func (v *sseView) unstored(what string) {
	v.error("database_unavailable", "the "+what+" could not be stored; retry")
}

func (v *sseView) error(code, msg string) {
	v.ev.send("error", map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
