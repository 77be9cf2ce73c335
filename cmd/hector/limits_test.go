package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hector-run/hector/internal/testsvc"
)

// A value that comes from the environment is named by its variable in
// every error, the way the user must fix it; one from the command line by
// its flag.
func TestBadValuesNameTheirVariable(t *testing.T) {
	for _, c := range []struct {
		env, value, want string
		args             []string
	}{
		{"HECTOR_CONFIG_DEBOUNCE", "abc", `HECTOR_CONFIG_DEBOUNCE="abc"`, nil},
		{"HECTOR_CONFIG_DEBOUNCE", "abc", "a duration such as", nil},
		{"HECTOR_CONFIG_DEBOUNCE", "0s", "HECTOR_CONFIG_DEBOUNCE must be > 0", nil},
		{"HECTOR_CONFIG_POLL_INTERVAL", "-1s", "HECTOR_CONFIG_POLL_INTERVAL must be > 0", nil},
		{"HECTOR_CONFIG_MAX_BYTES", "0", "HECTOR_CONFIG_MAX_BYTES must be > 0", nil},
		{"HECTOR_CONFIG_HISTORY", "0", "HECTOR_CONFIG_HISTORY must be at least 1", nil},
		{"HECTOR_QUEUE_WORKERS", "0", "HECTOR_QUEUE_WORKERS must be between 1 and 1024", nil},
		{"HECTOR_QUEUE_STALE_THRESHOLD", "10ms", "HECTOR_QUEUE_STALE_THRESHOLD must be at least 1s", nil},
		{"HECTOR_CONFIG_FALLBACK", "sometimes", "HECTOR_CONFIG_FALLBACK must be none or last-good", nil},
		{"", "", "--config-history must be at least 1", []string{"--config-history", "0"}},
		{"", "", "--config-max-bytes must be > 0", []string{"--config-max-bytes", "-5"}},
		{"", "", "--queue-workers must be between 1 and 1024", []string{"--queue-workers", "0"}},
	} {
		t.Run(c.want, func(t *testing.T) {
			if c.env != "" {
				t.Setenv(c.env, c.value)
			}
			code, _, errOut := runCLI(append([]string{"serve", "--config", filepath.Join(t.TempDir(), "none.yaml")}, c.args...)...)
			if code != 2 || !strings.Contains(errOut, c.want) {
				t.Fatalf("exit %d, want 2 with %q in:\n%s", code, c.want, errOut)
			}
		})
	}
}

// `config put` refuses a document over --config-max-bytes, naming the
// limit and the size, and stores nothing.
func TestConfigPutSizeLimit(t *testing.T) {
	big := fleetConfig("big") + "# " + strings.Repeat("x", 200) + "\n"
	file := writeConfig(t, big)
	flags := []string{"--config-type", "database", "--database", "sqlite://" + filepath.Join(t.TempDir(), "h.db"), "--config", "big"}
	code, _, errOut := runCLI(append([]string{"config", "put", file, "--config-max-bytes", "100"}, flags...)...)
	if code != 1 || !strings.Contains(errOut, fmt.Sprintf("%d bytes, over the limit of 100 bytes", len(big))) || !strings.Contains(errOut, "nothing stored") {
		t.Fatalf("put over the limit: %d %s", code, errOut)
	}
	if code, _, _ := runCLI(append([]string{"config", "get"}, flags...)...); code != 1 {
		t.Fatal("a document over the limit was stored")
	}
	if code, out, errOut := runCLI(append([]string{"config", "put", file}, flags...)...); code != 0 {
		t.Fatalf("put under the default limit: %d %s %s", code, out, errOut)
	}
	code, _, errOut = runCLI(append([]string{"config", "get", "--config-max-bytes", "100"}, flags...)...)
	if code != 1 || !strings.Contains(errOut, "over the limit of 100 bytes") {
		t.Fatalf("get over the limit: %d %s", code, errOut)
	}
}

// Credentials given on the command line are warned about at startup (by
// flag, with the variable to use instead) and never printed.
func TestServeWarnsAboutCredentialsOnTheCommandLine(t *testing.T) {
	dead := fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(t))
	code, _, errOut := runCLI("serve", "--config-type", "etcd", "--config-endpoints", "http://ada:endpoint-secret@"+dead,
		"--config-username", "ada", "--config-password", "flag-secret", "--database", "sqlite://"+filepath.Join(t.TempDir(), "h.db"))
	if code != 1 {
		t.Fatalf("start with etcd down: exit %d\n%s", code, errOut)
	}
	for _, want := range []string{"--config-password is on the command line", "set HECTOR_CONFIG_PASSWORD instead",
		"--config-endpoints carries credentials on the command line", "set HECTOR_CONFIG_ENDPOINTS instead"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("no warning %q in:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "endpoint-secret") || strings.Contains(errOut, "flag-secret") {
		t.Fatalf("a credential was printed:\n%s", errOut)
	}
	// From the environment: no warning, and still nothing printed.
	t.Setenv("HECTOR_CONFIG_PASSWORD", "env-secret")
	t.Setenv("HECTOR_CONFIG_ENDPOINTS", "http://ada:env-endpoint-secret@"+dead)
	_, _, errOut = runCLI("serve", "--config-type", "etcd", "--config-username", "ada", "--database", "sqlite://"+filepath.Join(t.TempDir(), "h.db"))
	if strings.Contains(errOut, "on the command line") || strings.Contains(errOut, "secret") {
		t.Fatalf("credentials from the environment:\n%s", errOut)
	}
	os.Unsetenv("HECTOR_CONFIG_PASSWORD")
}
