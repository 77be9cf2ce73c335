package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/testsvc"
)

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hector.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidate(t *testing.T) {
	code, out, _ := runCLI("validate", "../../examples/quickstart.yaml")
	if code != 0 || !strings.Contains(out, "valid (1 agents, 3 llms, 2 tools)") {
		t.Fatalf("%d %s", code, out)
	}
	bad := writeConfig(t, "llms:\n  e: {provider: echo}\nagents:\n  a:\n    llm: e\n    tols: [x]\n")
	code, out, _ = runCLI("validate", bad)
	if code != 1 || !strings.Contains(out, bad+`:6:5: agents.a.tols: unknown key "tols" (did you mean "tools"?)`) {
		t.Fatalf("%d %s", code, out)
	}
	code, out, _ = runCLI("validate", "--json", bad) // flags before or after the file
	var res struct {
		Valid  bool `json:"valid"`
		Errors []struct {
			Path string `json:"path"`
			Line int    `json:"line"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 1 || res.Valid || res.Errors[0].Path != "agents.a.tols" || res.Errors[0].Line != 6 {
		t.Fatalf("%d %s %v", code, out, err)
	}
	code, out, _ = runCLI("validate", "../../examples/quickstart.yaml", "--json")
	if code != 0 || !strings.Contains(out, `"valid": true`) {
		t.Fatalf("%d %s", code, out)
	}
	if code, out, _ = runCLI("validate", "/nonexistent.yaml"); code != 1 || !strings.Contains(out, "no such file") {
		t.Fatalf("%d %s", code, out)
	}
	if code, _, _ = runCLI("validate"); code != 2 {
		t.Fatalf("missing argument: %d", code)
	}
}

func TestSchemaVersionAndUsage(t *testing.T) {
	code, out, _ := runCLI("schema")
	var s map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil || s["title"] != "Hector configuration" {
		t.Fatalf("%d %.200s", code, out)
	}
	if code, out, _ = runCLI("version"); code != 0 || out != "hector dev\n" {
		t.Fatalf("%d %q", code, out)
	}
	if code, _, errOut := runCLI("bogus"); code != 2 || !strings.Contains(errOut, `unknown command "bogus"`) {
		t.Fatalf("%d %s", code, errOut)
	}
	if code, _, errOut := runCLI("serve", "--no-such-flag"); code != 2 || !strings.Contains(errOut, "flag provided but not defined") {
		t.Fatalf("%d %s", code, errOut)
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// buildBinary compiles hector once per test run for the subprocess tests,
// with cgo off as in a release build.
func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hector-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "hector")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	testsvc.ServeMCPIfAsked() // this binary is also the tests' stdio MCP server
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

type proc struct {
	cmd   *exec.Cmd
	addr  string
	lines chan string
	key   string // the bearer key ask sends, when the server has keys
}

// startServe runs `hector serve` and waits for its "listening" log line.
func startServe(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	return startServeIn(t, bin, t.TempDir(), nil, args...)
}

// startServeIn is startServe in directory dir, with env as the process's
// environment when it is not nil.
func startServeIn(t *testing.T, bin, dir string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	cmd.Dir, cmd.Env = dir, env
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p := &proc{cmd: cmd, lines: make(chan string, 1000)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	addrRe := regexp.MustCompile(`msg=listening addr=(\S+)|"msg":"listening".*"addr":"([^"]+)"`) // text or JSON logs
	p.waitFor(t, func(l string) bool {
		if m := addrRe.FindStringSubmatch(l); m != nil {
			p.addr = m[1] + m[2]
			return true
		}
		return false
	})
	return p
}

func (p *proc) waitFor(t *testing.T, match func(string) bool) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatal("server exited")
			}
			if match(l) {
				return l
			}
		case <-timeout:
			t.Fatal("timed out waiting for a log line")
		}
	}
}

func (p *proc) ask(t *testing.T, msg string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+p.addr+"/v1/agents/a/messages", strings.NewReader(`{"message":"`+msg+`"}`))
	req.Header.Set("Content-Type", "application/json")
	if p.key != "" {
		req.Header.Set("Authorization", "Bearer "+p.key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Reply string }
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &body)
	return body.Reply
}

func TestServeSIGHUPAndSIGTERM(t *testing.T) {
	bin := buildBinary(t)
	cfg := writeConfig(t, "llms: {e: {provider: echo}}\nagents: {a: {llm: e, instruction: one}}\nserver: {port: 0}\n")
	p := startServe(t, bin, "--config", cfg, "--config-watch=false", "--database", "sqlite://db/hector.db")
	if got := p.ask(t, "hi"); got != "[one] hi" {
		t.Fatalf("%q", got)
	}
	if err := os.WriteFile(cfg, []byte("llms: {e: {provider: echo}}\nagents: {a: {llm: e, instruction: two}}\nserver: {port: 0}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	if got := p.ask(t, "hi"); got != "[one] hi" {
		t.Fatalf("with --config-watch=false the file change applied without SIGHUP: %q", got)
	}
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitFor(t, func(l string) bool {
		return strings.Contains(l, "result=applied") && strings.Contains(l, "trigger=sighup")
	})
	if got := p.ask(t, "hi"); got != "[two] hi" {
		t.Fatalf("after SIGHUP: %q", got)
	}
	if st, err := os.Stat(filepath.Join(p.cmd.Dir, "db", "hector.db")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("database file: %v %v", st, err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitFor(t, func(l string) bool { return strings.Contains(l, "msg=stopped") })
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

func TestServeRefusesInvalidConfig(t *testing.T) {
	bin := buildBinary(t)
	cfg := writeConfig(t, "agents: {a: {llm: missing}}\n")
	out, err := exec.Command(bin, "serve", "--config", cfg).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), `agents.a.llm: unknown llm "missing"`) {
		t.Fatalf("%v %s", err, out)
	}
}

// TestServeDatabaseFromEnvironment: HECTOR_DATABASE stands in for --database.
func TestServeDatabaseFromEnvironment(t *testing.T) {
	bin := buildBinary(t)
	t.Setenv("HECTOR_DATABASE", "sqlite://from-env/h.db")
	cfg := writeConfig(t, "llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\nserver: {port: 0}\n")
	p := startServe(t, bin, "--config", cfg)
	if got := p.ask(t, "hi"); got != "hi" {
		t.Fatalf("%q", got)
	}
	if _, err := os.Stat(filepath.Join(p.cmd.Dir, "from-env", "h.db")); err != nil {
		t.Fatalf("database not where HECTOR_DATABASE points: %v", err)
	}
}
