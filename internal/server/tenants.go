package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/hector-run/hector/internal/reload"
	"github.com/hector-run/hector/internal/snapshot"
)

// tenantOf is the tenant whose agents the request reaches: its
// principal's (an app's principals are bound to it; an admin may act in
// an app through /apps/{app}/..., see enterApp), else, on a public route
// under /apps/{app}/, that app; "" is the main configuration.
func tenantOf(r *http.Request) string {
	if g, ok := r.Context().Value(grantKey{}).(grant); ok {
		return g.who.Tenant
	}
	return r.PathValue("app")
}

// tenantRuntime is the runtime serving the request's tenant, and whether
// it is an app's. A tenant without an app is served by the main runtime,
// where it reaches no agents (agentsFor) and only its own rows.
func (s *Server) tenantRuntime(r *http.Request) (*snapshot.Runtime, string) {
	if t := tenantOf(r); t != "" && s.Apps != nil {
		if rt := s.Apps.Runtime(t); rt != nil {
			return rt, t
		}
	}
	return s.Runtime, ""
}

// inApp is rt under /apps/{app}: the same handler, for the app named in
// the path (see enterApp).
func (s *Server) inApp(rt route) route {
	method, path, ok := strings.Cut(rt.pattern, " ")
	if !ok { // a pattern without a method
		method, path = "", rt.pattern
	} else {
		method += " "
	}
	h := rt.handler
	rt.pattern = method + "/apps/{app}" + path
	rt.handler = func(w http.ResponseWriter, r *http.Request) {
		if r, ok := s.enterApp(w, r); ok {
			h(w, r)
		}
	}
	return rt
}

// enterApp admits a request under /apps/{app}/ to that app: a principal
// of the app, or an admin of the main tenant, who then acts as a
// principal of the app. Anyone else, and any request for an app that
// does not exist, gets 404, so app names cannot be probed. An app's cards
// too need a credential once credentials exist (401 before anything is
// looked up): they would list the app's agents.
func (s *Server) enterApp(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	name := r.PathValue("app")
	notFound := func() (*http.Request, bool) {
		writeError(w, http.StatusNotFound, "app_not_found", fmt.Sprintf("no app named %q", name))
		return r, false
	}
	g, ok := r.Context().Value(grantKey{}).(grant)
	if !ok { // a public route (a card): an app's are its principals' once credentials exist
		if g, ok = s.admit(w, r, user); !ok {
			return r, false
		}
	}
	if s.Apps == nil || s.Apps.Runtime(name) == nil {
		return notFound()
	}
	switch {
	case g.who.Tenant == name:
	case g.who.Tenant == "" && g.who.Has(admin):
		g.who.Tenant = name
	default:
		return notFound()
	}
	return r.WithContext(context.WithValue(r.Context(), grantKey{}, g)), true
}

// plane is one configuration the admin API manages: the main one (app
// "") or an app's.
type plane struct {
	app string
	rec *reload.Reconciler
	rt  *snapshot.Runtime
}

// planeOf is the configuration an admin route names: the app of
// /admin/apps/{app}/..., else the main one. It answers 404 itself for an
// unknown app.
func (s *Server) planeOf(w http.ResponseWriter, r *http.Request) (plane, bool) {
	name := r.PathValue("app")
	if name == "" {
		return plane{rec: s.Reconciler, rt: s.Runtime}, true
	}
	if s.Apps != nil {
		if a := s.Apps.Get(name); a != nil {
			return plane{app: name, rec: a.Reconciler, rt: a.Runtime}, true
		}
	}
	writeError(w, http.StatusNotFound, "app_not_found", fmt.Sprintf("no app named %q", name))
	return plane{}, false
}

// onPlane adapts an admin handler of one configuration, main or app.
func (s *Server) onPlane(h func(http.ResponseWriter, *http.Request, plane)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if p, ok := s.planeOf(w, r); ok {
			h(w, r, p)
		}
	}
}

// onPlaneSnapshot is onPlane holding the configuration's current snapshot
// for the handler.
func (s *Server) onPlaneSnapshot(h func(http.ResponseWriter, *http.Request, plane, *snapshot.Snapshot)) http.HandlerFunc {
	return s.onPlane(func(w http.ResponseWriter, r *http.Request, p plane) {
		snap, release := p.rt.Acquire()
		defer release()
		if snap == nil {
			unavailableApp(w, p.app)
			return
		}
		h(w, r, p, snap)
	})
}

// unavailableApp answers 503 for a runtime without a snapshot: an app
// that never had a valid document, or a server shutting down.
func unavailableApp(w http.ResponseWriter, app string) {
	if app == "" {
		writeError(w, http.StatusServiceUnavailable, "shutting_down", "the server is shutting down")
		return
	}
	w.Header().Set("Retry-After", "5")
	writeError(w, http.StatusServiceUnavailable, "app_unavailable",
		fmt.Sprintf("app %q has no valid configuration (see GET /admin/apps/%s/outcomes)", app, app))
}
