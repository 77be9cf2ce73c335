package server

import (
	"context"
	"net/http"
	"sort"

	"github.com/hector-run/hector/internal/a2ahttp"
	"github.com/hector-run/hector/internal/runtime"
)

// a2aRoutes serves agent cards and the A2A endpoints. Cards are public,
// as the protocol intends (with API keys configured they name the bearer
// scheme); the endpoints need a key of any role once keys exist, and
// deciding on a tool call over A2A needs the operator role.
func (s *Server) a2aRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /.well-known/agent-card.json", s.pinned(s.rootCard))
	mux.HandleFunc("GET /agents/{name}/.well-known/agent-card.json", s.pinned(s.agentCard))
	mux.HandleFunc("GET /a2a/{name}/.well-known/agent-card.json", s.pinned(s.agentCard))
	mux.HandleFunc("/a2a/{name}", s.serveA2A)
	mux.HandleFunc("/a2a/{name}/{rest...}", s.serveA2A)
}

// rootCard is the card of the only agent, or, with several, an index of
// their cards.
func (s *Server) rootCard(w http.ResponseWriter, r *http.Request, snap *runtime.Snapshot) {
	base := a2ahttp.BaseURL(snap, r)
	if len(snap.Config.Agents) == 1 {
		for name := range snap.Config.Agents {
			a2ahttp.CardHandler(a2ahttp.Card(snap, name, base)).ServeHTTP(w, r)
		}
		return
	}
	names := make([]string, 0, len(snap.Config.Agents))
	for name := range snap.Config.Agents {
		names = append(names, name)
	}
	sort.Strings(names)
	agents := make([]map[string]string, len(names))
	for i, name := range names {
		agents[i] = map[string]string{"name": name, "description": snap.Config.Agents[name].Description,
			"card": base + "/agents/" + name + "/.well-known/agent-card.json", "url": base + "/a2a/" + name}
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, map[string]any{"agents": agents})
}

func (s *Server) agentCard(w http.ResponseWriter, r *http.Request, snap *runtime.Snapshot) {
	name := r.PathValue("name")
	if _, ok := snap.Config.Agents[name]; !ok {
		writeError(w, http.StatusNotFound, "agent_not_found", "no agent "+name)
		return
	}
	a2ahttp.CardHandler(a2ahttp.Card(snap, name, a2ahttp.BaseURL(snap, r))).ServeHTTP(w, r)
}

// serveA2A checks the key and the agent, then hands the request to the
// A2A service with no snapshot held: a stream can outlive many reloads.
func (s *Server) serveA2A(w http.ResponseWriter, r *http.Request) {
	if s.A2A == nil {
		writeError(w, http.StatusServiceUnavailable, "a2a_unavailable", "this server runs no task queue, which A2A tasks need")
		return
	}
	g, ok := s.admit(w, r, "viewer")
	if !ok {
		return
	}
	caller := a2ahttp.Caller{Name: "anonymous", MayApprove: true}
	if g.keyed {
		caller = a2ahttp.Caller{Name: g.key.Name, MayApprove: hasRole(g.key, "operator")}
	}
	name := r.PathValue("name")
	snap, release, ok := s.snapshot(w)
	if !ok {
		release()
		return
	}
	_, exists := snap.Config.Agents[name]
	release()
	if !exists {
		writeError(w, http.StatusNotFound, "agent_not_found", "no agent "+name)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, g.limit)
	// Streams end when their listener drains (a rebind or shutdown); the
	// client resubscribes, at the new address if it moved.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-draining(r.Context()):
			cancel()
		case <-ctx.Done():
		}
	}()
	s.A2A.Serve(w, r.WithContext(ctx), name, "/a2a/"+name, caller)
}
