package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/app"
	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/reload"
	"github.com/hector-run/hector/internal/testsvc"
)

const (
	viewerKey   = "viewer-key-0123456789"
	operatorKey = "operator-key-0123456789"
	adminKey    = "admin-key-0123456789abc"
)

func authConfig(instruction string) string {
	return fmt.Sprintf(`llms: {e: {provider: echo}}
agents: {a: {llm: e, instruction: %q}}
server:
  port: 0
  auth:
    api_keys:
      - {name: vera, key: %s, role: viewer}
      - {name: otto, key: %s, role: operator}
      - {name: ada, key: %s, role: admin}
`, instruction, viewerKey, operatorKey, adminKey)
}

// call makes a request with an optional bearer key and headers.
func (h *hector) call(method, path, key, body string, hdr ...string) (*http.Response, string) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, h.base+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return resp, "" // a stream: the status is what the caller wants
	}
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func outcomeOf(t *testing.T, body string) reload.Outcome {
	t.Helper()
	var o reload.Outcome
	if err := json.Unmarshal([]byte(body), &o); err != nil {
		t.Fatalf("not an outcome: %s", body)
	}
	return o
}

func TestAPIKeysRotateLive(t *testing.T) {
	h := newHector(t, authConfig("x"))
	rotated := strings.Replace(authConfig("x"), adminKey, "rotated-admin-key-0123456789", 1)
	h.write(rotated)
	if o := h.next(); o.Result != reload.Applied {
		t.Fatalf("%+v", o)
	}
	if resp, _ := h.call("GET", "/admin/config", adminKey, ""); resp.StatusCode != 401 {
		t.Fatalf("old key still works: %d", resp.StatusCode)
	}
	if resp, _ := h.call("GET", "/admin/config", "rotated-admin-key-0123456789", ""); resp.StatusCode != 200 {
		t.Fatalf("new key refused: %d", resp.StatusCode)
	}
}

func TestPutConfigWithIfMatch(t *testing.T) {
	h := newHector(t, authConfig("one"))
	resp, _ := h.call("GET", "/admin/config", viewerKey, "")
	tag := resp.Header.Get("ETag")
	if tag == "" || resp.Header.Get("X-Hector-Config-Version") != "1" {
		t.Fatalf("headers %v", resp.Header)
	}
	if resp, body := h.call("PUT", "/admin/config", adminKey, authConfig("two")); resp.StatusCode != 428 {
		t.Fatalf("without If-Match: %d %s", resp.StatusCode, body)
	}
	if resp, body := h.call("PUT", "/admin/config", adminKey, authConfig("two"), "If-Match", `"stale"`); resp.StatusCode != 412 || resp.Header.Get("ETag") != tag {
		t.Fatalf("stale If-Match: %d %s", resp.StatusCode, body)
	}
	resp, body := h.call("PUT", "/admin/config", adminKey, authConfig("two"), "If-Match", tag)
	o := outcomeOf(t, body)
	if resp.StatusCode != 200 || o.Result != reload.Applied || o.Trigger != "api" || o.Actor != "ada" || o.Version != 2 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if r := h.send("a", "", "hi"); r.body.Reply != "[two] hi" {
		t.Fatalf("not applied: %s", r.raw)
	}
	if b, _ := os.ReadFile(h.cfgPath); string(b) != authConfig("two") {
		t.Fatalf("not written back to the file:\n%s", b)
	}
	if resp, _ := h.call("PUT", "/admin/config", adminKey, authConfig("three"), "If-Match", tag); resp.StatusCode != 412 {
		t.Fatalf("second writer with the old ETag: %d", resp.StatusCode)
	}
	// An invalid document is rejected with its errors and nothing changes.
	resp, body = h.call("PUT", "/admin/config", adminKey, "agents: {a: {llm: nope}}\n", "If-Match", resp.Header.Get("ETag"))
	if o := outcomeOf(t, body); resp.StatusCode != 422 || o.Result != reload.Rejected || o.Errors[0].Line != 1 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if b, _ := os.ReadFile(h.cfgPath); string(b) != authConfig("two") {
		t.Fatal("a rejected document reached the file")
	}
}

func TestRollbackRoundTripWritesBack(t *testing.T) {
	h := newHector(t, authConfig("first"))
	h.write(authConfig("second"))
	if o := h.next(); o.Version != 2 {
		t.Fatalf("%+v", o)
	}
	resp, body := h.call("GET", "/admin/config/history", viewerKey, "")
	var hist struct {
		Versions []struct {
			Version int64
			Trigger string
		}
		Current int64
	}
	_ = json.Unmarshal([]byte(body), &hist)
	if resp.StatusCode != 200 || len(hist.Versions) != 2 || hist.Versions[0].Version != 2 || hist.Versions[1].Trigger != "startup" || hist.Current != 2 {
		t.Fatalf("%s", body)
	}
	_, diff := h.call("GET", "/admin/config/diff?from=1&to=2", viewerKey, "")
	if !strings.Contains(diff, `-agents: {a: {llm: e, instruction: "first"}}`) || !strings.Contains(diff, `+agents: {a: {llm: e, instruction: "second"}}`) {
		t.Fatalf("diff:\n%s", diff)
	}
	resp, body = h.call("POST", "/admin/config/rollback/1", operatorKey, "")
	o := outcomeOf(t, body)
	if resp.StatusCode != 200 || o.Result != reload.Applied || o.Version != 3 || o.Trigger != "rollback" || o.Actor != "otto" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if r := h.send("a", "", "hi"); r.body.Reply != "[first] hi" {
		t.Fatalf("%s", r.raw)
	}
	// Written back with the secrets (the API keys) restored, not REDACTED.
	b, _ := os.ReadFile(h.cfgPath)
	if !strings.Contains(string(b), adminKey) || strings.Contains(string(b), "REDACTED") || !strings.Contains(string(b), `"first"`) {
		t.Fatalf("file after rollback:\n%s", b)
	}
	if resp, _ := h.call("POST", "/admin/config/rollback/99", operatorKey, ""); resp.StatusCode != 404 {
		t.Fatalf("unknown version: %d", resp.StatusCode)
	}
	if resp, _ := h.call("GET", "/admin/config/diff?from=x", viewerKey, ""); resp.StatusCode != 400 {
		t.Fatalf("bad parameter: %d", resp.StatusCode)
	}
}

// TestSecretsNeverShown searches every place configuration is shown for the
// literal secrets of the running configuration.
func TestSecretsNeverShown(t *testing.T) {
	const apiKey, header = "sk-LITERAL-API-SECRET-42", "Bearer HEADER-SECRET-77"
	cfg := func(instr string) string {
		return fmt.Sprintf(`llms:
  e: {provider: echo}
  g: {provider: openai, model: m, base_url: "http://llmuser:URL-PASS-11@127.0.0.1:9/v1?api-key=URL-QUERY-12", api_key: %s}
agents:
  a: {llm: e, instruction: %q}
  r: {type: a2a, url: "http://bot:AGENT-PASS-14@127.0.0.1:9/a2a/x"}
tools:
  web: {type: http, url: "http://127.0.0.1:9/{q}?token=TOOL-TOKEN-13", headers: {Authorization: %q}}
server:
  port: 0
  auth: {api_keys: [{name: ada, key: %s, role: admin}]}
`, apiKey, instr, header, adminKey)
	}
	var logs testsvc.Buffer
	h := newHectorWith(t, cfg("one"), func(o *app.Options) { o.LogOutput = &logs })
	h.write(cfg("two"))
	h.next()
	h.write("agents: {a: {llm: missing}}\n") // a rejection is logged too
	h.next()
	h.write("llms: {g: {provider: openai, model: m, api_key: k, base_url: \"htp://u:REJECT-PASS-15@h/v1\"}}\nagents: {a: {llm: g}}\n")
	h.next() // a rejected URL is quoted, without its userinfo
	var seen []string
	// A remote agent that cannot be reached: the 502 names its URL.
	resp, body := h.call("POST", "/v1/agents/r/messages", adminKey, `{"message":"hi"}`)
	if resp.StatusCode != 502 {
		t.Fatalf("remote agent down: %d %s", resp.StatusCode, body)
	}
	seen = append(seen, "502: "+body)
	for _, p := range []string{"/admin/config", "/admin/config/history", "/admin/config/versions/1", "/admin/config/versions/2",
		"/admin/config/diff?from=1&to=2", "/admin/config/outcomes", "/metrics", "/health", "/v1/agents"} {
		resp, body := h.call("GET", p, adminKey, "")
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", p, resp.StatusCode, body)
		}
		seen = append(seen, p+": "+body)
	}
	_, body = h.call("POST", "/admin/config/validate", adminKey, cfg("three"))
	seen = append(seen, "validate: "+body)
	seen = append(seen, "logs: "+logs.String())
	for _, s := range seen {
		for _, secret := range []string{apiKey, "HEADER-SECRET-77", adminKey, "URL-PASS-11", "URL-QUERY-12", "TOOL-TOKEN-13", "AGENT-PASS-14", "REJECT-PASS-15"} {
			if strings.Contains(s, secret) {
				t.Errorf("secret %q shown in %.2000s", secret, s)
			}
		}
	}
	_, shown := h.call("GET", "/admin/config", adminKey, "")
	if strings.Count(shown, "REDACTED") != 7 {
		t.Errorf("want 7 redacted values:\n%s", shown)
	}
	// The redacted document can be edited and PUT back: secrets are restored.
	resp, _ = h.call("GET", "/admin/config", adminKey, "")
	edited := strings.Replace(shown, `"two"`, `"edited"`, 1)
	resp, body = h.call("PUT", "/admin/config", adminKey, edited, "If-Match", resp.Header.Get("ETag"))
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if b, _ := os.ReadFile(h.cfgPath); !strings.Contains(string(b), apiKey) || !strings.Contains(string(b), "edited") {
		t.Fatalf("secrets lost on a round trip:\n%s", b)
	}
}

func TestValidateIsADryRun(t *testing.T) {
	h := newHector(t, authConfig("one"))
	resp, body := h.call("POST", "/admin/config/validate", operatorKey, authConfig("two"))
	o := outcomeOf(t, body)
	if resp.StatusCode != 200 || o.Result != "valid" || o.Applied["agents"].Changed[0] != "a" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	resp, body = h.call("POST", "/admin/config/validate", operatorKey, "agents:\n  a: {llm: e, max_iterations: x}\n")
	if o := outcomeOf(t, body); resp.StatusCode != 422 || len(o.Errors) != 2 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if r := h.send("a", "", "hi"); r.body.Reply != "[one] hi" || r.body.ConfigVersion != 1 {
		t.Fatalf("a dry run changed the server: %s", r.raw)
	}
}

func TestAdminReloadAndEventStream(t *testing.T) {
	h := newHector(t, authConfig("one"))
	events := h.outcomeEvents()
	_, body := h.call("POST", "/admin/reload", operatorKey, "")
	if o := outcomeOf(t, body); o.Result != reload.NoOp || o.Trigger != "api" || o.Actor != "otto" {
		t.Fatalf("%s", body)
	}
	select {
	case o := <-events:
		if o.Trigger != "api" || o.Result != reload.NoOp {
			t.Fatalf("%+v", o)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	h.write(authConfig("two"))
	select {
	case o := <-events:
		// Events show the keyed hash, as /health does, not the plain one.
		if _, health := h.get("/health"); o.Result != reload.Applied || o.Trigger != "watch" ||
			o.Hash != health["config"].(map[string]any)["hash"] || o.Hash == config.Hash([]byte(authConfig("two"))) {
			t.Fatalf("%+v", o)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event for the watch")
	}
	_, body = h.call("GET", "/admin/config/outcomes", viewerKey, "")
	if !strings.Contains(body, `"trigger":"startup"`) || !strings.Contains(body, `"trigger":"api"`) {
		t.Fatalf("%s", body)
	}
}

func TestMetrics(t *testing.T) {
	h := newHector(t, authConfig("one"))
	h.write(authConfig("two"))
	h.next()
	h.write("agents: 1\n")
	h.next()
	h.send("a", "", "hi")
	_, body := h.call("GET", "/metrics", viewerKey, "")
	// A rejected document is tried again on every watch event for it;
	// under load its save can arrive as two events, so rejections are >= 1.
	for _, re := range []string{`hector_config_reloads_total\{result="rejected",source="file"\} [1-9]`, `hector_config_validation_errors_total [1-9]`} {
		if !regexp.MustCompile(re).MatchString(body) {
			t.Errorf("metrics lack %s", re)
		}
	}
	for _, want := range []string{
		`hector_config_reloads_total{result="applied",source="file"} 2`,
		`hector_config_version 2`,
		`hector_config_reload_duration_seconds_count`,
		`hector_config_last_success_timestamp_seconds`,
		`hector_http_requests_total{code="200",method="POST",route="/v1/agents/{name}/messages"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestLastKnownGoodFallback(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache", "last-good")
	h := newHectorWith(t, authConfig("cached"), func(o *app.Options) { o.ConfigCache = cache })
	h.stop()
	if st, err := os.Stat(cache); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("cache: %v %v", st, err)
	}
	if err := os.Remove(h.cfgPath); err != nil {
		t.Fatal(err)
	}
	base := app.Options{ConfigPath: h.cfgPath, DatabaseURL: h.dbURL, LogOutput: io.Discard, ConfigCache: cache}
	if err := app.Run(context.Background(), base); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("without fallback: %v", err)
	}
	var logs testsvc.Buffer
	h2 := &hector{t: t, dir: h.dir, cfgPath: h.cfgPath, dbURL: h.dbURL, key: h.key}
	h2.mod = func(o *app.Options) { o.ConfigCache, o.FallbackToCache, o.LogOutput = cache, true, &logs }
	h2.start()
	if r := h2.send("a", "", "hi"); r.body.Reply != "[cached] hi" {
		t.Fatalf("%s", r.raw)
	}
	if !strings.Contains(logs.String(), "CONFIG SOURCE UNREADABLE") {
		t.Fatal("no loud warning")
	}
	// The source comes back: the watch catches up.
	h2.write(authConfig("restored"))
	if o := h2.next(); o.Result != reload.Applied {
		t.Fatalf("%+v", o)
	}
	if r := h2.send("a", "", "hi"); r.body.Reply != "[restored] hi" {
		t.Fatalf("%s", r.raw)
	}
}

// TestRebindUnderLoad: clients send continuously and move to the new address
// when they learn of it; no request fails.
func TestRebindUnderLoad(t *testing.T) {
	cfg := "llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\nserver: {port: %d, rebind_grace: 1s}\n"
	h := newHector(t, fmt.Sprintf(cfg, 0))
	var addr atomic.Value
	addr.Store(h.base)
	var ok, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Post(addr.Load().(string)+"/v1/agents/a/messages", "application/json", strings.NewReader(`{"message":"x"}`))
				if err != nil {
					failed.Add(1)
					t.Errorf("request failed: %v", err)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	for i := 0; i < 3; i++ {
		time.Sleep(200 * time.Millisecond)
		port := freePort(t)
		h.write(fmt.Sprintf(cfg, port))
		if o := h.next(); o.Result != reload.Applied {
			t.Fatalf("%+v", o)
		}
		addr.Store(fmt.Sprintf("http://127.0.0.1:%d", port))
	}
	// Keep the load on until enough requests went through (a loaded
	// machine is slower), up to 10s.
	for deadline := time.Now().Add(10 * time.Second); ok.Load() < 100 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || ok.Load() < 100 {
		t.Fatalf("%d ok, %d failed", ok.Load(), failed.Load())
	}
	t.Logf("%d requests across 3 rebinds, 0 failed", ok.Load())
}

// TestDatabaseSwitchUnderLoad: requests keep succeeding while database.url
// changes back and forth.
func TestDatabaseSwitchUnderLoad(t *testing.T) {
	dir := t.TempDir()
	cfg := func(db string) string {
		return "llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\nserver: {port: 0}\ndatabase: {url: \"sqlite://" + filepath.Join(dir, db) + "\"}\n"
	}
	h := &hector{t: t, dir: dir, cfgPath: filepath.Join(dir, "hector.yaml")}
	h.write(cfg("a.db"))
	h.start()
	var ok, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if r := h.send("a", fmt.Sprintf("c%d-%d", c, n), "x"); r.status != 200 {
					failed.Add(1)
					t.Errorf("%d %s", r.status, r.raw)
				} else {
					ok.Add(1)
				}
			}
		}(c)
	}
	for i, db := range []string{"b.db", "a.db", "c.db", "b.db"} {
		h.write(cfg(db))
		if o := h.next(); o.Result != reload.Applied || o.Version != int64(i+2) {
			t.Fatalf("%+v", o)
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || ok.Load() < 50 {
		t.Fatalf("%d ok, %d failed", ok.Load(), failed.Load())
	}
	t.Logf("%d requests across 4 database switches, 0 failed", ok.Load())
}

// outcomeEvents subscribes to /admin/config/events as the viewer and
// returns the outcomes it streams, until the test ends.
func (h *hector) outcomeEvents() <-chan reload.Outcome {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", h.base+"/admin/config/events", nil)
	req.Header.Set("Authorization", "Bearer "+viewerKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	events := make(chan reload.Outcome, 10)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var o reload.Outcome
				_ = json.Unmarshal([]byte(d), &o)
				events <- o
			}
		}
	}()
	return events
}
