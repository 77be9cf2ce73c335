package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hector-run/hector/internal/agent"
	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/snapshot"
	"github.com/hector-run/hector/internal/store"
)

// Agents served over MCP at /mcp (streamable HTTP, the official go-sdk's
// handler): each agent of the caller's tenant is a tool taking input and
// an optional session_id, and a call runs one turn through runTurn, the
// REST path. Each tenant has one mcp.Server whose tools follow its
// configuration: a reload that adds, changes or removes an agent updates
// them, and the SDK sends notifications/tools/list_changed to every
// connected session (docs/mcp.md).
//
// The route policy authenticates the request before the SDK sees it; the
// SDK's bearer middleware then carries the caller's grant to the tool
// handlers (TokenInfo.Extra) and binds each MCP session to its principal
// (TokenInfo.UserID), so no one else can use a session id they learn.

// mcpHub holds the per-tenant MCP servers and the one HTTP handler.
type mcpHub struct {
	once     sync.Once
	handler  http.Handler
	mu       sync.Mutex
	tenants  map[string]*mcpTenant
	sessions mcpSessions
}

// mcpTenant is one tenant's MCP server and the agents its tools show.
type mcpTenant struct {
	srv    *mcp.Server
	mu     sync.Mutex
	synced struct {
		app     string // the snapshot's app: "" the main configuration's
		version int64  // its version, -1 before the first sync
	}
	agents map[string]string // agent -> what its tool shows (title, description)
}

const grantExtra, prefixExtra = "hector.grant", "hector.prefix"

// serveMCP answers /mcp for the request's tenant.
func (s *Server) serveMCP(w http.ResponseWriter, r *http.Request) {
	s.mcp.once.Do(func() {
		getServer := func(r *http.Request) *mcp.Server {
			rt, _ := s.tenantRuntime(r)
			snap, release := rt.Acquire()
			defer release()
			if snap == nil {
				return nil
			}
			return s.mcpTenant(tenantOf(r), snap).srv
		}
		h := mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{SessionTimeout: mcpSessionTimeout})
		verify := func(_ context.Context, _ string, r *http.Request) (*auth.TokenInfo, error) {
			g := grantOf(r) // admit has checked the credential
			prefix := ""
			if app := r.PathValue("app"); app != "" {
				prefix = "/apps/" + app // an admin acting in an app
			}
			return &auth.TokenInfo{UserID: g.who.Tenant + "/" + g.who.ID(), Expiration: time.Now().Add(24 * time.Hour),
				Extra: map[string]any{grantExtra: g, prefixExtra: prefix}}, nil
		}
		bearer := auth.RequireBearerToken(verify, nil)(h)
		s.mcp.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// admit has decided who this is; the SDK's middleware wants a
			// bearer token, and the credential goes no further.
			r.Header.Set("Authorization", "Bearer admitted")
			bearer.ServeHTTP(w, r)
		})
	})
	rt, app := s.tenantRuntime(r)
	snap, release := rt.Acquire()
	if snap == nil {
		release()
		unavailableApp(w, app)
		return
	}
	s.mcpTenant(tenantOf(r), snap) // the tools follow the configuration serving this request
	release()
	tw, done, ok := s.mcp.sessions.track(w, r)
	if !ok {
		return
	}
	s.mcp.handler.ServeHTTP(tw, r)
	done()
}

// mcpTenant returns tenant's MCP server with its tools synced to snap.
func (s *Server) mcpTenant(tenant string, snap *snapshot.Snapshot) *mcpTenant {
	s.mcp.mu.Lock()
	t := s.mcp.tenants[tenant]
	if t == nil {
		if s.mcp.tenants == nil {
			s.mcp.tenants = map[string]*mcpTenant{}
		}
		t = &mcpTenant{agents: map[string]string{},
			srv: mcp.NewServer(&mcp.Implementation{Name: "hector", Version: "1"}, &mcp.ServerOptions{HasTools: true})}
		t.synced.app, t.synced.version = "\x00", -1
		s.mcp.tenants[tenant] = t
	}
	s.mcp.mu.Unlock()
	if tenant != snap.App { // a tenant without an app (yet) reaches no agent
		t.sync(s, tenant, 0, nil)
		return t
	}
	t.sync(s, snap.App, snap.Version, snap.Config.Agents)
	return t
}

// refreshMCP syncs the tools of app's MCP server, if it has one, with its
// current configuration, so connected sessions hear of a change at once.
func (s *Server) refreshMCP(app string) {
	s.mcp.mu.Lock()
	t := s.mcp.tenants[app]
	s.mcp.mu.Unlock()
	if t == nil {
		return
	}
	rt := s.Runtime
	if app != "" {
		if s.Apps == nil || s.Apps.Runtime(app) == nil {
			return
		}
		rt = s.Apps.Runtime(app)
	}
	snap, release := rt.Acquire()
	defer release()
	if snap != nil && snap.App == app {
		t.sync(s, snap.App, snap.Version, snap.Config.Agents)
	}
}

// sync makes the tools show agents, those of version of app's
// configuration: new and changed ones added (AddTool replaces), removed
// ones removed.
func (t *mcpTenant) sync(s *Server, app string, version int64, agents map[string]config.Agent) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.synced.app == app && version <= t.synced.version {
		return // shown already, or older than what is shown
	}
	t.synced.app, t.synced.version = app, version
	var gone []string
	for name := range t.agents {
		if _, ok := agents[name]; !ok {
			gone = append(gone, name)
			delete(t.agents, name)
		}
	}
	if len(gone) > 0 {
		sort.Strings(gone)
		t.srv.RemoveTools(gone...)
	}
	for name, ac := range agents {
		desc := ac.Description
		if desc == "" {
			desc = "Sends a message to the Hector agent " + ac.Label(name) + " and returns its reply."
		}
		shown := ac.Label(name) + "\x00" + desc
		if t.agents[name] == shown {
			continue
		}
		t.agents[name] = shown
		t.srv.AddTool(&mcp.Tool{Name: name, Title: ac.Label(name), Description: desc, InputSchema: mcpInput}, s.mcpCall(name))
	}
}

// mcpInput is every agent tool's input.
var mcpInput = json.RawMessage(`{"type":"object","properties":{` +
	`"input":{"type":"string","description":"The message to the agent."},` +
	`"session_id":{"type":"string","description":"Continue this session (from an earlier result); omit it to start one."}},` +
	`"required":["input"],"additionalProperties":false}`)

// mcpCall runs a turn of agent for a tool call, as its caller.
func (s *Server) mcpCall(name string) mcp.ToolHandler {
	return func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var g grant
		prefix := ""
		if ti := req.Extra.TokenInfo; ti != nil {
			g, _ = ti.Extra[grantExtra].(grant)
			prefix, _ = ti.Extra[prefixExtra].(string)
		}
		if g.who.ID() == "" {
			return mcpError("no caller: call through /mcp"), nil
		}
		var in struct {
			Input     string `json:"input"`
			SessionID string `json:"session_id"`
		}
		if err := json.Unmarshal(req.Params.Arguments, &in); err != nil || strings.TrimSpace(in.Input) == "" {
			return mcpError("input is required: the message to the agent"), nil
		}
		turn := messageRequest{Message: in.Input, SessionID: in.SessionID}
		switch {
		case turn.SessionID == "":
			turn.SessionID, turn.minted = store.NewSessionID(), true
		case !store.ValidSessionID(turn.SessionID):
			return mcpError("session_id must be " + store.SessionIDRule), nil
		}
		r, err := http.NewRequestWithContext(context.WithValue(ctx, grantKey{}, g), http.MethodPost, "/mcp", nil)
		if err != nil {
			return nil, err
		}
		rt, _ := s.tenantRuntime(r)
		snap, release := rt.Acquire()
		defer release()
		ag := (*agent.Agent)(nil)
		if snap != nil {
			ag = agentsFor(r, snap)[name]
		}
		if ag == nil {
			return mcpError("the agent " + name + " is no longer configured"), nil
		}
		v := &mcpView{prefix: prefix}
		rec := &recorder{header: http.Header{}}
		s.runTurn(rec, r, snap, ag, turn, v)
		if v.result == nil { // answered before the turn ran: a session it may not use, or the database
			return mcpError(rec.message()), nil
		}
		return v.result, nil
	}
}

func mcpError(msg string) *mcp.CallToolResult {
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: config.RedactText(msg)}}}
}

// mcpView shows a turn as a tool result: the reply as text, and
// {reply, session_id, …} as structured content.
type mcpView struct {
	prefix  string // where the caller reaches its tasks: "" or /apps/APP
	session string
	result  *mcp.CallToolResult
}

func (v *mcpView) namesSessionEarly() bool            { return false }
func (v *mcpView) begin(sessionID, _ string, _ int64) { v.session = sessionID }
func (v *mcpView) emit() func(agent.Event)            { return nil }
func (v *mcpView) unstored(what string) {
	v.result = mcpError("the " + what + " could not be stored; retry")
}
func (v *mcpView) failed(err error)                           { v.result = mcpError("the turn failed: " + err.Error()) }
func (v *mcpView) structured(m map[string]any) map[string]any { m["session_id"] = v.session; return m }

func (v *mcpView) done(res messageResponse) {
	v.result = &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: res.Reply}},
		StructuredContent: v.structured(map[string]any{"reply": res.Reply, "stop_reason": res.StopReason})}
}

func (v *mcpView) waiting(t *store.Task) {
	text := approvalText(v.prefix, t)
	v.result = &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}},
		StructuredContent: v.structured(map[string]any{"reply": text, "task_id": t.ID, "state": t.State})}
}

// recorder keeps what runTurn answers before the turn runs (an error).
type recorder struct {
	header http.Header
	status int
	body   strings.Builder
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(status int)      { r.status = status }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

// message is the error the recorded body holds.
func (r *recorder) message() string {
	var e apiError
	if json.Unmarshal([]byte(r.body.String()), &e) == nil && e.Error.Message != "" {
		return e.Error.Message
	}
	return fmt.Sprintf("the turn could not run (%d)", r.status)
}

// MCP sessions are bounded: the SDK keeps every session until it is
// deleted or idle for mcpSessionTimeout, so a caller could otherwise hold
// any number. A new session beyond the caller's or the server's limit is
// refused with 429.
const (
	mcpSessionTimeout    = 30 * time.Minute
	mcpSessionsPerCaller = 32
	mcpSessionsTotal     = 10000
)

// mcpSessions counts the live sessions by principal (tenant/id): from the
// answer to an initialize that names one, until a DELETE or
// mcpSessionTimeout without a request. An initialize in flight holds a
// reservation, so a burst cannot pass the limits before its answers are
// counted.
type mcpSessions struct {
	mu       sync.Mutex
	live     map[string]map[string]time.Time // principal -> session id -> last request
	reserved map[string]int                  // principal -> initializes in flight
	total    int                             // live and reserved
	swept    time.Time
}

// track admits r: a request of a live session refreshes it, a new session
// needs room. It returns the writer to serve with and what to call after.
func (m *mcpSessions) track(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, func(), bool) {
	g := grantOf(r)
	who, id, now := g.who.Tenant+"/"+g.who.ID(), r.Header.Get("Mcp-Session-Id"), time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.live == nil {
		m.live, m.reserved = map[string]map[string]time.Time{}, map[string]int{}
	}
	m.sweep(now)
	if id != "" {
		if _, ok := m.live[who][id]; ok {
			m.live[who][id] = now
			if r.Method == http.MethodDelete {
				delete(m.live[who], id)
				m.total--
			}
		}
		return w, func() {}, true
	}
	if r.Method != http.MethodPost {
		return w, func() {}, true // the SDK answers it
	}
	if len(m.live[who])+m.reserved[who] >= mcpSessionsPerCaller || m.total >= mcpSessionsTotal {
		w.Header().Set("Retry-After", "60")
		writeError(w, http.StatusTooManyRequests, "too_many_sessions", fmt.Sprintf(
			"too many MCP sessions: at most %d per caller and %d in all; close one (DELETE /mcp with its Mcp-Session-Id) or wait for one to expire", mcpSessionsPerCaller, mcpSessionsTotal))
		return w, nil, false
	}
	m.reserved[who]++
	m.total++
	sw := &sessionWriter{ResponseWriter: w}
	sw.settle = func() { // once: when the answer's header is written, or after the handler
		m.mu.Lock()
		defer m.mu.Unlock()
		m.reserved[who]--
		sid := w.Header().Get("Mcp-Session-Id")
		if sid == "" {
			m.total--
			return
		}
		if m.live[who] == nil {
			m.live[who] = map[string]time.Time{}
		}
		m.live[who][sid] = time.Now()
	}
	return sw, sw.done, true
}

// sessionWriter settles a reservation when the answer's header goes out.
type sessionWriter struct {
	http.ResponseWriter
	once   sync.Once
	settle func()
}

func (w *sessionWriter) done() { w.once.Do(w.settle) }

func (w *sessionWriter) WriteHeader(status int) {
	w.done()
	w.ResponseWriter.WriteHeader(status)
}

func (w *sessionWriter) Write(b []byte) (int, error) {
	w.done()
	return w.ResponseWriter.Write(b)
}

func (w *sessionWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *sessionWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// sweep forgets sessions idle past the timeout, at most once a second.
func (m *mcpSessions) sweep(now time.Time) {
	if now.Sub(m.swept) < time.Second {
		return
	}
	m.swept = now
	for who, ids := range m.live {
		for id, last := range ids {
			if now.Sub(last) > mcpSessionTimeout {
				delete(ids, id)
				m.total--
			}
		}
		if len(ids) == 0 {
			delete(m.live, who)
		}
	}
}
