package server

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hector-run/hector/internal/agent"
	"github.com/hector-run/hector/internal/llm"
	"github.com/hector-run/hector/internal/snapshot"
	"github.com/hector-run/hector/internal/store"
)

// POST /v1/responses: the OpenAI Responses API's shape of a turn. A
// response's id names its session (resp_RANDOM_SESSION), so
// previous_response_id continues that session, as the Responses API
// chains a conversation; without it the input's earlier messages start a
// new one, as in a chat completion (docs/openai-api.md).

// responsesRequest is the part of a Responses request Hector reads.
type responsesRequest struct {
	Model              string          `json:"model"`
	Input              json.RawMessage `json:"input"`
	PreviousResponseID string          `json:"previous_response_id"`
	Instructions       string          `json:"instructions"`
	Stream             bool            `json:"stream"`
	Tools              json.RawMessage `json:"tools"`
}

// responseID names a response of session.
func responseID(session string) string { return "resp_" + rand.Text() + "_" + session }

// sessionOfResponse is the session a response id names, or "".
func sessionOfResponse(id string) string {
	parts := strings.SplitN(id, "_", 3)
	if len(parts) != 3 || parts[0] != "resp" || !store.ValidSessionID(parts[2]) {
		return ""
	}
	return parts[2]
}

// responses answers POST /v1/responses with one turn.
func (s *Server) responses(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot) {
	var req responsesRequest
	ag, ok := decodeForModel(w, r, snap, "Responses", &req, &req.Model)
	if !ok {
		return
	}
	msgs, ok := readResponsesInput(w, req)
	if !ok {
		return
	}
	session := ""
	if req.PreviousResponseID != "" {
		if session = sessionOfResponse(req.PreviousResponseID); session == "" {
			badChat(w, "previous_response_id", "%q is not a response of this server", req.PreviousResponseID)
			return
		}
	}
	turn, ok := turnFromMessages(w, msgs, "input", session)
	if !ok {
		return
	}
	s.runTurn(w, r, snap, ag, turn, &responsesView{chatView: &chatView{w: w, prefix: appPrefix(r), model: req.Model, created: time.Now().Unix()}, previous: req.PreviousResponseID})
}

// readResponsesInput reads input: a string (one user message) or a list
// of messages. What Hector does not do is refused, naming the field.
func readResponsesInput(w http.ResponseWriter, req responsesRequest) ([]chatMessage, bool) {
	switch {
	case req.Stream:
		badChat(w, "stream", "streaming is not offered on /v1/responses: use /v1/chat/completions with stream: true")
		return nil, false
	case req.Instructions != "":
		badChat(w, "instructions", "instructions are not accepted: the agent's instruction is its configuration's")
		return nil, false
	case toolsGiven(req.Tools):
		badChat(w, "tools", "tools are not accepted: the agent's tools are its configuration's")
		return nil, false
	}
	var text string
	if json.Unmarshal(req.Input, &text) == nil {
		return []chatMessage{{Role: "user", Content: req.Input}}, true
	}
	var items []struct {
		Type    string          `json:"type"`
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(req.Input, &items); err != nil {
		badChat(w, "input", "input must be a string or a list of messages")
		return nil, false
	}
	msgs := make([]chatMessage, len(items))
	for i, it := range items {
		if it.Type != "" && it.Type != "message" {
			badChat(w, fmt.Sprintf("input[%d].type", i), "items of type %q are not accepted: send messages", it.Type)
			return nil, false
		}
		msgs[i] = chatMessage{Role: it.Role, Content: it.Content}
	}
	return msgs, true
}

// responsesView shows a turn as one response object; it is a chatView
// but for the shape of its answers.
type responsesView struct {
	*chatView
	previous string
}

func (v *responsesView) done(res messageResponse) { v.answer(res.Reply, res.StopReason, res.Usage) }
func (v *responsesView) waiting(t *store.Task) {
	v.w.Header().Set("X-Hector-Task", t.ID)
	v.answer(approvalText(v.prefix, t), agent.StopAnswer, llm.Usage{})
}

func (v *responsesView) answer(text, stop string, u llm.Usage) {
	status, incomplete := "completed", any(nil)
	if stop == agent.StopMaxIterations {
		status, incomplete = "incomplete", map[string]string{"reason": "max_output_tokens"}
	}
	var previous any
	if v.previous != "" {
		previous = v.previous
	}
	v.w.Header().Set(sessionHeader, v.session)
	writeJSON(v.w, http.StatusOK, map[string]any{
		"id": responseID(v.session), "object": "response", "created_at": v.created, "status": status, "model": v.model,
		"incomplete_details": incomplete, "previous_response_id": previous, "error": nil,
		"output": []map[string]any{{"type": "message", "id": "msg_" + rand.Text(), "status": "completed", "role": "assistant",
			"content": []map[string]any{{"type": "output_text", "text": text, "annotations": []any{}}}}},
		"usage":               map[string]int64{"input_tokens": u.InputTokens, "output_tokens": u.OutputTokens, "total_tokens": u.InputTokens + u.OutputTokens},
		"parallel_tool_calls": false, "tool_choice": "auto", "tools": []any{},
	})
}
