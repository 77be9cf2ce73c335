package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hector-run/hector/internal/testsvc"
)

// dockerCLI runs docker commands against one daemon: the one that
// answers in the environment, or one the test started.
type dockerCLI struct {
	bin string
	env []string // the test's environment, DOCKER_HOST set when the test runs the daemon
}

func (d *dockerCLI) cmd(args ...string) *exec.Cmd {
	c := exec.Command(d.bin, args...)
	c.Env = d.env
	return c
}

// run runs docker and returns its standard output, failing the test on an
// error (with what docker printed).
func (d *dockerCLI) run(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	c := d.cmd(args...)
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		t.Fatalf("docker %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// dockerDaemon returns a docker CLI with a daemon behind it. When none answers,
// it starts dockerd with its state in a temporary directory (vfs storage,
// no iptables or bridge: the containers use the host's network) and stops
// it by its PID when the test ends. It skips the test when docker is not
// installed or no daemon can be started.
func dockerDaemon(t *testing.T) *dockerCLI {
	t.Helper()
	bin, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("docker is not installed: image not tested (apt-get install docker.io)")
	}
	d := &dockerCLI{bin: bin, env: os.Environ()}
	if d.cmd("info").Run() == nil {
		return d
	}
	dockerd, err := exec.LookPath("dockerd")
	if err != nil {
		t.Skip("no Docker daemon answers and dockerd is not installed: image not tested (apt-get install docker.io)")
	}
	// Not t.TempDir: a unix socket path must stay short, and the daemon's
	// state must outlive it until the daemon has stopped.
	tmp, err := os.MkdirTemp("", "hector-dockerd-")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(tmp, "docker.sock")
	var logBuf bytes.Buffer
	daemon := exec.Command(dockerd, "--storage-driver=vfs", "--iptables=false", "--bridge=none",
		"--data-root", filepath.Join(tmp, "docker"), "--exec-root", filepath.Join(tmp, "docker-exec"),
		"--pidfile", filepath.Join(tmp, "docker.pid"), "-H", "unix://"+sock)
	daemon.Stdout, daemon.Stderr = &logBuf, &logBuf
	if err := daemon.Start(); err != nil {
		os.RemoveAll(tmp)
		t.Skipf("dockerd does not start: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()
	t.Cleanup(func() {
		_ = daemon.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Logf("dockerd (pid %d) did not stop after SIGTERM: killed", daemon.Process.Pid)
			_ = daemon.Process.Kill()
			<-exited
		}
		unmountUnder(t, tmp)
		if err := os.RemoveAll(tmp); err != nil {
			t.Logf("remove %s: %v", tmp, err)
		}
	})
	d.env = append(os.Environ(), "DOCKER_HOST=unix://"+sock)
	deadline := time.Now().Add(30 * time.Second)
	for d.cmd("info").Run() != nil {
		select {
		case err := <-exited:
			exited <- err
			t.Skipf("dockerd exited (%v) before answering:\n%s", err, logBuf.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Skipf("dockerd does not answer on %s within 30s:\n%s", sock, logBuf.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("started dockerd (pid %d) on %s", daemon.Process.Pid, sock)
	return d
}

// unmountUnder detaches what is still mounted under dir: dockerd leaves
// its exec root's netns/default bind-mounted when it stops.
func unmountUnder(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- { // the deepest, mounted last, first
		if err := syscall.Unmount(points[i], syscall.MNT_DETACH); err != nil {
			t.Logf("unmount %s: %v", points[i], err)
		}
	}
}

// imageFreePort returns a TCP port nothing listens on at the moment.
func imageFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// imageWriteAtomic replaces path by a renamed temporary file, as editors do.
func imageWriteAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".edit.tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// imageHealth returns GET /health's status code and its database field.
func imageHealth(base string) (int, string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(base + "/health")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var h struct{ Database, Version string }
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &h); err != nil {
		return resp.StatusCode, "", fmt.Errorf("%v: %s", err, b)
	}
	return resp.StatusCode, h.Database, nil
}

// imageWaitHealthy polls /health until it answers 200, or fails the test after
// timeout with diag's output.
func imageWaitHealthy(t *testing.T, base string, timeout time.Duration, diag func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		code, _, err := imageHealth(base)
		if code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/health: %d %v after %v\n%s", base, code, err, timeout, diag())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// imageAsk posts a message to /v1/agents/NAME/messages and returns the reply.
func imageAsk(t *testing.T, base, agent, msg string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Post(base+"/v1/agents/"+agent+"/messages", "application/json", strings.NewReader(`{"message":"`+msg+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body struct{ Reply string }
	if err := json.Unmarshal(b, &body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/agents/%s/messages: %d %s", agent, resp.StatusCode, b)
	}
	return body.Reply
}

// imageWaitReply asks until the reply is want, for a reload to apply.
func imageWaitReply(t *testing.T, base, agent, msg, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := imageAsk(t, base, agent, msg)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("reply %q after %v, want %q", got, timeout, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// imageWithPort returns the configuration with server.port set to port.
func imageWithPort(t *testing.T, cfg string, port int) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^(  port:\s*)8080\b`)
	if !re.MatchString(cfg) {
		t.Fatalf("configuration sets no server port 8080:\n%s", cfg)
	}
	return re.ReplaceAllString(cfg, "${1}"+strconv.Itoa(port))
}

// TestDockerImageFiles: the Dockerfile and the image's default
// configuration, without Docker.
func TestDockerImageFiles(t *testing.T) {
	b, err := os.ReadFile("../../deploy/docker/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, want := range []string{"FROM scratch", "USER 65532:65532", "VOLUME /data", "EXPOSE 8080",
		`CMD ["/hector", "health"]`, `ENTRYPOINT ["/hector"]`, `CMD ["serve"]`, "HECTOR_CONFIG=/etc/hector/hector.yaml",
		"HECTOR_CONFIG_CACHE=/data/", "COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	const cfg = "../../deploy/docker/hector.yaml"
	if code, out, _ := runCLI("validate", cfg); code != 0 {
		t.Fatalf("validate %s: %d %s", cfg, code, out)
	}
	var doc struct {
		LLMs     map[string]struct{ Provider string }
		Agents   map[string]struct{ LLM string }
		Server   struct{ Host string }
		Database struct{ URL string }
	}
	b, _ = os.ReadFile(cfg)
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Server.Host != "0.0.0.0" || doc.Database.URL != "sqlite:///data/hector.db" ||
		doc.LLMs[doc.Agents["assistant"].LLM].Provider != "echo" {
		t.Fatalf("%s: host %q, database %q, assistant's provider %q", cfg, doc.Server.Host, doc.Database.URL,
			doc.LLMs[doc.Agents["assistant"].LLM].Provider)
	}
}

// TestDockerImage builds the image from deploy/docker (the context made by
// build-context.sh, as docs/operations.md shows) and runs it: /health and
// the HEALTHCHECK, an echo reply, a live edit of the mounted configuration
// directory, the stamped version, the non-root user, the state in /data,
// no /tmp or /etc/passwd, and a clean stop.
func TestDockerImage(t *testing.T) {
	d := dockerDaemon(t)
	tag := fmt.Sprintf("hector-test:%d", os.Getpid())
	name := fmt.Sprintf("hector-test-%d", os.Getpid())

	start := time.Now()
	ctxDir := t.TempDir()
	script := exec.Command("../../deploy/docker/build-context.sh", ctxDir)
	script.Env = append(os.Environ(), "VERSION="+releaseVersion)
	if out, err := script.CombinedOutput(); err != nil {
		t.Fatalf("build-context.sh: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := d.cmd("rmi", "-f", tag).CombinedOutput(); err != nil {
			t.Logf("docker rmi %s: %v %s", tag, err, out)
		}
	})
	d.run(t, "build", "-t", tag, ctxDir)
	t.Logf("context and image built in %v", time.Since(start).Round(time.Millisecond))

	if out := d.run(t, "run", "--rm", tag, "version"); out != "hector "+releaseVersion+"\n" {
		t.Fatalf("docker run %s version: %q", tag, out)
	}

	// The configuration directory, readable by the image's user.
	port := imageFreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfgDir := t.TempDir()
	if err := os.Chmod(cfgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("../../deploy/docker/hector.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := imageWithPort(t, string(b), port)
	cfgFile := filepath.Join(cfgDir, "hector.yaml")
	imageWriteAtomic(t, cfgFile, cfg)

	t.Cleanup(func() {
		if out, err := d.cmd("rm", "-f", "-v", name).CombinedOutput(); err != nil {
			t.Logf("docker rm %s: %v %s", name, err, out)
		}
	})
	d.run(t, "run", "-d", "--name", name, "--network", "host", "--health-interval", "1s", "--health-start-period", "1s",
		"-e", "HECTOR_SERVER="+base, "-v", cfgDir+":/etc/hector", tag)
	logs := func() string {
		out, _ := d.cmd("logs", name).CombinedOutput()
		return "docker logs:\n" + string(out)
	}
	imageWaitHealthy(t, base, 30*time.Second, logs)
	t.Logf("serving %v after the start", time.Since(start).Round(time.Millisecond))

	if got := imageAsk(t, base, "assistant", "hello"); got != "[You are a helpful assistant.] hello" {
		t.Fatalf("reply %q", got)
	}
	imageWriteAtomic(t, cfgFile, strings.Replace(cfg, "You are a helpful assistant.", "You are a pirate.", 1))
	imageWaitReply(t, base, "assistant", "hello", "[You are a pirate.] hello", 15*time.Second)
	// SIGHUP reaches the server, PID 1 of the container.
	d.run(t, "kill", "-s", "HUP", name)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs(), "trigger=sighup"); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no reload after docker kill -s HUP\n%s", logs())
		}
	}

	// The HEALTHCHECK: docker marks the container healthy, and the same
	// command run by hand reports this version and the database.
	deadline := time.Now().Add(30 * time.Second)
	for {
		status := strings.TrimSpace(d.run(t, "inspect", "-f", "{{.State.Health.Status}}", name))
		if status == "healthy" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health status %q after 30s\n%s\n%s", status, d.run(t, "inspect", "-f", "{{json .State.Health}}", name), logs())
		}
		time.Sleep(300 * time.Millisecond)
	}
	if out := d.run(t, "exec", name, "/hector", "health"); !strings.HasPrefix(out, "ok, ") ||
		!strings.Contains(out, "hector "+releaseVersion) || !strings.Contains(out, "from file:/etc/hector/hector.yaml") ||
		!strings.Contains(out, "database connected") {
		t.Fatalf("hector health in the container: %q", out)
	}

	// Not root: the image's user, the running process's, and the owner of
	// the database it created in the /data volume.
	if user := strings.TrimSpace(d.run(t, "inspect", "-f", "{{.Config.User}}", name)); user != "65532:65532" {
		t.Errorf("Config.User %q, want 65532:65532", user)
	}
	pid := strings.TrimSpace(d.run(t, "inspect", "-f", "{{.State.Pid}}", name))
	if status, err := os.ReadFile("/proc/" + pid + "/status"); err == nil {
		if m := regexp.MustCompile(`(?m)^Uid:\s+(\d+)\s+(\d+)`).FindStringSubmatch(string(status)); m == nil || m[1] != "65532" || m[2] != "65532" {
			t.Errorf("process %s: %q, want uid 65532", pid, m)
		}
	} else {
		t.Logf("process %s not visible here (%v): uid checked through the database file only", pid, err)
	}
	owners := tarOwners(t, d.cmd("cp", name+":/data/.", "-"))
	for _, f := range []string{"hector.db", "config.last-good"} {
		if o, ok := owners[f]; !ok || o != "65532:65532" {
			t.Errorf("/data/%s: owner %q (present %v), want 65532:65532; /data holds %v", f, o, ok, owners)
		}
	}
	// FROM scratch: nothing but what the Dockerfile copies.
	files := tarOwners(t, d.cmd("export", name))
	for _, f := range []string{"hector", "etc/ssl/certs/ca-certificates.crt", "etc/hector/"} {
		if _, ok := files[f]; !ok {
			t.Errorf("image lacks /%s", f)
		}
	}
	for _, f := range []string{"tmp/", "etc/passwd", "bin/sh"} {
		if _, ok := files[f]; ok {
			t.Errorf("image has /%s: not a bare scratch image", f)
		}
	}

	// docker stop sends SIGTERM: the server stops cleanly.
	d.run(t, "stop", "-t", "20", name)
	if code := strings.TrimSpace(d.run(t, "inspect", "-f", "{{.State.ExitCode}}", name)); code != "0" {
		t.Errorf("exit code %s after docker stop\n%s", code, logs())
	}
	if l := logs(); !strings.Contains(l, "msg=stopped") {
		t.Errorf("no stopped line:\n%s", l)
	}
	t.Logf("done in %v", time.Since(start).Round(time.Millisecond))
}

// tarOwners runs cmd, which writes a tar archive, and returns its entries'
// names (a leading "./" removed) with their uid:gid.
func tarOwners(t *testing.T, cmd *exec.Cmd) map[string]string {
	t.Helper()
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	owners := map[string]string{}
	tr := tar.NewReader(out)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%v: %v", cmd.Args, err)
		}
		owners[strings.TrimPrefix(h.Name, "./")] = fmt.Sprintf("%d:%d", h.Uid, h.Gid)
	}
	_, _ = io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %v %s", cmd.Args, err, errb.String())
	}
	return owners
}

// composeFile is the part of a compose file TestComposeFile reads.
type composeFile struct {
	Services map[string]struct {
		Image       string
		Build       any
		Command     []string
		Environment map[string]string
		Volumes     []string
		Ports       []any
		Healthcheck struct{ Test []string }
		DependsOn   map[string]struct{ Condition string } `yaml:"depends_on"`
	}
	Volumes map[string]any
}

// composeInterpolate expands ${NAME}, ${NAME:-default} and ${NAME:?message} as
// compose does, from env.
func composeInterpolate(s string, env map[string]string) (string, error) {
	var err error
	re := regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}`)
	out := re.ReplaceAllStringFunc(s, func(m string) string {
		p := re.FindStringSubmatch(m)
		v := env[p[1]]
		switch {
		case v != "":
			return v
		case p[2] == ":-":
			return p[3]
		case p[2] == ":?":
			err = fmt.Errorf("%s: %s", p[1], p[3])
		}
		return v
	})
	return out, err
}

// composeConfig returns the compose file resolved with env: by `docker
// compose config` or `docker-compose config` when one is installed
// (which also validates it), else parsed here, with the variables
// composeInterpolated. It returns what resolved it.
func composeConfig(t *testing.T, path string, env map[string]string) (composeFile, string) {
	t.Helper()
	var tools [][]string
	if bin, err := exec.LookPath("docker"); err == nil && exec.Command(bin, "compose", "version").Run() == nil {
		tools = append(tools, []string{bin, "compose"})
	}
	if bin, err := exec.LookPath("docker-compose"); err == nil {
		tools = append(tools, []string{bin})
	}
	var cf composeFile
	if len(tools) > 0 {
		tool := tools[0]
		run := func(env map[string]string) ([]byte, error) {
			c := exec.Command(tool[0], append(tool[1:], "-f", path, "config")...)
			c.Env = os.Environ()
			for k, v := range env {
				c.Env = append(c.Env, k+"="+v)
			}
			var errb bytes.Buffer
			c.Stderr = &errb
			out, err := c.Output()
			if err != nil {
				return out, fmt.Errorf("%v: %s", err, errb.String())
			}
			return out, nil
		}
		out, err := run(env)
		if err != nil {
			t.Fatalf("%s config: %v", strings.Join(tool, " "), err)
		}
		if err := yaml.Unmarshal(out, &cf); err != nil {
			t.Fatalf("%s config printed %v:\n%s", strings.Join(tool, " "), err, out)
		}
		noPassword := map[string]string{}
		for k, v := range env {
			if k != "POSTGRES_PASSWORD" {
				noPassword[k] = v
			}
		}
		if _, err := run(noPassword); err == nil || !strings.Contains(err.Error(), "POSTGRES_PASSWORD") {
			t.Errorf("without POSTGRES_PASSWORD: %v, want a refusal naming it", err)
		}
		return cf, "resolved and validated by " + strings.Join(tool, " ") + " config"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text, err := composeInterpolate(string(b), env)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(text), &cf); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cf, "parsed here (no docker compose or docker-compose installed)"
}

// TestComposeFile checks deploy/compose/docker-compose.yml (with docker
// compose config or docker-compose config when installed, else parsed
// here), then runs its topology with the machine's PostgreSQL standing in
// for the postgres service: the release binary with the hector service's
// command and environment (and the image's), its database URL pointed at
// a fresh test database, and the compose directory's configuration.
func TestComposeFile(t *testing.T) {
	const path = "../../deploy/compose/docker-compose.yml"
	start := time.Now()
	env := map[string]string{"POSTGRES_PASSWORD": "s3cret", "HECTOR_BUILD_CONTEXT": t.TempDir()}
	cf, how := composeConfig(t, path, env)
	t.Logf("compose file: %s", how)

	pg, ok := cf.Services["postgres"]
	if !ok || !strings.HasPrefix(pg.Image, "postgres:16") {
		t.Fatalf("postgres service: %v, image %q", ok, pg.Image)
	}
	if len(pg.Healthcheck.Test) < 2 || !strings.Contains(strings.Join(pg.Healthcheck.Test, " "), "pg_isready") {
		t.Errorf("postgres healthcheck %q", pg.Healthcheck.Test)
	}
	if pg.Environment["POSTGRES_PASSWORD"] != "s3cret" {
		t.Errorf("postgres POSTGRES_PASSWORD %q", pg.Environment["POSTGRES_PASSWORD"])
	}
	pgVolume := ""
	for _, v := range pg.Volumes {
		if src, dst, _ := strings.Cut(v, ":"); strings.HasPrefix(dst, "/var/lib/postgresql/data") {
			pgVolume = src
		}
	}
	if _, named := cf.Volumes[pgVolume]; !named {
		t.Errorf("postgres data %q is not a named volume (volumes %v)", pgVolume, cf.Volumes)
	}

	h, ok := cf.Services["hector"]
	if !ok || h.Build == nil {
		t.Fatalf("hector service: %v, build %v", ok, h.Build)
	}
	if h.DependsOn["postgres"].Condition != "service_healthy" {
		t.Errorf("hector depends_on %v, want postgres: service_healthy", h.DependsOn)
	}
	configDir := ""
	for _, v := range h.Volumes {
		if src, rest, _ := strings.Cut(v, ":"); strings.HasPrefix(rest, "/etc/hector") {
			configDir = src
		}
	}
	if configDir == "" {
		t.Fatalf("hector volumes %q mount no directory at /etc/hector", h.Volumes)
	}
	if !filepath.IsAbs(configDir) {
		configDir = filepath.Join(filepath.Dir(path), configDir)
	}
	if st, err := os.Stat(configDir); err != nil || !st.IsDir() {
		t.Fatalf("%s at /etc/hector: %v, want a directory (an edited file must be seen)", configDir, err)
	}
	dbURL, err := url.Parse(h.Environment["HECTOR_DATABASE"])
	if err != nil || dbURL.Scheme != "postgres" || dbURL.Host != "postgres:5432" || dbURL.Path != "/"+pg.Environment["POSTGRES_DB"] ||
		dbURL.User.Username() != pg.Environment["POSTGRES_USER"] {
		t.Fatalf("HECTOR_DATABASE %q (%v) does not name the postgres service's database %q of user %q", h.Environment["HECTOR_DATABASE"],
			err, pg.Environment["POSTGRES_DB"], pg.Environment["POSTGRES_USER"])
	}
	if pw, _ := dbURL.User.Password(); pw != "s3cret" {
		t.Errorf("HECTOR_DATABASE password %q, want POSTGRES_PASSWORD", pw)
	}
	if len(h.Command) == 0 || h.Command[0] != "serve" {
		t.Fatalf("hector command %q, want serve", h.Command)
	}
	// The topology: PostgreSQL for the postgres service, the binary for the
	// image, paths of the container mapped into temporary directories.
	testDB := testsvc.Postgres(t)
	bin := releaseBinary(t)
	cfgDir, dataDir := t.TempDir(), t.TempDir()
	b, err := os.ReadFile(filepath.Join(configDir, "hector.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	port := imageFreePort(t)
	cfg := imageWithPort(t, string(b), port)
	imageWriteAtomic(t, filepath.Join(cfgDir, "hector.yaml"), cfg)
	mapPath := func(v string) string {
		v = strings.Replace(v, "/etc/hector/", cfgDir+"/", 1)
		if v == "/data" || strings.HasPrefix(v, "/data/") {
			v = dataDir + strings.TrimPrefix(v, "/data")
		}
		return v
	}
	var procEnv []string
	for _, kv := range dockerfileEnv(t) {
		k, v, _ := strings.Cut(kv, "=")
		procEnv = append(procEnv, k+"="+mapPath(v))
	}
	for k, v := range h.Environment {
		if k == "HECTOR_DATABASE" {
			v = testDB // the postgres service, here
		}
		procEnv = append(procEnv, k+"="+mapPath(v))
	}
	cmd := exec.Command(bin, h.Command...)
	cmd.Dir = dataDir
	cmd.Env = append(os.Environ(), procEnv...)
	var logBuf testsvc.Buffer
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	imageWaitHealthy(t, base, 20*time.Second, logBuf.String)
	if code, database, err := imageHealth(base); code != 200 || database != "connected" || err != nil {
		t.Fatalf("/health: %d database %q %v", code, database, err)
	}
	if got := imageAsk(t, base, "assistant", "hello"); got != "[You are a helpful assistant.] hello" {
		t.Fatalf("reply %q", got)
	}
	imageWriteAtomic(t, filepath.Join(cfgDir, "hector.yaml"), strings.Replace(cfg, "You are a helpful assistant.", "You are a pirate.", 1))
	imageWaitReply(t, base, "assistant", "hello", "[You are a pirate.] hello", 10*time.Second)

	// The image's HEALTHCHECK, as the container would run it.
	hc := exec.Command(bin, "health")
	hc.Env = append(os.Environ(), "HECTOR_SERVER="+base)
	if out, err := hc.CombinedOutput(); err != nil || !strings.Contains(string(out), "database connected") {
		t.Fatalf("hector health: %v %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, logBuf.String())
		}
	case <-ctx.Done():
		t.Errorf("no exit 15s after SIGTERM\n%s", logBuf.String())
	}
	t.Logf("done in %v", time.Since(start).Round(time.Millisecond))
}

// dockerfileEnv returns the NAME=value pairs of the Dockerfile's ENV
// instructions (the image's environment).
func dockerfileEnv(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../deploy/docker/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	var env []string
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "ENV ")
		if !ok {
			continue
		}
		for _, kv := range strings.Fields(rest) {
			if !strings.Contains(kv, "=") {
				t.Fatalf("ENV %q: use NAME=value", rest)
			}
			env = append(env, kv)
		}
	}
	if len(env) == 0 {
		t.Fatal("Dockerfile sets no ENV")
	}
	return env
}
