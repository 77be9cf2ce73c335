package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hector-run/hector/internal/reload"
)

const opKey, adKey = "operator-key-0123456789", "admin-key-0123456789abc"

func keyedConfig(instruction string) string {
	return "llms: {e: {provider: echo}}\nagents: {a: {llm: e, instruction: " + instruction + "}}\nserver:\n  port: 0\n  auth:\n    api_keys:\n" +
		"      - {name: otto, key: " + opKey + ", role: operator}\n      - {name: ada, key: " + adKey + ", role: admin}\n"
}

func TestReloadAndConfigCommands(t *testing.T) {
	bin := buildBinary(t)
	cfg := writeConfig(t, keyedConfig("one"))
	p := startServe(t, bin, "--config", cfg, "--config-watch=false", "--database", "sqlite://h.db")
	p.key = opKey
	url := "http://" + p.addr

	code, out, errOut := runCLI("reload", "--server", url, "--api-key", opKey)
	if code != 0 || !strings.Contains(out, "noop") || !strings.Contains(out, "INSTANCE") {
		t.Fatalf("noop reload: %d %s %s", code, out, errOut)
	}
	_ = os.WriteFile(cfg, []byte(keyedConfig("two")), 0o600)
	code, out, _ = runCLI("reload", "--server", url, "--api-key", opKey, "--json")
	var o reload.Outcome
	if err := json.Unmarshal([]byte(out), &o); err != nil || code != 0 || o.Result != reload.Applied || o.Version != 2 || o.Actor != "otto" {
		t.Fatalf("applied reload: %d %s", code, out)
	}
	_ = os.WriteFile(cfg, []byte("agents: {a: {llm: nope}}\n"), 0o600)
	if code, out, _ = runCLI("reload", "--server", url, "--api-key", opKey); code != 2 || !strings.Contains(out, `unknown llm "nope"`) {
		t.Fatalf("rejected reload: %d %s", code, out)
	}
	if code, _, errOut = runCLI("reload", "--server", url); code != 2 || !strings.Contains(errOut, "credential is required") {
		t.Fatalf("without a key: %d %s", code, errOut)
	}
	if code, _, errOut = runCLI("reload", "--server", "http://127.0.0.1:1"); code != 1 || !strings.Contains(errOut, "no answer") {
		t.Fatalf("unreachable server: %d %s", code, errOut)
	}

	code, out, _ = runCLI("config", "history", "--server", url, "--api-key", opKey)
	if code != 0 || !strings.Contains(out, "2 *") || !strings.Contains(out, "startup") || !strings.Contains(out, "otto") {
		t.Fatalf("history: %d\n%s", code, out)
	}
	if code, out, _ = runCLI("config", "show", "1", "--server", url, "--api-key", opKey); code != 0 || !strings.Contains(out, "instruction: one") || strings.Contains(out, adKey) {
		t.Fatalf("show: %d\n%s", code, out)
	}
	if code, out, _ = runCLI("config", "diff", "1", "2", "--server", url, "--api-key", opKey); code != 0 || !strings.Contains(out, "-agents: {a: {llm: e, instruction: one}}") {
		t.Fatalf("diff: %d\n%s", code, out)
	}
	_ = os.WriteFile(cfg, []byte(keyedConfig("two")), 0o600) // repair the file; rollback writes it anyway
	if code, out, _ = runCLI("config", "rollback", "1", "--server", url, "--api-key", opKey); code != 0 || !strings.Contains(out, "applied") {
		t.Fatalf("rollback: %d\n%s", code, out)
	}
	if got := p.ask(t, "hi"); got != "[one] hi" {
		t.Fatalf("after rollback: %q", got)
	}
	if b, _ := os.ReadFile(cfg); string(b) != keyedConfig("one") {
		t.Fatalf("rollback not written back:\n%s", b)
	}
	if code, _, _ = runCLI("config", "show", "--server", url); code != 2 {
		t.Fatalf("usage error: %d", code)
	}
}

func natsURL(t *testing.T) string {
	u := os.Getenv("HECTOR_TEST_NATS_URL")
	if u == "" {
		u = "nats://127.0.0.1:4222"
	}
	return u
}

// writeKeyFile writes a fleet reload key file (mode 0600) and returns its path.
func writeKeyFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "reload.keys")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const fleetSecret = "fleet-key-0123456789abcdef0123456789abcdef"

// TestFleetReloadOverNATS runs three servers that share one configuration
// file and the machine's NATS server; one signed `hector reload --broker`
// reloads all three and lists each answer. An unsigned request is ignored.
func TestFleetReloadOverNATS(t *testing.T) {
	bin := buildBinary(t)
	nurl := natsURL(t)
	keys := writeKeyFile(t, "ops:"+fleetSecret+"\n")
	cfg := writeConfig(t, "llms: {e: {provider: echo}}\nagents: {a: {llm: e, instruction: old}}\nserver: {port: 0}\n")
	var procs []*proc
	for i := 0; i < 3; i++ {
		p := startServe(t, bin, "--config", cfg, "--config-watch=false", "--database", "sqlite://h.db", "--reload-broker", nurl,
			"--reload-broker-key-file", keys)
		p.waitFor(t, func(l string) bool { return strings.Contains(l, "answering fleet reloads") })
		procs = append(procs, p)
	}
	_ = os.WriteFile(cfg, []byte("llms: {e: {provider: echo}}\nagents: {a: {llm: e, instruction: new}}\nserver: {port: 0}\n"), 0o600)

	// Unsigned: no server reloads or answers, each logs why.
	nc, err := nats.Connect(nurl)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ackSub, _ := nc.SubscribeSync(reload.ReloadAckSubject)
	_ = nc.Publish(reload.ReloadSubject, []byte(`{"correlation_id":"unsigned-`+t.Name()+`"}`))
	_ = nc.Flush()
	for _, p := range procs {
		p.waitFor(t, func(l string) bool {
			return strings.Contains(l, "ignoring fleet reload request") && strings.Contains(l, "unsigned")
		})
	}
	for {
		m, err := ackSub.NextMsg(300 * time.Millisecond)
		if err != nil {
			break
		}
		if strings.Contains(string(m.Data), "unsigned-"+t.Name()) {
			t.Fatalf("unsigned request answered: %s", m.Data)
		}
	}
	// ... and counts it.
	for _, p := range procs {
		resp, err := http.Get("http://" + p.addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), `hector_reload_broker_refused_total{reason="unsigned"} 1`) {
			t.Fatalf("%s does not count the unsigned request", p.addr)
		}
	}

	// Whoever can publish acks cannot answer for the fleet: a forger sees
	// the request and answers it without a key; the client ignores it.
	forger, _ := nc.Subscribe(reload.ReloadSubject, func(m *nats.Msg) {
		var req reload.ReloadRequest
		if json.Unmarshal(m.Data, &req) == nil {
			b, _ := json.Marshal(reload.ReloadAck{CorrelationID: req.CorrelationID, Instance: "forger", Outcome: reload.Outcome{Result: reload.Applied}})
			_ = nc.Publish(reload.ReloadAckSubject, b)
		}
	})
	_ = nc.Flush()
	// Without --expect the command listens for the whole --wait, so the
	// forged answer surely arrives while it does.
	code, out, errOut := runCLI("reload", "--broker", nurl, "--key-file", keys, "--expect", "0", "--wait", "3s", "--json")
	_ = forger.Unsubscribe()
	if strings.Contains(out, "forger") || !strings.Contains(errOut, "ignored 1 answer(s) not signed") {
		t.Fatalf("a forged ack was believed: %s %s", out, errOut)
	}
	var acks []reload.ReloadAck
	if err := json.Unmarshal([]byte(out), &acks); err != nil || code != 0 || len(acks) != 3 {
		t.Fatalf("%d %s %s", code, out, errOut)
	}
	seen := map[string]bool{}
	for _, a := range acks {
		if a.Outcome.Result != reload.Applied || a.Outcome.Version != 2 || a.Outcome.Trigger != "broker" ||
			!strings.HasPrefix(a.Outcome.Actor, "broker:ops/cli@") {
			t.Errorf("%+v", a)
		}
		seen[a.Instance] = true
	}
	if len(seen) != 3 {
		t.Fatalf("instances %v", seen)
	}
	for _, p := range procs {
		if got := p.ask(t, "hi"); got != "[new] hi" {
			t.Errorf("%s: %q", p.addr, got)
		}
	}
	// The table form, and no-ops on a second round.
	code, out, _ = runCLI("reload", "--broker", nurl, "--key-file", keys, "--expect", "3", "--wait", "10s")
	if code != 0 || strings.Count(out, "noop") != 3 {
		t.Fatalf("%d %s", code, out)
	}
}

// TestReloadBrokerNeedsAKey: neither a broker nor a fleet reload runs
// without a key file, and a bad key file names neither its secret.
func TestReloadBrokerNeedsAKey(t *testing.T) {
	cfg := writeConfig(t, "llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\nserver: {port: 0}\n")
	code, _, errOut := runCLI("serve", "--config", cfg, "--reload-broker", "nats://u:hunter2@127.0.0.1:1")
	if code != 2 || !strings.Contains(errOut, "--reload-broker needs --reload-broker-key-file") || strings.Contains(errOut, "hunter2") {
		t.Fatalf("serve without a key file: %d %s", code, errOut)
	}
	t.Setenv("HECTOR_RELOAD_BROKER", "nats://127.0.0.1:1")
	if code, _, errOut = runCLI("serve", "--config", cfg); code != 2 || !strings.Contains(errOut, "HECTOR_RELOAD_BROKER needs --reload-broker-key-file") {
		t.Fatalf("serve without a key file, from the environment: %d %s", code, errOut)
	}
	short := writeKeyFile(t, "ops:too-short-secret\n")
	if code, _, errOut = runCLI("serve", "--config", cfg, "--reload-broker-key-file", short); code != 2 ||
		!strings.Contains(errOut, "at least 32") || strings.Contains(errOut, "too-short-secret") {
		t.Fatalf("serve with a short key: %d %s", code, errOut)
	}
	t.Setenv("HECTOR_RELOAD_BROKER_KEY_FILE", short) // the key file from the environment is read too
	if code, _, errOut = runCLI("serve", "--config", cfg); code != 2 || !strings.Contains(errOut, "HECTOR_RELOAD_BROKER_KEY_FILE") || !strings.Contains(errOut, "at least 32") {
		t.Fatalf("serve with a short key from the environment: %d %s", code, errOut)
	}
	t.Setenv("HECTOR_RELOAD_BROKER_KEY_FILE", "")
	if code, _, errOut = runCLI("reload", "--broker", "nats://127.0.0.1:1"); code != 2 || !strings.Contains(errOut, "--key-file") {
		t.Fatalf("reload without a key file: %d %s", code, errOut)
	}
	if code, _, errOut = runCLI("reload", "--broker", "nats://u:hunter2@127.0.0.1:1", "--key-file", short); code != 2 ||
		strings.Contains(errOut, "too-short-secret") || strings.Contains(errOut, "hunter2") {
		t.Fatalf("reload with a short key: %d %s", code, errOut)
	}
	good := writeKeyFile(t, fleetSecret+"\n")
	if code, _, errOut = runCLI("reload", "--broker", "nats://u:hunter2@127.0.0.1:1", "--key-file", good, "--wait", "1ms"); code != 1 ||
		!strings.Contains(errOut, "no answer") || strings.Contains(errOut, "hunter2") {
		t.Fatalf("reload, NATS unreachable: %d %s", code, errOut)
	}
}
