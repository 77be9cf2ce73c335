package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aymanbagabas/go-udiff"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/config/source"
	"github.com/hector-run/hector/internal/reload"
	"github.com/hector-run/hector/internal/snapshot"
	"github.com/hector-run/hector/internal/store"
)

func etag(hash string) string { return `"` + hash + `"` }

// configPath is where p's document is read and written.
func configPath(p plane) string {
	if p.app == "" {
		return "/admin/config"
	}
	return "/admin/apps/" + p.app
}

func contentType(format string) string {
	if format == "json" {
		return "application/json"
	}
	return "application/yaml"
}

// writeOutcome answers with an outcome: 200 when applied or a no-op (or valid
// for a dry run), 422 when rejected.
func (s *Server) writeOutcome(w http.ResponseWriter, p plane, o reload.Outcome) {
	o = p.rec.Public(o)
	status := http.StatusOK
	if o.Result == reload.Rejected {
		status = http.StatusUnprocessableEntity
	}
	writeJSON(w, status, o)
}

func (s *Server) getConfig(w http.ResponseWriter, r *http.Request, p plane) {
	snap := p.rt.Current()
	doc, hash := p.rec.AppliedWithHash() // together, so If-Match with this ETag means this document
	redacted, err := config.Redact(doc)
	if snap == nil {
		unavailableApp(w, p.app)
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "the configuration could not be shown")
		return
	}
	w.Header().Set("ETag", etag(p.rec.PublicHash(hash)))
	w.Header().Set("X-Hector-Config-Version", strconv.FormatInt(snap.Version, 10))
	w.Header().Set("Content-Type", contentType(config.DetectFormat(redacted)))
	_, _ = w.Write(redacted)
}

// readBody returns the request body, which the route's guard has already
// read within server.max_body_bytes and server.read_timeout.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeBodyError(w, err)
		return nil, false
	}
	return body, true
}

// putConfig replaces the configuration. The caller must send the ETag of the
// configuration it edited in If-Match (optimistic concurrency, checked inside
// the reconciler's loop so two writers cannot both win).
func (s *Server) putConfig(w http.ResponseWriter, r *http.Request, p plane) {
	match := strings.TrimPrefix(r.Header.Get("If-Match"), "W/")
	if match == "" {
		writeError(w, http.StatusPreconditionRequired, "if_match_required",
			"send If-Match with the ETag from GET "+configPath(p)+", so a concurrent change is not overwritten")
		return
	}
	if !s.writable(w, p) {
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	o, err := p.rec.Submit(r.Context(), body, reload.TriggerAPI, actor(r), s.expectedHash(p, strings.Trim(match, `"`)))
	var conflict *reload.PreconditionError
	switch {
	case errors.As(err, &conflict):
		if conflict.Current != "" {
			w.Header().Set("ETag", etag(p.rec.PublicHash(conflict.Current)))
		}
		writeError(w, http.StatusPreconditionFailed, "precondition_failed",
			"the configuration changed since it was read: GET "+configPath(p)+" returns the current document and its ETag")
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
	default:
		if cur := p.rt.Current(); cur != nil { // nil: an app whose document was never valid, and still is not
			w.Header().Set("ETag", etag(p.rec.PublicHash(cur.Hash)))
		}
		s.writeOutcome(w, p, o)
	}
}

// expectedHash turns the public hash of an If-Match (the ETag callers
// see) into the document hash the reconciler compares: the applied
// document's when they match. Any other tag becomes one no document hash
// equals, so the reconciler answers the precondition failure, and a plain
// hash sent as a guess is refused like any stale tag. The reconciler
// checks again in its loop, so a change in between is caught.
//
// "*" matches whatever document is applied (RFC 9110 §13.1.1): the way to
// replace the document of an app that has none applied yet, which has no
// ETag to send.
func (s *Server) expectedHash(p plane, tag string) string {
	_, hash := p.rec.AppliedWithHash()
	switch {
	case tag == "*":
		return hash // "" (nothing applied) checks nothing
	case hash != "" && tag == p.rec.PublicHash(hash):
		return hash
	}
	return "stale:" + tag
}

// writable refuses (409) a change the source could not keep: applied but
// not written back, the next read of the source would undo it.
func (s *Server) writable(w http.ResponseWriter, p plane) bool {
	if _, ok := p.rec.Source.(source.Writer); ok {
		return true
	}
	writeError(w, http.StatusConflict, "source_not_writable", fmt.Sprintf(
		"the configuration comes from %s, which cannot be written through this API; change it there", p.rec.Source.Name()))
	return false
}

func (s *Server) validateConfig(w http.ResponseWriter, r *http.Request, p plane) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	s.writeOutcome(w, p, p.rec.DryRun(body))
}

func (s *Server) adminReload(w http.ResponseWriter, r *http.Request, p plane) {
	o, err := p.rec.Reload(r.Context(), reload.TriggerAPI, actor(r), reload.WithGuard(authGuard(r, false)))
	s.writeGuarded(w, p, o, err)
}

// writeGuarded answers a reload or rollback: 403 when a guard refused it,
// 503 when the loop did not answer, else the outcome.
func (s *Server) writeGuarded(w http.ResponseWriter, p plane, o reload.Outcome, err error) {
	var denied *reload.ForbiddenError
	switch {
	case errors.As(err, &denied):
		writeError(w, http.StatusForbidden, "forbidden", denied.Error())
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
	default:
		s.writeOutcome(w, p, o)
	}
}

// authGuard stops privilege escalation through reloads and rollbacks: a
// change of server.auth (keys, issuers, require) needs the admin role, and a
// rollback to a version without keys, which opens the whole API, is
// refused unless an admin forces it (forcing=true: ?force=true).
func authGuard(r *http.Request, rollback bool) reload.Guard {
	mayChangeAuth := isAdmin(r)
	forced := rollback && mayChangeAuth && r.URL.Query().Get("force") == "true"
	return func(cur, next *config.Config) error {
		if cur == nil {
			return nil
		}
		path := accessChange(&cur.Server, &next.Server)
		if path == "" {
			return nil
		}
		if !mayChangeAuth {
			return &reload.ForbiddenError{Path: path,
				Reason: "this change alters " + path + " (who may use the API), which needs the admin role"}
		}
		opens := cur.Server.Auth.Required() && !next.Server.Auth.Required() || cur.Server.Auth.Credentials() && !next.Server.Auth.Credentials()
		if rollback && opens && !forced {
			return &reload.ForbiddenError{Path: "server.auth",
				Reason: "this version requires no credential: applying it opens the API to anyone who can reach it; an admin may force it with ?force=true"}
		}
		return nil
	}
}

// accessChange names the first section deciding who may use the API that
// differs between cur and next: server.auth, server.metrics (public
// metrics) or server.cors (which web pages may call); "" when none does.
func accessChange(cur, next *config.Server) string {
	switch {
	case !reflect.DeepEqual(cur.Auth, next.Auth):
		return "server.auth"
	case cur.Metrics != next.Metrics:
		return "server.metrics"
	case !slices.Equal(cur.CORS.AllowedOrigins, next.CORS.AllowedOrigins):
		return "server.cors"
	}
	return ""
}

func (s *Server) configHistory(w http.ResponseWriter, r *http.Request, p plane, snap *snapshot.Snapshot) {
	p.rec.FlushHistory()
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "invalid_parameter", `parameter "limit" must be an integer from 1 to 1000`)
			return
		}
		limit = n
	}
	versions, err := snap.Store.ConfigVersions(r.Context(), p.app, limit)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "config history", "error", err)
		errUnavailable.write(w)
		return
	}
	if versions == nil {
		versions = []store.ConfigVersion{}
	}
	for i := range versions {
		versions[i].Hash = snap.Store.PublicHash(versions[i].Hash)
	}
	writeJSON(w, http.StatusOK, map[string]any{"versions": versions, "current": snap.Version})
}

// loadVersion reads the version named by a path or query parameter.
func (s *Server) loadVersion(w http.ResponseWriter, r *http.Request, p plane, st *store.Store, param, raw string) (store.ConfigVersion, bool) {
	v, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || v < 1 {
		writeError(w, http.StatusBadRequest, "invalid_parameter", fmt.Sprintf("parameter %q must be a version number, got %q", param, raw))
		return store.ConfigVersion{}, false
	}
	cv, err := st.GetConfigVersion(r.Context(), p.app, v)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "version_not_found", fmt.Sprintf("no configuration version %d", v))
		return cv, false
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "load config version", "version", v, "error", err)
		errUnavailable.write(w)
		return cv, false
	}
	return cv, true
}

func (s *Server) configVersion(w http.ResponseWriter, r *http.Request, p plane, snap *snapshot.Snapshot) {
	p.rec.FlushHistory()
	if cv, ok := s.loadVersion(w, r, p, snap.Store, "version", r.PathValue("version")); ok {
		cv.Hash = snap.Store.PublicHash(cv.Hash)
		writeJSON(w, http.StatusOK, cv)
	}
}

func (s *Server) configDiff(w http.ResponseWriter, r *http.Request, p plane, snap *snapshot.Snapshot) {
	p.rec.FlushHistory()
	q := r.URL.Query()
	to := q.Get("to")
	if to == "" {
		to = strconv.FormatInt(snap.Version, 10)
	}
	a, ok := s.loadVersion(w, r, p, snap.Store, "from", q.Get("from"))
	if !ok {
		return
	}
	b, ok := s.loadVersion(w, r, p, snap.Store, "to", to)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/x-diff; charset=utf-8")
	_, _ = io.WriteString(w, udiff.Unified(fmt.Sprintf("version %d", a.Version), fmt.Sprintf("version %d", b.Version), a.Content, b.Content))
}

// configRollback re-applies a stored version through the normal pipeline
// (and writes it back to a writable source). Its redacted secrets are
// restored from the running configuration.
func (s *Server) configRollback(w http.ResponseWriter, r *http.Request, p plane) {
	if !s.writable(w, p) {
		return
	}
	p.rec.FlushHistory()
	snap, release := p.rt.Acquire()
	if snap == nil {
		release()
		unavailableApp(w, p.app)
		return
	}
	cv, ok := s.loadVersion(w, r, p, snap.Store, "version", r.PathValue("version"))
	release()
	if !ok {
		return
	}
	o, err := p.rec.Submit(r.Context(), []byte(cv.Content), reload.TriggerRollback, actor(r), "", reload.WithGuard(authGuard(r, true)))
	s.writeGuarded(w, p, o, err)
}

func (s *Server) configOutcomes(w http.ResponseWriter, r *http.Request, p plane) {
	outcomes := p.rec.Outcomes()
	for i, o := range outcomes {
		outcomes[i] = p.rec.Public(o)
	}
	writeJSON(w, http.StatusOK, map[string]any{"outcomes": outcomes})
}

// configEvents streams every reload outcome as a Server-Sent Event
// "outcome" until the client leaves or the listener drains.
func (s *Server) configEvents(w http.ResponseWriter, r *http.Request) {
	f, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusNotAcceptable, "streaming_unsupported", "streaming is not supported on this connection")
		return
	}
	events, unsubscribe := s.events.subscribe()
	defer unsubscribe()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	f.Flush()
	ev := sseWriter{w: w, f: f}
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	for {
		select {
		case o := <-events:
			ev.send("outcome", o)
		case <-heartbeat.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			f.Flush()
		case <-r.Context().Done():
			return
		case <-draining(r.Context()):
			return
		}
	}
}
