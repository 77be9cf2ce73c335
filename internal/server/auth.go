package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/runtime"
)

type actorKey struct{}

// actor returns who made the request: an API key's name, or "anonymous"
// when no keys are configured.
func actor(r *http.Request) string {
	if a, ok := r.Context().Value(actorKey{}).(string); ok {
		return a
	}
	return "anonymous"
}

// authenticate finds the key presented in the Authorization header among
// the configured keys. Every key is compared, in constant time, so timing
// reveals neither which key matched nor how much of one did.
func authenticate(snap *runtime.Snapshot, header string) (config.APIKey, bool) {
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		return config.APIKey{}, false
	}
	given := sha256.Sum256([]byte(strings.TrimSpace(token)))
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

// require wraps an admin handler: once keys are configured, the request
// needs a bearer key whose role is at least role (viewer < operator <
// admin): 401 without a valid key, 403 with too weak a role. Keys are read
// from the request's snapshot, so adding, removing and rotating keys apply
// live. The request body is limited to server.max_body_bytes.
func (s *Server) require(role string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		g, ok := s.admit(w, r, role)
		if !ok {
			return
		}
		if g.keyed {
			r = r.WithContext(context.WithValue(r.Context(), actorKey{}, g.key.Name))
		}
		r.Body = http.MaxBytesReader(w, r.Body, g.limit)
		h(w, r)
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
func (s *Server) admit(w http.ResponseWriter, r *http.Request, role string) (grant, bool) {
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
		writeError(w, http.StatusForbidden, "forbidden", "this needs the "+role+" role; the key "+key.Name+" has "+key.Role)
		return g, false
	}
	return g, true
}

func hasRole(key config.APIKey, role string) bool {
	return slices.Index(config.Roles, key.Role) >= slices.Index(config.Roles, role)
}
