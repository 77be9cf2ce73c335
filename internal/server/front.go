package server

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hector-run/hector/internal/config"
)

// front applies the policies every request meets before routing, each read
// from the current snapshot so they apply live: the Host header must be
// allowed (DNS rebinding), a browser may change state only from an allowed
// origin (CSRF), CORS preflights are answered, and the request body must
// arrive within server.read_timeout.
func (s *Server) front(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Only configuration is read, which a snapshot never changes: no
		// need to hold the snapshot (handlers pin their own).
		snap := s.Runtime.Current()
		if snap == nil {
			writeError(w, http.StatusServiceUnavailable, "shutting_down", "the server is shutting down")
			return
		}
		cfg := &snap.Config.Server
		publicURL := snap.Config.A2A.PublicURL
		if !hostAllowed(snap.Config, r.Host) {
			writeError(w, http.StatusForbidden, "host_not_allowed",
				"this server does not answer for host "+quoteHost(r.Host)+"; list it in server.allowed_hosts")
			return
		}
		origin := r.Header.Get("Origin")
		listed := origin != "" && originListed(cfg.CORS.AllowedOrigins, origin)
		if listed {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			preflight(w, listed || isCard(r.URL.Path))
			return
		}
		if unsafeMethod(r.Method) && !listed && crossSite(r, publicURL) {
			writeError(w, http.StatusForbidden, "cross_site_request",
				"cross-site requests may not change anything here; list the page's origin in server.cors.allowed_origins to allow it")
			return
		}
		limitBodyTime(w, r, cfg.ReadTimeout.D())
		next.ServeHTTP(w, r)
	})
}

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// crossSite reports whether a browser sent the request from another site:
// by Sec-Fetch-Site where the browser sends it, else by an Origin that is
// not the server's own (the request's Host, or a2a.public_url).
// Non-browser clients send neither header.
func crossSite(r *http.Request, publicURL string) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	case "same-origin", "none":
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return true // "null" (sandboxed frames, file: pages) or garbage
	}
	if strings.EqualFold(u.Host, r.Host) {
		return false
	}
	if p, err := url.Parse(publicURL); err == nil && publicURL != "" && strings.EqualFold(p.Host, u.Host) {
		return false
	}
	return true
}

func originListed(allowed []string, origin string) bool {
	origin = strings.TrimSuffix(origin, "/")
	for _, a := range allowed {
		if a == "*" || strings.EqualFold(strings.TrimSuffix(a, "/"), origin) {
			return true
		}
	}
	return false
}

// isCard reports whether path is an agent card's: public, and readable
// from any page (A2A clients in browsers discover agents through them).
func isCard(path string) bool { return strings.HasSuffix(path, "/.well-known/agent-card.json") }

// preflight answers a CORS preflight: allowed for a listed origin (or a
// card, for any), with the headers Hector's clients send; 403 otherwise.
func preflight(w http.ResponseWriter, allowed bool) {
	if !allowed {
		writeError(w, http.StatusForbidden, "cross_site_request", "this origin is not in server.cors.allowed_origins")
		return
	}
	h := w.Header()
	if h.Get("Access-Control-Allow-Origin") == "" {
		h.Set("Access-Control-Allow-Origin", "*") // a card, for an unlisted origin: no credentials
	}
	h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match, If-None-Match, A2A-Version, A2A-Extensions, Last-Event-ID")
	h.Set("Access-Control-Expose-Headers", "ETag, X-Hector-Config-Version, Location")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// loopbackHosts are the names a server bound to loopback answers to.
var loopbackHosts = []string{"localhost", "127.0.0.1", "::1"}

// hostAllowed matches a Host header (port stripped, case folded) against
// server.allowed_hosts, or its default: while bound to loopback, the
// loopback names, server.host itself (127.0.0.2 answers to 127.0.0.2) and
// a2a.public_url's host; otherwise any host. "*" allows any; names under
// .localhost resolve to loopback and are allowed with localhost.
func hostAllowed(c *config.Config, hostHeader string) bool {
	name := hostHeader
	if h, _, err := net.SplitHostPort(hostHeader); err == nil {
		name = h
	}
	name = strings.ToLower(strings.Trim(name, "[]"))
	if len(c.Server.AllowedHosts) > 0 {
		return slices.ContainsFunc(c.Server.AllowedHosts, func(h string) bool { return hostMatches(h, name) })
	}
	if !isLoopback(c.Server.Host) {
		return true
	}
	if slices.ContainsFunc(loopbackHosts, func(h string) bool { return hostMatches(h, name) }) || hostMatches(c.Server.Host, name) {
		return true
	}
	u, err := url.Parse(c.A2A.PublicURL)
	return err == nil && u.Hostname() != "" && hostMatches(u.Hostname(), name)
}

// hostMatches reports whether the allowed host h admits name (lower case).
func hostMatches(h, name string) bool {
	h = strings.ToLower(strings.Trim(h, "[]"))
	return h == "*" || h == name || (h == "localhost" && strings.HasSuffix(name, ".localhost"))
}

// quoteHost shows a Host header in an error, bounded.
func quoteHost(h string) string {
	if len(h) > 100 {
		h = h[:100] + "…"
	}
	return `"` + h + `"`
}

// limitBodyTime gives the request until timeout to deliver its body, by
// the connection's read deadline; guard reads the body whole and clears
// the deadline (readBodyWhole), so a response that streams for hours is
// not cut.
func limitBodyTime(w http.ResponseWriter, r *http.Request, timeout time.Duration) {
	if r.ContentLength == 0 || timeout <= 0 {
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
}

// limitBody is readBodyWhole for a handler that reads the body itself:
// the body is limited to limit bytes, and the read deadline is cleared
// once it has been read to its end.
func limitBody(w http.ResponseWriter, r *http.Request, limit int64) {
	rc := http.NewResponseController(w)
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		_ = rc.SetReadDeadline(time.Time{})
		return
	}
	r.Body = &clearAtEOF{ReadCloser: http.MaxBytesReader(w, r.Body, limit), clear: func() { _ = rc.SetReadDeadline(time.Time{}) }}
}

// clearAtEOF runs clear once its body has been read to the end. An error
// leaves the deadline: that connection is closed.
type clearAtEOF struct {
	io.ReadCloser
	clear func()
	done  bool
}

func (b *clearAtEOF) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		b.clear()
	}
	return n, err
}

// readBodyWhole reads the request body (at most limit bytes) before the
// handler runs, then clears the read deadline that limitBodyTime set. It
// answers 413 over the limit and 408 when the body is too slow.
func readBodyWhole(w http.ResponseWriter, r *http.Request, limit int64) bool {
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return true
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		writeBodyError(w, err) // the deadline stays: the connection is closed
		return false
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	r.Body = io.NopCloser(bytes.NewReader(body))
	return true
}
