package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
)

// TestHealthAgainstServer: `hector health` against a real server, with
// keys configured (/health needs none), in-process and as the binary a
// container's HEALTHCHECK runs.
func TestHealthAgainstServer(t *testing.T) {
	bin := buildBinary(t)
	cfg := writeConfig(t, keyedConfig("one"))
	p := startServe(t, bin, "--config", cfg, "--config-watch=false", "--database", "sqlite://h.db")
	url := "http://" + p.addr

	code, out, errOut := runCLI("health", "--server", url)
	if code != 0 || !strings.HasPrefix(out, "ok, ") || !strings.Contains(out, "hector dev") ||
		!strings.Contains(out, "config v1") || !strings.Contains(out, "from file:") || !strings.Contains(out, "database connected") {
		t.Fatalf("health: %d %q %s", code, out, errOut)
	}
	code, out, _ = runCLI("health", "--json", "--server", url, "--timeout", "2s")
	var body struct {
		Status, Database string
		Config           struct{ Version int }
	}
	if err := json.Unmarshal([]byte(out), &body); err != nil || code != 0 || body.Status != "ok" || body.Database != "connected" || body.Config.Version != 1 {
		t.Fatalf("health --json: %d %q %v", code, out, err)
	}
	cmd := exec.Command(bin, "health")
	cmd.Env = append(cmd.Environ(), "HECTOR_SERVER="+url)
	if b, err := cmd.CombinedOutput(); err != nil || !strings.HasPrefix(string(b), "ok, ") {
		t.Fatalf("binary with HECTOR_SERVER: %v %s", err, b)
	}
}

// TestHealthUnreachable: no server answering is exit 1, as is a server
// that answers with something other than a health report.
func TestHealthUnreachable(t *testing.T) {
	code, out, errOut := runCLI("health", "--server", "http://127.0.0.1:1", "--timeout", "1s")
	if code != 1 || out != "" || !strings.Contains(errOut, "no answer") {
		t.Fatalf("unreachable: %d %q %s", code, out, errOut)
	}
	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	if code, _, errOut = runCLI("health", "--server", other.URL); code != 1 || !strings.Contains(errOut, "without a health report") {
		t.Fatalf("not hector: %d %s", code, errOut)
	}
	if code, _, errOut = runCLI("health", "extra"); code != 2 || !strings.Contains(errOut, "usage: hector health") {
		t.Fatalf("usage: %d %s", code, errOut)
	}
}

// TestHealthStatuses: degraded is still healthy (the instance serves its
// last configuration); an unavailable database (503) is not.
func TestHealthStatuses(t *testing.T) {
	for _, c := range []struct {
		name   string
		status int
		body   string
		code   int
		want   string
	}{
		{"degraded", 200, `{"status":"degraded","version":"v1","database":"connected","config":{"version":3,"source":"consul:k","status":"degraded","since":"2026-01-01T00:00:00Z","error":"connection refused"}}`,
			0, "degraded, hector v1, config v3, from consul:k, config source degraded since 2026-01-01T00:00:00Z: connection refused, database connected"},
		{"apps degraded", 200, `{"status":"degraded","database":"connected","config":{"version":1,"status":"ok"},"apps":{"status":"degraded"}}`,
			0, "degraded, config v1, apps degraded, database connected"},
		{"database down", 503, `{"status":"unavailable","database":"unavailable","config":{"version":2,"status":"ok"}}`,
			1, "unavailable, config v2, database unavailable"},
		{"unknown status", 200, `{"status":"starting","config":{"version":0}}`, 1, "starting, config v0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/health" {
					http.NotFound(w, r)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(c.status)
				_, _ = w.Write([]byte(c.body))
			}))
			defer srv.Close()
			code, out, errOut := runCLI("health", "--server", srv.URL)
			if code != c.code || strings.TrimSpace(out) != c.want {
				t.Fatalf("got %d %q %s, want %d %q", code, out, errOut, c.code, c.want)
			}
			if code, out, _ = runCLI("health", "--server", srv.URL, "--json"); code != c.code || strings.TrimSpace(out) != c.body {
				t.Fatalf("--json: %d %q", code, out)
			}
		})
	}
}
