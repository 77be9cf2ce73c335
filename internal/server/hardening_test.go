package server_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/app"
	"github.com/hector-run/hector/internal/llm/llmtest"
	"github.com/hector-run/hector/internal/reload"
	"github.com/hector-run/hector/internal/testsvc"
)

// keylessConfig is authConfig without server.auth.
func keylessConfig(instruction string) string {
	return fmt.Sprintf("llms: {e: {provider: echo}}\nagents: {a: {llm: e, instruction: %q}}\nserver: {port: 0}\n", instruction)
}

// An operator cannot gain power by rolling back to a version with no keys
// or weaker keys; an admin can, but must force a rollback that opens the
// API.
func TestRollbackCannotEscalate(t *testing.T) {
	h := newHector(t, keylessConfig("open"))                                        // v1: no keys
	weak := strings.Replace(authConfig("weak"), "role: operator", "role: admin", 1) // v2: otto is admin
	h.write(weak)
	if o := h.next(); o.Version != 2 {
		t.Fatalf("%+v", o)
	}
	h.write(authConfig("keyed")) // v3: otto is operator
	if o := h.next(); o.Version != 3 {
		t.Fatalf("%+v", o)
	}
	h.key = viewerKey
	for _, v := range []string{"1", "2"} {
		resp, body := h.call("POST", "/admin/config/rollback/"+v, operatorKey, "")
		if resp.StatusCode != 403 || !strings.Contains(body, "server.auth") {
			t.Fatalf("operator rollback to v%s: %d %s", v, resp.StatusCode, body)
		}
	}
	if r := h.send("a", "", "hi"); r.body.Reply != "[keyed] hi" {
		t.Fatalf("a refused rollback changed the configuration: %s", r.raw)
	}
	// The refusal is recorded, naming the actor.
	_, body := h.call("GET", "/admin/config/outcomes", viewerKey, "")
	if !strings.Contains(body, `"actor":"otto"`) || !strings.Contains(body, "needs the admin role") {
		t.Fatalf("outcomes: %s", body)
	}
	// So is a version that keeps its keys but requires none.
	applied := func() reload.Outcome { // skipping the refusals above
		for {
			if o := h.next(); o.Result == reload.Applied {
				return o
			}
		}
	}
	h.write(strings.Replace(authConfig("lenient"), "  auth:\n", "  auth:\n    require: false\n", 1)) // v4
	if o := applied(); o.Version != 4 {
		t.Fatalf("%+v", o)
	}
	h.write(authConfig("keyed")) // v5
	if o := applied(); o.Version != 5 {
		t.Fatalf("%+v", o)
	}
	if resp, body := h.call("POST", "/admin/config/rollback/4", adminKey, ""); resp.StatusCode != 403 || !strings.Contains(body, "force=true") {
		t.Fatalf("admin rollback to v4 (require: false) unforced: %d %s", resp.StatusCode, body)
	}
	// An admin rolling back to the keyless version must force it.
	resp, body := h.call("POST", "/admin/config/rollback/1", adminKey, "")
	if resp.StatusCode != 403 || !strings.Contains(body, "force=true") {
		t.Fatalf("admin rollback to keyless v1 unforced: %d %s", resp.StatusCode, body)
	}
	resp, body = h.call("POST", "/admin/config/rollback/1?force=true", operatorKey, "")
	if resp.StatusCode != 403 {
		t.Fatalf("operator forced a rollback: %d %s", resp.StatusCode, body)
	}
	resp, body = h.call("POST", "/admin/config/rollback/1?force=true", adminKey, "")
	if o := outcomeOf(t, body); resp.StatusCode != 200 || o.Result != reload.Applied {
		t.Fatalf("forced admin rollback: %d %s", resp.StatusCode, body)
	}
	h.key = ""
	if r := h.send("a", "", "hi"); r.body.Reply != "[open] hi" {
		t.Fatalf("%s", r.raw)
	}
}

// POST /admin/reload of a source whose server.auth changed needs admin.
func TestReloadChangingAuthNeedsAdmin(t *testing.T) {
	h := newHectorWith(t, authConfig("one"), func(o *app.Options) { o.Watch = false })
	h.write(strings.Replace(authConfig("two"), "role: viewer", "role: admin", 1))
	resp, body := h.call("POST", "/admin/reload", operatorKey, "")
	if resp.StatusCode != 403 || !strings.Contains(body, "server.auth") {
		t.Fatalf("operator reload changing auth: %d %s", resp.StatusCode, body)
	}
	if resp, _ := h.call("GET", "/admin/config", viewerKey, ""); resp.StatusCode != 200 {
		t.Fatal("vera became admin... or lost access")
	}
	if resp, _ := h.call("PUT", "/admin/config", viewerKey, ""); resp.StatusCode != 403 {
		t.Fatalf("the refused reload was applied: vera may write (%d)", resp.StatusCode)
	}
	resp, body = h.call("POST", "/admin/reload", adminKey, "")
	if o := outcomeOf(t, body); resp.StatusCode != 200 || o.Result != reload.Applied {
		t.Fatalf("admin reload: %d %s", resp.StatusCode, body)
	}
	// Opening /metrics or letting a web origin call the API is an admin's
	// decision too.
	for extra, path := range map[string]string{"  metrics: {public: true}\n": "server.metrics", "  cors: {allowed_origins: ['https://evil.example']}\n": "server.cors"} {
		h.write(strings.Replace(authConfig("two"), "role: viewer", "role: admin", 1) + extra)
		if resp, body := h.call("POST", "/admin/reload", operatorKey, ""); resp.StatusCode != 403 || !strings.Contains(body, path) {
			t.Fatalf("operator reload changing %s: %d %s", path, resp.StatusCode, body)
		}
	}
	// A reload that leaves them alone is an operator's to make.
	h.write(strings.Replace(authConfig("three"), "role: viewer", "role: admin", 1))
	resp, body = h.call("POST", "/admin/reload", operatorKey, "")
	if o := outcomeOf(t, body); resp.StatusCode != 200 || o.Result != reload.Applied {
		t.Fatalf("operator reload: %d %s", resp.StatusCode, body)
	}
}

// A web page must not drive a keyless server: form and text bodies are
// refused, and so is any state change announced as cross-site.
func TestCrossSiteRequestsRefused(t *testing.T) {
	h := newHector(t, keylessConfig("x")+"a2a: {public_url: \"https://agents.example.com\"}\n")
	msg := `{"message":"hi"}`
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain;charset=UTF-8"} {
		resp, body := h.call("POST", "/v1/agents/a/messages", "", msg, "Content-Type", ct)
		if resp.StatusCode != 415 || !strings.Contains(body, "application/json") {
			t.Errorf("Content-Type %s: %d %s", ct, resp.StatusCode, body)
		}
		if resp, _ := h.call("POST", "/a2a/a", "", msg, "Content-Type", ct); resp.StatusCode != 415 {
			t.Errorf("A2A with Content-Type %s: %d", ct, resp.StatusCode)
		}
	}
	for _, hdr := range [][]string{
		{"Origin", "https://evil.example"},
		{"Origin", "null"},
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-site", "Origin", "https://sub.example.com"},
	} {
		// A rollback has no body: only the origin check stops it.
		if resp, body := h.call("POST", "/admin/config/rollback/1", "", "", hdr...); resp.StatusCode != 403 || !strings.Contains(body, "cross_site") {
			t.Errorf("rollback with %v: %d %s", hdr, resp.StatusCode, body)
		}
		if resp, _ := h.call("POST", "/v1/agents/a/messages", "", msg, append(hdr, "Content-Type", "application/json")...); resp.StatusCode != 403 {
			t.Errorf("message with %v: %d", hdr, resp.StatusCode)
		}
	}
	// Same-origin pages and clients without browser headers pass; so do
	// reads from anywhere (the browser keeps the answer from the page).
	for _, hdr := range [][]string{nil, {"Origin", h.base}, {"Sec-Fetch-Site", "same-origin"}, {"Origin", "https://agents.example.com"}} {
		if resp, body := h.call("POST", "/v1/agents/a/messages", "", msg, append(hdr, "Content-Type", "application/json")...); resp.StatusCode != 200 {
			t.Errorf("message with %v: %d %s", hdr, resp.StatusCode, body)
		}
	}
	if resp, _ := h.call("GET", "/v1/agents", "", "", "Sec-Fetch-Site", "cross-site"); resp.StatusCode != 200 {
		t.Errorf("a cross-site read was refused: %d", resp.StatusCode)
	}
}

func TestCORSAllowedOrigins(t *testing.T) {
	cfg := "llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\nserver: {port: 0, cors: {allowed_origins: [\"https://app.example.com\"]}}\n"
	h := newHector(t, cfg)
	resp, _ := h.call("OPTIONS", "/v1/agents/a/messages", "", "", "Origin", "https://app.example.com", "Access-Control-Request-Method", "POST")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := h.call("OPTIONS", "/v1/agents/a/messages", "", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST"); resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight of an unlisted origin: %d", resp.StatusCode)
	}
	// Cards are for every page: a browser A2A client may revalidate one.
	resp, _ = h.call("OPTIONS", "/.well-known/agent-card.json", "", "", "Origin", "https://any.example", "Access-Control-Request-Method", "GET",
		"Access-Control-Request-Headers", "if-none-match")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "If-None-Match") {
		t.Fatalf("card preflight: %d %v", resp.StatusCode, resp.Header)
	}
	resp, body := h.call("POST", "/v1/agents/a/messages", "", `{"message":"hi"}`, "Origin", "https://app.example.com", "Sec-Fetch-Site", "cross-site", "Content-Type", "application/json")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("listed origin: %d %s", resp.StatusCode, body)
	}
}

// DNS rebinding: a server on loopback answers only to loopback names and
// the hosts it is told about.
func TestAllowedHosts(t *testing.T) {
	h := newHector(t, keylessConfig("x"))
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(h.base, "http://"))
	for host, want := range map[string]int{"127.0.0.1:" + port: 200, "localhost:" + port: 200, "[::1]:" + port: 200,
		"app.localhost": 200, "evil.example:" + port: 403, "evil.example": 403, "127.0.0.1.nip.io": 403} {
		if resp, body := h.call("GET", "/v1/agents", "", "", "Host", host); resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d (%s)", host, resp.StatusCode, want, body)
		}
	}
	// Cards are the target of rebinding (their URLs come from Host): they
	// are refused too.
	if resp, _ := h.call("GET", "/.well-known/agent-card.json", "", "", "Host", "evil.example"); resp.StatusCode != 403 {
		t.Errorf("card for a foreign host: %d", resp.StatusCode)
	}
	h.write(keylessConfig("x") + "a2a: {public_url: \"https://agents.example.com\"}\n")
	h.next()
	if resp, _ := h.call("GET", "/v1/agents", "", "", "Host", "agents.example.com"); resp.StatusCode != 200 {
		t.Errorf("a2a.public_url's host: %d", resp.StatusCode)
	}
	// Bound to another loopback address, the server answers to it.
	h.write("llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\nserver: {host: 127.0.0.2, port: " + port + "}\n")
	h.next()
	resp, err := http.Get("http://127.0.0.2:" + port + "/v1/agents")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("a server on 127.0.0.2, asked for 127.0.0.2: %v %v", resp, err)
	}
	resp.Body.Close()
	h.base = "http://127.0.0.2:" + port
	h.write("llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\nserver: {host: 127.0.0.2, port: " + port + ", allowed_hosts: [hector.internal]}\n")
	h.next()
	if resp, _ := h.call("GET", "/v1/agents", "", "", "Host", "hector.internal:"+port); resp.StatusCode != 200 {
		t.Errorf("listed host: %d", resp.StatusCode)
	}
	if resp, _ := h.call("GET", "/v1/agents", "", ""); resp.StatusCode != 403 {
		t.Errorf("its own address once allowed_hosts lists only hector.internal: %d", resp.StatusCode)
	}
}

// rawConn opens a TCP connection to the server.
func rawConn(t *testing.T, h *hector) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(h.base, "http://"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin reports whether the server closes c within d, returning
// what it wrote first.
func closedWithin(c net.Conn, d time.Duration) (string, bool) {
	_ = c.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return string(b), false
	}
	return string(b), true
}

// A slow body is cut at server.read_timeout with 408; an idle keep-alive
// connection is closed at server.idle_timeout; a response that takes longer
// than the read timeout is not cut.
func TestSlowAndIdleConnectionsAreClosed(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	h := newHector(t, strings.Replace(openAIConfig(fake.URL, "x"), "  shutdown_timeout: 5s\n", "  shutdown_timeout: 5s\n  read_timeout: 300ms\n  idle_timeout: 400ms\n", 1))
	slow := rawConn(t, h)
	fmt.Fprintf(slow, "POST /v1/agents/assistant/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"mess")
	out, closed := closedWithin(slow, 3*time.Second)
	if !closed || !strings.Contains(out, "408") || !strings.Contains(out, "server.read_timeout") {
		t.Fatalf("slow body: closed=%v %q", closed, out)
	}
	idle := rawConn(t, h)
	fmt.Fprintf(idle, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("health: %v", err)
	}
	start := time.Now()
	if _, closed := closedWithin(idle, 3*time.Second); !closed || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("idle connection: closed=%v after %v", closed, time.Since(start))
	}
	// A request that starts within the idle timeout and ends after it is
	// served: its first byte ends the idle period.
	slowStart := rawConn(t, h)
	fmt.Fprintf(slowStart, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	br := bufio.NewReader(slowStart)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("health: %v", err)
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	time.Sleep(250 * time.Millisecond)
	fmt.Fprintf(slowStart, "GET /health HTTP/1.1\r\n")
	time.Sleep(300 * time.Millisecond) // past the 400ms idle timeout since the first response
	fmt.Fprintf(slowStart, "Host: 127.0.0.1\r\n\r\n")
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("a request begun before the idle timeout was cut: %v", err)
	}
	// The model takes 3x the read timeout: the turn still completes.
	fake.Push(llmtest.Reply{Text: "late", Delay: 900 * time.Millisecond})
	if r := h.send("assistant", "", "hi"); r.status != 200 || r.body.Reply != "late" {
		t.Fatalf("a slow model's turn: %d %s", r.status, r.raw)
	}
}

func TestConnectionsPerClient(t *testing.T) {
	h := newHector(t, "llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\nserver: {port: 0, max_connections_per_client: 2}\n")
	a, b := rawConn(t, h), rawConn(t, h)
	for _, c := range []net.Conn{a, b} {
		fmt.Fprintf(c, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection within the limit: %v", err)
		}
	}
	third := rawConn(t, h)
	fmt.Fprintf(third, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	if out, closed := closedWithin(third, 2*time.Second); !closed || out != "" {
		t.Fatalf("third connection: closed=%v %q", closed, out)
	}
	a.Close()
	time.Sleep(100 * time.Millisecond)
	fourth := rawConn(t, h)
	fmt.Fprintf(fourth, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(fourth), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("a slot freed by a close is reused: %v", err)
	}
}

// A keyless server bound beyond loopback says, at start, that everything
// is open, not only /admin.
func TestKeylessWarningBeyondLoopback(t *testing.T) {
	var logs testsvc.Buffer
	newHectorWith(t, "llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\nserver: {host: 0.0.0.0, port: 0}\n",
		func(o *app.Options) { o.LogOutput = &logs })
	if !strings.Contains(logs.String(), "NO API KEYS: every route (agents, tools, tasks, sessions, /admin) is open") {
		t.Fatalf("logs:\n%s", logs.String())
	}
	// A JWT issuer is a credential: no warning then.
	var quiet testsvc.Buffer
	newHectorWith(t, "llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\nserver: {host: 0.0.0.0, port: 0, auth: {jwt: {audience: h, jwks_url: 'http://127.0.0.1:9/jwks'}}}\n",
		func(o *app.Options) { o.LogOutput = &quiet })
	if strings.Contains(quiet.String(), "NO API KEYS") {
		t.Fatalf("warned with a JWT issuer configured:\n%s", quiet.String())
	}
}
