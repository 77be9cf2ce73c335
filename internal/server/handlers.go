package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hector-run/hector/internal/agent"
	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/llm"
	"github.com/hector-run/hector/internal/snapshot"
	"github.com/hector-run/hector/internal/store"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// apiError is the body of every 4xx and 5xx response.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		// Type is the OpenAI error type (invalid_request_error for a 4xx,
		// api_error for a 5xx), so OpenAI clients read every error body.
		Type string `json:"type"`
		// Param names the request field at fault (the OpenAI routes').
		Param string `json:"param,omitempty"`
	} `json:"error"`
}

// errorBody is the error body of a response of status. URLs in the
// message have their credentials redacted: messages quote URLs from the
// configuration (an LLM's base_url, a remote agent's) and from client
// libraries' errors.
func errorBody(status int, code, param, msg string) apiError {
	var e apiError
	e.Error.Code, e.Error.Message, e.Error.Param = code, config.RedactText(msg), param
	e.Error.Type = "invalid_request_error"
	if status >= 500 {
		e.Error.Type = "api_error"
	}
	return e
}

// writeError answers with an error body (errorBody).
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody(status, code, "", msg))
}

// writeParamError answers with an error body naming the field at fault.
func writeParamError(w http.ResponseWriter, status int, code, param, msg string) {
	writeJSON(w, status, errorBody(status, code, param, msg))
}

// httpError is an error that knows its response.
type httpError struct {
	status int
	code   string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func (e *httpError) write(w http.ResponseWriter) { writeError(w, e.status, e.code, e.msg) }

// errUnavailable is the error shown when the database fails; details are logged.
var errUnavailable = &httpError{http.StatusServiceUnavailable, "database_unavailable", "the database is unavailable; retry"}

// writeHTTPError answers with err's response when err is (or wraps) an
// *httpError; any other error is a database failure, already logged.
func writeHTTPError(w http.ResponseWriter, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		he = errUnavailable
	}
	he.write(w)
}

// lookupAgent returns the snapshot's agent named by the request path, or
// writes a 404 and returns false.
func lookupAgent(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot) (*agent.Agent, bool) {
	name := r.PathValue("name")
	ag, ok := agentsFor(r, snap)[name]
	if !ok {
		writeError(w, http.StatusNotFound, "agent_not_found", fmt.Sprintf("no agent named %q", name))
		return nil, false
	}
	return ag, true
}

// snapshot acquires the current snapshot for the request; the caller must
// run release when done, also when ok is false.
func (s *Server) snapshot(w http.ResponseWriter) (snap *snapshot.Snapshot, release func(), ok bool) {
	snap, release = s.Runtime.Acquire()
	if snap == nil {
		writeError(w, http.StatusServiceUnavailable, "shutting_down", "the server is shutting down")
		return nil, release, false
	}
	return snap, release, true
}

// pinned adapts a handler that works on one snapshot: the current snapshot
// is acquired when the request starts and released when the handler
// returns, so a reload during the request never changes what it sees.
//
// The snapshot is the request's tenant's (tenantRuntime): an app's for a
// principal bound to an app, the main configuration's otherwise.
func (s *Server) pinned(h func(http.ResponseWriter, *http.Request, *snapshot.Snapshot)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rt, app := s.tenantRuntime(r)
		snap, release := rt.Acquire()
		defer release()
		if snap == nil {
			unavailableApp(w, app)
			return
		}
		h(w, r, snap)
	}
}

// health is public. Once credentials exist, the error texts (of the
// configuration source, the database) are only for a caller with a valid
// one: they describe the infrastructure.
func (s *Server) health(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot) {
	// Checked only when there is an error to show: probes hit /health often.
	detail := func() bool {
		if !snap.Config.Server.Auth.Credentials() {
			return true
		}
		token, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			return false
		}
		_, err := authenticate(r.Context(), snap, token)
		return err == nil
	}
	cfg := map[string]any{"version": snap.Version, "hash": snap.Store.PublicHash(snap.Hash), "source": snap.Source,
		"applied_at": snap.AppliedAt.UTC().Format(time.RFC3339Nano), "status": "ok"}
	body := map[string]any{"status": "ok", "version": s.Version, "name": snap.Config.Name, "config": cfg}
	if s.Reconciler != nil {
		// A degraded configuration source is reported, but the instance
		// keeps serving its last snapshot: 200, so load balancers keep it.
		if st := s.Reconciler.SourceStatus(); st.Status != "ok" {
			cfg["status"], cfg["since"] = st.Status, st.Since.UTC().Format(time.RFC3339Nano)
			if detail() {
				cfg["error"] = st.Error
			}
			body["status"] = "degraded"
		}
	}
	if s.Apps != nil {
		// A degraded catalog is reported like a degraded source: the apps
		// keep serving their last documents.
		st := s.Apps.Status()
		apps := map[string]any{"status": st.Status, "serving": st.Serving, "invalid": st.Invalid}
		if st.Status != "ok" {
			apps["since"] = st.Since.UTC().Format(time.RFC3339Nano)
			if detail() {
				apps["error"] = config.RedactText(st.Error)
			}
			body["status"] = "degraded"
		}
		body["apps"] = apps
	}
	if s.Queue != nil {
		qs := s.Queue.Settings()
		body["queue"] = map[string]any{"workers": qs.Workers, "max_retries": qs.MaxRetries, "initial_delay": qs.InitialDelay.String(),
			"max_delay": qs.MaxDelay.String(), "stale_threshold": qs.StaleThreshold.String()}
	}
	status := http.StatusOK
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := snap.Store.Ping(ctx); err != nil {
		body["status"], body["database"] = "unavailable", "unavailable"
		if detail() {
			body["database_error"] = config.RedactText(err.Error())
		}
		status = http.StatusServiceUnavailable
	} else {
		body["database"] = "connected"
	}
	writeJSON(w, status, body)
}

type agentInfo struct {
	Name        string   `json:"name"`
	DisplayName string   `json:"display_name"`
	Description string   `json:"description,omitempty"`
	LLM         string   `json:"llm"`
	Tools       []string `json:"tools"`
}

func info(snap *snapshot.Snapshot, name string) agentInfo {
	c := snap.Config.Agents[name]
	tools := append([]string{}, c.Tools...)
	return agentInfo{Name: name, DisplayName: c.Label(name), Description: c.Description, LLM: c.LLM, Tools: tools}
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot) {
	names := agentNamesFor(r, snap)
	out := make([]agentInfo, len(names))
	for i, n := range names {
		out[i] = info(snap, n)
	}
	writeJSON(w, http.StatusOK, map[string]any{"agents": out, "config_version": snap.Version})
}

func (s *Server) getAgent(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot) {
	if ag, found := lookupAgent(w, r, snap); found {
		writeJSON(w, http.StatusOK, info(snap, ag.Name))
	}
}

type messageRequest struct {
	Message   string `json:"message"`
	SessionID string `json:"session_id"`
	minted    bool   // SessionID was made for this request
	// prior starts a minted session: the client's copy of the
	// conversation before Message (an OpenAI-style request's earlier
	// messages). It is the turn's history and is stored with the turn.
	prior []llm.Message
}

// toolCall is a tool call of a turn with its result, as the API shows it.
type toolCall struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
	Result    string          `json:"result"`
	IsError   bool            `json:"is_error,omitempty"`
}

type messageResponse struct {
	SessionID     string     `json:"session_id"`
	Agent         string     `json:"agent"`
	Reply         string     `json:"reply"`
	StopReason    string     `json:"stop_reason"`
	Iterations    int        `json:"iterations"`
	ToolCalls     []toolCall `json:"tool_calls"`
	Usage         llm.Usage  `json:"usage"`
	ConfigVersion int64      `json:"config_version"`
}

// decodeBody reads a JSON object into v, rejecting unknown fields and
// trailing data. The route's guard has already read the body within
// server.max_body_bytes and server.read_timeout. It writes the error
// response and returns false on failure.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("unexpected data after the JSON object")
	}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		return true
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, "invalid_body", "request body is empty; send a JSON object")
	case errors.As(err, &syntax):
		writeError(w, http.StatusBadRequest, "invalid_json", fmt.Sprintf("invalid JSON at byte %d: %v", syntax.Offset, err))
	case errors.As(err, &typ):
		writeError(w, http.StatusBadRequest, "invalid_body", fmt.Sprintf("field %q must be a %s", typ.Field, typ.Type))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		writeError(w, http.StatusBadRequest, "invalid_body", "unknown field "+strings.TrimPrefix(err.Error(), "json: unknown field "))
	default:
		writeError(w, http.StatusBadRequest, "invalid_body", err.Error())
	}
	return false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// writeBodyError answers a failure to read the request body: 413 over the
// size limit, 408 past server.read_timeout, else 400.
func writeBodyError(w http.ResponseWriter, err error) {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body exceeds %d bytes (server.max_body_bytes)", tooBig.Limit))
	case isTimeout(err):
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestTimeout, "body_timeout", "the request body did not arrive within server.read_timeout")
	default:
		writeError(w, http.StatusBadRequest, "invalid_body", err.Error())
	}
}

// readMessageRequest reads {message, session_id}, giving the request a new
// session when it names none. It writes a 400 and returns false when the
// body is not valid.
func readMessageRequest(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot) (messageRequest, bool) {
	var req messageRequest
	if !decodeBody(w, r, &req) {
		return req, false
	}
	if strings.TrimSpace(req.Message) == "" {
		writeError(w, http.StatusBadRequest, "invalid_body", `field "message" is required and must not be empty`)
		return req, false
	}
	if req.SessionID == "" {
		req.SessionID, req.minted = store.NewSessionID(), true
	} else if !store.ValidSessionID(req.SessionID) {
		writeError(w, http.StatusBadRequest, "invalid_body", `field "session_id" must be `+store.SessionIDRule)
		return req, false
	}
	return req, true
}

// history loads the messages of a session the caller g is about to
// continue, checking it belongs to agent and that g may continue it: a
// session g cannot see is 404, like one that does not exist; one it sees
// but does not own (a viewer's look at a user's session) is 403, since
// only its owner adds turns. Its errors are *httpError (see
// writeHTTPError).
func (s *Server) history(ctx context.Context, st *store.Store, id, agentName string, g grant) ([]llm.Message, error) {
	sess, err := st.Session(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err == nil && !g.scope().Sees(sess.Owner):
		return nil, &httpError{http.StatusNotFound, "session_not_found", fmt.Sprintf("no session %q", id)}
	case err == nil && !sess.Owner.MayContinue(g.owner()):
		return nil, &httpError{http.StatusForbidden, "forbidden", fmt.Sprintf("session %q belongs to %s: only its owner continues it", id, sess.Principal)}
	case err != nil:
		s.Log.ErrorContext(ctx, "load session", "session", id, "error", err)
		return nil, errUnavailable
	case sess.Agent != agentName:
		return nil, &httpError{http.StatusConflict, "session_agent_mismatch", fmt.Sprintf("session %q belongs to agent %q", id, sess.Agent)}
	}
	h, err := st.History(ctx, id)
	if err != nil {
		s.Log.ErrorContext(ctx, "load history", "session", id, "error", err)
		return nil, errUnavailable
	}
	return h, nil
}

func response(sessionID, agentName string, version int64, res *agent.Result) messageResponse {
	out := messageResponse{SessionID: sessionID, Agent: agentName, Reply: res.Reply, StopReason: res.StopReason,
		Iterations: res.Iterations, Usage: res.Usage, ConfigVersion: version, ToolCalls: []toolCall{}}
	results := map[string]llm.Message{}
	for _, m := range res.Messages {
		if m.Role == llm.RoleTool {
			results[m.ToolCallID] = m
		}
	}
	for _, m := range res.Messages {
		for _, c := range m.ToolCalls {
			out.ToolCalls = append(out.ToolCalls, toolCall{ID: c.ID, Name: c.Name, Arguments: c.Arguments,
				Result: results[c.ID].Content, IsError: results[c.ID].IsError})
		}
	}
	return out
}

// turnRequest reads a request for a turn of the agent the path names:
// the agent and {message, session_id}. It writes the 404 or 400 and
// returns false when either is wrong.
func turnRequest(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot) (*agent.Agent, messageRequest, bool) {
	ag, found := lookupAgent(w, r, snap)
	if !found {
		return nil, messageRequest{}, false
	}
	req, ok := readMessageRequest(w, r, snap)
	return ag, req, ok
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot) {
	id := r.PathValue("id")
	sess, err := snap.Store.Session(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || err == nil && !grantOf(r).scope().Sees(sess.Owner) {
		writeError(w, http.StatusNotFound, "session_not_found", fmt.Sprintf("no session %q", id))
		return
	}
	var msgs []store.StoredMessage
	if err == nil {
		msgs, err = snap.Store.Messages(r.Context(), id)
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "load session", "session", id, "error", err)
		errUnavailable.write(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"session": sess, "messages": msgs})
}
