// Package a2ahttp serves Hector's agents over the A2A protocol: agent
// cards, and the JSON-RPC and HTTP+JSON bindings of A2A 1.0 and of the
// 0.3 wire format, all on one request handler whose tasks are Hector's
// durable tasks. A task started over A2A runs on the task queue, survives
// restarts, waits for approvals and shows up in /v1/tasks like any other.
//
// Each agent has one endpoint, /a2a/{agent}: JSON-RPC requests are POSTed
// to it (the method name tells 1.0's SendMessage from 0.3's message/send),
// and the REST bindings live below it (1.0 at /a2a/{agent}/message:send,
// 0.3 under /a2a/{agent}/v1/).
package a2ahttp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2acompat/a2av0"
	"github.com/a2aproject/a2a-go/v2/a2asrv"

	"github.com/hector-run/hector/internal/live"
	"github.com/hector-run/hector/internal/runtime"
)

// Queue is what the service needs of the task queue.
type Queue interface {
	Wake()
	MaxAttempts() int
}

// Service serves A2A. Set the fields, then call Start once.
type Service struct {
	Runtime *runtime.Runtime
	Queue   Queue
	Log     *slog.Logger
	// PollInterval bounds how long a waiting request or stream takes to
	// see a change no notification announced (another process's write
	// on SQLite). Default 500ms.
	PollInterval time.Duration
	// Live, if set, carries the model's text of tasks run in this process
	// to streams as it is generated.
	Live *live.Hub
	// OnPush, if set, is told whether each push notification was
	// delivered.
	OnPush func(delivered bool)

	once                     sync.Once
	jsonrpc, jsonrpc03, rest http.Handler
	rest03                   http.Handler
	pushWake                 chan struct{}
}

func (s *Service) init() {
	s.once.Do(func() {
		h := handler{s}
		keepAlive := a2asrv.WithTransportKeepAlive(15 * time.Second)
		s.jsonrpc = a2asrv.NewJSONRPCHandler(h, keepAlive)
		s.rest = a2asrv.NewRESTHandler(h, keepAlive)
		s.jsonrpc03 = a2av0.NewJSONRPCHandler(h, keepAlive)
		s.rest03 = a2av0.NewRESTHandler(h, keepAlive)
		s.pushWake = make(chan struct{}, 1)
	})
}

func (s *Service) pollInterval() time.Duration {
	if s.PollInterval > 0 {
		return s.PollInterval
	}
	return 500 * time.Millisecond
}

// Start delivers push notifications until ctx ends.
func (s *Service) Start(ctx context.Context) {
	s.init()
	go s.deliver(ctx)
}

// Caller describes who sent a request: the API key's name (or
// "anonymous") and whether it may decide on tool calls.
type Caller struct {
	Name       string
	MayApprove bool
}

// Serve answers an A2A request for agent, whose endpoint is prefix (the
// request's path starts with it). The caller checked authentication.
func (s *Service) Serve(w http.ResponseWriter, r *http.Request, agent, prefix string, c Caller) {
	s.init()
	r = r.WithContext(context.WithValue(r.Context(), callerKey{}, caller{agent: agent, name: c.Name, mayApprove: c.MayApprove}))
	rest := strings.TrimPrefix(r.URL.Path, prefix)
	version := r.Header.Get(a2a.SvcParamVersion)
	if version != "" && !strings.HasPrefix(version, "1.0") && !strings.HasPrefix(version, "0.3") {
		s.versionNotSupported(w, r, rest, version)
		return
	}
	if rest == "" || rest == "/" {
		s.serveJSONRPC(w, r)
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path, r2.URL.RawPath = rest, ""
	if strings.HasPrefix(rest, a2av0.RESTPathPrefix+"/") || strings.HasPrefix(version, "0.3") {
		s.rest03.ServeHTTP(w, r2)
		return
	}
	s.rest.ServeHTTP(w, r2)
}

// serveJSONRPC hands a JSON-RPC request to the 1.0 or the 0.3 handler,
// by the method's name: 0.3's are path-like (message/send), 1.0's are
// not (SendMessage).
func (s *Service) serveJSONRPC(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeJSONRPCError(w, nil, -32600, "request body: "+err.Error())
		return
	}
	var peek struct {
		Method string `json:"method"`
	}
	_ = json.Unmarshal(body, &peek) // the handler reports malformed JSON
	r.Body = io.NopCloser(bytes.NewReader(body))
	if strings.Contains(peek.Method, "/") {
		s.jsonrpc03.ServeHTTP(w, r)
		return
	}
	s.jsonrpc.ServeHTTP(w, r)
}

func (s *Service) versionNotSupported(w http.ResponseWriter, r *http.Request, rest, version string) {
	msg := fmt.Sprintf("A2A-Version %q is not supported: this server speaks 1.0 and 0.3", version)
	if rest == "" || rest == "/" {
		var peek struct {
			ID any `json:"id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&peek)
		writeJSONRPCError(w, peek.ID, -32009, msg)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": 400, "status": "FAILED_PRECONDITION", "message": msg}})
}

func writeJSONRPCError(w http.ResponseWriter, id any, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": id, "error": map[string]any{"code": code, "message": msg}})
}

// BaseURL is the URL clients reach this server at: a2a.public_url when
// set, else taken from the request.
func BaseURL(snap *runtime.Snapshot, r *http.Request) string {
	if u := snap.Config.A2A.PublicURL; u != "" {
		return strings.TrimRight(u, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// Card is the agent card of agent name, served from base.
func Card(snap *runtime.Snapshot, name, base string) *a2a.AgentCard {
	ac := snap.Config.Agents[name]
	endpoint := base + "/a2a/" + name
	desc := ac.Description
	if desc == "" {
		desc = "Hector agent " + name
	}
	card := &a2a.AgentCard{
		Name:        name,
		Description: desc,
		Version:     strconv.FormatInt(snap.Version, 10),
		SupportedInterfaces: []*a2a.AgentInterface{
			{URL: endpoint, ProtocolBinding: a2a.TransportProtocolJSONRPC, ProtocolVersion: a2a.Version},
			{URL: endpoint, ProtocolBinding: a2a.TransportProtocolHTTPJSON, ProtocolVersion: a2a.Version},
			{URL: endpoint, ProtocolBinding: a2a.TransportProtocolJSONRPC, ProtocolVersion: a2av0.Version},
			{URL: endpoint, ProtocolBinding: a2a.TransportProtocolHTTPJSON, ProtocolVersion: a2av0.Version},
		},
		Capabilities:       a2a.AgentCapabilities{Streaming: true, PushNotifications: true},
		DefaultInputModes:  []string{"text/plain", "application/json"},
		DefaultOutputModes: []string{"text/plain", "application/json"},
		Skills:             []a2a.AgentSkill{{ID: name, Name: name, Description: desc, Tags: append([]string{"hector"}, sortedCopy(ac.Tools)...)}},
	}
	if len(snap.Config.Server.Auth.APIKeys) > 0 {
		card.SecuritySchemes = a2a.NamedSecuritySchemes{"bearer": a2a.HTTPAuthSecurityScheme{Scheme: "Bearer",
			Description: "A Hector API key (server.auth.api_keys); deciding on tool calls needs the operator role."}}
		card.SecurityRequirements = a2a.SecurityRequirementsOptions{{"bearer": a2a.SecuritySchemeScopes{}}}
	}
	return card
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// CardHandler serves card in the union of the 1.0 and 0.3 card formats,
// so clients of either version read it.
func CardHandler(card *a2a.AgentCard) http.Handler {
	return a2asrv.NewAgentCardHandler(a2av0.NewStaticAgentCardProducer(card))
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
