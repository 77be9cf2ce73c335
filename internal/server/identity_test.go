package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/golang-jwt/jwt/v5"

	"github.com/hector-run/hector/internal/app"
	"github.com/hector-run/hector/internal/llm"
	"github.com/hector-run/hector/internal/llm/llmtest"
	"github.com/hector-run/hector/internal/reload"
	"github.com/hector-run/hector/internal/server"
	"github.com/hector-run/hector/internal/store"
)

const userKey = "user-key-0123456789abc"

// identityConfig has a key of each role and one JWT issuer.
func identityConfig(p *idp, extra string) string {
	return fmt.Sprintf(`llms: {e: {provider: echo}}
agents: {a: {llm: e}}
server:
  port: 0
  auth:
    api_keys:
      - {name: uma, key: %s, role: user}
      - {name: vera, key: %s, role: viewer}
      - {name: otto, key: %s, role: operator}
      - {name: ada, key: %s, role: admin}
    jwt:
      - {issuer: %s, audience: %s, jwks_url: %s}
%s`, userKey, viewerKey, operatorKey, adminKey, p.issuer, testAudience, p.url(), extra)
}

// TestRoleMatrix walks the route table: once credentials exist, every
// route but the public ones answers 401 without a valid credential (a
// wrong key, an expired JWT, one from an unknown issuer) and 403 to a
// role below the route's or to another tenant on a main-tenant route, and
// admits a strong enough one, key or JWT alike.
func TestRoleMatrix(t *testing.T) {
	p := newIDP(t, "https://idp.test")
	other := newIDP(t, "https://other.test")
	h := newHector(t, identityConfig(p, ""))
	creds := []struct{ name, token, role, tenant string }{
		{"none", "", "", ""},
		{"wrong key", "wrong-key-0123456789", "", ""},
		{"expired JWT", p.token("r1", jwt.MapClaims{"sub": "x", "role": "admin", "exp": time.Now().Add(-time.Hour).Unix()}), "", ""},
		{"unknown issuer", other.token("r1", jwt.MapClaims{"sub": "x", "role": "admin"}), "", ""},
		{"user key", userKey, "user", ""},
		{"viewer key", viewerKey, "viewer", ""},
		{"operator key", operatorKey, "operator", ""},
		{"admin key", adminKey, "admin", ""},
		{"user JWT", p.token("e1", jwt.MapClaims{"sub": "u"}), "user", ""},
		{"admin JWT", p.token("r1", jwt.MapClaims{"sub": "a", "role": []string{"viewer", "admin"}}), "admin", ""},
		{"other tenant's admin JWT", p.token("r1", jwt.MapClaims{"sub": "t", "role": "admin", "tenant_id": "acme"}), "admin", "acme"},
	}
	rank := map[string]int{"": -1, "user": 0, "viewer": 1, "metrics": 1, "operator": 2, "admin": 3}
	fill := strings.NewReplacer("{name}", "a", "{id}", "t_x", "{version}", "1", "{rest...}", "v1/message:send", "{app}", "acme")
	if resp, body := h.call("POST", "/admin/apps", adminKey, `{"name":"acme","config":"llms: {e: {provider: echo}}\nagents: {a: {llm: e}}"}`,
		"Content-Type", "application/json"); resp.StatusCode != 201 {
		t.Fatalf("create app acme: %d %s", resp.StatusCode, body)
	}
	routes := server.RouteTable()
	if len(routes) < 60 {
		t.Fatalf("only %d routes", len(routes))
	}
	for _, rt := range routes {
		if _, known := rank[rt.Role]; !known && rt.Role != server.Public {
			t.Fatalf("route %s has role %q, which this test does not know", rt.Pattern, rt.Role)
		}
		method, path, ok := strings.Cut(rt.Pattern, " ")
		if !ok {
			method, path = "POST", rt.Pattern
		}
		role := rt.Role
		if role == server.Public && strings.HasPrefix(path, "/apps/") {
			role = "user" // an app's cards are its principals'
		}
		// The configuration plane and the metrics serve the main tenant.
		mainOnly := strings.HasPrefix(path, "/admin/") && !strings.HasPrefix(path, "/admin/tasks/") || path == "/metrics"
		path = fill.Replace(path)
		if strings.HasPrefix(path, "/admin/config/diff") {
			path += "?from=1"
		}
		for _, c := range creds {
			resp, body := h.call(method, path, c.token, identityConfig(p, ""), "If-Match", `"nope"`)
			var want int
			switch {
			case role == server.Public:
			case c.role == "":
				want = 401
			case rank[c.role] < rank[role]:
				want = 403
			case c.tenant != "" && mainOnly:
				want = 403
			}
			if want != 0 && resp.StatusCode != want {
				t.Errorf("%s %s as %s: %d, want %d (%s)", method, path, c.name, resp.StatusCode, want, body)
			}
			if want == 0 && (resp.StatusCode == 401 || resp.StatusCode == 403) {
				t.Errorf("%s %s as %s: %d, want access (%s)", method, path, c.name, resp.StatusCode, body)
			}
			if want == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			if c.token != "" && strings.Contains(body, c.token) {
				t.Errorf("%s %s as %s: the answer quotes the credential", method, path, c.name)
			}
		}
	}
	// The scheme's name is case-insensitive; a key with spaces around it
	// is the key.
	for _, hdr := range []string{"bearer " + viewerKey, "BEARER  " + viewerKey + " "} {
		if resp, body := h.call("GET", "/v1/agents", "", "", "Authorization", hdr); resp.StatusCode != 200 {
			t.Errorf("Authorization %q: %d %s", hdr, resp.StatusCode, body)
		}
	}
	if resp, _ := h.call("GET", "/v1/agents", "", "", "Authorization", "Basic "+viewerKey); resp.StatusCode != 401 {
		t.Errorf("a key in another scheme was accepted: %d", resp.StatusCode)
	}
}

// A 401 for a JWT names the check that failed, never the token.
func TestJWTRefusalsNameTheCheck(t *testing.T) {
	p := newIDP(t, "https://idp.test")
	h := newHector(t, identityConfig(p, ""))
	for _, c := range []struct {
		claims jwt.MapClaims
		want   string
	}{
		{jwt.MapClaims{"sub": "x", "exp": time.Now().Add(-time.Hour).Unix()}, "expired"},
		{jwt.MapClaims{"sub": "x", "nbf": time.Now().Add(time.Hour).Unix()}, "not yet valid"},
		{jwt.MapClaims{"sub": "x", "aud": "someone-else"}, "audience"},
		{jwt.MapClaims{"sub": "x", "iss": "https://evil.test"}, "issuer"},
		{jwt.MapClaims{}, "subject"},
	} {
		tok := p.token("r1", c.claims)
		resp, body := h.call("GET", "/v1/agents", tok, "")
		if resp.StatusCode != 401 || !strings.Contains(body, c.want) || strings.Contains(body, tok) {
			t.Errorf("%v: %d %s", c.claims, resp.StatusCode, body)
		}
	}
	// alg none is refused.
	none := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "x", "iss": p.issuer, "aud": testAudience, "exp": time.Now().Add(time.Hour).Unix()})
	tok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if resp, body := h.call("GET", "/v1/agents", tok, ""); resp.StatusCode != 401 || !strings.Contains(body, "algorithm") {
		t.Errorf("alg none: %d %s", resp.StatusCode, body)
	}
}

// Keys rotate at the provider without a refused request, and the issuer
// configuration applies live.
func TestJWTRotationAndLiveIssuerChange(t *testing.T) {
	p := newIDP(t, "https://idp.test")
	h := newHector(t, identityConfig(p, ""))
	old := p.token("r1", jwt.MapClaims{"sub": "alice"})
	if resp, body := h.call("GET", "/v1/agents", old, ""); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	p.add("r2", rsaKey(t)) // the provider publishes a new key and signs with it
	fresh := p.token("r2", jwt.MapClaims{"sub": "alice"})
	for _, tok := range []string{fresh, old} {
		if resp, body := h.call("GET", "/v1/agents", tok, ""); resp.StatusCode != 200 {
			t.Fatalf("during rotation: %d %s", resp.StatusCode, body)
		}
	}
	// A new audience applies at once: the old audience's tokens are refused.
	h.write(strings.Replace(identityConfig(p, ""), "audience: "+testAudience, "audience: hector-v2", 1))
	if o := h.next(); o.Result != reload.Applied {
		t.Fatalf("%+v", o)
	}
	if resp, body := h.call("GET", "/v1/agents", fresh, ""); resp.StatusCode != 401 || !strings.Contains(body, "audience") {
		t.Fatalf("after the audience changed: %d %s", resp.StatusCode, body)
	}
	if resp, body := h.call("GET", "/v1/agents", p.token("r2", jwt.MapClaims{"sub": "alice", "aud": "hector-v2"}), ""); resp.StatusCode != 200 {
		t.Fatalf("new audience: %d %s", resp.StatusCode, body)
	}
}

// Principals own their sessions and tasks: a user sees, continues and
// cancels only its own (another's is 404, like one that does not exist);
// viewers see all of their tenant; another tenant sees none.
func TestPrincipalsOwnTheirData(t *testing.T) {
	p := newIDP(t, "https://idp.test")
	h := newHector(t, identityConfig(p, ""))
	bob := p.token("e1", jwt.MapClaims{"sub": "bob"})
	acme := p.token("r1", jwt.MapClaims{"sub": "carol", "role": "admin", "tenant_id": "acme"})
	// uma (a user key) talks to the agent and starts a task.
	resp, body := h.call("POST", "/v1/agents/a/messages", userKey, `{"message":"mine","session_id":"uma-s"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	resp, body = h.call("POST", "/v1/agents/a/tasks", userKey, `{"message":"task","session_id":"uma-t"}`)
	var task struct{ ID, Owner string }
	_ = json.Unmarshal([]byte(body), &task)
	if resp.StatusCode != 202 || task.Owner != "uma" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	// Another tenant's turn on an existing agent is refused before it runs:
	// the answer is the error alone, and nothing is stored.
	if resp, body := h.call("POST", "/v1/agents/a/messages", acme, `{"message":"cross","session_id":"acme-s"}`); resp.StatusCode != 404 || strings.Contains(body, "cross") || strings.Contains(body, "reply") {
		t.Errorf("another tenant's turn: %d %s", resp.StatusCode, body)
	}
	if resp, body := h.call("POST", "/v1/agents/a/tasks", acme, `{"message":"cross"}`); resp.StatusCode != 404 || strings.Contains(body, `"id"`) {
		t.Errorf("another tenant's task: %d %s", resp.StatusCode, body)
	}
	if resp, _ := h.call("GET", "/v1/sessions/acme-s", adminKey, ""); resp.StatusCode != 404 {
		t.Errorf("another tenant's refused turn was stored: %d", resp.StatusCode)
	}
	// A viewer reads uma's session but may not write into it.
	if resp, body := h.call("POST", "/v1/agents/a/messages", viewerKey, `{"message":"injected","session_id":"uma-s"}`); resp.StatusCode != 403 {
		t.Errorf("a viewer continued uma's session: %d %s", resp.StatusCode, body)
	}
	if _, body := h.call("GET", "/v1/sessions/uma-s", viewerKey, ""); strings.Contains(body, "injected") {
		t.Errorf("a viewer's message reached uma's session: %s", body)
	}
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/sessions/uma-s", ""},
		{"POST", "/v1/agents/a/messages", `{"message":"hijack","session_id":"uma-s"}`},
		{"POST", "/v1/agents/a/tasks", `{"message":"hijack","session_id":"uma-s"}`},
		{"GET", "/v1/tasks/" + task.ID, ""},
		{"POST", "/v1/tasks/" + task.ID + "/cancel", ""},
	} {
		for who, tok := range map[string]string{"bob": bob, "acme's admin": acme} {
			if resp, body := h.call(c.method, c.path, tok, c.body); resp.StatusCode != 404 {
				t.Errorf("%s %s as %s: %d, want 404 (%s)", c.method, c.path, who, resp.StatusCode, body)
			}
		}
	}
	count := func(tok string) int {
		_, body := h.call("GET", "/v1/tasks", tok, "")
		var list struct{ Tasks []json.RawMessage }
		_ = json.Unmarshal([]byte(body), &list)
		return len(list.Tasks)
	}
	if n := count(bob); n != 0 {
		t.Errorf("bob lists %d tasks", n)
	}
	if n := count(acme); n != 0 {
		t.Errorf("another tenant lists %d tasks", n)
	}
	if n := count(userKey); n != 1 {
		t.Errorf("uma lists %d tasks", n)
	}
	if n := count(viewerKey); n != 1 {
		t.Errorf("a viewer lists %d tasks", n)
	}
	if _, body := h.call("GET", "/v1/agents", acme, ""); strings.Contains(body, `"a"`) {
		t.Errorf("another tenant sees the main tenant's agents: %s", body)
	}
	if resp, _ := h.call("GET", "/v1/sessions/uma-s", viewerKey, ""); resp.StatusCode != 200 {
		t.Errorf("a viewer cannot read a session of its tenant: %d", resp.StatusCode)
	}
	if resp, body := h.call("POST", "/v1/tasks/"+task.ID+"/cancel", viewerKey, ""); resp.StatusCode != 403 {
		t.Errorf("a viewer cancelled another's task: %d %s", resp.StatusCode, body)
	}
	if resp, body := h.call("POST", "/v1/tasks/"+task.ID+"/cancel", userKey, ""); resp.StatusCode != 200 && resp.StatusCode != 409 {
		t.Errorf("the owner cannot cancel its task: %d %s", resp.StatusCode, body)
	}
	// bob's own session is his: uma cannot read it.
	if resp, body := h.call("POST", "/v1/agents/a/messages", bob, `{"message":"bob's","session_id":"bob-s"}`); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if resp, _ := h.call("GET", "/v1/sessions/bob-s", userKey, ""); resp.StatusCode != 404 {
		t.Errorf("uma reads bob's session: %d", resp.StatusCode)
	}
	if _, body := h.call("GET", "/v1/sessions/bob-s", bob, ""); !strings.Contains(body, `"owner":"idp.test:bob"`) {
		t.Errorf("bob's session does not record him: %s", body)
	}
}

// Over A2A too, a principal sees only its own tasks and contexts, and
// another tenant reaches no agent of the main one.
func TestA2APrincipalsOwnTheirTasks(t *testing.T) {
	p := newIDP(t, "https://idp.test")
	h := newHector(t, identityConfig(p, ""))
	bob := p.token("e1", jwt.MapClaims{"sub": "bob"})
	acme := p.token("r1", jwt.MapClaims{"sub": "carol", "role": "admin", "tenant_id": "acme"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	as := func(tok string) context.Context { return bearer(ctx, tok) }
	c := h.a2aClient("a", a2a.TransportProtocolJSONRPC, a2a.Version)
	res, err := c.SendMessage(as(userKey), userMessage("uma's"))
	if err != nil {
		t.Fatal(err)
	}
	task := res.(*a2a.Task)
	if _, err := c.GetTask(as(bob), &a2a.GetTaskRequest{ID: task.ID}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("bob read uma's task: %v", err)
	}
	if _, err := c.CancelTask(as(bob), &a2a.CancelTaskRequest{ID: task.ID}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("bob cancelled uma's task: %v", err)
	}
	for ev, err := range c.SubscribeToTask(as(bob), &a2a.SubscribeToTaskRequest{ID: task.ID}) {
		if err == nil {
			t.Errorf("bob subscribed to uma's task: %v", ev)
		}
		break
	}
	hook := &a2a.PushConfig{TaskID: task.ID, ID: "bob", URL: "https://hooks.example.com/x"}
	if _, err := c.CreateTaskPushConfig(as(bob), hook); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("bob registered a webhook on uma's task: %v", err)
	}
	if _, err := c.ListTaskPushConfigs(as(bob), &a2a.ListTaskPushConfigRequest{TaskID: task.ID}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("bob listed the webhooks of uma's task: %v", err)
	}
	list, err := c.ListTasks(as(bob), &a2a.ListTasksRequest{})
	if err != nil || len(list.Tasks) != 0 || list.TotalSize != 0 {
		t.Errorf("bob lists %+v %v", list, err)
	}
	if list, err := c.ListTasks(as(userKey), &a2a.ListTasksRequest{}); err != nil || len(list.Tasks) != 1 {
		t.Errorf("uma lists %+v %v", list, err)
	}
	hijack := userMessage("into uma's context")
	hijack.Message.ContextID = task.ContextID
	if _, err := c.SendMessage(as(bob), hijack); err == nil || !strings.Contains(err.Error(), "not yours") {
		t.Errorf("bob wrote into uma's context: %v", err)
	}
	if _, err := c.GetTask(as(viewerKey), &a2a.GetTaskRequest{ID: task.ID}); err != nil {
		t.Errorf("a viewer cannot read a task of its tenant: %v", err)
	}
	if resp, body := h.call("POST", "/a2a/a", acme, `{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"`+string(task.ID)+`"}}`); resp.StatusCode != 404 {
		t.Errorf("another tenant reached the main tenant's agent: %d %s", resp.StatusCode, body)
	}
}

// The seed's server.auth works as written: enabled, jwks_url, and a plain
// key, which is an admin key and draws a warning in the reload outcome.
func TestSeedAuthServes(t *testing.T) {
	p := newIDP(t, "https://idp.test")
	seed := fmt.Sprintf(`llms: {e: {provider: echo}}
agents: {a: {llm: e}}
server:
  port: 0
  auth:
    enabled: true
    jwks_url: %s
    api_keys:
      - %s
`, p.url(), adminKey)
	h := newHector(t, seed)
	if resp, body := h.call("GET", "/v1/agents", p.token("r1", jwt.MapClaims{"sub": "s"}), ""); resp.StatusCode != 200 {
		t.Fatalf("seed JWT: %d %s", resp.StatusCode, body)
	}
	if resp, _ := h.call("GET", "/v1/agents", "", ""); resp.StatusCode != 401 {
		t.Fatalf("no credential: %d", resp.StatusCode)
	}
	resp, body := h.call("POST", "/admin/reload", adminKey, "")
	if o := outcomeOf(t, body); resp.StatusCode != 200 || o.Actor != "key-1" {
		t.Fatalf("plain key as admin: %d %s", resp.StatusCode, body)
	}
	resp, body = h.call("GET", "/admin/config/outcomes", adminKey, "")
	if resp.StatusCode != 200 || !strings.Contains(body, "server.auth.api_keys[0]") || !strings.Contains(body, "role admin") {
		t.Fatalf("no warning for the plain key in the startup outcome: %d %s", resp.StatusCode, body)
	}
}

// require: false admits callers without a credential as the anonymous
// user; stronger routes still need one. metrics.public opens /metrics.
func TestAnonymousUserAndPublicMetrics(t *testing.T) {
	p := newIDP(t, "https://idp.test")
	h := newHector(t, identityConfig(p, "    require: false\n  metrics: {public: true}\n"))
	if resp, body := h.call("POST", "/v1/agents/a/messages", "", `{"message":"hi"}`); resp.StatusCode != 200 {
		t.Fatalf("anonymous turn: %d %s", resp.StatusCode, body)
	}
	for _, path := range []string{"/admin/config", "/admin/tasks/dlq"} {
		if resp, _ := h.call("GET", path, "", ""); resp.StatusCode != 403 {
			t.Errorf("%s without a credential: %d, want 403", path, resp.StatusCode)
		}
	}
	if resp, _ := h.call("GET", "/v1/agents", "wrong-key-0123456789", ""); resp.StatusCode != 401 {
		t.Errorf("a wrong key is still refused: %d", resp.StatusCode)
	}
	if resp, _ := h.call("GET", "/metrics", "", ""); resp.StatusCode != 200 {
		t.Errorf("public metrics: %d", resp.StatusCode)
	}
}

// Requests authenticated with a JWT and with a key keep succeeding while
// server.auth is rewritten again and again: each rewrite changes the
// issuer's settings, so each snapshot builds a new issuer that has to
// fetch the keys before its first verification.
func TestAuthenticatedRequestsDuringAuthReloads(t *testing.T) {
	const reloads = 20
	p := newIDP(t, "https://idp.test")
	withRefresh := func(i int) string {
		return strings.Replace(identityConfig(p, ""), "jwks_url: "+p.url()+"}", fmt.Sprintf("jwks_url: %s, refresh_interval: %ds}", p.url(), 60+i), 1)
	}
	h := newHector(t, withRefresh(0))
	tok := p.token("r1", jwt.MapClaims{"sub": "alice"})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sent, failed int
	for c := 0; c < 4; c++ {
		cred := []string{tok, userKey}[c%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, body := h.call("GET", "/v1/agents", cred, "")
				mu.Lock()
				sent++
				if resp.StatusCode != 200 {
					failed++
					t.Errorf("during reloads: %d %s", resp.StatusCode, body)
				}
				mu.Unlock()
			}
		}()
	}
	for i := 1; i <= reloads; i++ {
		h.write(withRefresh(i))
		if o := h.next(); o.Result != reload.Applied {
			t.Fatalf("reload %d: %+v", i, o)
		}
	}
	close(stop)
	wg.Wait()
	if sent < reloads || failed > 0 {
		t.Fatalf("%d requests, %d failed", sent, failed)
	}
	t.Logf("%d authenticated requests across %d reloads of server.auth, none failed", sent, reloads)
}

// A task queued on a session id nobody has yet may not continue the
// session if another principal makes it first: it fails when it runs,
// without reading or writing that conversation.
func TestQueuedTaskCannotTakeAnotherPrincipalsSession(t *testing.T) {
	p := newIDP(t, "https://idp.test")
	fake := llmtest.NewOpenAI(t)
	cfg := strings.Replace(a2aConfig(fake.URL, ""), "server: {port: 0, shutdown_timeout: 5s}", fmt.Sprintf(`server:
  port: 0
  auth:
    api_keys: [{name: uma, key: %s, role: user}, {name: otto, key: %s, role: operator}]
    jwt: {issuer: %s, audience: %s, jwks_url: %s}`, userKey, operatorKey, p.issuer, testAudience, p.url()), 1)
	h := newHector(t, cfg)
	bob := p.token("e1", jwt.MapClaims{"sub": "bob"})
	fake.Push(llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "pay", Args: `{"command":"echo x"}`}}})
	resp, body := h.call("POST", "/v1/agents/assistant/messages", bob, `{"message":"pay","session_id":"later"}`)
	var waiting struct {
		TaskID string `json:"task_id"`
	}
	_ = json.Unmarshal([]byte(body), &waiting)
	if resp.StatusCode != 202 || waiting.TaskID == "" {
		t.Fatalf("bob's turn did not wait for approval: %d %s", resp.StatusCode, body)
	}
	fake.Push(llmtest.Reply{Text: "uma's secret plan"})
	if resp, body := h.call("POST", "/v1/agents/assistant/messages", userKey, `{"message":"my plan","session_id":"later"}`); resp.StatusCode != 200 {
		t.Fatalf("uma's turn: %d %s", resp.StatusCode, body)
	}
	fake.Push(llmtest.Reply{Text: "paid"})
	if resp, body := h.call("POST", "/v1/tasks/"+waiting.TaskID+"/approve", operatorKey, ""); resp.StatusCode != 200 {
		t.Fatalf("approve: %d %s", resp.StatusCode, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body = h.call("GET", "/v1/tasks/"+waiting.TaskID, bob, "")
		if strings.Contains(body, `"state":"failed"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the task did not fail: %s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(body, "belongs to another principal") || strings.Contains(body, "secret plan") {
		t.Fatalf("task: %s", body)
	}
	_, body = h.call("GET", "/v1/sessions/later", userKey, "")
	if strings.Contains(body, "paid") || strings.Contains(body, `"pay"`) {
		t.Fatalf("bob's task wrote into uma's session: %s", body)
	}
}

// examples/identity.yaml serves as its comments say (its identity
// provider is not reachable here; the keys are enough to show it).
func TestIdentityExampleServes(t *testing.T) {
	b, err := os.ReadFile("../../examples/identity.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HECTOR_ADMIN_KEY": adminKey, "HECTOR_APP_KEY": userKey}
	h := newHectorWith(t, strings.Replace(string(b), "server:\n", "server:\n  port: 0\n", 1), func(o *app.Options) {
		o.Env = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	})
	for _, c := range []struct {
		method, path, key, body string
		want                    int
	}{
		{"GET", "/v1/agents", "", "", 401},
		{"POST", "/v1/agents/assistant/messages", userKey, `{"message":"hi"}`, 200},
		{"GET", "/admin/config", userKey, "", 403},
		{"GET", "/admin/config", adminKey, "", 200},
	} {
		if resp, body := h.call(c.method, c.path, c.key, c.body); resp.StatusCode != c.want {
			t.Errorf("%s %s: %d, want %d (%s)", c.method, c.path, resp.StatusCode, c.want, body)
		}
	}
}

// An issuer whose settings a reload leaves alone keeps its keys: the
// reload fetches nothing, and its tokens keep verifying at once.
func TestUnchangedIssuerSurvivesReloads(t *testing.T) {
	p := newIDP(t, "https://idp.test")
	h := newHector(t, identityConfig(p, ""))
	tok := p.token("r1", jwt.MapClaims{"sub": "alice"})
	if resp, _ := h.call("GET", "/v1/agents", tok, ""); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	fetched := p.served.Load()
	for i := 1; i <= 3; i++ {
		h.write(strings.Replace(identityConfig(p, ""), "agents: {a: {llm: e}}", fmt.Sprintf("agents: {a: {llm: e, instruction: v%d}}", i), 1))
		if o := h.next(); o.Result != reload.Applied {
			t.Fatalf("%+v", o)
		}
		if resp, _ := h.call("GET", "/v1/agents", tok, ""); resp.StatusCode != 200 {
			t.Fatal(resp.StatusCode)
		}
	}
	if n := p.served.Load(); n != fetched {
		t.Fatalf("reloads that left the issuer alone fetched its keys %d more times", n-fetched)
	}
}

// Sessions from before owners were recorded are seen by viewers and
// adopted by the first of them to continue one; a user sees none.
func TestLegacySessionsAreAdopted(t *testing.T) {
	p := newIDP(t, "https://idp.test")
	h := newHector(t, identityConfig(p, ""))
	st, err := store.Open(context.Background(), h.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.AppendTurn(context.Background(), "old", "a", store.Owner{}, 1, []llm.Message{{Role: llm.RoleUser, Content: "before 0009"}}); err != nil {
		t.Fatal(err)
	}
	if resp, _ := h.call("GET", "/v1/sessions/old", userKey, ""); resp.StatusCode != 404 {
		t.Errorf("a user reads an unowned session: %d", resp.StatusCode)
	}
	if resp, _ := h.call("POST", "/v1/agents/a/messages", userKey, `{"message":"mine?","session_id":"old"}`); resp.StatusCode != 404 {
		t.Errorf("a user adopts an unowned session: %d", resp.StatusCode)
	}
	c := h.a2aClient("a", a2a.TransportProtocolJSONRPC, a2a.Version)
	msg := userMessage("mine?")
	msg.Message.ContextID = "old"
	if _, err := c.SendMessage(bearer(context.Background(), userKey), msg); err == nil || !strings.Contains(err.Error(), "not yours") {
		t.Errorf("a user adopts an unowned session over A2A: %v", err)
	}
	if resp, body := h.call("POST", "/v1/agents/a/messages", viewerKey, `{"message":"adopted","session_id":"old"}`); resp.StatusCode != 200 {
		t.Fatalf("a viewer continues an unowned session: %d %s", resp.StatusCode, body)
	}
	if resp, _ := h.call("POST", "/v1/agents/a/messages", operatorKey, `{"message":"too","session_id":"old"}`); resp.StatusCode != 403 {
		t.Errorf("an adopted session is continued by another: %d", resp.StatusCode)
	}
	if _, body := h.call("GET", "/v1/sessions/old", viewerKey, ""); !strings.Contains(body, `"owner":"vera"`) || !strings.Contains(body, "before 0009") {
		t.Errorf("not adopted by vera: %s", body)
	}
}

// A JWT whose issuer's keys cannot be fetched is the server's problem, not
// the token's: 503 with Retry-After, so the client retries.
func TestJWTWithKeysUnavailableIs503(t *testing.T) {
	p := newIDP(t, "https://idp.test")
	tok := p.token("r1", jwt.MapClaims{"sub": "alice"})
	cfg := strings.Replace(identityConfig(p, ""), p.url(), "http://127.0.0.1:1/jwks.json", 1) // nothing listens there
	h := newHector(t, cfg)
	resp, body := h.call("GET", "/v1/agents", tok, "")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "keys unavailable") || strings.Contains(body, tok) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if resp, _ := h.call("GET", "/v1/agents", userKey, ""); resp.StatusCode != 200 {
		t.Fatalf("API keys stop working when the provider is down: %d", resp.StatusCode)
	}
}
