// Package server is Hector's HTTP front: the REST API, health, and the
// listener lifecycle (bind, live rebind, graceful shutdown).
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hector-run/hector/internal/a2ahttp"
	"github.com/hector-run/hector/internal/apps"
	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/observe"
	"github.com/hector-run/hector/internal/reload"
	"github.com/hector-run/hector/internal/snapshot"
)

// Server serves the API of whatever snapshot is current.
type Server struct {
	Runtime    *snapshot.Runtime
	Reconciler *reload.Reconciler // for the /admin API
	Queue      Queue              // for the task routes; nil: none
	A2A        *a2ahttp.Service   // the A2A endpoints; nil: none
	// Apps are the tenants' configurations (/admin/apps, and the agents
	// of principals bound to an app); nil: the main configuration only.
	Apps *apps.Registry
	// Metrics counts the requests and serves /metrics; nil: metrics of
	// this server's own (only its requests).
	Metrics *observe.Metrics
	// Tracing traces the requests; nil: none (a caller's traceparent is
	// still passed on).
	Tracing *observe.Tracing
	Log     *slog.Logger
	Version string

	sessions keyedMutex
	conns    conns
	events   hub // reload outcomes for GET /admin/events

	mu       sync.Mutex
	active   *http.Server
	drain    chan struct{} // closed when the active listener starts draining
	quit     chan struct{} // closed by Shutdown: cut rebind grace periods short
	addr     string
	draining sync.WaitGroup
	closed   bool

	mcp mcpHub // the agents served over MCP (mcp.go)
}

// PublishOutcome sends a reload outcome to the subscribers of the event
// stream (GET /admin/events); a subscriber that is behind misses it. Add it
// as a reconciler listener (reload.Reconciler.AddListener).
func (s *Server) PublishOutcome(o reload.Outcome) {
	s.events.publish(s.Reconciler.Public(o))
	if o.Result == reload.Applied {
		s.refreshMCP(o.App) // connected MCP sessions hear of added and removed agents
	}
}

func (s *Server) init() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns.settings == nil {
		s.conns.settings = s.serverSettings
	}
	if s.Metrics == nil {
		s.Metrics = observe.NewMetrics()
	}
}

// serverSettings returns the current snapshot's server settings (the
// defaults while there is none).
func (s *Server) serverSettings() *config.Server {
	if snap := s.Runtime.Current(); snap != nil {
		return &snap.Config.Server
	}
	return &config.Server{IdleTimeout: config.Duration(config.DefaultIdleTimeout)}
}

type drainKey struct{}

// draining returns a channel closed when the listener that accepted the
// request starts draining. Long-lived streams end then; ordinary requests
// are left to finish.
func draining(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(drainKey{}).(chan struct{})
	return ch // nil (never ready) outside a listener
}

// Handler returns the API's HTTP handler: the route table, each route
// behind its policy (guard), all behind the per-request policies (front).
func (s *Server) Handler() http.Handler {
	s.init()
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.HandleFunc(rt.pattern, s.guard(rt))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
	})
	return requestID(s.Tracing.Middleware(s.Metrics.Instrument(s.recoverer(s.front(mux)))))
}

// recoverer turns a handler panic into a 500 JSON error and a log line.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.Log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", v)
				writeError(w, http.StatusInternalServerError, "internal", "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// Listen binds addr and starts serving on it; the error says the bind
// failed, and nothing is left open then. Call it once, after the first
// snapshot is committed; later address changes go through ListenerApplier,
// and Shutdown stops what Listen started. When the current configuration
// has no credentials (API keys or JWT issuers) and its host is beyond loopback, it logs a warning that
// every route is open.
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	s.serve(ln)
	if snap := s.Runtime.Current(); snap != nil && !snap.Config.Server.Auth.Credentials() && !isLoopback(snap.Config.Server.Host) {
		s.Log.Warn("NO API KEYS: every route (agents, tools, tasks, sessions, /admin) is open to anyone who can reach this address; configure server.auth.api_keys or server.auth.jwt",
			"host", snap.Config.Server.Host)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Addr returns the address currently being served ("" before Listen).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// serve starts an http.Server on ln and makes it the active one; the server
// it replaces stops accepting at once and drains in the background within
// the configured shutdown timeout. After Shutdown it closes ln instead.
func (s *Server) serve(ln net.Listener) {
	drain := make(chan struct{})
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ConnState: s.conns.state,
		ErrorLog:    slog.NewLogLogger(s.Log.Handler(), slog.LevelWarn),
		BaseContext: func(net.Listener) context.Context { return context.WithValue(context.Background(), drainKey{}, drain) }}
	ln = s.conns.listener(ln)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return
	}
	if s.quit == nil {
		s.quit = make(chan struct{})
	}
	quit := s.quit
	old, oldDrain := s.active, s.drain
	s.active, s.drain, s.addr = hs, drain, ln.Addr().String()
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Log.Error("http server stopped", "addr", ln.Addr().String(), "error", err)
		}
	}()
	s.mu.Unlock()
	s.Log.Info("listening", "addr", ln.Addr().String())
	if old != nil {
		// The old listener keeps accepting for the rebind grace, so clients
		// that still use the old address are served while they move.
		grace := config.DefaultRebindGrace
		if snap := s.Runtime.Current(); snap != nil {
			grace = snap.Config.Server.RebindGrace.D()
		}
		s.draining.Add(1)
		go func() {
			defer s.draining.Done()
			t := time.NewTimer(grace)
			defer t.Stop()
			select {
			case <-t.C:
			case <-quit:
			}
			s.shutdownOne(old, oldDrain)
		}()
	}
}

// ShutdownTimeout is how long Shutdown waits for in-flight requests: the
// current configuration's server.shutdown_timeout (its default while there
// is none).
func (s *Server) ShutdownTimeout() time.Duration {
	if snap := s.Runtime.Current(); snap != nil {
		return snap.Config.Server.ShutdownTimeout.D()
	}
	return config.DefaultShutdownTimeout
}

// shutdownOne stops hs accepting, ends its event streams, waits for its
// in-flight requests up to the shutdown timeout, then closes what is left.
func (s *Server) shutdownOne(hs *http.Server, drain chan struct{}) {
	close(drain)
	ctx, cancel := context.WithTimeout(context.Background(), s.ShutdownTimeout())
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil {
		s.Log.Warn("in-flight requests cut off at shutdown timeout", "error", err)
		_ = hs.Close()
	}
}

// Shutdown stops accepting connections and waits, up to the configured
// shutdown_timeout, for in-flight requests (including listeners still
// draining after a rebind) to finish; requests still running then are cut
// off. It is idempotent.
func (s *Server) Shutdown() {
	s.mu.Lock()
	hs, drain := s.active, s.drain
	s.active, s.drain, s.closed = nil, nil, true
	if s.quit != nil {
		close(s.quit)
	}
	s.mu.Unlock()
	if hs != nil {
		s.shutdownOne(hs, drain)
	}
	s.draining.Wait()
}

// ListenerApplier rebinds the listener when server.host or server.port
// changes: the new address is bound in Prepare (so a bind failure rejects the
// reload with nothing changed) and served from Commit, after which the old
// listener stops accepting and drains.
func (s *Server) ListenerApplier() reload.Applier {
	return reload.ApplierFunc(func(cur, next *config.Config) (reload.Prepared, error) {
		if cur == nil || cur.Server.Addr() == next.Server.Addr() {
			return reload.Prepared{}, nil
		}
		ln, err := net.Listen("tcp", next.Server.Addr())
		if err != nil {
			return reload.Prepared{}, config.Errors{{Path: "server.port", Message: fmt.Sprintf("cannot listen on %s: %v", next.Server.Addr(), err)}}
		}
		return reload.Prepared{Commit: func() { s.serve(ln) }, Abort: func() { ln.Close() }}, nil
	})
}

// keyedMutex serialises work per key (a session), so two messages to one
// session never read the same history.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	sync.Mutex
	users int
}

func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyedLock{}
		k.locks[key] = l
	}
	l.users++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		if l.users--; l.users == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
