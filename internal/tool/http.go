package tool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/llm"
	"github.com/hector-run/hector/internal/netguard"
	"github.com/hector-run/hector/internal/observe"
)

// httpTool calls a URL template. Each {name} placeholder is a required string
// argument, escaped for its place (path or query); POST, PUT and PATCH also
// take an optional "body" argument sent as the request body.
//
// Where requests go is the configuration's choice, never the model's: the
// template's scheme, host and port are fixed (validation refuses a
// placeholder there, and Call checks the filled URL's origin), a path
// argument cannot climb the path, redirects follow cfg.FollowRedirects, the
// configured headers are sent to the template's origin only, and a tool
// whose host is public cannot reach special-purpose addresses (loopback,
// private, link-local, …), whether by redirect or by DNS.
type httpTool struct {
	name   string
	cfg    config.Tool
	params []string
	query  int    // byte offset of '?' in the template, or len(url)
	origin string // scheme://host:port of the template
	host   string // the template's host
	dialer *net.Dialer
	client *http.Client

	// special classifies addresses: netguard.Special, but for tests.
	special func(netip.Addr) (string, bool)

	mu          sync.Mutex
	decided     bool // whether mayDialSpecial was decided
	mayDial     bool // the host is itself special: so may every address the tool dials be
	decideError error
}

// connectTimeout bounds each connection attempt of an http tool (and its
// TLS handshake); the tool's timeout bounds the whole call.
const connectTimeout = 10 * time.Second

func newHTTP(name string, cfg config.Tool) *httpTool {
	return newHTTPWith(name, cfg, netguard.Special)
}

func newHTTPWith(name string, cfg config.Tool, special func(netip.Addr) (string, bool)) *httpTool {
	q := strings.IndexByte(cfg.URL, '?')
	if q < 0 {
		q = len(cfg.URL)
	}
	h := &httpTool{name: name, cfg: cfg, params: config.URLParams(cfg.URL), query: q, special: special}
	if u, err := url.Parse(config.URLOrigin(cfg.URL)); err == nil {
		h.origin, h.host = origin(u), u.Hostname()
	}
	h.dialer = &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second, Control: h.control}
	h.client = &http.Client{
		Timeout: cfg.Timeout.D(),
		Transport: &http.Transport{
			Proxy:                 nil, // a proxy would hide the dialled address from control
			DialContext:           h.dialer.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          16,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   connectTimeout,
			ExpectContinueTimeout: time.Second,
		},
		CheckRedirect: h.checkRedirect,
	}
	return h
}

// origin is scheme://host:port, the port written even when it is the
// scheme's default, so that http://h and http://h:80 compare equal.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	return strings.ToLower(u.Scheme) + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// mayDialSpecial decides, once per tool, whether it may connect to
// special-purpose addresses: only when its own host is one (an IP
// literal, or a name resolving to at least one, like localhost or a name
// on a private network). A failed resolution decides nothing; the next
// call tries again.
func (h *httpTool) mayDialSpecial(ctx context.Context) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.decided {
		return h.mayDial, nil
	}
	if addr, err := netip.ParseAddr(strings.Trim(h.host, "[]")); err == nil {
		_, h.mayDial = h.special(addr)
		h.decided = true
		return h.mayDial, nil
	}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(rctx, "ip", h.host)
	if err != nil {
		return false, fmt.Errorf("cannot resolve %s: %w", h.host, err)
	}
	for _, a := range addrs {
		if _, special := h.special(a); special {
			h.mayDial = true
		}
	}
	h.decided = true
	return h.mayDial, nil
}

// control runs for every address the tool dials, after name resolution,
// so a redirect or a DNS answer into special-purpose space is caught.
func (h *httpTool) control(_, address string, _ syscall.RawConn) error {
	h.mu.Lock()
	allowed := h.decided && h.mayDial
	h.mu.Unlock()
	if allowed {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("netguard: %s: %w", address, err)
	}
	if kind, special := h.special(ap.Addr()); special {
		return &netguard.Error{Addr: ap.Addr().Unmap(), Kind: kind}
	}
	return nil
}

// checkRedirect applies follow_redirects and keeps the configured headers
// (and the idempotency key) from every origin but the template's: once a
// hop has left it, they are not sent again, even back at the origin.
func (h *httpTool) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	switch h.cfg.FollowRedirects {
	case "none":
		return http.ErrUseLastResponse
	case "any":
	default: // same_origin
		if origin(req.URL) != h.origin {
			return fmt.Errorf("redirect to %s refused: only redirects within %s are followed (follow_redirects: same_origin)", origin(req.URL), h.origin)
		}
	}
	left := origin(req.URL) != h.origin
	for _, r := range via[1:] {
		left = left || origin(r.URL) != h.origin
	}
	if left {
		for k := range h.cfg.Headers {
			req.Header.Del(k)
		}
		req.Header.Del("Idempotency-Key")
	}
	return nil
}

func (h *httpTool) hasBody() bool {
	return h.cfg.Method == "POST" || h.cfg.Method == "PUT" || h.cfg.Method == "PATCH"
}

func (h *httpTool) Spec() llm.ToolSpec {
	props := map[string]any{}
	for _, p := range h.params {
		props[p] = map[string]any{"type": "string"}
	}
	if h.hasBody() {
		props["body"] = map[string]any{"type": "string", "description": "Request body."}
	}
	desc := h.cfg.Description
	if desc == "" {
		desc = fmt.Sprintf("Calls %s %s.", h.cfg.Method, config.RedactURL(h.cfg.URL)) // the model sees this
	}
	return llm.ToolSpec{Name: h.name, Description: desc, Parameters: map[string]any{
		"type": "object", "properties": props, "required": append([]string{}, h.params...),
	}}
}

// expand fills the URL template from args: a path placeholder as path
// segment text (url.PathEscape, so "/" is %2F; and a segment that would
// read as "." or ".." has its dots written %2E, so it cannot climb the
// path), a query placeholder as a query value.
func (h *httpTool) expand(args map[string]any) (string, error) {
	fill := func(tmpl string, escape func(string) string) (string, bool, error) {
		var b strings.Builder
		last, filled := 0, false
		for _, m := range config.URLParamIndex(tmpl) {
			v, err := stringArg(args, tmpl[m[2]:m[3]])
			if err != nil {
				return "", false, err
			}
			b.WriteString(tmpl[last:m[0]])
			b.WriteString(escape(v))
			last, filled = m[1], true
		}
		b.WriteString(tmpl[last:])
		return b.String(), filled, nil
	}
	segments := strings.Split(h.cfg.URL[:h.query], "/")
	for i, seg := range segments {
		s, filled, err := fill(seg, url.PathEscape)
		if err != nil {
			return "", err
		}
		if filled && dotSegment(s) {
			s = strings.ReplaceAll(s, ".", "%2E")
		}
		segments[i] = s
	}
	query, _, err := fill(h.cfg.URL[h.query:], url.QueryEscape)
	if err != nil {
		return "", err
	}
	return strings.Join(segments, "/") + query, nil
}

// dotSegment reports whether an escaped path segment reads as dots only
// ("..", "%2e.", …), which a server may resolve as "." or "..".
func dotSegment(s string) bool {
	u, err := url.PathUnescape(s)
	return err == nil && u != "" && strings.Trim(u, ".") == ""
}

func (h *httpTool) Call(ctx context.Context, args map[string]any) (string, error) {
	target, err := h.expand(args)
	if err != nil {
		return "", err
	}
	if u, err := url.Parse(target); err != nil || origin(u) != h.origin {
		return "", fmt.Errorf("the arguments change the URL's scheme, host or port, which is refused")
	}
	if _, err := h.mayDialSpecial(ctx); err != nil {
		return "", err
	}
	var body io.Reader
	if h.hasBody() {
		if s, ok := args["body"].(string); ok {
			body = strings.NewReader(s)
		}
	}
	req, err := http.NewRequestWithContext(ctx, h.cfg.Method, target, body)
	if err != nil {
		return "", err
	}
	for k, v := range h.cfg.Headers {
		req.Header.Set(k, v)
	}
	if key := IdempotencyKey(ctx); key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	if tp := observe.TraceParent(ctx); tp != "" { // the call is traced
		req.Header.Set("Traceparent", tp)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	out := &capped{max: h.cfg.MaxOutputBytes}
	if _, err := io.Copy(out, resp.Body); err != nil {
		return "", fmt.Errorf("reading response: %w", err)
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 && resp.Header.Get("Location") != "" {
		return "", fmt.Errorf("HTTP %d: a redirect, not followed (follow_redirects: %s): %s", resp.StatusCode, h.cfg.FollowRedirects, out)
	}
	if resp.StatusCode >= 300 {
		return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, out)
	}
	return out.String(), nil
}
