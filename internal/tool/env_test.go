package tool

import (
	"context"
	"strings"
	"testing"

	"github.com/hector-run/hector/internal/config"
)

// A command sees PATH, HOME, LANG, TZ, its declared env and the
// idempotency key: never the rest of the server's environment.
func TestCommandEnvironmentIsMinimal(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "sk-server-secret")
	t.Setenv("HECTOR_TEST_ADMIN_KEY", "admin-secret-0123456789")
	t.Setenv("TZ", "Europe/Paris")
	tl := cmdTool(t, config.Tool{AllowedCommands: []string{"env", "printenv"}, Env: map[string]string{"GREETING": "hi there", "PATH": "/usr/bin:/bin"}})
	ctx := WithCallID(WithIdempotencyScope(context.Background(), "t_1"), "c_1")
	out, err := tl.Call(ctx, map[string]any{"command": "env"})
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"sk-server-secret", "admin-secret-0123456789", "OPENAI_API_KEY"} {
		if strings.Contains(out, secret) {
			t.Errorf("the server's %s reached the command:\n%s", secret, out)
		}
	}
	vars := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		name, val, _ := strings.Cut(line, "=")
		vars[name] = val
	}
	if vars["GREETING"] != "hi there" || vars["PATH"] != "/usr/bin:/bin" || vars["TZ"] != "Europe/Paris" ||
		vars["HECTOR_IDEMPOTENCY_KEY"] != "t_1/c_1" || vars["HOME"] == "" || vars["LANG"] == "" {
		t.Errorf("environment:\n%s", out)
	}
	for name := range vars {
		switch name {
		case "PATH", "HOME", "LANG", "TZ", "GREETING", "HECTOR_IDEMPOTENCY_KEY", "HECTOR_TOOL_RUN":
		default:
			t.Errorf("unexpected variable %s", name)
		}
	}
	if out, err := tl.Call(context.Background(), map[string]any{"command": "printenv OPENAI_API_KEY"}); err == nil || strings.Contains(out+err.Error(), "sk-server-secret") {
		t.Errorf("printenv OPENAI_API_KEY: %q %v", out, err)
	}
}

// Without the server's variables, the fallbacks apply.
func TestCommandEnvironmentFallbacks(t *testing.T) {
	t.Setenv("PATH", "")
	t.Setenv("TZ", "")
	tl := cmdTool(t, config.Tool{AllowedCommands: []string{"/usr/bin/env"}})
	out, err := tl.Call(context.Background(), map[string]any{"command": "/usr/bin/env"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "PATH=/usr/local/bin:/usr/bin:/bin\n") || strings.Contains(out, "TZ=") {
		t.Errorf("environment:\n%s", out)
	}
}
