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
	"crypto/sha256"
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
	"github.com/hector-run/hector/internal/snapshot"
	"github.com/hector-run/hector/internal/store"
)

// Queue is what the service needs of the task queue.
type Queue interface {
	Wake()
	MaxAttempts() int
}

// Service serves A2A. Set the fields, then call Start once.
type Service struct {
	// Runtime is the main configuration's: its store holds every tenant's
	// tasks, and its a2a section sets the push policy.
	Runtime *snapshot.Runtime
	// Tenants, if set, finds the runtime whose agents serve an app's
	// callers (Caller.Owner.Tenant); without it only the main tenant's.
	Tenants snapshot.Tenants
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

// Caller describes who sent a request: its principal's name (an API key's
// name, NAME:SUBJECT or "anonymous"), whether it has the operator role
// (it may then decide on tool calls and cancel any task it sees), which
// tasks and contexts it may see, and the owner its new tasks record.
type Caller struct {
	Name       string
	MayApprove bool
	Scope      store.Scope
	Owner      store.Owner
}

// Serve answers an A2A request for agent, whose endpoint is prefix (the
// request's path starts with it). The caller checked authentication and
// limited the body (http.MaxBytesReader): a body over the limit is
// answered 413.
func (s *Service) Serve(w http.ResponseWriter, r *http.Request, agent, prefix string, c Caller) {
	s.init()
	r = r.WithContext(callerContext(r.Context(), caller{agent: agent, Caller: c}))
	rest := strings.TrimPrefix(r.URL.Path, prefix)
	version := r.Header.Get(a2a.SvcParamVersion)
	jsonrpc := rest == "" || rest == "/"
	if version != "" && !strings.HasPrefix(version, "1.0") && !strings.HasPrefix(version, "0.3") {
		s.versionNotSupported(w, r, jsonrpc, version)
		return
	}
	body, ok := readBody(w, r, jsonrpc)
	if !ok {
		return
	}
	if jsonrpc {
		s.serveJSONRPC(w, r, body)
		return
	}
	v03 := strings.HasPrefix(rest, a2av0.RESTPathPrefix+"/") || strings.HasPrefix(version, "0.3")
	body, done := s.prepareREST(w, r, strings.TrimPrefix(rest, a2av0.RESTPathPrefix), body, v03)
	if done {
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path, r2.URL.RawPath = rest, ""
	if body != nil {
		r2.Body, r2.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	}
	if v03 {
		s.rest03.ServeHTTP(w, r2)
		return
	}
	s.rest.ServeHTTP(w, r2)
}

// serveJSONRPC hands a JSON-RPC request to the 1.0 or the 0.3 handler,
// by the method's name: 0.3's are path-like (message/send), 1.0's are
// not (SendMessage).
func (s *Service) serveJSONRPC(w http.ResponseWriter, r *http.Request, body []byte) {
	var q rpcRequest
	if json.Unmarshal(body, &q) == nil && q.JSONRPC == "2.0" && q.validID() {
		var done bool
		if body, done = s.prepareRPC(w, r, &q, body); done {
			return
		}
	} // else the handler reports what is wrong
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	if strings.Contains(q.Method, "/") {
		// a2a-go's 0.3 handler writes its errors without a Content-Type;
		// a stream sets its own.
		w.Header().Set("Content-Type", "application/json")
		s.jsonrpc03.ServeHTTP(w, r)
		return
	}
	s.jsonrpc.ServeHTTP(w, r)
}

func (s *Service) versionNotSupported(w http.ResponseWriter, r *http.Request, jsonrpc bool, version string) {
	err := a2a.NewError(a2a.ErrVersionNotSupported, fmt.Sprintf("A2A-Version %q is not supported: this server speaks 1.0 and 0.3", version))
	if jsonrpc {
		var peek struct {
			ID json.RawMessage `json:"id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&peek)
		writeRPCError(w, http.StatusOK, peek.ID, err)
		return
	}
	writeRESTError(w, 0, err, "", false)
}

// BaseURL is the URL clients reach this server at: a2a.public_url when
// set, else taken from the request.
func BaseURL(snap *snapshot.Snapshot, r *http.Request) string {
	if u := snap.Config.A2A.PublicURL; u != "" {
		return strings.TrimRight(u, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// Card is the agent card of agent name of snap (the main configuration's
// or an app's), served from base (BaseURL, plus /apps/APP for an app's).
// secured says the endpoints need a bearer credential (the main
// configuration has keys or issuers).
func Card(snap *snapshot.Snapshot, name, base string, secured bool) *a2a.AgentCard {
	ac := snap.Config.Agents[name]
	endpoint := base + "/a2a/" + name
	desc := ac.Description
	if desc == "" {
		desc = "Hector agent " + name
	}
	display := ac.Label(name)
	card := &a2a.AgentCard{
		Name:        display,
		Description: desc,
		Version:     strconv.FormatInt(snap.Version, 10),
		SupportedInterfaces: []*a2a.AgentInterface{
			{URL: endpoint, ProtocolBinding: a2a.TransportProtocolJSONRPC, ProtocolVersion: a2a.Version},
			{URL: endpoint, ProtocolBinding: a2a.TransportProtocolHTTPJSON, ProtocolVersion: a2a.Version},
			{URL: endpoint, ProtocolBinding: a2a.TransportProtocolJSONRPC, ProtocolVersion: a2av0.Version},
			{URL: endpoint, ProtocolBinding: a2a.TransportProtocolHTTPJSON, ProtocolVersion: a2av0.Version},
		},
		Capabilities:       a2a.AgentCapabilities{Streaming: ac.Streams(), PushNotifications: true},
		DefaultInputModes:  []string{"text/plain", "application/json"},
		DefaultOutputModes: []string{"text/plain", "application/json"},
		Skills:             []a2a.AgentSkill{{ID: name, Name: display, Description: desc, Tags: append([]string{"hector"}, sortedCopy(ac.Tools)...)}},
	}
	if secured {
		card.SecuritySchemes = a2a.NamedSecuritySchemes{"bearer": a2a.HTTPAuthSecurityScheme{Scheme: "Bearer",
			Description: "A Hector API key (server.auth.api_keys) or a JWT of a configured issuer; deciding on tool calls needs the operator role."}}
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
// so clients of either version read it. See ServeDocument for caching.
func CardHandler(card *a2a.AgentCard) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := a2av0.NewStaticAgentCardProducer(card).(a2asrv.AgentCardJSONProducer)
		b, err := p.CardJSON(r.Context())
		if err != nil {
			http.Error(w, "agent card: "+err.Error(), http.StatusInternalServerError)
			return
		}
		ServeDocument(w, r, b)
	})
}

// CardMaxAge is how long a client or cache may use an agent card (or the
// card index) without asking again.
const CardMaxAge = 60 * time.Second

// ServeDocument serves b, a public JSON document (an agent card, the card
// index), to GET, HEAD and CORS preflight requests: readable from any
// origin, cacheable for CardMaxAge (Cache-Control: public, max-age=60),
// with a strong ETag of its bytes; a request whose If-None-Match names
// that ETag is answered 304 Not Modified. A reload that changes the card
// changes its bytes, so its ETag.
func ServeDocument(w http.ResponseWriter, r *http.Request, b []byte) {
	h := w.Header()
	if h.Get("Access-Control-Allow-Origin") == "" {
		h.Set("Access-Control-Allow-Origin", "*")
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type, If-None-Match")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		h.Set("Allow", "GET, HEAD, OPTIONS")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	sum := sha256.Sum256(b)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	h.Set("ETag", etag)
	h.Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(CardMaxAge/time.Second)))
	h.Add("Access-Control-Expose-Headers", "ETag")
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// etagMatches reports whether an If-None-Match header names etag (weak
// comparison, as RFC 9110 asks for If-None-Match) or is "*".
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}
