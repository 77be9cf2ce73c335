package tool

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/config"
)

func cmdTool(t *testing.T, cfg config.Tool) Tool {
	t.Helper()
	cfg.Type = "command"
	if cfg.Timeout == 0 {
		cfg.Timeout = config.Duration(5 * time.Second)
	}
	if cfg.MaxOutputBytes == 0 {
		cfg.MaxOutputBytes = 1 << 16
	}
	tl, err := New("run", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tl
}

func TestCommandRunsAllowedArgvWithoutShell(t *testing.T) {
	tl := cmdTool(t, config.Tool{AllowedCommands: []string{"echo"}})
	out, err := tl.Call(context.Background(), map[string]any{"command": `echo 'a  b' "c $HOME" ; rm -rf /`})
	if err != nil {
		t.Fatal(err)
	}
	// No shell: ';' and '$HOME' are plain arguments.
	if out != "a  b c $HOME ; rm -rf /\n" {
		t.Fatalf("output %q", out)
	}
}

func TestCommandRejections(t *testing.T) {
	tl := cmdTool(t, config.Tool{AllowedCommands: []string{"echo"}})
	for args, want := range map[string]string{
		"rm -rf /tmp/x":  `command "rm" is not allowed`,
		"/bin/echo hi":   `command "/bin/echo" is not allowed`,
		`echo "unclosed`: "unterminated",
		"   ":            "empty command",
	} {
		if _, err := tl.Call(context.Background(), map[string]any{"command": args}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", args, err, want)
		}
	}
	if _, err := tl.Call(context.Background(), map[string]any{}); err == nil || !strings.Contains(err.Error(), `missing argument "command"`) {
		t.Errorf("missing argument: %v", err)
	}
	if _, err := tl.Call(context.Background(), map[string]any{"command": 7}); err == nil || !strings.Contains(err.Error(), "must be a string") {
		t.Errorf("non-string argument: %v", err)
	}
}

func TestCommandWorkingDirExitCodeAndShell(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "marker.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tl := cmdTool(t, config.Tool{AllowedCommands: []string{"ls", "false"}, WorkingDir: dir})
	if out, err := tl.Call(context.Background(), map[string]any{"command": "ls"}); err != nil || out != "marker.txt\n" {
		t.Fatalf("ls in working_dir: %q %v", out, err)
	}
	if _, err := tl.Call(context.Background(), map[string]any{"command": "false"}); err == nil || !strings.Contains(err.Error(), "exit status 1") {
		t.Fatalf("exit code: %v", err)
	}
	sh := cmdTool(t, config.Tool{AllowedCommands: []string{"echo"}, Shell: true})
	if out, err := sh.Call(context.Background(), map[string]any{"command": "echo a | tr a b"}); err != nil || out != "b\n" {
		t.Fatalf("shell: %q %v", out, err)
	}
}

func TestCommandTimeoutKillsChildren(t *testing.T) {
	tl := cmdTool(t, config.Tool{AllowedCommands: []string{"sh"}, Timeout: config.Duration(300 * time.Millisecond)})
	start := time.Now()
	_, err := tl.Call(context.Background(), map[string]any{"command": `sh -c "sleep 30 & sleep 30"`})
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("want timeout, got %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("timeout took %v", d)
	}
}

func TestCommandOutputCap(t *testing.T) {
	tl := cmdTool(t, config.Tool{AllowedCommands: []string{"seq"}, MaxOutputBytes: 10})
	out, err := tl.Call(context.Background(), map[string]any{"command": "seq 1 1000"})
	if err != nil || !strings.HasPrefix(out, "1\n2\n3\n4\n5\n") || !strings.Contains(out, "[output truncated: 3883 more bytes]") {
		t.Fatalf("%q %v", out, err)
	}
}

func TestSplitWords(t *testing.T) {
	for in, want := range map[string][]string{
		`a b  c`:         {"a", "b", "c"},
		`a "b c" 'd e'`:  {"a", "b c", "d e"},
		`a\ b "x\"y" ''`: {"a b", `x"y`, ""},
		`'it''s'`:        {"its"},
		"tab\tsep\nnl":   {"tab", "sep", "nl"},
		`"$HOME" '\n'`:   {"$HOME", `\n`},
	} {
		got, err := splitWords(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestHTTPTool(t *testing.T) {
	var gotPath, gotQuery, gotAuth, gotBody, gotMethod string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotPath, gotQuery, gotAuth, gotBody, gotMethod = r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Authorization"), string(b), r.Method
		if strings.Contains(r.URL.Path, "missing") {
			http.Error(w, "no such item", 404)
			return
		}
		if strings.Contains(r.URL.Path, "slow") {
			time.Sleep(500 * time.Millisecond)
		}
		_, _ = w.Write([]byte("item body that is long"))
	}))
	defer srv.Close()
	cfg := config.Tool{Type: "http", Method: "POST", URL: srv.URL + "/items/{id}?q={q}", Headers: map[string]string{"Authorization": "Bearer t"},
		Timeout: config.Duration(200 * time.Millisecond), MaxOutputBytes: 9}
	tl, _ := New("items", cfg)
	spec := tl.Spec()
	if req := spec.Parameters["required"].([]string); !reflect.DeepEqual(req, []string{"id", "q"}) {
		t.Fatalf("required %v", req)
	}
	if _, ok := spec.Parameters["properties"].(map[string]any)["body"]; !ok {
		t.Fatal("POST tool has no body parameter")
	}
	out, err := tl.Call(context.Background(), map[string]any{"id": "a/b c", "q": "x&y=1", "body": "payload"})
	if err != nil {
		t.Fatal(err)
	}
	if gotPath != "/items/a%2Fb%20c" || gotQuery != "q=x%26y%3D1" || gotAuth != "Bearer t" || gotBody != "payload" || gotMethod != "POST" {
		t.Fatalf("request: path %q query %q auth %q body %q method %q", gotPath, gotQuery, gotAuth, gotBody, gotMethod)
	}
	if !strings.HasPrefix(out, "item body") || !strings.Contains(out, "truncated") {
		t.Fatalf("output %q", out)
	}
	if _, err := tl.Call(context.Background(), map[string]any{"id": "missing", "q": ""}); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("404: %v", err)
	}
	if _, err := tl.Call(context.Background(), map[string]any{"id": "slow", "q": ""}); err == nil {
		t.Fatal("timeout not enforced")
	}
	if _, err := tl.Call(context.Background(), map[string]any{"id": "x"}); err == nil || !strings.Contains(err.Error(), `missing argument "q"`) {
		t.Fatalf("missing arg: %v", err)
	}
}

// Under a durable scope, a command sees its call's idempotency key.
func TestCommandIdempotencyKey(t *testing.T) {
	tl := cmdTool(t, config.Tool{AllowedCommands: []string{"printenv"}})
	ctx := WithCallID(WithIdempotencyScope(context.Background(), "t_1"), "call_9")
	out, err := tl.Call(ctx, map[string]any{"command": "printenv HECTOR_IDEMPOTENCY_KEY"})
	if err != nil || out != "t_1/call_9\n" {
		t.Fatalf("%q %v", out, err)
	}
	if _, err := tl.Call(context.Background(), map[string]any{"command": "printenv HECTOR_IDEMPOTENCY_KEY"}); err == nil {
		t.Fatal("a key outside a durable scope")
	}
}

// A fixed command runs its configured program and args: the model gives
// only the values of the args' placeholders, each staying one argument,
// and cannot turn one into an option.
func TestFixedCommand(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "deploy.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s|' \"$@\"; pwd\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tl := cmdTool(t, config.Tool{Command: "./deploy.sh", Args: []string{"--env={environment}", "{target}", "fixed"}, WorkingDir: dir})
	spec := tl.Spec()
	if req := spec.Parameters["required"]; !reflect.DeepEqual(req, []string{"environment", "target"}) {
		t.Fatalf("parameters %v", spec.Parameters)
	}
	out, err := tl.Call(context.Background(), map[string]any{"environment": "prod; rm -rf /", "target": "a b"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "--env=prod; rm -rf /|a b|fixed|" + dir + "\n"; out != want {
		t.Fatalf("output %q, want %q", out, want)
	}
	if _, err := tl.Call(context.Background(), map[string]any{"environment": "x", "target": "--help"}); err == nil || !strings.Contains(err.Error(), "the values of target may not make an argument start with '-'") {
		t.Fatalf("an option through a placeholder: %v", err)
	}
	two := cmdTool(t, config.Tool{Command: "./deploy.sh", Args: []string{"{a}{b}"}, WorkingDir: dir})
	if _, err := two.Call(context.Background(), map[string]any{"a": "", "b": "-e"}); err == nil || !strings.Contains(err.Error(), "the values of a, b may not") {
		t.Fatalf("an option through two placeholders: %v", err)
	}
	if out, err := tl.Call(context.Background(), map[string]any{"environment": "-x", "target": "t"}); err != nil || !strings.HasPrefix(out, "--env=-x|") {
		t.Fatalf("a value inside an argument may start with '-': %q %v", out, err)
	}
	if _, err := tl.Call(context.Background(), map[string]any{"target": "t"}); err == nil || !strings.Contains(err.Error(), `missing argument "environment"`) {
		t.Fatalf("missing parameter: %v", err)
	}
	// Without placeholders the model supplies nothing at all.
	plain := cmdTool(t, config.Tool{Command: "./deploy.sh", WorkingDir: dir})
	if p := plain.Spec().Parameters; len(p["properties"].(map[string]any)) != 0 {
		t.Fatalf("parameters of a fixed command without placeholders: %v", p)
	}
	if out, err := plain.Call(context.Background(), map[string]any{"command": "rm -rf /"}); err != nil || out != "|"+dir+"\n" {
		t.Fatalf("the model's command line is ignored: %q %v", out, err)
	}
}
