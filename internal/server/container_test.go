package server_test

import (
	"strings"
	"testing"

	"github.com/hector-run/hector/internal/app"
	"github.com/hector-run/hector/internal/testsvc"
)

// --host wins over server.host (here an address this machine does not
// have), and a server in a container (Kubernetes' variables set) that
// listens on loopback says loudly that nothing outside can reach it.
func TestHostOverrideAndTheContainerWarning(t *testing.T) {
	var logs testsvc.Buffer
	h := newHectorWith(t, "llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\nserver: {host: 203.0.113.7, port: 0}\n", func(o *app.Options) {
		o.Host = "127.0.0.1"
		o.LogOutput = &logs
		o.Env = func(k string) (string, bool) {
			if k == "KUBERNETES_SERVICE_HOST" {
				return "10.96.0.1", true
			}
			return "", false
		}
	})
	if r := h.send("a", "", "hi"); r.status != 200 {
		t.Fatalf("a turn on the --host address: %d %s", r.status, r.raw)
	}
	if !strings.Contains(logs.String(), "LISTENING ON LOOPBACK IN A CONTAINER") {
		t.Errorf("no warning in:\n%s", logs.String())
	}
	// A reload keeps the override.
	h.write("llms: {e: {provider: echo}}\nagents: {a: {llm: e, instruction: two}}\nserver: {host: 203.0.113.7, port: 0}\n")
	if o := h.next(); o.Result != "applied" {
		t.Fatalf("reload: %+v", o)
	}
	if r := h.send("a", "", "hi"); r.status != 200 || r.body.Reply != "[two] hi" {
		t.Fatalf("after the reload: %d %s", r.status, r.raw)
	}
}

// --debug logs at debug level over a document that says info, across
// reloads.
func TestDebugOverridesTheLoggerLevel(t *testing.T) {
	var logs testsvc.Buffer
	cfg := "llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\nserver: {port: 0}\nlogger: {level: info}\n"
	// With one version kept, the second prunes the first: a debug line.
	h := newHectorWith(t, cfg, func(o *app.Options) { o.Debug = true; o.LogOutput = &logs; o.ConfigHistory = 1 })
	h.write(strings.Replace(cfg, "agents: {a: {llm: e}}", "agents: {a: {llm: e, instruction: two}}", 1))
	if o := h.next(); o.Result != "applied" {
		t.Fatalf("reload: %+v", o)
	}
	eventually(t, "a debug line is logged", func() string {
		if !strings.Contains(logs.String(), `level=DEBUG msg="config history pruned"`) {
			return logs.String()
		}
		return ""
	})
}
