package main

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/testsvc"
)

const fleetDoc = "# fleet\nllms: {e: {provider: echo}}\nagents:\n  a: {llm: e, instruction: %s}\nserver: {port: 0}\n"

func fleetConfig(instruction string) string { return strings.Replace(fleetDoc, "%s", instruction, 1) }

// `hector config put|get` against every backend: YAML in, converted on the
// way, read back; an invalid document is refused and nothing is stored.
func TestConfigGetPutEveryBackend(t *testing.T) {
	file := writeConfig(t, fleetConfig("one"))
	invalid := writeConfig(t, "agents: {a: {llm: nope}}\n")
	backends := map[string]func(t *testing.T) []string{
		"etcd": func(t *testing.T) []string {
			return []string{"--config-type", "etcd", "--config-endpoints", testsvc.Etcd(t).Addr(), "--config", "/hector/cli"}
		},
		"consul": func(t *testing.T) []string {
			return []string{"--config-type", "consul", "--config-endpoints", testsvc.Consul(t).Addr(), "--config", "hector/cli"}
		},
		"zookeeper": func(t *testing.T) []string {
			return []string{"--config-type", "zookeeper", "--config-endpoints", testsvc.ZooKeeper(t).Addr(), "--config", "/hector/cli"}
		},
		"postgres": func(t *testing.T) []string {
			return []string{"--config-type", "database", "--config-endpoints", testsvc.Postgres(t), "--config", "cli"}
		},
		"sqlite": func(t *testing.T) []string {
			return []string{"--config-type", "database", "--database", "sqlite://" + filepath.Join(t.TempDir(), "h.db"), "--config", "cli"}
		},
	}
	for name, flags := range backends {
		t.Run(name, func(t *testing.T) {
			f := flags(t)
			with := func(args ...string) []string { return append(append([]string{"config"}, args...), f...) }

			if code, _, errOut := runCLI(with("get")...); code != 1 || !strings.Contains(errOut, "not found") {
				t.Fatalf("get before put: %d %s", code, errOut)
			}
			if code, _, errOut := runCLI(with("put", invalid)...); code != 1 || !strings.Contains(errOut, "agents.a.llm") ||
				!strings.Contains(errOut, "nothing stored") {
				t.Fatalf("put invalid: %d %s", code, errOut)
			}
			if code, _, _ := runCLI(with("get")...); code != 1 {
				t.Fatal("an invalid document was stored")
			}
			code, out, errOut := runCLI(with("put", file, "--format", "json")...)
			if code != 0 || !strings.Contains(out, "stored") {
				t.Fatalf("put: %d %s %s", code, out, errOut)
			}
			code, out, _ = runCLI(with("get")...)
			var doc map[string]any
			if code != 0 || json.Unmarshal([]byte(out), &doc) != nil || !strings.HasPrefix(out, "{\n  \"llms\"") {
				t.Fatalf("get: %d %q", code, out)
			}
			code, out, _ = runCLI(with("get", "--format", "yaml")...)
			if code != 0 || !strings.Contains(out, "instruction: one") {
				t.Fatalf("get --format yaml: %d %q", code, out)
			}
			if d, errs := config.Parse([]byte(out), os.LookupEnv); errs != nil || d.Config.Agents["a"].Instruction != "one" {
				t.Fatalf("converted document does not parse: %v", errs)
			}
			if name == "postgres" || name == "sqlite" {
				// Versioned: a put based on a version that is not current changes nothing.
				code, _, errOut = runCLI(with("put", file, "--if-version", "7")...)
				if code != 1 || !strings.Contains(errOut, "not 7") {
					t.Fatalf("stale --if-version: %d %s", code, errOut)
				}
				if code, out, _ = runCLI(with("put", file, "--if-version", "1")...); code != 0 || !strings.Contains(out, "version 2") {
					t.Fatalf("--if-version 1: %d %s", code, out)
				}
			}
		})
	}
}

type health struct {
	Status string
	Config struct {
		Status, Hash, Error, Source string
		Version                     int64
	}
}

func getHealth(t *testing.T, addr string) health {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/health: %d %v", resp.StatusCode, err)
	}
	return h
}

// waitHealth polls every instance's /health until ok holds for all.
func waitHealth(t *testing.T, procs []*proc, d time.Duration, what string, ok func(health) bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		all := true
		for _, p := range procs {
			if !ok(getHealth(t, p.addr)) {
				all = false
			}
		}
		if all {
			return time.Since(start)
		}
		if time.Since(start) > d {
			for _, p := range procs {
				t.Logf("%s: %+v", p.addr, getHealth(t, p.addr))
			}
			t.Fatalf("instances did not converge on %s within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Three processes watching one etcd key converge on every version; when
// etcd dies they keep serving and say they are degraded; when it returns
// they catch up.
func TestFleetOnEtcd(t *testing.T) {
	bin := buildBinary(t)
	etcd := testsvc.Etcd(t)
	flags := []string{"--config-type", "etcd", "--config-endpoints", etcd.Addr(), "--config", "/hector/fleet"}
	file := writeConfig(t, fleetConfig("v1"))
	if code, out, errOut := runCLI(append([]string{"config", "put", file}, flags...)...); code != 0 {
		t.Fatalf("put: %s %s", out, errOut)
	}
	var procs []*proc
	for range 3 {
		procs = append(procs, startServe(t, bin, append([]string{"--database", "sqlite://h.db"}, flags...)...))
	}
	for i, instr := range []string{"v2", "v3"} {
		_ = os.WriteFile(file, []byte(fleetConfig(instr)), 0o600)
		start := time.Now()
		if code, out, errOut := runCLI(append([]string{"config", "put", file}, flags...)...); code != 0 {
			t.Fatalf("put: %s %s", out, errOut)
		}
		// Each instance has its own database, so each keys the public
		// hash differently (store.PublicHash): the version tells.
		waitHealth(t, procs, 5*time.Second, instr, func(h health) bool { return h.Config.Version == int64(i+2) })
		t.Logf("%s: 3 instances converged %v after the put began", instr, time.Since(start).Round(time.Millisecond))
		for _, p := range procs {
			if got := p.ask(t, "hi"); got != "["+instr+"] hi" {
				t.Fatalf("%s answered %q", p.addr, got)
			}
		}
	}

	etcd.Stop()
	waitHealth(t, procs, 15*time.Second, "degraded", func(h health) bool {
		return h.Status == "degraded" && h.Config.Status == "degraded" && h.Config.Error != ""
	})
	for _, p := range procs { // still serving the last snapshot
		if got := p.ask(t, "hi"); got != "[v3] hi" {
			t.Fatalf("while etcd is down, %s answered %q", p.addr, got)
		}
	}
	resp, err := http.Get("http://" + procs[0].addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body := new(strings.Builder)
	_, _ = bufioCopy(body, resp)
	if !strings.Contains(body.String(), `hector_config_backend_errors_total{backend="etcd"}`) {
		t.Fatalf("no backend error metric:\n%s", body)
	}

	etcd.Start()
	_ = os.WriteFile(file, []byte(fleetConfig("v4")), 0o600)
	if code, out, errOut := runCLI(append([]string{"config", "put", file}, flags...)...); code != 0 {
		t.Fatalf("put after restart: %s %s", out, errOut)
	}
	took := waitHealth(t, procs, 5*time.Second, "v4 after the outage", func(h health) bool {
		return h.Status == "ok" && h.Config.Status == "ok" && h.Config.Version == 4
	})
	for _, p := range procs {
		if got := p.ask(t, "hi"); got != "[v4] hi" {
			t.Fatalf("after etcd's return, %s answered %q", p.addr, got)
		}
	}
	t.Logf("after etcd's return: converged in %v", took.Round(time.Millisecond))
}

func bufioCopy(w *strings.Builder, resp *http.Response) (int64, error) {
	defer resp.Body.Close()
	b := make([]byte, 32<<10)
	var n int64
	for {
		k, err := resp.Body.Read(b)
		w.Write(b[:k])
		n += int64(k)
		if err != nil {
			return n, nil
		}
	}
}

// Every source flag can come from the environment; a flag on the command
// line wins; a bad value names its variable.
func TestSourceFlagsFromEnvironment(t *testing.T) {
	db := "sqlite://" + filepath.Join(t.TempDir(), "h.db")
	file := writeConfig(t, fleetConfig("env"))
	t.Setenv("HECTOR_CONFIG_TYPE", "database")
	t.Setenv("HECTOR_DATABASE", db)
	t.Setenv("HECTOR_CONFIG", "from-env")
	if code, out, errOut := runCLI("config", "put", file); code != 0 || !strings.Contains(out, "database:from-env version 1") {
		t.Fatalf("put: %d %s %s", code, out, errOut)
	}
	if code, out, _ := runCLI("config", "get", "--config", "from-env"); code != 0 || !strings.Contains(out, "instruction: env") {
		t.Fatalf("get: %d %s", code, out)
	}
	if code, _, errOut := runCLI("config", "get", "--config", "other"); code != 1 || !strings.Contains(errOut, `"other"`) {
		t.Fatalf("flag over env: %d %s", code, errOut)
	}
	t.Setenv("HECTOR_CONFIG_POLL_INTERVAL", "often")
	if code, _, errOut := runCLI("config", "get"); code != 2 || !strings.Contains(errOut, "HECTOR_CONFIG_POLL_INTERVAL") {
		t.Fatalf("bad env value: %d %s", code, errOut)
	}
	t.Setenv("HECTOR_CONFIG_POLL_INTERVAL", "")
	os.Unsetenv("HECTOR_CONFIG_POLL_INTERVAL")
	t.Setenv("HECTOR_CONFIG_TYPE", "bogus")
	if code, _, errOut := runCLI("serve"); code != 2 || !strings.Contains(errOut, `HECTOR_CONFIG_TYPE "bogus"`) {
		t.Fatalf("bad type: %d %s", code, errOut)
	}
}

// `serve --config-source` overlays a file and an etcd key; `config show
// --origin` says where each value came from; the admin API refuses edits
// it could not write back.
func TestServeOverlay(t *testing.T) {
	bin := buildBinary(t)
	etcd := testsvc.Etcd(t)
	base := writeConfig(t, "llms: {e: {provider: echo}}\nagents:\n  a: {llm: e, instruction: base}\nserver: {port: 0}\n"+
		"tools: {t: {type: http, url: \"https://h.example/x?token=overlay-secret\"}}\n")
	override := writeConfig(t, "agents:\n  a: {instruction: prod}\n")
	etcdFlags := []string{"--config-type", "etcd", "--config-endpoints", etcd.Addr(), "--config", "/hector/prod"}
	if code, out, errOut := runCLI(append([]string{"config", "put", "--no-validate", override}, etcdFlags...)...); code != 0 {
		t.Fatalf("put: %s %s", out, errOut)
	}
	layers := []string{"--config-source", "file:" + base, "--config-source", "etcd:/hector/prod", "--config-endpoints", etcd.Addr()}
	code, out, errOut := runCLI(append([]string{"config", "show", "--origin"}, layers...)...)
	if code != 0 || !strings.Contains(out, "instruction: prod # from etcd:/hector/prod") ||
		!strings.Contains(out, "llm: e # from file:"+base) || strings.Contains(out, "overlay-secret") || !strings.Contains(out, "token=REDACTED") {
		t.Fatalf("show --origin: %d %s %s", code, out, errOut)
	}

	p := startServe(t, bin, append([]string{"--database", "sqlite://h.db"}, layers...)...)
	if got := p.ask(t, "hi"); got != "[prod] hi" {
		t.Fatalf("merged answer %q", got)
	}
	_ = os.WriteFile(override, []byte("agents:\n  a: {instruction: prod2}\n"), 0o600)
	if code, out, errOut := runCLI(append([]string{"config", "put", "--no-validate", override}, etcdFlags...)...); code != 0 {
		t.Fatalf("put: %s %s", out, errOut)
	}
	waitHealth(t, []*proc{p}, 5*time.Second, "prod2", func(h health) bool { return h.Config.Version == 2 })
	if got := p.ask(t, "hi"); got != "[prod2] hi" {
		t.Fatalf("after the etcd change: %q", got)
	}
	req, _ := http.NewRequest("PUT", "http://"+p.addr+"/admin/config", strings.NewReader("agents: {}"))
	req.Header.Set("If-Match", `"x"`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := new(strings.Builder)
	_, _ = bufioCopy(body, resp)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body.String(), "source_not_writable") {
		t.Fatalf("PUT on an overlay: %d %s", resp.StatusCode, body)
	}
}

// Startup with the backend down: the default refuses with the backend's
// error; --config-fallback last-good starts from the cache, reports the
// source degraded, and applies the backend's document once it returns.
func TestStartupWithBackendDown(t *testing.T) {
	bin := buildBinary(t)
	etcd := testsvc.Etcd(t)
	flags := []string{"--config-type", "etcd", "--config-endpoints", etcd.Addr(), "--config", "/hector/lkg",
		"--database", "sqlite://h.db", "--config-cache", filepath.Join(t.TempDir(), "last-good")}
	file := writeConfig(t, fleetConfig("cached"))
	if code, out, errOut := runCLI(append([]string{"config", "put", file}, flags[:6]...)...); code != 0 {
		t.Fatalf("put: %s %s", out, errOut)
	}
	p := startServe(t, bin, flags...)
	if got := p.ask(t, "hi"); got != "[cached] hi" {
		t.Fatalf("first start: %q", got)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
	etcd.Stop()

	cmd := exec.Command(bin, append([]string{"serve"}, flags...)...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "etcd get /hector/lkg") || !strings.Contains(string(out), "--config-fallback last-good starts from the last known good") {
		t.Fatalf("start with etcd down and no fallback: %v\n%s", err, out)
	}

	p = startServe(t, bin, append(flags, "--config-fallback", "last-good")...)
	// Degraded from the first answer, not once the watch has failed too.
	first := getHealth(t, p.addr)
	if h := first; h.Status != "degraded" || h.Config.Status != "degraded" || !strings.HasPrefix(h.Config.Source, "cache:") || h.Config.Hash == "" {
		t.Fatalf("first /health while serving the cache: %+v", h)
	}
	if got := p.ask(t, "hi"); got != "[cached] hi" {
		t.Fatalf("fallback start: %q", got)
	}
	etcd.Start()
	// etcd still holds the cached document: it is applied anyway, so that
	// /health names etcd rather than the cache.
	cached := first.Config.Hash // the same document: the same (public) hash
	waitHealth(t, []*proc{p}, 5*time.Second, "etcd as the source", func(h health) bool {
		return h.Status == "ok" && h.Config.Source == "etcd:/hector/lkg" && h.Config.Hash == cached
	})
	_ = os.WriteFile(file, []byte(fleetConfig("fresh")), 0o600)
	if code, out, errOut := runCLI(append([]string{"config", "put", file}, flags[:6]...)...); code != 0 {
		t.Fatalf("put: %s %s", out, errOut)
	}
	waitHealth(t, []*proc{p}, 5*time.Second, "fresh", func(h health) bool {
		return h.Config.Status == "ok" && h.Status == "ok" && h.Config.Hash != cached && h.Config.Hash != ""
	})
	if got := p.ask(t, "hi"); got != "[fresh] hi" {
		t.Fatalf("after etcd's return: %q", got)
	}
}

// A file holding only config: is a pointer: serve loads the etcd key it
// names and follows puts to it live, as with the flags; a flag that is set
// wins over the pointer, and a pointer holding more is refused.
func TestPointerFileFollowsEtcd(t *testing.T) {
	bin := buildBinary(t)
	etcd := testsvc.Etcd(t)
	flags := []string{"--config-type", "etcd", "--config-endpoints", etcd.Addr(), "--config", "/hector/pointed"}
	file := writeConfig(t, fleetConfig("v1"))
	if code, out, errOut := runCLI(append([]string{"config", "put", file}, flags...)...); code != 0 {
		t.Fatalf("put: %s %s", out, errOut)
	}
	pointer := writeConfig(t, "# config.yaml with remote config\nconfig:\n  provider: etcd\n  endpoints: [\"127.0.0.1:1\"]\n  key: /hector/pointed\n")
	// --config-endpoints wins over the pointer's unreachable address.
	p := startServe(t, bin, "--config", pointer, "--config-endpoints", etcd.Addr(), "--database", "sqlite://h.db")
	if got := p.ask(t, "hi"); got != "[v1] hi" {
		t.Fatalf("from the pointer's key: %q", got)
	}
	_ = os.WriteFile(file, []byte(fleetConfig("v2")), 0o600)
	if code, out, errOut := runCLI(append([]string{"config", "put", file}, flags...)...); code != 0 {
		t.Fatalf("put: %s %s", out, errOut)
	}
	waitHealth(t, []*proc{p}, 5*time.Second, "v2", func(h health) bool { return h.Config.Version == 2 })
	if got := p.ask(t, "hi"); got != "[v2] hi" {
		t.Fatalf("after the put: %q", got)
	}

	mixed := writeConfig(t, "config: {provider: etcd, key: /hector/pointed}\nagents: {a: {llm: e}}\n")
	code, _, errOut := runCLI("serve", "--config", mixed)
	if code != 2 || !strings.Contains(errOut, "2:1: agents: a file with config: is a pointer") {
		t.Fatalf("a pointer with agents: %d %s", code, errOut)
	}
	code, out, _ := runCLI("validate", pointer)
	if code != 0 || !strings.Contains(out, "a pointer to etcd /hector/pointed") {
		t.Fatalf("validate a pointer: %d %s", code, out)
	}
}
