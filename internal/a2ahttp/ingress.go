package a2ahttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	legacy "github.com/a2aproject/a2a-go/a2a"
	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2acompat/a2av0"
	"github.com/a2aproject/a2a-go/v2/a2apb/v0/pbjson"
	"github.com/a2aproject/a2a-go/v2/errordetails"
)

// The ingress: what Hector does to a request before a2a-go's transport
// handlers see it, where those handlers do not answer as the protocol
// asks. It reads the body once (an over-limit body is 413, not a parse
// error); turns parameters that are valid JSON but not a valid request
// into invalid-params errors (a2a-go calls them parse errors); refuses a
// subscription to an unknown or finished task with a plain error response
// before any stream opens; answers the JSON-RPC methods whose results
// a2a-go writes wrongly (a delete's missing "result", a 0.3 list's null);
// accepts the original proto field names (snake_case) in 0.3 HTTP+JSON
// bodies and refuses unknown fields there instead of dropping them; and
// takes configuration.pushNotificationConfig on a 1.0 message as the
// taskPushNotificationConfig it means.

// readBody reads r's body, which the server limited with
// http.MaxBytesReader. false means the error response is written.
func readBody(w http.ResponseWriter, r *http.Request, jsonrpc bool) ([]byte, bool) {
	if r.Body == nil || r.Method == http.MethodGet || r.Method == http.MethodHead {
		return nil, true
	}
	body, err := io.ReadAll(r.Body)
	if err == nil {
		return body, true
	}
	status, e := http.StatusBadRequest, a2a.NewError(a2a.ErrInvalidRequest, "request body: "+err.Error())
	var tooBig *http.MaxBytesError
	var slow net.Error
	switch {
	case errors.As(err, &tooBig):
		status = http.StatusRequestEntityTooLarge
		e = a2a.NewError(a2a.ErrInvalidRequest, fmt.Sprintf("request body: larger than %d bytes, the limit (server.max_body_bytes)", tooBig.Limit))
	case errors.As(err, &slow) && slow.Timeout():
		status = http.StatusRequestTimeout
		e = a2a.NewError(a2a.ErrInvalidRequest, "request body: it did not arrive within server.read_timeout")
		w.Header().Set("Connection", "close")
	}
	if jsonrpc {
		writeRPCError(w, status, nil, e)
	} else {
		writeRESTError(w, status, e, "", false)
	}
	return nil, false
}

// rpcRequest is a JSON-RPC request, its ID kept as sent.
type rpcRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params,omitempty"`
}

func (q *rpcRequest) validID() bool {
	id := bytes.TrimSpace(q.ID)
	if len(id) == 0 || string(id) == "null" {
		return true
	}
	var v any
	if json.Unmarshal(id, &v) != nil {
		return false
	}
	switch v.(type) {
	case string, float64:
		return true
	}
	return false
}

// prepareRPC looks at a JSON-RPC request before a2a-go's handler does. It
// returns the body to hand on (changed when it rewrote the parameters), or
// done when it answered the request itself.
func (s *Service) prepareRPC(w http.ResponseWriter, r *http.Request, q *rpcRequest, body []byte) ([]byte, bool) {
	ctx := r.Context()
	fail := func(err error) ([]byte, bool) {
		writeRPCError(w, http.StatusOK, q.ID, err)
		return nil, true
	}
	h := handler{s}
	switch q.Method {
	case "SendMessage", "SendStreamingMessage":
		params, err := aliasPushConfig(q.Params)
		if err != nil {
			return fail(err)
		}
		var req a2a.SendMessageRequest
		if err := decodeParams(params, &req); err != nil {
			return fail(err)
		}
		if q.Method == "SendStreamingMessage" {
			if err := checkMessage(&req); err != nil {
				return fail(err) // before the stream opens
			}
		}
		if !bytes.Equal(params, q.Params) {
			q.Params = params
			b, err := json.Marshal(q)
			if err != nil {
				return fail(s.internal("encode request", err))
			}
			return b, false
		}
	case "message/send", "message/stream":
		var p legacy.MessageSendParams
		if err := decodeParams(q.Params, &p); err != nil {
			return fail(err)
		}
		req, err := a2av0.ToV1SendMessageRequest(&p)
		if err != nil {
			return fail(a2a.NewError(a2a.ErrInvalidParams, "params: "+err.Error()))
		}
		if q.Method == "message/stream" {
			if err := checkMessage(req); err != nil {
				return fail(err)
			}
		}
	case "SubscribeToTask":
		var req a2a.SubscribeToTaskRequest
		if err := decodeParams(q.Params, &req); err != nil {
			return fail(err)
		}
		if err := s.subscribable(ctx, req.ID); err != nil {
			return fail(err)
		}
	case "tasks/resubscribe":
		var p legacy.TaskIDParams
		if err := decodeParams(q.Params, &p); err != nil {
			return fail(err)
		}
		if err := s.subscribable(ctx, a2a.TaskID(p.ID)); err != nil {
			return fail(err)
		}
	case "DeleteTaskPushNotificationConfig", "tasks/pushNotificationConfig/delete":
		var req *a2a.DeleteTaskPushConfigRequest
		if q.Method == "DeleteTaskPushNotificationConfig" {
			req = &a2a.DeleteTaskPushConfigRequest{}
			if err := decodeParams(q.Params, req); err != nil {
				return fail(err)
			}
		} else {
			var p legacy.DeleteTaskPushConfigParams
			if err := decodeParams(q.Params, &p); err != nil {
				return fail(err)
			}
			req = a2av0.ToV1DeleteTaskPushConfigRequest(&p)
		}
		if err := h.DeleteTaskPushConfig(ctx, req); err != nil {
			return fail(err)
		}
		writeRPCResult(w, q.ID, nil) // "result": null, which a2a-go leaves out
		return nil, true
	case "tasks/pushNotificationConfig/list":
		var p legacy.ListTaskPushConfigParams
		if err := decodeParams(q.Params, &p); err != nil {
			return fail(err)
		}
		res, err := h.ListTaskPushConfigs(ctx, a2av0.ToV1ListTaskPushConfigRequest(&p))
		if err != nil {
			return fail(err)
		}
		list := a2av0.FromV1PushConfigs(res.Configs)
		if list == nil {
			list = []*legacy.TaskPushConfig{} // [], not null
		}
		writeRPCResult(w, q.ID, list)
		return nil, true
	default:
		if v := paramsOf(q.Method); v != nil {
			if err := decodeParams(q.Params, v); err != nil {
				return fail(err)
			}
		}
	}
	return body, false
}

// paramsOf returns what a2a-go decodes method's params into, for the
// methods prepareRPC has nothing else to do for; nil for others.
func paramsOf(method string) any {
	switch method {
	case "GetTask":
		return &a2a.GetTaskRequest{}
	case "ListTasks":
		return &a2a.ListTasksRequest{}
	case "CancelTask":
		return &a2a.CancelTaskRequest{}
	case "CreateTaskPushNotificationConfig":
		return &a2a.PushConfig{}
	case "GetTaskPushNotificationConfig":
		return &a2a.GetTaskPushConfigRequest{}
	case "ListTaskPushNotificationConfigs":
		return &a2a.ListTaskPushConfigRequest{}
	case "tasks/get":
		return &legacy.TaskQueryParams{}
	case "tasks/cancel":
		return &legacy.TaskIDParams{}
	case "tasks/pushNotificationConfig/get":
		return &legacy.GetTaskPushConfigParams{}
	case "tasks/pushNotificationConfig/set":
		return &legacy.TaskPushConfig{}
	}
	return nil
}

// decodeParams decodes JSON-RPC params into v as a2a-go will. The request
// was valid JSON, so a failure is invalid params (-32602), not the parse
// error (-32700) a2a-go reports.
func decodeParams(raw json.RawMessage, v any) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return a2a.NewError(a2a.ErrInvalidParams, "params: required")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return a2a.NewError(a2a.ErrInvalidParams, "params: "+err.Error())
	}
	return nil
}

// aliasPushConfig renames configuration.pushNotificationConfig (the 0.3
// name, which Hector's docs used) to A2A 1.0's taskPushNotificationConfig
// in SendMessage params, which a2a-go would otherwise drop.
func aliasPushConfig(raw json.RawMessage) (json.RawMessage, error) {
	var top map[string]json.RawMessage
	if json.Unmarshal(raw, &top) != nil {
		return raw, nil // decodeParams reports it
	}
	var cfg map[string]json.RawMessage
	if c, ok := top["configuration"]; !ok || json.Unmarshal(c, &cfg) != nil {
		return raw, nil
	}
	pc, ok := cfg["pushNotificationConfig"]
	if !ok {
		return raw, nil
	}
	if _, both := cfg["taskPushNotificationConfig"]; both {
		return nil, a2a.NewError(a2a.ErrInvalidParams,
			"configuration: pushNotificationConfig and taskPushNotificationConfig are one field (1.0 names it taskPushNotificationConfig); send one")
	}
	delete(cfg, "pushNotificationConfig")
	cfg["taskPushNotificationConfig"] = pc
	c, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	top["configuration"] = c
	return json.Marshal(top)
}

// prepareREST is prepareRPC for the HTTP+JSON bindings; path is the
// request's path below the agent's endpoint, without 0.3's /v1.
func (s *Service) prepareREST(w http.ResponseWriter, r *http.Request, path string, body []byte, v03 bool) ([]byte, bool) {
	fail := func(err error, taskID a2a.TaskID) ([]byte, bool) {
		writeRESTError(w, 0, err, taskID, v03)
		return nil, true
	}
	task, action := "", ""
	if rest, ok := strings.CutPrefix(path, "/tasks/"); ok {
		task, action = rest, ""
		if i := strings.IndexAny(rest, ":/"); i >= 0 {
			task, action = rest[:i], rest[i:]
		}
	}
	if q := r.URL.Query(); !v03 && path == "/tasks" && q.Has("lastUpdatedAfter") && !q.Has("statusTimestampAfter") {
		// a2a-go's 1.0 REST client sends the 0.3 name, which its server
		// does not read: take it as the 1.0 name rather than drop it.
		q.Set("statusTimestampAfter", q.Get("lastUpdatedAfter"))
		q.Del("lastUpdatedAfter")
		r.URL.RawQuery = q.Encode()
	}
	switch {
	case task != "" && action == ":subscribe" && (r.Method == http.MethodGet || r.Method == http.MethodPost):
		if err := s.subscribable(r.Context(), a2a.TaskID(task)); err != nil {
			return fail(err, a2a.TaskID(task))
		}
	case r.Method != http.MethodPost || !json.Valid(body):
		// a2a-go answers: a parse error is a parse error.
	case path == "/message:send" || path == "/message:stream":
		var req *a2a.SendMessageRequest
		if v03 {
			b, err := protoJSON(body, &pbjson.SendMessageRequest{}, map[string]string{"request": "message"})
			if err != nil {
				return fail(err, "")
			}
			body = b
			if req, err = pbjson.FromProtoSendMessageRequest(body); err != nil {
				return fail(a2a.NewError(a2a.ErrInvalidParams, err.Error()), "")
			}
		} else {
			b, err := aliasPushConfig(body)
			if err != nil {
				return fail(err, "")
			}
			body, req = b, &a2a.SendMessageRequest{}
			if err := json.Unmarshal(body, req); err != nil {
				return fail(a2a.NewError(a2a.ErrInvalidParams, "request body: "+err.Error()), "")
			}
		}
		if path == "/message:stream" {
			if err := checkMessage(req); err != nil {
				return fail(err, "")
			}
		}
	case task != "" && action == "/pushNotificationConfigs":
		if v03 {
			b, err := protoJSON(body, &pbjson.CreateTaskPushNotificationConfigRequest{}, nil)
			if err != nil {
				return fail(err, a2a.TaskID(task))
			}
			body = b
		} else if err := json.Unmarshal(body, &a2a.PushConfig{}); err != nil {
			return fail(a2a.NewError(a2a.ErrInvalidParams, "request body: "+err.Error()), a2a.TaskID(task))
		}
	}
	return body, false
}

// protoJSON reads a 0.3 HTTP+JSON body as proto JSON does: a field may be
// named by its JSON name (lowerCamel) or its proto name (snake_case, or
// another name that aliases gives), and an unknown field is an error. It
// returns the body with every field under its JSON name, checked against
// wire, the a2a-go type it decodes into. Struct-valued fields (metadata,
// a data part's data) are taken as they are.
func protoJSON(body []byte, wire any, aliases map[string]string) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, a2a.NewError(a2a.ErrParseError, "request body: "+err.Error())
	}
	top, ok := v.(map[string]any)
	if !ok {
		return nil, a2a.NewError(a2a.ErrInvalidParams, "request body: want a JSON object")
	}
	for from, to := range aliases {
		if x, ok := top[from]; ok {
			if _, both := top[to]; both {
				return nil, a2a.NewError(a2a.ErrInvalidParams, fmt.Sprintf("request body: %s and %s are one field; send one", to, from))
			}
			delete(top, from)
			top[to] = x
		}
	}
	norm, err := jsonNames(top, "")
	if err != nil {
		return nil, err
	}
	out, err := json.Marshal(norm)
	if err != nil {
		return nil, err
	}
	strict := json.NewDecoder(bytes.NewReader(out))
	strict.DisallowUnknownFields()
	if err := strict.Decode(wire); err != nil {
		return nil, a2a.NewError(a2a.ErrInvalidParams, "request body: "+strings.TrimPrefix(err.Error(), "json: "))
	}
	return out, nil
}

// jsonNames renames the snake_case fields of v, at every level but the
// values of struct-valued fields, to lowerCamel. at is v's path, for
// errors.
func jsonNames(v any, at string) (any, error) {
	switch x := v.(type) {
	case []any:
		for i, e := range x {
			n, err := jsonNames(e, fmt.Sprintf("%s[%d]", at, i))
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
		return x, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			name := lowerCamel(k)
			if _, dup := out[name]; dup {
				return nil, a2a.NewError(a2a.ErrInvalidParams, fmt.Sprintf("request body: %s%s is given twice (once as %s)", at, name, k))
			}
			path := at + name
			switch {
			case name == "metadata":
				out[name] = e // a Struct: any names
			case name == "data":
				// A data part: {"data": Struct}.
				if m, ok := e.(map[string]any); ok {
					dp := make(map[string]any, len(m))
					for dk, dv := range m {
						dp[lowerCamel(dk)] = dv
					}
					out[name] = dp
					continue
				}
				out[name] = e
			default:
				n, err := jsonNames(e, path+".")
				if err != nil {
					return nil, err
				}
				out[name] = n
			}
		}
		return out, nil
	}
	return v, nil
}

// lowerCamel turns a proto field name (message_id) into its JSON name
// (messageId); other names are returned as they are.
func lowerCamel(s string) string {
	if !strings.Contains(s, "_") {
		return s
	}
	var b strings.Builder
	up := false
	for _, r := range s {
		if r == '_' {
			up = true
			continue
		}
		if up && r >= 'a' && r <= 'z' {
			r -= 'a' - 'A'
		}
		up = false
		b.WriteRune(r)
	}
	return b.String()
}

// rpcCodes are the JSON-RPC codes of A2A's errors, as a2a-go writes them.
var rpcCodes = []struct {
	err  error
	code int
}{
	{a2a.ErrParseError, -32700}, {a2a.ErrInvalidRequest, -32600}, {a2a.ErrMethodNotFound, -32601},
	{a2a.ErrInvalidParams, -32602}, {a2a.ErrInternalError, -32603}, {a2a.ErrServerError, -32000},
	{a2a.ErrTaskNotFound, -32001}, {a2a.ErrTaskNotCancelable, -32002}, {a2a.ErrPushNotificationNotSupported, -32003},
	{a2a.ErrUnsupportedOperation, -32004}, {a2a.ErrUnsupportedContentType, -32005}, {a2a.ErrInvalidAgentResponse, -32006},
	{a2a.ErrExtendedCardNotConfigured, -32007}, {a2a.ErrExtensionSupportRequired, -32008}, {a2a.ErrVersionNotSupported, -32009},
	{a2a.ErrUnauthenticated, -31401}, {a2a.ErrUnauthorized, -31403},
}

// restStatuses are the HTTP statuses of A2A's errors on the HTTP+JSON
// binding, as a2a-go maps them.
var restStatuses = []struct {
	err    error
	status int
	grpc   string
}{
	{a2a.ErrParseError, 400, "INVALID_ARGUMENT"}, {a2a.ErrInvalidRequest, 400, "INVALID_ARGUMENT"},
	{a2a.ErrMethodNotFound, 501, "UNIMPLEMENTED"}, {a2a.ErrInvalidParams, 400, "INVALID_ARGUMENT"},
	{a2a.ErrInternalError, 500, "INTERNAL"}, {a2a.ErrServerError, 500, "INTERNAL"},
	{a2a.ErrTaskNotFound, 404, "NOT_FOUND"}, {a2a.ErrTaskNotCancelable, 400, "FAILED_PRECONDITION"},
	{a2a.ErrUnsupportedOperation, 400, "FAILED_PRECONDITION"}, {a2a.ErrUnsupportedContentType, 400, "INVALID_ARGUMENT"},
	{a2a.ErrVersionNotSupported, 400, "FAILED_PRECONDITION"},
	{a2a.ErrUnauthenticated, 401, "UNAUTHENTICATED"}, {a2a.ErrUnauthorized, 403, "PERMISSION_DENIED"},
}

func errorInfo(err error, taskID a2a.TaskID) *errordetails.Typed {
	meta := map[string]string{"timestamp": time.Now().UTC().Format(time.RFC3339)}
	if taskID != "" {
		meta["taskId"] = string(taskID)
	}
	return errordetails.NewErrorInfo(a2a.ErrorReason(err), a2a.ProtocolDomain, meta)
}

// writeRPCError writes a JSON-RPC error response in a2a-go's form, with
// HTTP status status.
func writeRPCError(w http.ResponseWriter, status int, id json.RawMessage, err error) {
	code := -32603
	for _, c := range rpcCodes {
		if errors.Is(err, c.err) {
			code = c.code
			break
		}
	}
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": id,
		"error": map[string]any{"code": code, "message": err.Error(), "data": []any{errorInfo(err, "")}}})
}

func writeRPCResult(w http.ResponseWriter, id json.RawMessage, result any) {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": id, "result": result})
}

// writeRESTError writes an HTTP+JSON error in a2a-go's form; status 0
// takes the error's own.
func writeRESTError(w http.ResponseWriter, status int, err error, taskID a2a.TaskID, v03 bool) {
	st, grpc := 500, "INTERNAL"
	for _, m := range restStatuses {
		if errors.Is(err, m.err) {
			st, grpc = m.status, m.grpc
			break
		}
	}
	if status == 0 {
		status = st
	}
	ct := "application/json"
	if v03 {
		ct = "application/problem+json"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": status, "status": grpc,
		"message": err.Error(), "details": []any{errorInfo(err, taskID)}}})
}

// callerContext is r's context with c set, for the handler.
func callerContext(ctx context.Context, c caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}
