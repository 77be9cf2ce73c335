package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/app"
	"github.com/hector-run/hector/internal/config/source"
	"github.com/hector-run/hector/internal/llm/llmtest"
	"github.com/hector-run/hector/internal/reload"
	"github.com/hector-run/hector/internal/server"
)

// hector is a server started in-process by app.Run, on a config file and a
// SQLite database in a temporary directory.
type hector struct {
	t        *testing.T
	dir      string
	cfgPath  string
	dbURL    string
	base     string
	outcomes chan reload.Outcome
	reloads  chan struct{}
	stop     func()
	mod      func(*app.Options) // adjusts the options of every start
	key      string             // the bearer key post and get send: the strongest of the test keys the config lists
}

func newHector(t *testing.T, cfg string) *hector { return newHectorWith(t, cfg, nil) }

func newHectorWith(t *testing.T, cfg string, mod func(*app.Options)) *hector {
	t.Helper()
	dir := t.TempDir()
	h := &hector{t: t, dir: dir, cfgPath: filepath.Join(dir, "hector.yaml"), dbURL: "sqlite://" + filepath.Join(dir, "hector.db"), mod: mod}
	for _, k := range []string{viewerKey, operatorKey, adminKey} {
		if strings.Contains(cfg, k) {
			h.key = k
		}
	}
	h.write(cfg)
	h.start()
	return h
}

// start runs the server (again) on the same config and database.
func (h *hector) start() {
	h.t.Helper()
	h.outcomes = make(chan reload.Outcome, 1000)
	h.reloads = make(chan struct{})
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	opts := app.Options{ConfigPath: h.cfgPath, Watch: true, Debounce: 20 * time.Millisecond, DatabaseURL: h.dbURL,
		Version: "test", LogOutput: testLog(), Env: func(string) (string, bool) { return "", false },
		Reload: h.reloads, Ready: func(addr string) { ready <- addr }, OnOutcome: func(o reload.Outcome) { h.outcomes <- o }}
	if h.mod != nil {
		h.mod(&opts)
	}
	go func() { errc <- app.Run(ctx, opts) }()
	select {
	case addr := <-ready:
		h.base = "http://" + addr
	case err := <-errc:
		h.t.Fatalf("server did not start: %v", err)
	}
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-errc; err != nil {
				h.t.Errorf("Run: %v", err)
			}
		})
	}
	h.t.Cleanup(h.stop)
	if opts.Watch {
		h.waitNoOp() // the watcher's first read
	}
}

func (h *hector) write(cfg string) {
	h.t.Helper()
	if err := (&source.File{Path: h.cfgPath}).Write([]byte(cfg)); err != nil {
		h.t.Fatal(err)
	}
}

// applied waits for the next applied or rejected outcome.
func (h *hector) next() reload.Outcome {
	h.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case o := <-h.outcomes:
			if o.Result != reload.NoOp {
				return o
			}
		case <-timeout:
			h.t.Fatal("no reload outcome within 5s")
		}
	}
}

// waitNoOp waits for the watcher's first read (a no-op), skipping startup.
func (h *hector) waitNoOp() {
	h.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case o := <-h.outcomes:
			if o.Trigger == "watch" {
				return
			}
		case <-timeout:
			h.t.Fatal("watcher did not start")
		}
	}
}

type reply struct {
	status int
	body   server.MessageResponse
	raw    string
}

func (h *hector) send(agent, sessionID, msg string) reply {
	h.t.Helper()
	b, _ := json.Marshal(map[string]string{"message": msg, "session_id": sessionID})
	return h.post("/v1/agents/"+agent+"/messages", string(b))
}

func (h *hector) post(path, body string) reply {
	req, _ := http.NewRequest("POST", h.base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	h.authorize(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Errorf("POST %s: %v", path, err)
		return reply{}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func (h *hector) get(path string) (int, map[string]any) {
	h.t.Helper()
	req, _ := http.NewRequest("GET", h.base+path, nil)
	h.authorize(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (h *hector) authorize(req *http.Request) {
	if h.key != "" {
		req.Header.Set("Authorization", "Bearer "+h.key)
	}
}

func openAIConfig(url, instruction string) string {
	return fmt.Sprintf(`name: e2e
llms:
  gpt:
    provider: openai
    model: test-model
    base_url: %s/v1
    api_key: test
agents:
  assistant:
    llm: gpt
    instruction: %q
    tools: [echoer]
tools:
  echoer:
    type: command
    allowed_commands: [echo]
server:
  port: 0
  shutdown_timeout: 5s
`, url, instruction)
}

func TestEndToEndToolCallAndSessionAcrossRestart(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	h := newHector(t, openAIConfig(fake.URL, "Be helpful."))

	fake.Push(
		llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "t1", Name: "echoer", Args: `{"command":"echo side effect"}`}}},
		llmtest.Reply{Text: "The tool said: side effect"},
	)
	r := h.send("assistant", "", "run the tool")
	if r.status != 200 || r.body.Reply != "The tool said: side effect" || r.body.Iterations != 2 || r.body.ConfigVersion != 1 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if len(r.body.ToolCalls) != 1 || r.body.ToolCalls[0].Result != "side effect\n" || r.body.ToolCalls[0].IsError {
		t.Fatalf("tool call %+v", r.body.ToolCalls)
	}
	if req := fake.Requests()[1]; req.LastTool != "side effect\n" || req.System != "Be helpful." || len(req.Tools) != 1 {
		t.Fatalf("tool result not returned to the model: %+v", req)
	}
	session := r.body.SessionID

	h.stop()
	h.start() // same config and database: a restart

	r = h.send("assistant", session, "and again")
	if r.status != 200 || r.body.SessionID != session {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	// user, assistant(tool call), tool, assistant, + the new user message, after the system prompt
	if got := fake.Requests()[2].NumMessage; got != 6 {
		t.Fatalf("history after restart: model saw %d messages, want 6", got)
	}
	code, sess := h.get("/v1/sessions/" + session)
	if code != 200 || len(sess["messages"].([]any)) != 6 {
		t.Fatalf("%d %v", code, sess)
	}
}

func TestStreamingOverSSE(t *testing.T) {
	for _, prov := range []string{"openai", "anthropic"} {
		t.Run(prov, func(t *testing.T) {
			var fake *llmtest.Server
			var cfg string
			if prov == "openai" {
				fake = llmtest.NewOpenAI(t)
				cfg = openAIConfig(fake.URL, "x")
			} else {
				fake = llmtest.NewAnthropic(t)
				cfg = strings.Replace(strings.Replace(openAIConfig(fake.URL, "x"), "provider: openai", "provider: anthropic", 1), fake.URL+"/v1", fake.URL, 1)
			}
			h := newHector(t, cfg)
			fake.Push(llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c", Name: "echoer", Args: `{"command":"echo hi"}`}}},
				llmtest.Reply{Text: "one two three"})
			req, _ := http.NewRequest("POST", h.base+"/v1/agents/assistant/messages", strings.NewReader(`{"message":"go"}`))
			req.Header.Set("Accept", "text/event-stream")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
				t.Fatalf("content type %q", ct)
			}
			var events []string
			var text strings.Builder
			var done server.MessageResponse
			sc := bufio.NewScanner(resp.Body)
			var event string
			for sc.Scan() {
				line := sc.Text()
				switch {
				case strings.HasPrefix(line, "event: "):
					event = strings.TrimPrefix(line, "event: ")
					events = append(events, event)
				case strings.HasPrefix(line, "data: "):
					data := strings.TrimPrefix(line, "data: ")
					if event == "text" {
						var d map[string]string
						_ = json.Unmarshal([]byte(data), &d)
						text.WriteString(d["text"])
					}
					if event == "done" {
						_ = json.Unmarshal([]byte(data), &done)
					}
				}
			}
			got := strings.Join(events, ",")
			if got != "session,tool_call,tool_result,text,text,text,done" || text.String() != "one two three" || done.Reply != "one two three" {
				t.Fatalf("events %s text %q done %+v", got, text.String(), done)
			}
			if !fake.Requests()[0].Stream {
				t.Fatal("the model was not asked to stream")
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	h := newHector(t, "llms: {e: {provider: echo}}\nagents: {a: {llm: e}, b: {llm: e}}\nserver: {port: 0, max_body_bytes: 200}\n")
	sess := h.send("a", "", "hi").body.SessionID
	cases := []struct {
		path, body string
		status     int
		code, msg  string
	}{
		{"/v1/agents/nope/messages", `{"message":"x"}`, 404, "agent_not_found", `no agent named "nope"`},
		{"/v1/agents/a/messages", ``, 400, "invalid_body", "empty"},
		{"/v1/agents/a/messages", `{"message":`, 400, "invalid_body", ""},
		{"/v1/agents/a/messages", `{"message":"x"} {}`, 400, "invalid_body", "after the JSON object"},
		{"/v1/agents/a/messages", `{"mesage":"x"}`, 400, "invalid_body", `unknown field "mesage"`},
		{"/v1/agents/a/messages", `{"message":7}`, 400, "invalid_body", `field "message" must be a string`},
		{"/v1/agents/a/messages", `{"message":"  "}`, 400, "invalid_body", `field "message" is required`},
		{"/v1/agents/a/messages", `{"message":"x","session_id":"bad id!"}`, 400, "invalid_body", `field "session_id"`},
		{"/v1/agents/a/messages", `{"message":"` + strings.Repeat("x", 300) + `"}`, 413, "body_too_large", "exceeds 200 bytes"},
		{"/v1/agents/b/messages", `{"message":"x","session_id":"` + sess + `"}`, 409, "session_agent_mismatch", `belongs to agent "a"`},
		{"/v1/nothing", `{}`, 404, "not_found", "no route"},
	}
	for _, c := range cases {
		r := h.post(c.path, c.body)
		var e server.APIError
		_ = json.Unmarshal([]byte(r.raw), &e)
		if r.status != c.status || e.Error.Code != c.code || !strings.Contains(e.Error.Message, c.msg) {
			t.Errorf("POST %s %q: %d %s", c.path, c.body, r.status, r.raw)
		}
	}
	if code, _ := h.get("/v1/sessions/unknown"); code != 404 {
		t.Errorf("unknown session: %d", code)
	}
	if code, _ := h.get("/v1/agents/nope"); code != 404 {
		t.Errorf("unknown agent: %d", code)
	}
	code, body := h.get("/v1/agents/a")
	if code != 200 || body["llm"] != "e" {
		t.Errorf("%d %v", code, body)
	}
}

func TestHealth(t *testing.T) {
	h := newHector(t, "name: hx\nllms: {e: {provider: echo}}\nagents: {a: {llm: e}}\nserver: {port: 0}\n")
	code, body := h.get("/health")
	cfg, _ := body["config"].(map[string]any)
	if code != 200 || body["status"] != "ok" || body["database"] != "connected" || body["version"] != "test" ||
		cfg["version"] != float64(1) || len(cfg["hash"].(string)) != 64 || !strings.HasPrefix(cfg["source"].(string), "file:") {
		t.Fatalf("%d %v", code, body)
	}
}

// TestInFlightRequestKeepsItsSnapshot: a request that started before a
// reload finishes with the old instruction; one started after the swap sees
// the new one.
func TestInFlightRequestKeepsItsSnapshot(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	started := make(chan struct{}, 1)
	fake.Respond = func(r llmtest.Request) llmtest.Reply {
		if r.LastUser == "slow" {
			started <- struct{}{}
			return llmtest.Reply{Text: r.System, Delay: 700 * time.Millisecond}
		}
		return llmtest.Reply{Text: r.System}
	}
	h := newHector(t, openAIConfig(fake.URL, "old instruction"))
	slow := make(chan reply, 1)
	go func() { slow <- h.send("assistant", "s1", "slow") }()
	<-started
	h.write(openAIConfig(fake.URL, "new instruction"))
	if o := h.next(); o.Result != reload.Applied {
		t.Fatalf("%+v", o)
	}
	fast := h.send("assistant", "s2", "fast")
	if fast.body.Reply != "new instruction" || fast.body.ConfigVersion != 2 {
		t.Fatalf("request after the swap: %s", fast.raw)
	}
	r := <-slow
	if r.status != 200 || r.body.Reply != "old instruction" || r.body.ConfigVersion != 1 {
		t.Fatalf("in-flight request: %s", r.raw)
	}
	// The next message of the busy session uses the new snapshot.
	if r := h.send("assistant", "s1", "next"); r.body.Reply != "new instruction" {
		t.Fatalf("next message of an existing session: %s", r.raw)
	}
}

func TestAddAndRemoveAgentsLive(t *testing.T) {
	h := newHector(t, "llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\nserver: {port: 0}\n")
	if r := h.send("b", "", "hi"); r.status != 404 {
		t.Fatalf("%d", r.status)
	}
	h.write("llms: {e: {provider: echo}}\nagents: {b: {llm: e, instruction: B}}\nserver: {port: 0}\n")
	o := h.next()
	if o.Applied["agents"].Added[0] != "b" || o.Applied["agents"].Removed[0] != "a" {
		t.Fatalf("%+v", o.Applied)
	}
	if r := h.send("b", "", "hi"); r.status != 200 || r.body.Reply != "[B] hi" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if r := h.send("a", "", "hi"); r.status != 404 {
		t.Fatalf("removed agent still answers: %d", r.status)
	}
}

func TestSIGHUPReloadChannel(t *testing.T) {
	h := newHector(t, "llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\nserver: {port: 0}\n")
	h.reloads <- struct{}{}
	select {
	case o := <-h.outcomes:
		if o.Trigger != "sighup" || o.Result != reload.NoOp {
			t.Fatalf("%+v", o)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no outcome")
	}
}

func TestListenerRebindsOnPortChange(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	started := make(chan struct{}, 1)
	fake.Respond = func(r llmtest.Request) llmtest.Reply {
		if r.LastUser == "slow" {
			started <- struct{}{}
			return llmtest.Reply{Text: "finished on the old listener", Delay: 500 * time.Millisecond}
		}
		return llmtest.Reply{Text: "ok"}
	}
	cfg := strings.Replace(openAIConfig(fake.URL, "x"), "port: 0", "port: 0\n  rebind_grace: 0s", 1)
	h := newHector(t, cfg)
	oldBase := h.base
	slow := make(chan reply, 1)
	go func() { slow <- h.send("assistant", "", "slow") }()
	<-started
	port := freePort(t)
	h.write(strings.Replace(cfg, "port: 0", fmt.Sprintf("port: %d", port), 1))
	if o := h.next(); o.Result != reload.Applied || o.Applied["server"].Changed[0] != "port" {
		t.Fatalf("%+v", o)
	}
	h.base = fmt.Sprintf("http://127.0.0.1:%d", port)
	if r := h.send("assistant", "", "fast"); r.status != 200 {
		t.Fatalf("new listener: %d %s", r.status, r.raw)
	}
	if r := <-slow; r.status != 200 || r.body.Reply != "finished on the old listener" {
		t.Fatalf("in-flight request on the old listener: %d %s", r.status, r.raw)
	}
	if _, err := http.Get(oldBase + "/health"); err == nil {
		t.Fatal("old listener still accepts connections")
	}
	// A port that is taken rejects the reload and keeps the current listener.
	h.write(strings.Replace(cfg, "port: 0", "port: "+strings.TrimPrefix(fake.URL, "http://127.0.0.1:"), 1))
	if o := h.next(); o.Result != reload.Rejected || o.Errors[0].Path != "server.port" {
		t.Fatalf("%+v", o)
	}
	if r := h.send("assistant", "", "still here"); r.status != 200 {
		t.Fatalf("%d", r.status)
	}
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	fake := llmtest.NewOpenAI(t)
	started := make(chan struct{}, 1)
	fake.Respond = func(r llmtest.Request) llmtest.Reply {
		started <- struct{}{}
		return llmtest.Reply{Text: "done", Delay: 400 * time.Millisecond}
	}
	h := newHector(t, openAIConfig(fake.URL, "x"))
	res := make(chan reply, 1)
	go func() { res <- h.send("assistant", "", "work") }()
	<-started
	h.stop()
	if r := <-res; r.status != 200 || r.body.Reply != "done" {
		t.Fatalf("in-flight request during shutdown: %d %s", r.status, r.raw)
	}
	if _, err := http.Get(h.base + "/health"); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}

func TestInvalidConfigRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(path, []byte("agents:\n  a: {llm: nope}\n"), 0o600)
	err := app.Run(context.Background(), app.Options{ConfigPath: path, LogOutput: io.Discard, DatabaseURL: "sqlite://" + filepath.Join(dir, "db")})
	if err == nil || !strings.Contains(err.Error(), `2:7: agents.a.llm: unknown llm "nope"`) {
		t.Fatalf("%v", err)
	}
}

// TestDatabaseSwitchesLive: a database.url change opens and migrates the new
// database before the swap; new sessions land there while the old database
// stays readable for requests that began before the switch.
func TestDatabaseSwitchesLive(t *testing.T) {
	dir := t.TempDir()
	cfg := func(db string) string {
		return "llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\nserver: {port: 0}\ndatabase: {url: \"sqlite://" + filepath.Join(dir, db) + "\"}\n"
	}
	h := &hector{t: t, dir: dir, cfgPath: filepath.Join(dir, "hector.yaml")} // no --database: the config decides
	h.write(cfg("one.db"))
	h.start()
	first := h.send("a", "s-one", "hi")
	h.write(cfg("two.db"))
	if o := h.next(); o.Result != reload.Applied || o.Applied["database"].Changed[0] != "url" || len(o.Warnings) != 0 {
		t.Fatalf("%+v", o)
	}
	second := h.send("a", "s-two", "hi")
	if first.status != 200 || second.status != 200 {
		t.Fatalf("%s %s", first.raw, second.raw)
	}
	if code, _ := h.get("/v1/sessions/s-one"); code != 404 {
		t.Fatalf("session from the old database visible in the new one: %d", code)
	}
	if code, _ := h.get("/v1/sessions/s-two"); code != 200 {
		t.Fatalf("new session not in the new database: %d", code)
	}
	// The history moved with the database: version numbering continues.
	if code, body := h.get("/health"); code != 200 || body["config"].(map[string]any)["version"] != float64(2) {
		t.Fatalf("%d %v", code, body)
	}
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func testLog() io.Writer {
	if os.Getenv("HECTOR_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}
