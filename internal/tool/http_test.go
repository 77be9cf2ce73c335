package tool

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/netguard"
)

// recorder is a test server that records what reached it.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	hits []*http.Request
}

func (r *recorder) requests() []*http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*http.Request(nil), r.hits...)
}

// record starts a server on ln (127.0.0.1 when nil) that records each
// request and then runs h.
func record(t *testing.T, ln net.Listener, h http.HandlerFunc) *recorder {
	t.Helper()
	r := &recorder{}
	r.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.hits = append(r.hits, req)
		r.mu.Unlock()
		if h != nil {
			h(w, req)
		}
	}))
	if ln != nil {
		r.Listener.Close()
		r.Listener = ln
	}
	r.Start()
	t.Cleanup(r.Close)
	return r
}

func newHTTPForTest(t *testing.T, cfg config.Tool) Tool {
	t.Helper()
	cfg.Type = "http"
	if cfg.Method == "" {
		cfg.Method = "GET"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = config.Duration(5 * time.Second)
	}
	if cfg.MaxOutputBytes == 0 {
		cfg.MaxOutputBytes = 1 << 16
	}
	tl, err := New("web", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tl
}

var secretHeaders = map[string]string{"Authorization": "Bearer tool-token", "X-Api-Key": "tool-api-key"}

func leaked(r *http.Request) bool {
	return r.Header.Get("Authorization") != "" || r.Header.Get("X-Api-Key") != "" || r.Header.Get("Idempotency-Key") != ""
}

// follow_redirects decides which redirects are followed; the configured
// headers never reach another origin (another port of the same host is one).
func TestHTTPRedirectPolicyAndHeaders(t *testing.T) {
	other := record(t, nil, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/back" {
			http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
			return
		}
		_, _ = w.Write([]byte("other"))
	})
	var origin *recorder
	origin = record(t, nil, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/same":
			http.Redirect(w, r, "/final", http.StatusFound)
		case "/cross":
			http.Redirect(w, r, other.URL+"/final", http.StatusFound)
		case "/roundtrip":
			http.Redirect(w, r, other.URL+"/back?to="+origin.URL+"/final", http.StatusFound)
		default:
			_, _ = w.Write([]byte("origin"))
		}
	})
	ctx := WithCallID(WithIdempotencyScope(context.Background(), "t_1"), "c_1")
	call := func(follow, path string) (string, error) {
		tl := newHTTPForTest(t, config.Tool{URL: origin.URL + "/{p}", Headers: secretHeaders, FollowRedirects: follow})
		return tl.Call(ctx, map[string]any{"p": path})
	}

	// same_origin (also the zero value): within the origin, headers kept.
	for _, follow := range []string{"same_origin", ""} {
		if out, err := call(follow, "same"); err != nil || out != "origin" {
			t.Fatalf("%q same origin: %q %v", follow, out, err)
		}
		if last := origin.requests()[len(origin.requests())-1]; last.URL.Path != "/final" || last.Header.Get("X-Api-Key") != "tool-api-key" {
			t.Fatalf("same-origin hop: %s %v", last.URL.Path, last.Header)
		}
		if _, err := call(follow, "cross"); err == nil || !strings.Contains(err.Error(), "follow_redirects: same_origin") {
			t.Fatalf("%q: a redirect to another port was followed: %v", follow, err)
		}
		if n := len(other.requests()); n != 0 {
			t.Fatalf("%q: the other origin got %d requests", follow, n)
		}
	}

	// any: followed, without the headers, and not again once back home.
	if out, err := call("any", "cross"); err != nil || out != "other" {
		t.Fatalf("any: %q %v", out, err)
	}
	if out, err := call("any", "roundtrip"); err != nil || out != "origin" {
		t.Fatalf("any, round trip: %q %v", out, err)
	}
	for _, r := range other.requests() {
		if leaked(r) {
			t.Errorf("headers reached another origin: %s %v", r.URL, r.Header)
		}
	}
	if last := origin.requests()[len(origin.requests())-1]; last.URL.Path != "/final" || leaked(last) {
		t.Errorf("headers came back after the hop away: %s %v", last.URL.Path, last.Header)
	}

	// none: the redirect is the result.
	before := len(origin.requests())
	if _, err := call("none", "same"); err == nil || !strings.Contains(err.Error(), "HTTP 302: a redirect, not followed") {
		t.Fatalf("none: %v", err)
	}
	if n := len(origin.requests()) - before; n != 1 {
		t.Fatalf("none: %d requests", n)
	}
}

// A tool whose host is public cannot be redirected (or resolve) into
// special-purpose addresses: the check is on the dialled address. A tool
// whose host is itself special may go there.
func TestHTTPRefusesSpecialAddressesFromPublicHost(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 here: %v", err)
	}
	internal := record(t, ln, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("internal")) })
	public := record(t, nil, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, internal.URL+"/admin/config", http.StatusFound)
	})
	// The test's stand-in for a public server listens on 127.0.0.1, so
	// 127.0.0.1 counts as public here; every other special address stays so.
	asPublic := func(a netip.Addr) (string, bool) {
		if a == netip.MustParseAddr("127.0.0.1") {
			return "", false
		}
		return netguard.Special(a)
	}
	cfg := config.Tool{Type: "http", Method: "GET", URL: public.URL + "/{p}", FollowRedirects: "any",
		Timeout: config.Duration(5 * time.Second), MaxOutputBytes: 1 << 16}
	tl := newHTTPWith("web", cfg, asPublic)
	_, err = tl.Call(context.Background(), map[string]any{"p": "x"})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.2 is a loopback address, which is refused") {
		t.Fatalf("redirect into loopback: %v", err)
	}
	if n := len(internal.requests()); n != 0 {
		t.Fatalf("the internal server got %d requests", n)
	}
	// The dial check itself, as for a DNS answer that rebinds to loopback.
	for _, addr := range []string{"127.0.0.1:1", "[::1]:80", "10.1.2.3:443", "169.254.169.254:80", "[::ffff:192.168.1.1]:80"} {
		pub := newHTTPWith("web", config.Tool{URL: "https://93.184.215.14/x"}, netguard.Special)
		if _, err := pub.mayDialSpecial(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := pub.control("tcp", addr, nil); err == nil {
			t.Errorf("a tool on a public host may dial %s", addr)
		}
		if err := pub.control("tcp", "93.184.215.14:443", nil); err != nil {
			t.Errorf("public address refused: %v", err)
		}
	}

	// The real policy: the configured host 127.0.0.1 is loopback, so this
	// tool may reach loopback.
	if out, err := newHTTPForTest(t, cfg).Call(context.Background(), map[string]any{"p": "x"}); err != nil || out != "internal" {
		t.Fatalf("a loopback tool: %q %v", out, err)
	}
	// So may one configured by a name that resolves there.
	local := newHTTPForTest(t, config.Tool{URL: strings.Replace(internal.URL, "127.0.0.2", "localhost", 1) + "/{p}"})
	if _, err := local.(*httpTool).mayDialSpecial(context.Background()); err != nil || !local.(*httpTool).mayDial {
		t.Fatalf("localhost: %v", err)
	}
}

// A path argument cannot climb the path or add segments.
func TestHTTPPathArgumentsStayInTheirSegment(t *testing.T) {
	srv := record(t, nil, nil)
	tl := newHTTPForTest(t, config.Tool{URL: srv.URL + "/api/orders/{id}/items?q={q}"})
	dot := newHTTPForTest(t, config.Tool{URL: srv.URL + "/files/.{name}"})
	for _, c := range []struct {
		tl   Tool
		args map[string]any
		want string
	}{
		{tl, map[string]any{"id": "..", "q": "x"}, "/api/orders/%2E%2E/items?q=x"},
		{tl, map[string]any{"id": ".", "q": ".."}, "/api/orders/%2E/items?q=.."},
		{tl, map[string]any{"id": "...", "q": ""}, "/api/orders/%2E%2E%2E/items?q="},
		{tl, map[string]any{"id": "../../admin", "q": ""}, "/api/orders/..%2F..%2Fadmin/items?q="},
		{tl, map[string]any{"id": "a.b..", "q": ""}, "/api/orders/a.b../items?q="},
		{tl, map[string]any{"id": `..\..`, "q": ""}, "/api/orders/..%5C../items?q="},
		{dot, map[string]any{"name": "."}, "/files/%2E%2E"},
	} {
		before := len(srv.requests())
		if _, err := c.tl.Call(context.Background(), c.args); err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		reqs := srv.requests()
		if len(reqs) != before+1 || reqs[before].RequestURI != c.want {
			t.Errorf("%v: request %q, want %q", c.args, reqs[len(reqs)-1].RequestURI, c.want)
		}
	}
}

// The arguments cannot move the request elsewhere, even with a template
// validation would refuse; every connection attempt has a timeout.
func TestHTTPOriginIsFixed(t *testing.T) {
	srv := record(t, nil, nil)
	tl := newHTTPForTest(t, config.Tool{URL: "http://{host}/x"})
	if _, err := tl.Call(context.Background(), map[string]any{"host": strings.TrimPrefix(srv.URL, "http://")}); err == nil ||
		!strings.Contains(err.Error(), "scheme, host or port") {
		t.Fatalf("host from the arguments: %v", err)
	}
	if n := len(srv.requests()); n != 0 {
		t.Fatalf("%d requests", n)
	}
	if d := newHTTPForTest(t, config.Tool{URL: srv.URL}).(*httpTool).dialer.Timeout; d <= 0 || d > connectTimeout {
		t.Fatalf("connect timeout %v", d)
	}
}

// The default description, which the model reads, names the URL without
// its credentials.
func TestHTTPDescriptionHidesSecrets(t *testing.T) {
	tl := newHTTPForTest(t, config.Tool{Type: "http", Method: "GET", URL: "https://api.example/search?q={q}&api_key=desc-secret", Timeout: config.Duration(time.Second)})
	if d := tl.Spec().Description; strings.Contains(d, "desc-secret") || !strings.Contains(d, "api_key=REDACTED") {
		t.Fatalf("description %q", d)
	}
}
