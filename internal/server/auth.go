package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/hector-run/hector/internal/agent"
	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/identity"
	"github.com/hector-run/hector/internal/snapshot"
	"github.com/hector-run/hector/internal/store"
)

type grantKey struct{}

// actor returns who made the request, as reload outcomes and approvals
// record it: an API key's name, NAME:SUBJECT of a JWT, or "anonymous".
func actor(r *http.Request) string { return grantOf(r).who.ID() }

// grantOf returns what admit found for the request.
func grantOf(r *http.Request) grant {
	g, ok := r.Context().Value(grantKey{}).(grant)
	if !ok { // a public route: nobody in particular
		g.who = identity.Anonymous(config.RoleUser)
	}
	return g
}

// agentsFor returns the agents the request's principal may reach in snap:
// snap's when snap is its tenant's configuration (the main one, or its
// app's), none otherwise (a tenant without an app). Every route that
// names or lists agents asks here.
func agentsFor(r *http.Request, snap *snapshot.Snapshot) map[string]*agent.Agent {
	if tenantOf(r) != snap.App {
		return nil
	}
	return snap.Agents
}

// agentNamesFor is agentsFor's names, sorted.
func agentNamesFor(r *http.Request, snap *snapshot.Snapshot) []string {
	return slices.Sorted(maps.Keys(agentsFor(r, snap)))
}

// isAdmin reports whether the request may do what the admin role may:
// always on a server without credentials.
func isAdmin(r *http.Request) bool { return grantOf(r).who.Has(admin) }

// bearer returns the token of an Authorization header of the Bearer scheme
// (the scheme's name is case-insensitive, RFC 9110 §11.1).
func bearer(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// errBadKey is the answer to a bearer token that is neither a configured
// key nor a JWT.
var errBadKey = errors.New("the bearer token is not a valid API key")

// authenticate finds who presented token: a configured API key, else,
// when the token has the shape of a JWT, one of the snapshot's issuers.
// Every key is compared, in constant time, so timing reveals neither
// which key matched nor how much of one did.
func authenticate(ctx context.Context, snap *snapshot.Snapshot, token string) (identity.Principal, error) {
	given := sha256.Sum256([]byte(token))
	var found config.APIKey
	match := 0
	for i, want := range snap.KeyDigests {
		if subtle.ConstantTimeCompare(given[:], want[:]) == 1 {
			found, match = snap.Config.Server.Auth.APIKeys[i], 1
		}
	}
	switch {
	case match == 1:
		return identity.Principal{Subject: found.Name, Tenant: found.App, Role: found.Role, Via: identity.ViaKey}, nil
	case len(snap.Issuers) > 0 && identity.LooksLikeJWT(token):
		return snap.Issuers.Verify(ctx, token)
	}
	return identity.Principal{}, errBadKey
}

// guard wraps a route's handler with its policy: the body's media type,
// then, unless the route is public, a credential whose role is at least
// the route's (see admit). Credentials are read from the request's
// snapshot, so adding, removing and rotating keys and issuers apply live.
// The body is then read whole, limited to server.max_body_bytes and
// server.read_timeout.
func (s *Server) guard(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !acceptsBody(w, r, rt.body) {
			return
		}
		if rt.role == public {
			rt.handler(w, r)
			return
		}
		g, ok := s.admit(w, r, rt.role)
		if !ok {
			return
		}
		if rt.body == protocolBody {
			limitBody(w, r, g.limit)
		} else if !readBodyWhole(w, r, g.limit) {
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), grantKey{}, g))
		rt.handler(w, r)
	}
}

// grant is what admit found: who made the request, and its body limit.
type grant struct {
	who   identity.Principal
	limit int64
}

// scope is what the request's principal may see of sessions and tasks:
// its tenant, and only its own rows for the user role.
func (g grant) scope() store.Scope {
	sc := store.Scope{Tenant: g.who.Tenant}
	if !g.who.Has(config.RoleViewer) {
		sc.Principal = g.who.ID()
	}
	return sc
}

// owner is what the sessions and tasks the request creates record.
func (g grant) owner() store.Owner {
	return store.Owner{Tenant: g.who.Tenant, Principal: g.who.ID()}
}

// admit decides a request to a route needing role, from the current
// snapshot, answering 401 or 403 itself when it fails:
//   - a server without credentials admits everyone, as the anonymous admin;
//   - a request with a bearer token must present a valid key or JWT (401
//     names the check that failed, never the token; 503 when the JWT's
//     issuer has no keys because its JWKS could not be fetched);
//   - without a token, 401 when server.auth.require is true, else the
//     anonymous user;
//   - then the role must be at least role (403). (Admin-plane routes
//     also serve the main tenant's principals only: mainTenant.)
func (s *Server) admit(w http.ResponseWriter, r *http.Request, role config.Role) (grant, bool) {
	snap, release, ok := s.snapshot(w)
	if !ok {
		release()
		return grant{}, false
	}
	defer release()
	auth := snap.Config.Server.Auth
	g := grant{limit: snap.Config.Server.MaxBodyBytes}
	if role == metricsRole {
		role = config.RoleViewer
		if snap.Config.Server.Metrics.Public {
			return grant{who: identity.Anonymous(config.RoleUser), limit: g.limit}, true
		}
	}
	token, presented := bearer(r.Header.Get("Authorization"))
	switch {
	case !auth.Credentials():
		g.who = identity.Anonymous(admin) // open: nothing to check against
	case presented:
		who, err := authenticate(r.Context(), snap, token)
		var je *identity.Error
		switch {
		case errors.As(err, &je) && je.Check == identity.CheckKeysUnavailable:
			// Not the token's fault: the provider's keys could not be
			// fetched. 503, so clients retry rather than sign in again.
			w.Header().Set("Retry-After", "10")
			writeError(w, http.StatusServiceUnavailable, "identity_unavailable", err.Error())
			return g, false
		case err != nil:
			unauthorized(w, err.Error())
			return g, false
		}
		g.who = who
	case auth.Required():
		unauthorized(w, "a credential is required: Authorization: Bearer KEY (an API key or a JWT)")
		return g, false
	default:
		g.who = identity.Anonymous(config.RoleUser)
	}
	if !g.who.Has(role) {
		writeError(w, http.StatusForbidden, "forbidden", "this needs the "+string(role)+" role; "+g.who.ID()+" has "+string(g.who.Role))
		return g, false
	}
	return g, true
}

// mainTenant serves h to principals of the main tenant only: the
// configuration plane and the process's metrics are the operator's, not
// an app's, whatever role its principals have (403).
func mainTenant(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if who := grantOf(r).who; who.Tenant != "" {
			writeError(w, http.StatusForbidden, "forbidden", "this route serves the main tenant; "+who.ID()+" belongs to tenant "+strconv.Quote(who.Tenant))
			return
		}
		h(w, r)
	}
}

func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="hector"`)
	writeError(w, http.StatusUnauthorized, "unauthorized", msg)
}

// acceptsBody refuses, with 415, a request body whose media type the route
// does not take. Form and text bodies are what a web page can post to any
// site without asking (a CORS "simple" request); no route takes them. A
// body without a Content-Type is accepted: browsers send an Origin with
// every POST, which crossSite checks, and command-line clients often omit
// the type.
func acceptsBody(w http.ResponseWriter, r *http.Request, kind bodyKind) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" || r.ContentLength == 0 {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return true
	}
	if err == nil && kind == documentBody && slices.Contains([]string{"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"}, mt) {
		return true
	}
	want := "application/json"
	if kind == documentBody {
		want = "application/json or application/yaml"
	}
	writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type",
		fmt.Sprintf("Content-Type %q is not accepted here; send %s (form and text bodies are refused so that web pages cannot post to this server)", ct, want))
	return false
}
