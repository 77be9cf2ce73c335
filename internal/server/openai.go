package server

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hector-run/hector/internal/agent"
	"github.com/hector-run/hector/internal/llm"
	"github.com/hector-run/hector/internal/snapshot"
	"github.com/hector-run/hector/internal/store"
)

// The OpenAI-compatible API: any OpenAI client reaches Hector's agents as
// models. GET /v1/models lists the request's tenant's agents; POST
// /v1/chat/completions runs one turn of the agent its model names, through
// the same path as POST /v1/agents/{name}/messages (runTurn), shown in the
// Chat Completions shape by chatView.
//
// Which session a request continues (docs/openai-api.md):
//   - with the header X-Hector-Session: ID, that Hector session: its stored
//     history is the context, and only the last user message of the
//     request is new (the earlier messages are the client's copy);
//   - without it, a new session whose history is the request's earlier
//     user and assistant messages; the response names it in
//     X-Hector-Session, so the next request can continue it without
//     resending the conversation.
//
// System messages from the client are refused: an agent's instruction is
// its configuration's. Sampling parameters (temperature, max_tokens, …)
// are accepted and not applied: the agent's LLM configuration decides.

const sessionHeader = "X-Hector-Session"

// chatRequest is the part of a Chat Completions request Hector reads.
type chatRequest struct {
	Model         string        `json:"model"`
	Messages      []chatMessage `json:"messages"`
	Stream        bool          `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	N     *int            `json:"n"`
	Tools json.RawMessage `json:"tools"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// text is a message's content: a string, or the text parts of a list.
func (m chatMessage) text() (string, error) {
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(m.Content, &parts); err != nil {
		return "", errors.New("content must be a string or a list of text parts")
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "text" && p.Type != "input_text" && p.Type != "output_text" { // the Responses API's names too
			return "", fmt.Errorf("content part of type %q is not supported: send text", p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

// appPrefix is where the request's caller reaches its tasks: "" or, for
// a main-tenant admin acting in an app, /apps/APP.
func appPrefix(r *http.Request) string {
	if app := r.PathValue("app"); app != "" {
		return "/apps/" + app
	}
	return ""
}

// modelNotFound answers a model that is none of the tenant's agents.
func modelNotFound(w http.ResponseWriter, name string) {
	writeParamError(w, http.StatusNotFound, "model_not_found", "model", fmt.Sprintf("The model %q does not exist: models are this server's agents (GET /v1/models)", name))
}

// decodeForModel decodes the body, a what request, into req and finds
// the agent that *model (a field of req) names; on failure it has written
// the error.
func decodeForModel(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot, what string, req any, model *string) (*agent.Agent, bool) {
	if err := json.NewDecoder(r.Body).Decode(req); err != nil {
		badChat(w, "", "the body must be a %s request (JSON): %v", what, err)
		return nil, false
	}
	ag, ok := agentsFor(r, snap)[*model]
	if !ok {
		modelNotFound(w, *model)
	}
	return ag, ok
}

// toolsGiven reports whether a request sets tools, which Hector refuses:
// an agent's tools are its configuration's.
func toolsGiven(tools json.RawMessage) bool { return len(tools) > 0 && string(tools) != "null" }

func badChat(w http.ResponseWriter, param, format string, args ...any) {
	writeParamError(w, http.StatusBadRequest, "invalid_value", param, fmt.Sprintf(format, args...))
}

// listModels answers GET /v1/models: the tenant's agents, as models.
func (s *Server) listModels(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot) {
	names := agentNamesFor(r, snap)
	data := make([]map[string]any, len(names))
	for i, name := range names {
		data[i] = model(name, snap)
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

// getModel answers GET /v1/models/{model}.
func (s *Server) getModel(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot) {
	name := r.PathValue("model")
	if _, ok := agentsFor(r, snap)[name]; !ok {
		modelNotFound(w, name)
		return
	}
	writeJSON(w, http.StatusOK, model(name, snap))
}

func model(name string, snap *snapshot.Snapshot) map[string]any {
	return map[string]any{"id": name, "object": "model", "created": snap.AppliedAt.Unix(), "owned_by": "hector"}
}

// chatCompletions answers POST /v1/chat/completions with one turn.
func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot) {
	var req chatRequest
	ag, ok := decodeForModel(w, r, snap, "Chat Completions", &req, &req.Model)
	if !ok {
		return
	}
	turn, ok := readChatTurn(w, r, req)
	if !ok {
		return
	}
	var view turnView = &chatView{w: w, prefix: appPrefix(r), model: req.Model, id: "chatcmpl-" + rand.Text(), created: time.Now().Unix()}
	if req.Stream {
		f, ok := w.(http.Flusher)
		if !ok {
			writeParamError(w, http.StatusNotAcceptable, "streaming_unsupported", "stream", "streaming is not supported on this connection")
			return
		}
		view = &chatStream{chatView: view.(*chatView), f: f, usage: req.StreamOptions != nil && req.StreamOptions.IncludeUsage}
	}
	s.runTurn(w, r, snap, ag, turn, view)
}

// readChatTurn reads a chat completion's turn (see turnFromMessages),
// whose session X-Hector-Session may name.
func readChatTurn(w http.ResponseWriter, r *http.Request, req chatRequest) (turn messageRequest, ok bool) {
	switch {
	case req.N != nil && *req.N != 1:
		badChat(w, "n", "n must be 1: an agent gives one answer")
		return turn, false
	case toolsGiven(req.Tools):
		badChat(w, "tools", "tools are not accepted: the agent's tools are its configuration's")
		return turn, false
	}
	session := r.Header.Get(sessionHeader)
	if session != "" && !store.ValidSessionID(session) {
		badChat(w, "", "header %s must be %s", sessionHeader, store.SessionIDRule)
		return turn, false
	}
	return turnFromMessages(w, req.Messages, "messages", session)
}

// turnFromMessages turns messages into a turn: the last one, a user
// message, is the input; the earlier ones are the new session's history
// (stored with the turn), unless session names the session to continue. param names the list in
// errors.
func turnFromMessages(w http.ResponseWriter, msgs []chatMessage, param, session string) (turn messageRequest, ok bool) {
	if len(msgs) == 0 {
		badChat(w, param, "%s must hold at least one user message", param)
		return turn, false
	}
	var prior []llm.Message
	for i, m := range msgs {
		text, err := m.text()
		if err != nil {
			badChat(w, fmt.Sprintf("%s[%d].content", param, i), "%v", err)
			return turn, false
		}
		switch last := i == len(msgs)-1; {
		case m.Role == "system" || m.Role == "developer":
			badChat(w, fmt.Sprintf("%s[%d].role", param, i), "%s messages are not accepted: the agent's instruction is its configuration's", m.Role)
			return turn, false
		case last && m.Role != "user":
			badChat(w, fmt.Sprintf("%s[%d].role", param, i), "the last message must be the user's, the input of the turn")
			return turn, false
		case last:
			turn.Message = text
		case m.Role == "user":
			prior = append(prior, llm.Message{Role: llm.RoleUser, Content: text})
		case m.Role == "assistant":
			prior = append(prior, llm.Message{Role: llm.RoleAssistant, Content: text})
		default:
			badChat(w, fmt.Sprintf("%s[%d].role", param, i), "role %q is not accepted: send user and assistant messages", m.Role)
			return turn, false
		}
	}
	if strings.TrimSpace(turn.Message) == "" {
		badChat(w, fmt.Sprintf("%s[%d].content", param, len(msgs)-1), "the last user message is empty")
		return turn, false
	}
	if session != "" {
		turn.SessionID = session
		return turn, true
	}
	turn.SessionID, turn.minted, turn.prior = store.NewSessionID(), true, prior
	return turn, true
}

// chatView shows a turn as one chat.completion.
type chatView struct {
	w       http.ResponseWriter
	prefix  string // where the caller reaches its tasks (appPrefix)
	model   string
	id      string
	created int64
	session string
}

func (v *chatView) namesSessionEarly() bool { return false }

func (v *chatView) begin(sessionID, _ string, _ int64) { v.session = sessionID }

func (v *chatView) emit() func(agent.Event) { return nil }

func finishReason(stop string) string {
	if stop == agent.StopMaxIterations {
		return "length"
	}
	return "stop"
}

func chatUsage(u llm.Usage) map[string]int64 {
	return map[string]int64{"prompt_tokens": u.InputTokens, "completion_tokens": u.OutputTokens, "total_tokens": u.InputTokens + u.OutputTokens}
}

func (v *chatView) completion(content, finish string, u llm.Usage) map[string]any {
	return map[string]any{"id": v.id, "object": "chat.completion", "created": v.created, "model": v.model,
		"choices": []map[string]any{{"index": 0, "message": map[string]any{"role": "assistant", "content": content}, "finish_reason": finish}},
		"usage":   chatUsage(u)}
}

func (v *chatView) done(res messageResponse) {
	v.w.Header().Set(sessionHeader, v.session)
	writeJSON(v.w, http.StatusOK, v.completion(res.Reply, finishReason(res.StopReason), res.Usage))
}

// approvalText says, as the assistant's answer, how to let the turn go
// on; prefix is where the caller reaches its tasks ("" or /apps/APP).
func approvalText(prefix string, t *store.Task) string {
	tool := ""
	if t.Approval != nil {
		tool = " " + t.Approval.Tool
	}
	return fmt.Sprintf("The tool call%s needs a human's approval: task %s waits in input_required. "+
		"Approve it with POST %s/v1/tasks/%s/approve (or reject it with /reject); the answer is then the task's.", tool, t.ID, prefix, t.ID)
}

func (v *chatView) waiting(t *store.Task) {
	v.w.Header().Set(sessionHeader, v.session)
	v.w.Header().Set("X-Hector-Task", t.ID)
	writeJSON(v.w, http.StatusOK, v.completion(approvalText(v.prefix, t), "stop", llm.Usage{}))
}

func (v *chatView) failed(err error) { (&jsonView{w: v.w}).failed(err) } // its errors are already OpenAI's shape

func (v *chatView) unstored(what string) {
	writeError(v.w, http.StatusServiceUnavailable, "database_unavailable", "the "+what+" could not be stored; retry")
}

// chatStream shows a turn as chat.completion.chunk events, ending with
// data: [DONE]; with stream_options.include_usage, a last chunk without
// choices carries the usage.
type chatStream struct {
	*chatView
	f     http.Flusher
	usage bool
}

func (v *chatStream) namesSessionEarly() bool { return true } // the header, before the first chunk

func (v *chatStream) begin(sessionID, _ string, _ int64) {
	v.session = sessionID
	h := v.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set(sessionHeader, sessionID)
	v.w.WriteHeader(http.StatusOK)
	v.chunk(map[string]any{"role": "assistant", "content": ""}, nil)
}

func (v *chatStream) send(data any) {
	b, _ := json.Marshal(data)
	fmt.Fprintf(v.w, "data: %s\n\n", b)
	v.f.Flush()
}

func (v *chatStream) chunk(delta map[string]any, finish any) {
	v.send(map[string]any{"id": v.id, "object": "chat.completion.chunk", "created": v.created, "model": v.model,
		"choices": []map[string]any{{"index": 0, "delta": delta, "finish_reason": finish}}})
}

func (v *chatStream) emit() func(agent.Event) {
	return func(e agent.Event) {
		if e.Type == agent.EventText && e.Text != "" {
			v.chunk(map[string]any{"content": e.Text}, nil)
		}
	}
}

func (v *chatStream) end(finish string, u llm.Usage) {
	v.chunk(map[string]any{}, finish)
	if v.usage {
		v.send(map[string]any{"id": v.id, "object": "chat.completion.chunk", "created": v.created, "model": v.model,
			"choices": []any{}, "usage": chatUsage(u)})
	}
	fmt.Fprint(v.w, "data: [DONE]\n\n")
	v.f.Flush()
}

func (v *chatStream) done(res messageResponse) { v.end(finishReason(res.StopReason), res.Usage) }

func (v *chatStream) waiting(t *store.Task) {
	v.chunk(map[string]any{"content": approvalText(v.prefix, t)}, nil)
	v.end("stop", llm.Usage{})
}

// failed and unstored send an error object, as OpenAI's streams do, and
// end the stream.
func (v *chatStream) failed(err error) { v.streamError(turnErrorCode(err), err.Error()) }

func (v *chatStream) unstored(what string) {
	v.streamError("database_unavailable", "the "+what+" could not be stored; retry")
}

func (v *chatStream) streamError(code, msg string) {
	v.send(errorBody(http.StatusBadGateway, code, "", msg))
	fmt.Fprint(v.w, "data: [DONE]\n\n")
	v.f.Flush()
}
