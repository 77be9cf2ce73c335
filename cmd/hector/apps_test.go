package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hector-run/hector/internal/reload"
)

// appDocument is an app's document with one echo agent.
func appDocument(agent string) string {
	return "llms: {e: {provider: echo}}\nagents: {" + agent + ": {llm: e, description: " + agent + "'s agent}}\n"
}

func writeAppFile(t *testing.T, doc string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "app.yaml")
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAppsCommands drives `hector apps` against a real server whose
// configuration is a file: apps live in apps/ beside it.
func TestAppsCommands(t *testing.T) {
	var err error
	bin := buildBinary(t)
	cfg := writeConfig(t, "llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\nserver: {port: 0}\n")
	p := startServe(t, bin, "--config", cfg, "--config-watch=false", "--database", "sqlite://h.db")
	srv := []string{"--server", "http://" + p.addr}
	apps := func(args ...string) (int, string, string) {
		return runCLI(append(append([]string{"apps"}, args...), srv...)...)
	}

	if code, out, errOut := apps("list"); code != 0 || strings.Contains(out, "alpha") || !strings.Contains(out, "NAME") {
		t.Fatalf("list before: %d %s %s", code, out, errOut)
	}
	code, out, errOut := apps("create", "alpha", writeAppFile(t, appDocument("one")))
	if code != 0 || !strings.Contains(out, "applied") || !strings.Contains(out, "INSTANCE") {
		t.Fatalf("create: %d %s %s", code, out, errOut)
	}
	if code, _, errOut = apps("create", "alpha", writeAppFile(t, appDocument("one"))); code != 2 || !strings.Contains(errOut, `app "alpha" exists`) {
		t.Fatalf("create again: %d %s", code, errOut)
	}
	code, out, errOut = apps("list")
	if code != 0 || !regexpMatch(`(?m)^alpha\s+serving\s+1\s+1\s+\S`, out) {
		t.Fatalf("list: %d %s %s", code, out, errOut)
	}
	code, out, _ = apps("list", "--json")
	var l struct {
		Apps []struct{ Name, Status string }
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil || code != 0 || len(l.Apps) != 1 || l.Apps[0].Status != "serving" {
		t.Fatalf("list --json: %d %s", code, out)
	}
	if code, out, errOut = apps("show", "alpha"); code != 0 || !strings.Contains(out, "one's agent") || !strings.Contains(out, "agents:") {
		t.Fatalf("show: %d %s %s", code, out, errOut)
	}
	if code, _, errOut = apps("show", "nope"); code != 2 || !strings.Contains(errOut, "hector apps show: ") || !strings.Contains(errOut, "HTTP 404") {
		t.Fatalf("show a missing app: %d %s", code, errOut)
	}

	// put reads the ETag first; --json prints the outcome.
	code, out, errOut = apps("put", "alpha", writeAppFile(t, appDocument("two")), "--json")
	var o reload.Outcome
	if err := json.Unmarshal([]byte(out), &o); err != nil || code != 0 || o.Result != reload.Applied || o.Version != 2 {
		t.Fatalf("put: %d %s %s", code, out, errOut)
	}
	if code, _, errOut = apps("put", "alpha", writeAppFile(t, appDocument("three")), "--if-match", "stale"); code != 2 || !strings.Contains(errOut, "HTTP 412") {
		t.Fatalf("put with a stale --if-match: %d %s", code, errOut)
	}
	code, out, errOut = apps("put", "alpha", writeAppFile(t, appDocument("three")+"server: {port: 1}\n"))
	t.Logf("put with a server section:\n%s", out)
	if code != 2 || !strings.Contains(out, "rejected") || !strings.Contains(out, "server-wide") || !regexpMatch(`\bserver\b`, out) {
		t.Fatalf("put with a server section: %d %s %s", code, out, errOut)
	}

	code, out, errOut = apps("history", "alpha")
	if code != 0 || !regexpMatch(`(?m)^2 \*\s`, out) || !regexpMatch(`(?m)^1\s`, out) || strings.Count(out, "\n") != 3 {
		t.Fatalf("history: %d\n%s%s", code, out, errOut)
	}
	if code, out, _ = apps("history", "alpha", "--limit", "1", "--json"); code != 0 || strings.Count(out, `"version":`) != 1 {
		t.Fatalf("history --limit 1: %d %s", code, out)
	}
	code, out, errOut = apps("rollback", "alpha", "1", "--json")
	if err := json.Unmarshal([]byte(out), &o); err != nil || code != 0 || o.Result != reload.Applied || o.Version != 3 {
		t.Fatalf("rollback: %d %s %s", code, out, errOut)
	}
	if code, out, _ = apps("show", "alpha"); code != 0 || !strings.Contains(out, "one's agent") {
		t.Fatalf("show after rollback: %d %s", code, out)
	}

	if code, out, errOut = apps("delete", "alpha"); code != 0 || !strings.Contains(out, "deleted app alpha") {
		t.Fatalf("delete: %d %s %s", code, out, errOut)
	}
	if code, out, _ = apps("list"); code != 0 || strings.Contains(out, "alpha") {
		t.Fatalf("list after delete: %d %s", code, out)
	}
	if code, _, errOut = apps("delete", "alpha", "--purge"); code != 2 || !strings.Contains(errOut, `no app named "alpha"`) {
		t.Fatalf("delete again: %d %s", code, errOut)
	}

	code, _, errOut = apps("create", "Not_A_Name!", writeAppFile(t, appDocument("x")))
	t.Logf("invalid name: %s", errOut)
	if code != 2 ||
		!strings.Contains(errOut, "hector apps create: ") || !strings.Contains(errOut, `field "name"`) {
		t.Fatalf("create with an invalid name: %d %s", code, errOut)
	}
	if code, _, errOut = apps("create", "beta", filepath.Join(t.TempDir(), "missing.yaml")); code != 2 || !strings.Contains(errOut, "no such file") {
		t.Fatalf("create from a missing file: %d %s", code, errOut)
	}
	// FILE "-" is standard input.
	stdin := os.Stdin
	t.Cleanup(func() { os.Stdin = stdin })
	if os.Stdin, err = os.Open(writeAppFile(t, appDocument("piped"))); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut = apps("create", "gamma", "-"); code != 0 || !strings.Contains(out, "applied") {
		t.Fatalf("create from stdin: %d %s %s", code, out, errOut)
	}
	if code, out, _ = apps("show", "gamma"); code != 0 || !strings.Contains(out, "piped's agent") {
		t.Fatalf("show gamma: %d %s", code, out)
	}
	if code, _, errOut = runCLI("apps", "show"); code != 2 || !strings.Contains(errOut, "usage: hector apps") {
		t.Fatalf("usage: %d %s", code, errOut)
	}
	if code, _, errOut = runCLI("apps", "list", "--server", "http://127.0.0.1:1"); code != 1 || !strings.Contains(errOut, "no answer") {
		t.Fatalf("unreachable server: %d %s", code, errOut)
	}
}

func regexpMatch(pattern, s string) bool {
	return regexp.MustCompile(pattern).MatchString(s)
}
