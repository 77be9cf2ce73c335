package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/snapshot"
)

type grantKey struct{}

// actor returns who made the request: an API key's name, or "anonymous"
// when no keys are configured.
func actor(r *http.Request) string {
	if g, ok := r.Context().Value(grantKey{}).(grant); ok && g.keyed {
		return g.key.Name
	}
	return "anonymous"
}

// grantOf returns what admit found for the request: its key when keys are
// configured.
func grantOf(r *http.Request) grant {
	g, _ := r.Context().Value(grantKey{}).(grant)
	return g
}

// isAdmin reports whether the request may do what the admin role may:
// always on a server without keys.
func isAdmin(r *http.Request) bool {
	g := grantOf(r)
	return !g.keyed || hasRole(g.key, admin)
}

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

// authenticate finds the key presented in the Authorization header among
// the configured keys. Every key is compared, in constant time, so timing
// reveals neither which key matched nor how much of one did.
func authenticate(snap *snapshot.Snapshot, header string) (config.APIKey, bool) {
	token, ok := bearer(header)
	if !ok {
		return config.APIKey{}, false
	}
	given := sha256.Sum256([]byte(token))
	var found config.APIKey
	match := 0
	for _, k := range snap.Config.Server.Auth.APIKeys {
		want := sha256.Sum256([]byte(k.Key))
		if subtle.ConstantTimeCompare(given[:], want[:]) == 1 {
			found, match = k, 1
		}
	}
	return found, match == 1
}

// guard wraps a route's handler with its policy: the body's media type,
// then, unless the route is public, a key whose role is at least the
// route's once keys are configured (401 without a valid key, 403 with too
// weak a role). Keys are read from the request's snapshot, so adding,
// removing and rotating keys apply live. The body is then read whole,
// limited to server.max_body_bytes and server.read_timeout.
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

// grant is what admit found: the key presented (when keys exist) and the
// request body limit.
type grant struct {
	keyed bool // keys are configured, and key is the valid one presented
	key   config.APIKey
	limit int64
}

// admit checks a request's key against the current snapshot for a route
// needing role, answering 401 or 403 itself when it fails. Without
// configured keys everything is admitted.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, role config.Role) (grant, bool) {
	snap, release, ok := s.snapshot(w)
	if !ok {
		release()
		return grant{}, false
	}
	keys := len(snap.Config.Server.Auth.APIKeys)
	key, valid := authenticate(snap, r.Header.Get("Authorization"))
	g := grant{keyed: keys > 0, key: key, limit: snap.Config.Server.MaxBodyBytes}
	release()
	switch {
	case keys == 0:
		return g, true // open: no keys configured
	case !valid:
		w.Header().Set("WWW-Authenticate", `Bearer realm="hector"`)
		writeError(w, http.StatusUnauthorized, "unauthorized", "a valid API key is required: Authorization: Bearer KEY")
		return g, false
	case !hasRole(key, role):
		writeError(w, http.StatusForbidden, "forbidden", "this needs the "+string(role)+" role; the key "+key.Name+" has "+string(key.Role))
		return g, false
	}
	return g, true
}

func hasRole(key config.APIKey, role config.Role) bool {
	return slices.Index(config.Roles, key.Role) >= slices.Index(config.Roles, role)
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
