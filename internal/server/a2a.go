package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"

	"github.com/hector-run/hector/internal/a2ahttp"
	"github.com/hector-run/hector/internal/remote"
	"github.com/hector-run/hector/internal/snapshot"
)

// rootCard is the card of the only agent, or, with several, an index of
// their cards.
func (s *Server) rootCard(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot) {
	base, secured := s.cardBase(r, snap)
	if len(snap.Config.Agents) == 1 {
		for name := range snap.Config.Agents {
			a2ahttp.CardHandler(a2ahttp.Card(snap, name, base, secured)).ServeHTTP(w, r)
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
		ac := snap.Config.Agents[name]
		agents[i] = map[string]string{"name": name, "display_name": ac.Label(name), "description": ac.Description,
			"card": base + "/agents/" + name + "/.well-known/agent-card.json", "url": base + "/a2a/" + name}
	}
	b, err := json.Marshal(map[string]any{"agents": agents})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "card index: "+err.Error())
		return
	}
	a2ahttp.ServeDocument(w, r, b) // public and cacheable, like the cards
}

func (s *Server) agentCard(w http.ResponseWriter, r *http.Request, snap *snapshot.Snapshot) {
	name := r.PathValue("name")
	if _, ok := snap.Config.Agents[name]; !ok {
		writeError(w, http.StatusNotFound, "agent_not_found", "no agent "+name)
		return
	}
	base, secured := s.cardBase(r, snap)
	a2ahttp.CardHandler(a2ahttp.Card(snap, name, base, secured)).ServeHTTP(w, r)
}

// cardBase is the URL the agents of snap (the main configuration's or an
// app's) are served under, and whether their endpoints need a
// credential: both are the main configuration's (a2a.public_url,
// server.auth), with /apps/APP added for an app's agents.
func (s *Server) cardBase(r *http.Request, snap *snapshot.Snapshot) (string, bool) {
	main := s.Runtime.Current()
	if main == nil {
		main = snap
	}
	base := a2ahttp.BaseURL(main, r)
	if snap.App != "" {
		base += "/apps/" + snap.App
	}
	return base, main.Config.Server.Auth.Credentials()
}

// serveA2A checks the key and the agent, then hands the request to the
// A2A service with no snapshot held: a stream can outlive many reloads.
func (s *Server) serveA2A(w http.ResponseWriter, r *http.Request) {
	if s.A2A == nil {
		writeError(w, http.StatusServiceUnavailable, "a2a_unavailable", "this server runs no task queue, which A2A tasks need")
		return
	}
	g := grantOf(r)
	caller := a2ahttp.Caller{Name: g.who.ID(), MayApprove: g.who.Has(operator), Scope: g.scope(), Owner: g.owner()}
	name := r.PathValue("name")
	rt, _ := s.tenantRuntime(r)
	snap, release := rt.Acquire()
	exists := snap != nil && agentsFor(r, snap)[name] != nil
	release()
	if !exists {
		writeError(w, http.StatusNotFound, "agent_not_found", "no agent "+name)
		return
	}
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
	prefix := "/a2a/" + name
	if app := r.PathValue("app"); app != "" {
		prefix = "/apps/" + app + prefix
	}
	s.A2A.Serve(w, r.WithContext(ctx), name, prefix, caller)
}

// turnErrorCode is the error code of a failed turn: remote_agent_error
// when a remote A2A agent failed (unreachable, a bad card, a failed remote
// task), else llm_error.
func turnErrorCode(err error) string {
	var re *remote.Error
	if errors.As(err, &re) {
		return "remote_agent_error"
	}
	return "llm_error"
}
