package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2aclient"
	"github.com/a2aproject/a2a-go/v2/a2aclient/agentcard"
	a2av0 "github.com/a2aproject/a2a-go/v2/a2acompat/a2av0"
	"github.com/golang-jwt/jwt/v5"

	"github.com/hector-run/hector/internal/app"
	"github.com/hector-run/hector/internal/config/source"
	"github.com/hector-run/hector/internal/llm/llmtest"
	"github.com/hector-run/hector/internal/reload"
)

const (
	alphaKey = "alpha-user-key-0123456789"
	betaKey  = "beta-user-key-0123456789"
)

// appsConfig is identityConfig with two keys bound to apps alpha and beta.
func appsConfig(p *idp) string {
	return strings.Replace(identityConfig(p, ""), "      - {name: ada,", fmt.Sprintf(
		"      - {name: al, key: %s, role: user, app: alpha}\n      - {name: bea, key: %s, role: user, app: beta}\n      - {name: ada,", alphaKey, betaKey), 1)
}

// appDoc is an app's document with one echo agent.
func appDoc(agent string) string {
	return fmt.Sprintf("llms: {e: {provider: echo}}\nagents: {%s: {llm: e, description: %s's agent}}\n", agent, agent)
}

// writeApp stores an app's document as a file in the apps/ directory
// beside the main configuration (the file catalog).
func (h *hector) writeApp(name, doc string) {
	h.t.Helper()
	dir := filepath.Join(h.dir, "apps")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		h.t.Fatal(err)
	}
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(doc), 0o600); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name+".yaml")); err != nil {
		h.t.Fatal(err)
	}
}

// eventually retries f for up to 5 s until it returns "".
func eventually(t *testing.T, what string, f func() string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		msg := f()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s", what, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func agentNames(t *testing.T, body string) []string {
	t.Helper()
	var out struct{ Agents []struct{ Name string } }
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("not an agent list: %s", body)
	}
	var names []string
	for _, a := range out.Agents {
		names = append(names, a.Name)
	}
	return names
}

// newAppsHector starts Hector with appsConfig and app alpha's document
// already in apps/ (loaded at startup); beta is created through the API.
func newAppsHector(t *testing.T, mods ...func(*app.Options)) (*hector, *idp) {
	t.Helper()
	p := newIDP(t, "https://idp.test")
	h := newHectorWith(t, appsConfig(p), func(o *app.Options) {
		for _, m := range mods {
			m(o)
		}
		dir := filepath.Join(filepath.Dir(o.ConfigPath), "apps")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "alpha.yaml"), []byte(appDoc("alpha-agent")), 0o600); err != nil {
			t.Fatal(err)
		}
	})
	body, _ := json.Marshal(map[string]string{"name": "beta", "config": appDoc("beta-agent")})
	if resp, out := h.call("POST", "/admin/apps", adminKey, string(body), "Content-Type", "application/json"); resp.StatusCode != 201 {
		t.Fatalf("create beta: %d %s", resp.StatusCode, out)
	}
	return h, p
}

// Two apps and the main configuration, reached by keys bound to apps and
// by JWTs naming a tenant: nobody reaches another tenant's agents,
// sessions or tasks, and ids from one are 404 in the other.
func TestAppsAreIsolated(t *testing.T) {
	h, p := newAppsHector(t)
	betaJWT := p.token("r1", jwt.MapClaims{"sub": "bo", "tenant_id": "beta"})
	nowhere := p.token("r1", jwt.MapClaims{"sub": "x", "tenant_id": "nowhere", "role": "admin"})
	for _, c := range []struct {
		who, token string
		want       string
	}{
		{"alpha's key", alphaKey, "alpha-agent"},
		{"beta's key", betaKey, "beta-agent"},
		{"a JWT of tenant beta", betaJWT, "beta-agent"},
		{"a main-tenant key", userKey, "a"},
		{"a JWT of a tenant without an app", nowhere, ""},
	} {
		resp, body := h.call("GET", "/v1/agents", c.token, "")
		if got := strings.Join(agentNames(t, body), ","); resp.StatusCode != 200 || got != c.want {
			t.Errorf("%s lists agents %q (%d), want %q", c.who, got, resp.StatusCode, c.want)
		}
	}
	turn := func(token, agent string) (int, string) {
		resp, body := h.call("POST", "/v1/agents/"+agent+"/messages", token, `{"message":"hi"}`, "Content-Type", "application/json")
		var r struct {
			SessionID string `json:"session_id"`
		}
		_ = json.Unmarshal([]byte(body), &r)
		return resp.StatusCode, r.SessionID
	}
	status, alphaSession := turn(alphaKey, "alpha-agent")
	if status != 200 || alphaSession == "" {
		t.Fatalf("alpha's turn: %d", status)
	}
	if status, _ := turn(betaKey, "alpha-agent"); status != 404 {
		t.Errorf("beta talked to alpha's agent: %d", status)
	}
	if status, _ := turn(userKey, "alpha-agent"); status != 404 {
		t.Errorf("the main tenant talked to alpha's agent: %d", status)
	}
	if status, _ := turn(alphaKey, "a"); status != 404 {
		t.Errorf("alpha talked to the main configuration's agent: %d", status)
	}
	for _, tok := range []string{betaKey, betaJWT, userKey, viewerKey, adminKey} {
		if resp, body := h.call("GET", "/v1/sessions/"+alphaSession, tok, ""); resp.StatusCode != 404 {
			t.Errorf("another tenant read alpha's session: %d %s", resp.StatusCode, body)
		}
	}
	if resp, body := h.call("GET", "/v1/sessions/"+alphaSession, alphaKey, ""); resp.StatusCode != 200 {
		t.Errorf("alpha cannot read its session: %d %s", resp.StatusCode, body)
	}
	// Continuing alpha's session from beta is refused like any other
	// principal's session.
	resp, body := h.call("POST", "/v1/agents/beta-agent/messages", betaKey, `{"message":"hi","session_id":"`+alphaSession+`"}`, "Content-Type", "application/json")
	if resp.StatusCode == 200 || strings.Contains(body, "alpha") {
		t.Errorf("beta continued alpha's session: %d %s", resp.StatusCode, body)
	}
	resp, body = h.call("POST", "/v1/agents/beta-agent/tasks", betaJWT, `{"message":"work"}`, "Content-Type", "application/json")
	var task struct{ ID string }
	if err := json.Unmarshal([]byte(body), &task); resp.StatusCode != 202 || err != nil || task.ID == "" {
		t.Fatalf("beta's task: %d %s", resp.StatusCode, body)
	}
	eventually(t, "beta's task completes", func() string {
		_, body := h.call("GET", "/v1/tasks/"+task.ID, betaJWT, "")
		if !strings.Contains(body, `"completed"`) {
			return body
		}
		return ""
	})
	eventually(t, "beta's task turn is counted as beta's", func() string {
		_, body := h.call("GET", "/metrics", viewerKey, "")
		if !strings.Contains(body, `hector_agent_requests_total{agent="beta-agent",app="beta",status="completed"} 1`) {
			return "not counted"
		}
		return ""
	})
	for _, tok := range []string{alphaKey, userKey, adminKey} {
		if resp, _ := h.call("GET", "/v1/tasks/"+task.ID, tok, ""); resp.StatusCode != 404 {
			t.Errorf("another tenant read beta's task: %d", resp.StatusCode)
		}
		if _, body := h.call("GET", "/v1/tasks", tok, ""); strings.Contains(body, task.ID) {
			t.Errorf("another tenant lists beta's task: %s", body)
		}
	}
	if _, body := h.call("GET", "/v1/tasks", betaKey, ""); strings.Contains(body, task.ID) {
		t.Errorf("beta's key lists the task of beta's JWT user (a user sees only its own): %s", body)
	}
	// Admin routes serve the main tenant only, also to an app's admins.
	if resp, _ := h.call("GET", "/admin/apps", betaJWT, ""); resp.StatusCode != 403 {
		t.Errorf("an app's principal listed the apps: %d", resp.StatusCode)
	}
}

// An admin of the main tenant reaches an app's agents through
// /apps/{app}/...; an app's card names the app's URLs; nobody else gets
// in that way.
func TestAdminsActInAnApp(t *testing.T) {
	h, _ := newAppsHector(t)
	resp, body := h.call("GET", "/apps/alpha/v1/agents", adminKey, "")
	if got := strings.Join(agentNames(t, body), ","); resp.StatusCode != 200 || got != "alpha-agent" {
		t.Errorf("the admin lists alpha's agents %q (%d)", got, resp.StatusCode)
	}
	for _, c := range []struct{ who, token string }{{"a main-tenant user", userKey}, {"a main-tenant viewer", viewerKey}, {"beta's key", betaKey}} {
		if resp, _ := h.call("GET", "/apps/alpha/v1/agents", c.token, ""); resp.StatusCode != 404 {
			t.Errorf("%s reached alpha through /apps/alpha: %d", c.who, resp.StatusCode)
		}
	}
	if resp, _ := h.call("GET", "/apps/alpha/v1/agents", alphaKey, ""); resp.StatusCode != 200 {
		t.Errorf("alpha's own key under /apps/alpha: %d", resp.StatusCode)
	}
	if resp, _ := h.call("GET", "/apps/nowhere/v1/agents", adminKey, ""); resp.StatusCode != 404 {
		t.Errorf("an unknown app: %d", resp.StatusCode)
	}
	resolver := &agentcard.Resolver{CardParser: a2av0.NewAgentCardParser()}
	card, err := resolver.Resolve(context.Background(), h.base+"/apps/alpha/agents/alpha-agent", agentcard.WithRequestHeader("Authorization", "Bearer "+alphaKey))
	if err != nil {
		t.Fatal(err)
	}
	// An app's cards would list its agents: they are its principals'.
	for _, c := range []struct {
		who, token, app string
		want            int
	}{{"nobody", "", "alpha", 401}, {"nobody", "", "nowhere", 401}, {"beta's key", betaKey, "alpha", 404}, {"beta's key", betaKey, "nowhere", 404},
		{"a main-tenant user", userKey, "alpha", 404}, {"the admin", adminKey, "alpha", 200}} {
		if resp, _ := h.call("GET", "/apps/"+c.app+"/.well-known/agent-card.json", c.token, ""); resp.StatusCode != c.want {
			t.Errorf("%s reads %s's root card: %d, want %d", c.who, c.app, resp.StatusCode, c.want)
		}
	}
	want := h.base + "/apps/alpha/a2a/alpha-agent"
	if card.SupportedInterfaces[0].URL != want || card.SecuritySchemes == nil {
		t.Fatalf("alpha's card: %+v, want URL %s and a bearer scheme", card.SupportedInterfaces[0], want)
	}
	if _, err := resolver.Resolve(context.Background(), h.base+"/agents/alpha-agent"); err == nil {
		t.Error("alpha's agent has a card among the main configuration's")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var iface *a2a.AgentInterface
	for _, i := range card.SupportedInterfaces {
		if i.ProtocolBinding == a2a.TransportProtocolJSONRPC && i.ProtocolVersion == a2a.Version {
			iface = i
		}
	}
	c, err := a2aclient.NewFromEndpoints(ctx, []*a2a.AgentInterface{iface})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.SendMessage(bearer(ctx, adminKey), userMessage("from the admin"))
	if err != nil {
		t.Fatal(err)
	}
	id := res.(*a2a.Task).ID
	if _, err := c.GetTask(bearer(ctx, adminKey), &a2a.GetTaskRequest{ID: id}); err != nil {
		t.Errorf("the admin reads its task in alpha: %v", err)
	}
	if _, err := c.GetTask(bearer(ctx, alphaKey), &a2a.GetTaskRequest{ID: id}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("alpha's user read the admin's task: %v", err)
	}
	if resp, body := h.call("POST", "/a2a/alpha-agent", alphaKey, `{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"`+string(id)+`"}}`,
		"Content-Type", "application/json"); resp.StatusCode != 200 || !strings.Contains(body, "not found") {
		t.Errorf("alpha's user through /a2a: %d %s", resp.StatusCode, body)
	}
	if resp, _ := h.call("POST", "/a2a/alpha-agent", betaKey, `{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"`+string(id)+`"}}`,
		"Content-Type", "application/json"); resp.StatusCode != 404 {
		t.Errorf("beta reached alpha's agent over A2A: %d", resp.StatusCode)
	}
}

// agentsOf lists the agents the admin sees in app (through /apps/{app}).
func (h *hector) agentsOf(app string) (int, string) {
	h.t.Helper()
	resp, body := h.call("GET", "/apps/"+app+"/v1/agents", adminKey, "")
	if resp.StatusCode != 200 {
		return resp.StatusCode, ""
	}
	return 200, strings.Join(agentNames(h.t, body), ",")
}

// App documents apply live from the apps/ directory and through the API,
// each with its own versions and history; an invalid one is rejected for
// its app alone; a deleted app stops serving and keeps its data until
// purged.
func TestAppDocumentsApplyLive(t *testing.T) {
	h, _ := newAppsHector(t)
	// Through the API, with If-Match like /admin/config.
	resp, _ := h.call("GET", "/admin/apps/alpha", adminKey, "")
	tag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || tag == "" {
		t.Fatalf("GET /admin/apps/alpha: %d, ETag %q", resp.StatusCode, tag)
	}
	resp, body := h.call("PUT", "/admin/apps/alpha", adminKey, appDoc("alpha-agent")+"server: {port: 1}\n", "If-Match", tag, "Content-Type", "application/yaml")
	if resp.StatusCode != 422 || !strings.Contains(body, `"path":"server"`) || !strings.Contains(body, "server-wide") {
		t.Errorf("an app document with a server section: %d %s", resp.StatusCode, body)
	}
	resp, body = h.call("PUT", "/admin/apps/alpha", adminKey, appDoc("alpha-two"), "If-Match", tag, "Content-Type", "application/yaml")
	if o := outcomeOf(t, body); resp.StatusCode != 200 || o.Result != "applied" || o.Version != 2 {
		t.Fatalf("PUT alpha: %d %s", resp.StatusCode, body)
	}
	if resp, _ := h.call("PUT", "/admin/apps/alpha", adminKey, appDoc("alpha-three"), "If-Match", tag, "Content-Type", "application/yaml"); resp.StatusCode != 412 {
		t.Errorf("a stale If-Match: %d", resp.StatusCode)
	}
	if b, _ := os.ReadFile(filepath.Join(h.dir, "apps", "alpha.yaml")); !strings.Contains(string(b), "alpha-two") {
		t.Errorf("the API's change did not reach apps/alpha.yaml: %s", b)
	}
	// Through the directory: a broken document is rejected for alpha only.
	h.writeApp("alpha", "agents: {x: {llm: missing}}\n")
	eventually(t, "alpha's broken file is rejected", func() string {
		_, body := h.call("GET", "/admin/apps/alpha/outcomes", adminKey, "")
		if !strings.Contains(body, `"rejected"`) || !strings.Contains(body, "missing") {
			return body
		}
		return ""
	})
	if _, got := h.agentsOf("alpha"); got != "alpha-two" {
		t.Errorf("alpha after a broken document serves %q", got)
	}
	if _, got := h.agentsOf("beta"); got != "beta-agent" {
		t.Errorf("beta serves %q", got)
	}
	if r := h.send("a", "", "still here"); r.status != 200 {
		t.Errorf("the main configuration: %d", r.status)
	}
	h.writeApp("gamma", appDoc("gamma-agent"))
	eventually(t, "gamma, a new file, serves", func() string {
		if _, got := h.agentsOf("gamma"); got != "gamma-agent" {
			return fmt.Sprintf("serves %q", got)
		}
		return ""
	})
	_, body = h.call("GET", "/admin/apps", adminKey, "")
	for _, want := range []string{`"name":"alpha","status":"serving","version":2`, `"name":"beta"`, `"name":"gamma"`} {
		if !strings.Contains(body, want) {
			t.Errorf("GET /admin/apps lacks %s: %s", want, body)
		}
	}
	// History and rollback per app.
	_, body = h.call("GET", "/admin/apps/alpha/history", adminKey, "")
	var hist struct {
		Versions []struct {
			Version int64
			App     string
		}
	}
	if err := json.Unmarshal([]byte(body), &hist); err != nil || len(hist.Versions) != 2 || hist.Versions[0].App != "alpha" {
		t.Fatalf("alpha's history: %s", body)
	}
	resp, body = h.call("POST", "/admin/apps/alpha/rollback/1", operatorKey, "")
	if o := outcomeOf(t, body); resp.StatusCode != 200 || o.Result != "applied" || o.Version != 3 {
		t.Fatalf("rollback alpha to 1: %d %s", resp.StatusCode, body)
	}
	if _, got := h.agentsOf("alpha"); got != "alpha-agent" {
		t.Errorf("alpha after the rollback serves %q", got)
	}
	if resp, _ := h.call("GET", "/admin/apps/gamma/versions/2", adminKey, ""); resp.StatusCode != 404 {
		t.Errorf("gamma's version 2 (alpha has one): %d", resp.StatusCode)
	}
	if _, body := h.call("GET", "/admin/config/history", adminKey, ""); strings.Contains(body, "alpha") {
		t.Errorf("the main history shows an app's versions: %s", body)
	}
	// A file removed from the directory stops the app.
	if err := os.Remove(filepath.Join(h.dir, "apps", "gamma.yaml")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "gamma, removed, stops", func() string {
		if status, _ := h.agentsOf("gamma"); status != 404 {
			return fmt.Sprint(status)
		}
		return ""
	})
}

// Deleting an app stops it at once and keeps its data; purging deletes it.
func TestDeletedAppKeepsItsDataUntilPurged(t *testing.T) {
	h, _ := newAppsHector(t)
	resp, body := h.call("POST", "/v1/agents/beta-agent/messages", betaKey, `{"message":"hi"}`, "Content-Type", "application/json")
	var r struct {
		SessionID string `json:"session_id"`
	}
	if err := json.Unmarshal([]byte(body), &r); resp.StatusCode != 200 || err != nil {
		t.Fatalf("beta's turn: %d %s", resp.StatusCode, body)
	}
	appSeries := func(app string) int {
		_, body := h.call("GET", "/metrics", viewerKey, "")
		return strings.Count(body, `app="`+app+`"`)
	}
	if appSeries("beta") == 0 {
		t.Error("beta's turn left no series labelled app=\"beta\"")
	}
	if resp, _ := h.call("DELETE", "/admin/apps/beta", operatorKey, ""); resp.StatusCode != 403 {
		t.Errorf("an operator deleted an app: %d", resp.StatusCode)
	}
	if resp, body := h.call("DELETE", "/admin/apps/beta", adminKey, ""); resp.StatusCode != 200 {
		t.Fatalf("delete beta: %d %s", resp.StatusCode, body)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "apps", "beta.yaml")); !os.IsNotExist(err) {
		t.Errorf("beta's document is still in apps/: %v", err)
	}
	if status, _ := h.agentsOf("beta"); status != 404 {
		t.Errorf("beta's agents after the delete: %d", status)
	}
	if n := appSeries("beta"); n != 0 {
		t.Errorf("%d series of the deleted app beta are still exported", n)
	}
	if resp, body := h.call("POST", "/v1/agents/beta-agent/messages", betaKey, `{"message":"hi"}`, "Content-Type", "application/json"); resp.StatusCode != 404 {
		t.Errorf("a turn with beta's agent after the delete: %d %s", resp.StatusCode, body)
	}
	if resp, _ := h.call("GET", "/v1/sessions/"+r.SessionID, betaKey, ""); resp.StatusCode != 200 {
		t.Errorf("beta's session is gone before the purge: %d", resp.StatusCode)
	}
	if resp, _ := h.call("DELETE", "/admin/apps/beta", adminKey, ""); resp.StatusCode != 404 {
		t.Errorf("deleting beta twice: %d", resp.StatusCode)
	}
	// Re-created, the app finds its data, and its history continues.
	body2, _ := json.Marshal(map[string]any{"name": "beta", "config": map[string]any{
		"llms": map[string]any{"e": map[string]string{"provider": "echo"}}, "agents": map[string]any{"beta-agent": map[string]string{"llm": "e"}}}})
	resp, body = h.call("POST", "/admin/apps", adminKey, string(body2), "Content-Type", "application/json")
	if o := outcomeOf(t, body); resp.StatusCode != 201 || o.Version != 2 {
		t.Fatalf("re-create beta from a JSON object: %d %s", resp.StatusCode, body)
	}
	if resp, body := h.call("POST", "/admin/apps", adminKey, string(body2), "Content-Type", "application/json"); resp.StatusCode != 409 {
		t.Errorf("create an existing app: %d %s", resp.StatusCode, body)
	}
	if resp, _ := h.call("DELETE", "/admin/apps/beta?purge=true", adminKey, ""); resp.StatusCode != 200 {
		t.Fatalf("purge beta: %d", resp.StatusCode)
	}
	if resp, _ := h.call("GET", "/v1/sessions/"+r.SessionID, betaKey, ""); resp.StatusCode != 404 {
		t.Errorf("beta's session after the purge: %d", resp.StatusCode)
	}
	for _, c := range []struct{ body, want string }{
		{`{"name":"Bad Name","config":"agents: {}"}`, "invalid_name"},
		{`{"name":"ok"}`, `\"config\" is required`},
		{`{"name":"ok","config":"agents: {x: {llm: nope}}"}`, "nope"},
		{`{"name":"ok","config":"llms: {e: {provider: echo}}\nagents: {x: {llm: e}}\ndatabase: {url: 'sqlite://x.db'}"}`, "server-wide"},
	} {
		resp, body := h.call("POST", "/admin/apps", adminKey, c.body, "Content-Type", "application/json")
		if resp.StatusCode/100 != 4 || !strings.Contains(body, c.want) {
			t.Errorf("POST /admin/apps %s: %d %s, want %s", c.body, resp.StatusCode, body, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(h.dir, "apps", "ok.yaml")); !os.IsNotExist(err) {
		t.Errorf("a rejected app's document was stored: %v", err)
	}
}

// Requests to an app succeed, every one, while its document is replaced
// over and over, other apps come and go, and the main configuration
// reloads.
func TestAppRequestsDuringAppReloads(t *testing.T) {
	h, p := newAppsHector(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var served int
	var failures []string
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, body := h.call("POST", "/v1/agents/alpha-agent/messages", alphaKey, `{"message":"hi"}`, "Content-Type", "application/json")
				mu.Lock()
				served++
				if resp.StatusCode != 200 {
					failures = append(failures, fmt.Sprintf("%d %s", resp.StatusCode, body))
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < 20; i++ {
		doc := fmt.Sprintf("llms: {e: {provider: echo}}\nagents: {alpha-agent: {llm: e, description: version %d}}\n", i)
		resp, _ := h.call("GET", "/admin/apps/alpha", adminKey, "")
		if resp, body := h.call("PUT", "/admin/apps/alpha", adminKey, doc, "If-Match", resp.Header.Get("ETag"), "Content-Type", "application/yaml"); resp.StatusCode != 200 {
			t.Errorf("PUT alpha %d: %d %s", i, resp.StatusCode, body)
		}
		gamma := fmt.Sprintf(`{"name":"gamma%d","config":"llms: {e: {provider: echo}}\nagents: {g: {llm: e}}"}`, i)
		if resp, body := h.call("POST", "/admin/apps", adminKey, gamma, "Content-Type", "application/json"); resp.StatusCode != 201 {
			t.Errorf("create gamma%d: %d %s", i, resp.StatusCode, body)
		}
		if i%2 == 1 {
			if resp, _ := h.call("DELETE", fmt.Sprintf("/admin/apps/gamma%d", i-1), adminKey, ""); resp.StatusCode != 200 {
				t.Errorf("delete gamma%d: %d", i-1, resp.StatusCode)
			}
		}
		if i%5 == 0 {
			h.write(strings.Replace(appsConfig(p), "agents: {a: {llm: e}}", fmt.Sprintf("agents: {a: {llm: e, description: main %d}}", i), 1))
			h.next()
		}
	}
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed during reloads; first: %s", len(failures), served, failures[0])
	}
	if served < 20 {
		t.Fatalf("only %d requests were served", served)
	}
	t.Logf("%d requests, all 200, during 20 app reloads, 20 creates, 10 deletes and 4 main reloads", served)
}

// An app whose document was never valid exists, answers 503 naming
// itself, and serves once a valid document arrives.
func TestAppWithoutAValidDocument(t *testing.T) {
	h, _ := newAppsHector(t)
	h.writeApp("gamma", "agents: {g: {llm: missing}}\n")
	eventually(t, "gamma is listed as invalid", func() string {
		if _, body := h.call("GET", "/admin/apps", adminKey, ""); !strings.Contains(body, `"name":"gamma","status":"invalid"`) {
			return body
		}
		return ""
	})
	resp, body := h.call("GET", "/apps/gamma/v1/agents", adminKey, "")
	if resp.StatusCode != 503 || !strings.Contains(body, "app_unavailable") || !strings.Contains(body, "gamma") {
		t.Errorf("an app without a valid document: %d %s", resp.StatusCode, body)
	}
	h.writeApp("gamma", appDoc("g"))
	eventually(t, "gamma serves once valid", func() string {
		if _, got := h.agentsOf("gamma"); got != "g" {
			return fmt.Sprintf("serves %q", got)
		}
		return ""
	})
}

// Without a place for app documents (layered configuration files), the
// apps API says so.
func TestLayeredConfigurationKeepsNoApps(t *testing.T) {
	p := newIDP(t, "https://idp.test")
	h := newHectorWith(t, identityConfig(p, ""), func(o *app.Options) {
		o.Source = &source.Overlay{Sources: []source.Source{&source.File{Path: o.ConfigPath}}}
	})
	resp, body := h.call("GET", "/admin/apps", adminKey, "")
	if resp.StatusCode != 404 || !strings.Contains(body, "apps_unavailable") {
		t.Errorf("GET /admin/apps on a layered configuration: %d %s", resp.StatusCode, body)
	}
	if resp, body := h.call("GET", "/apps/x/v1/agents", adminKey, ""); resp.StatusCode != 404 {
		t.Errorf("an app route on a layered configuration: %d %s", resp.StatusCode, body)
	}
}

// /health counts the apps, and reports a catalog that cannot be read as
// degraded (the error only to a caller with a credential); it recovers
// when the catalog answers again. (TestAppsServeWhileTheCatalogIsDown
// shows the apps serving meanwhile.)
func TestHealthReportsTheApps(t *testing.T) {
	h, _ := newAppsHector(t)
	h.writeApp("gamma", "agents: {g: {llm: missing}}\n")
	health := func(key string) map[string]any {
		_, body := h.call("GET", "/health", key, "")
		var out map[string]any
		_ = json.Unmarshal([]byte(body), &out)
		return out
	}
	eventually(t, "health counts two serving apps and one invalid", func() string {
		if apps := fmt.Sprint(health("")["apps"]); apps != "map[invalid:1 serving:2 status:ok]" {
			return apps
		}
		return ""
	})
	dir := filepath.Join(h.dir, "apps")
	if err := os.Rename(dir, dir+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "health reports the catalog degraded", func() string {
		if out := health(adminKey); out["status"] != "degraded" || !strings.Contains(fmt.Sprint(out["apps"]), "not a directory") {
			return fmt.Sprint(out)
		}
		return ""
	})
	if apps := fmt.Sprint(health("")["apps"]); strings.Contains(apps, "not a directory") {
		t.Errorf("the catalog's error is shown without a credential: %s", apps)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir+".away", dir); err != nil {
		t.Fatal(err)
	}
	eventually(t, "health recovers", func() string {
		if out := health(""); out["status"] != "ok" {
			return fmt.Sprint(out)
		}
		return ""
	})
}

// Without a watch (--config-watch=false), SIGHUP re-reads the apps too:
// changed, new and removed documents apply.
func TestSIGHUPReloadsTheApps(t *testing.T) {
	h, _ := newAppsHector(t, func(o *app.Options) { o.Watch = false })
	h.writeApp("alpha", appDoc("alpha-two"))
	h.writeApp("gamma", appDoc("gamma-agent"))
	time.Sleep(100 * time.Millisecond) // no watch: nothing applies by itself
	if _, got := h.agentsOf("alpha"); got != "alpha-agent" {
		t.Fatalf("alpha changed without a watch or a signal: %q", got)
	}
	h.reloads <- struct{}{}
	eventually(t, "SIGHUP applies alpha's change and starts gamma", func() string {
		_, a := h.agentsOf("alpha")
		_, g := h.agentsOf("gamma")
		if a != "alpha-two" || g != "gamma-agent" {
			return fmt.Sprintf("alpha %q, gamma %q", a, g)
		}
		return ""
	})
	if err := os.Remove(filepath.Join(h.dir, "apps", "gamma.yaml")); err != nil {
		t.Fatal(err)
	}
	h.reloads <- struct{}{}
	eventually(t, "SIGHUP stops gamma", func() string {
		if status, _ := h.agentsOf("gamma"); status != 404 {
			return fmt.Sprint(status)
		}
		return ""
	})
}

// A turn in flight when its app is deleted finishes; the next one is 404.
// A streamed turn follows the same tenancy as a plain one.
func TestDeletingAnAppLetsInFlightTurnsFinish(t *testing.T) {
	h, _ := newAppsHector(t)
	fake, release, doc := slowAgent(t)
	body, _ := json.Marshal(map[string]string{"name": "alpha", "config": doc})
	if resp, _ := h.call("DELETE", "/admin/apps/alpha", adminKey, ""); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	if resp, out := h.call("POST", "/admin/apps", adminKey, string(body), "Content-Type", "application/json"); resp.StatusCode != 201 {
		t.Fatalf("re-create alpha: %d %s", resp.StatusCode, out)
	}
	resp, _ := h.call("POST", "/v1/agents/slow/messages", betaKey, `{"message":"x"}`, "Content-Type", "application/json", "Accept", "text/event-stream")
	if resp.StatusCode != 404 {
		t.Errorf("beta streamed a turn of alpha's agent: %d", resp.StatusCode)
	}
	type result struct {
		status int
		body   string
	}
	done := make(chan result, 1)
	go func() {
		resp, body := h.call("POST", "/v1/agents/slow/messages", alphaKey, `{"message":"x"}`, "Content-Type", "application/json")
		done <- result{resp.StatusCode, body}
	}()
	eventually(t, "the turn reaches the model", func() string {
		if len(fake.Requests()) == 0 {
			return "no request yet"
		}
		return ""
	})
	if resp, body := h.call("DELETE", "/admin/apps/alpha", adminKey, ""); resp.StatusCode != 200 {
		t.Fatalf("delete alpha: %d %s", resp.StatusCode, body)
	}
	if resp, _ := h.call("POST", "/v1/agents/slow/messages", alphaKey, `{"message":"x"}`, "Content-Type", "application/json"); resp.StatusCode != 404 {
		t.Errorf("a new turn after the delete: %d", resp.StatusCode)
	}
	close(release)
	if r := <-done; r.status != 200 || !strings.Contains(r.body, "finished") {
		t.Fatalf("the turn in flight during the delete: %d %s", r.status, r.body)
	}
}

// A document refused after the dry run (here: larger than the source
// reads) is not kept: the answer is 422 and the app can be created again.
func TestCreateRefusedAfterTheDryRunKeepsNothing(t *testing.T) {
	h, _ := newAppsHector(t, func(o *app.Options) { o.Source = &source.File{Path: o.ConfigPath, MaxBytes: 16 << 10} })
	big := appDoc("big") + "# " + strings.Repeat("x", 20<<10) + "\n"
	body, _ := json.Marshal(map[string]string{"name": "big", "config": big})
	resp, out := h.call("POST", "/admin/apps", adminKey, string(body), "Content-Type", "application/json")
	if resp.StatusCode != 422 || !strings.Contains(out, "over the limit") {
		t.Fatalf("a document over the source's limit: %d %s", resp.StatusCode, out)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "apps", "big.yaml")); !os.IsNotExist(err) {
		t.Errorf("the refused document was kept: %v", err)
	}
	if _, list := h.call("GET", "/admin/apps", adminKey, ""); strings.Contains(list, `"big"`) {
		t.Errorf("the refused app is listed: %s", list)
	}
	body, _ = json.Marshal(map[string]string{"name": "big", "config": appDoc("big")})
	if resp, out := h.call("POST", "/admin/apps", adminKey, string(body), "Content-Type", "application/json"); resp.StatusCode != 201 {
		t.Errorf("creating it again, smaller: %d %s", resp.StatusCode, out)
	}
}

// Purging waits for the app's requests in flight, so none stores a turn
// after the purge.
func TestPurgeWaitsForRequestsInFlight(t *testing.T) {
	h, _ := newAppsHector(t)
	fake, release, doc := slowAgent(t)
	resp, _ := h.call("GET", "/admin/apps/alpha", adminKey, "")
	if resp, out := h.call("PUT", "/admin/apps/alpha", adminKey, doc, "If-Match", resp.Header.Get("ETag"), "Content-Type", "application/yaml"); resp.StatusCode != 200 {
		t.Fatalf("PUT alpha: %d %s", resp.StatusCode, out)
	}
	turn := make(chan string, 1)
	go func() {
		_, body := h.call("POST", "/v1/agents/slow/messages", alphaKey, `{"message":"x"}`, "Content-Type", "application/json")
		var r struct {
			SessionID string `json:"session_id"`
		}
		_ = json.Unmarshal([]byte(body), &r)
		turn <- r.SessionID
	}()
	eventually(t, "the turn reaches the model", func() string {
		if len(fake.Requests()) == 0 {
			return "no request yet"
		}
		return ""
	})
	deleted := make(chan int, 1)
	go func() {
		resp, _ := h.call("DELETE", "/admin/apps/alpha?purge=true", adminKey, "")
		deleted <- resp.StatusCode
	}()
	select {
	case code := <-deleted:
		t.Fatalf("the purge did not wait for the turn in flight: %d", code)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	session := <-turn
	if code := <-deleted; code != 200 || session == "" {
		t.Fatalf("delete with purge: %d, session %q", code, session)
	}
	if resp, _ := h.call("GET", "/v1/sessions/"+session, alphaKey, ""); resp.StatusCode != 404 {
		t.Errorf("the turn that finished during the purge was kept: %d", resp.StatusCode)
	}
}

// An app's own operator decides its tasks' approvals and requeues its
// dead letters, within its tenant; the configuration plane stays closed
// to it.
func TestAppPrincipalsManageTheirTasks(t *testing.T) {
	h, p := newAppsHector(t)
	op := p.token("r1", jwt.MapClaims{"sub": "opa", "role": "operator", "tenant_id": "beta"})
	if resp, body := h.call("GET", "/admin/tasks/dlq", op, ""); resp.StatusCode != 200 || !strings.Contains(body, `"tasks":[]`) {
		t.Errorf("beta's operator lists its dead letters: %d %s", resp.StatusCode, body)
	}
	if resp, _ := h.call("POST", "/v1/tasks/t_nope/approve", op, ""); resp.StatusCode != 404 {
		t.Errorf("beta's operator approving an unknown task: %d, want 404", resp.StatusCode)
	}
	for _, path := range []string{"/admin/config", "/admin/apps", "/admin/apps/beta", "/metrics"} {
		if resp, _ := h.call("GET", path, op, ""); resp.StatusCode != 403 {
			t.Errorf("beta's operator reads %s: %d, want 403", path, resp.StatusCode)
		}
	}
}

// Replacing the document of an app that has none applied needs
// If-Match: * (it has no ETag); an empty tag does not skip the check.
func TestReplacingANeverValidApp(t *testing.T) {
	h, _ := newAppsHector(t)
	h.writeApp("gamma", "agents: {g: {llm: missing}}\n")
	eventually(t, "gamma is listed", func() string {
		if _, body := h.call("GET", "/admin/apps", adminKey, ""); !strings.Contains(body, `"name":"gamma"`) {
			return body
		}
		return ""
	})
	if resp, body := h.call("PUT", "/admin/apps/gamma", adminKey, "agents: {g: {llm: still-missing}}\n", "If-Match", `""`, "Content-Type", "application/yaml"); resp.StatusCode != 412 {
		t.Errorf("If-Match \"\": %d %s", resp.StatusCode, body)
	}
	if resp, body := h.call("PUT", "/admin/apps/gamma", adminKey, "agents: {g: {llm: still-missing}}\n", "If-Match", "*", "Content-Type", "application/yaml"); resp.StatusCode != 422 {
		t.Errorf("an invalid document with If-Match *: %d %s", resp.StatusCode, body)
	}
	if resp, body := h.call("PUT", "/admin/apps/gamma", adminKey, appDoc("g"), "If-Match", "*", "Content-Type", "application/yaml"); resp.StatusCode != 200 || resp.Header.Get("ETag") == "" {
		t.Errorf("a valid document with If-Match *: %d %s", resp.StatusCode, body)
	}
	if _, got := h.agentsOf("gamma"); got != "g" {
		t.Errorf("gamma serves %q", got)
	}
}

// An app's reloads are counted in hector_app_reloads_total and streamed on
// /admin/config/events with the app named.
func TestAppOutcomesAreCountedAndStreamed(t *testing.T) {
	h, _ := newAppsHector(t)
	events := h.outcomeEvents()
	h.writeApp("alpha", appDoc("alpha-two"))
	for timeout := time.After(5 * time.Second); ; {
		select {
		case o := <-events:
			if o.Result == reload.NoOp {
				continue // beta's watch starting, for one
			}
			if o.App != "alpha" || o.Result != reload.Applied || o.Version != 2 {
				t.Fatalf("the event of alpha's change: %+v", o)
			}
		case <-timeout:
			t.Fatal("no event for alpha's change")
		}
		break
	}
	h.writeApp("alpha", "agents: {x: {llm: missing}}\n")
	eventually(t, "the app reloads are counted", func() string {
		_, body := h.call("GET", "/metrics", viewerKey, "")
		for _, want := range []string{`hector_app_reloads_total{result="applied"}`, `hector_app_reloads_total{result="rejected"} 1`} {
			if !strings.Contains(body, want) {
				return "no " + want
			}
		}
		return ""
	})
}

// slowAgent is a fake model that answers "finished" once release is
// closed, and an app document whose agent slow uses it.
func slowAgent(t *testing.T) (fake *llmtest.Server, release chan struct{}, doc string) {
	fake = llmtest.NewOpenAI(t)
	release = make(chan struct{})
	fake.Respond = func(llmtest.Request) llmtest.Reply {
		<-release
		return llmtest.Reply{Text: "finished"}
	}
	return fake, release, fmt.Sprintf("llms: {m: {provider: openai, model: m, api_key: k, base_url: %s/v1, max_retries: 0}}\nagents: {slow: {llm: m}}\n", fake.URL)
}
