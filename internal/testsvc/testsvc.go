// Package testsvc starts the real servers that Hector's tests talk to —
// etcd, ZooKeeper, Consul — as child processes on free loopback ports, each
// with its own data directory, and stops them by PID when the test ends. It
// also hands out fresh PostgreSQL databases on the machine's server.
//
// Binaries are found on PATH or through environment variables
// (HECTOR_TEST_ETCD, HECTOR_TEST_CONSUL, HECTOR_TEST_ZOOKEEPER_CLASSPATH,
// HECTOR_TEST_POSTGRES_URL); scripts/test installs them. When one is
// missing the test is skipped, unless HECTOR_TEST_SERVICES=required (set
// by scripts/test), when it fails.
package testsvc

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// T is the part of testing.TB these helpers use, so benchmark programs
// can start the same servers.
type T interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Skip(args ...any)
	Cleanup(func())
	TempDir() string
	Logf(format string, args ...any)
	Failed() bool
}

// Proc is a server process the test owns. Stop and Start may be called any
// number of times; the server keeps its ports and data directory.
type Proc struct {
	t       T
	name    string
	args    func() []string
	ready   func() error
	env     []string
	Dir     string // data directory
	Ports   []int  // the ports it listens on; Ports[0] is the client port
	Timeout time.Duration

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited

	logMu sync.Mutex
	log   bytes.Buffer
}

// Addr is the client address, 127.0.0.1:PORT.
func (p *Proc) Addr() string { return fmt.Sprintf("127.0.0.1:%d", p.Ports[0]) }

// Start starts the server and waits until it answers; it fails the test
// when the server is not ready within Timeout.
func (p *Proc) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return
	}
	argv := p.args()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = p.Dir
	cmd.Env = append(os.Environ(), p.env...)
	w := lockedWriter{&p.logMu, &p.log}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.cmd = cmd
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	p.done = exited
	deadline := time.Now().Add(p.Timeout)
	for {
		p.mu.Unlock()
		err := p.ready()
		p.mu.Lock()
		if err == nil {
			break
		}
		select {
		case <-exited:
			p.t.Fatalf("%s exited during startup: %v\n%s", p.name, err, p.Log())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s not ready after %v: %v\n%s", p.name, p.Timeout, err, p.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (SIGKILL to its process group, as a crash would)
// and waits for it to exit.
func (p *Proc) Stop() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}

// Log returns what the server printed so far.
func (p *Proc) Log() string {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	return p.log.String()
}

type lockedWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(b)
}

func newProc(t T, name string, nports int) *Proc {
	p := &Proc{t: t, name: name, Dir: t.TempDir(), Timeout: 20 * time.Second}
	for range nports {
		p.Ports = append(p.Ports, FreePort(t))
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("%s log:\n%s", name, tail(p.Log(), 4000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// FreePort returns a loopback TCP port nothing listens on right now.
func FreePort(t T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// need finds a binary or skips/fails the test as HECTOR_TEST_SERVICES says.
func need(t T, what, env string, candidates ...string) string {
	t.Helper()
	if v := os.Getenv(env); v != "" {
		candidates = append([]string{v}, candidates...)
	}
	for _, c := range candidates {
		if filepath.IsAbs(c) {
			if _, err := os.Stat(c); err == nil {
				return c
			}
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("%s not found (set %s or run ./scripts/test, which installs it)", what, env)
	if os.Getenv("HECTOR_TEST_SERVICES") == "required" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Etcd starts a single-member etcd cluster.
func Etcd(t T) *Proc { t.Helper(); return etcd(t, nil) }

// EtcdTLS starts etcd serving clients over TLS with certificates from ca,
// requiring a client certificate from ca.
func EtcdTLS(t T, ca *CA) *Proc { t.Helper(); return etcd(t, ca) }

func etcd(t T, ca *CA) *Proc {
	t.Helper()
	bin := need(t, "etcd", "HECTOR_TEST_ETCD", "etcd", "/usr/bin/etcd")
	p := newProc(t, "etcd", 2)
	scheme := "http"
	var tlsArgs []string
	var clientTLS *tls.Config
	if ca != nil {
		scheme = "https"
		cert, key := ca.Issue("etcd")
		tlsArgs = []string{"--cert-file", cert, "--key-file", key, "--client-cert-auth", "--trusted-ca-file", ca.File}
		clientTLS = ca.ClientConfig("probe")
	}
	p.args = func() []string {
		client := fmt.Sprintf("%s://127.0.0.1:%d", scheme, p.Ports[0])
		peer := fmt.Sprintf("http://127.0.0.1:%d", p.Ports[1])
		return append([]string{bin, "--name", "t", "--data-dir", filepath.Join(p.Dir, "data"),
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", "t=" + peer, "--log-level", "warn"}, tlsArgs...)
	}
	p.ready = func() error { return httpGet(p.Addr(), "/health", `"health":"true"`, clientTLS) }
	p.Start()
	return p
}

// ZooKeeper starts a standalone ZooKeeper with a 200 ms tick, so sessions
// can expire within a test (minimum session timeout 400 ms).
func ZooKeeper(t T) *Proc {
	t.Helper()
	java := need(t, "java (for ZooKeeper)", "HECTOR_TEST_JAVA", "java")
	cp := os.Getenv("HECTOR_TEST_ZOOKEEPER_CLASSPATH")
	if cp == "" {
		jar := need(t, "ZooKeeper", "HECTOR_TEST_ZOOKEEPER_JAR", "/usr/share/java/zookeeper.jar")
		cp = "/etc/zookeeper/conf:" + jar
	}
	p := newProc(t, "zookeeper", 1)
	cfg := filepath.Join(p.Dir, "zoo.cfg")
	conf := fmt.Sprintf("tickTime=200\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"+
		"admin.enableServer=false\n4lw.commands.whitelist=srvr\nminSessionTimeout=400\nmaxSessionTimeout=30000\n",
		filepath.Join(p.Dir, "data"), p.Ports[0])
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p.args = func() []string {
		return []string{java, "-Xmx256m", "-Dzookeeper.log.dir=" + p.Dir, "-cp", cp,
			"org.apache.zookeeper.server.ZooKeeperServerMain", cfg}
	}
	p.ready = func() error {
		out, err := fourLetter(p.Addr(), "srvr")
		if err != nil {
			return err
		}
		if !bytes.Contains(out, []byte("Zookeeper version")) {
			return fmt.Errorf("srvr: %q", out)
		}
		return nil
	}
	p.Start()
	return p
}

func fourLetter(addr, cmd string) ([]byte, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(cmd)); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	_, err = buf.ReadFrom(c)
	return buf.Bytes(), err
}

// Consul starts a development-mode Consul agent (in-memory state: a
// restart loses the data and resets the index, as a rebuilt cluster does).
func Consul(t T) *Proc { t.Helper(); return consul(t, "") }

// ConsulACL starts Consul with ACLs on, denying by default, and
// managementToken as the token that may do anything.
func ConsulACL(t T, managementToken string) *Proc {
	t.Helper()
	return consul(t, fmt.Sprintf(`acl { enabled = true
  default_policy = "deny"
  tokens { initial_management = %q }
}
`, managementToken))
}

// ConsulTLS starts Consul serving its HTTP API only over TLS (on Addr),
// with certificates from ca, requiring client certificates from ca.
func ConsulTLS(t T, ca *CA) *Proc {
	t.Helper()
	cert, key := ca.Issue("consul")
	return consul(t, fmt.Sprintf(`tls { defaults { ca_file = %q
  cert_file = %q
  key_file = %q
  verify_incoming = true } }
`, ca.File, cert, key), ca)
}

func consul(t T, hcl string, ca ...*CA) *Proc {
	t.Helper()
	home, _ := os.UserHomeDir()
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		cache = filepath.Join(home, ".cache")
	}
	bin := need(t, "consul", "HECTOR_TEST_CONSUL", "consul", filepath.Join(cache, "hector-tools", "consul-1.20.6", "consul"))
	p := newProc(t, "consul", 6)
	cfg := filepath.Join(p.Dir, "extra.hcl")
	if err := os.WriteFile(cfg, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	p.args = func() []string {
		http, https := strconv.Itoa(p.Ports[0]), "-1"
		if len(ca) > 0 {
			http, https = "-1", strconv.Itoa(p.Ports[0])
		}
		return []string{bin, "agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1",
			"-http-port", http, "-https-port", https, "-dns-port", "-1", "-grpc-port", "-1", "-grpc-tls-port", "-1",
			"-server-port", strconv.Itoa(p.Ports[1]), "-serf-lan-port", strconv.Itoa(p.Ports[2]),
			"-serf-wan-port", strconv.Itoa(p.Ports[3]), "-log-level", "warn",
			"-data-dir", filepath.Join(p.Dir, "data"), "-node", "t", "-config-file", cfg}
	}
	var clientTLS *tls.Config
	if len(ca) > 0 {
		clientTLS = ca[0].ClientConfig("probe")
	}
	p.ready = func() error { return httpGet(p.Addr(), "/v1/status/leader", `:`, clientTLS) }
	p.Start()
	return p
}

func httpOK(addr, path, want string) error { return httpGet(addr, path, want, nil) }

// httpGet checks that GET path answers 200 with want in the response,
// over TLS when tc is set.
func httpGet(addr, path, want string, tc *tls.Config) error {
	var c net.Conn
	var err error
	if tc != nil {
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, tc)
	} else {
		c, err = net.DialTimeout("tcp", addr, time.Second)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, addr)
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(c)
	if !bytes.HasPrefix(buf.Bytes(), []byte("HTTP/1.")) || !bytes.Contains(buf.Bytes(), []byte(" 200 ")) ||
		!bytes.Contains(buf.Bytes(), []byte(want)) {
		return fmt.Errorf("GET %s: %q", path, tail(buf.String(), 200))
	}
	return nil
}

// RandomName returns a short random identifier for keys and databases.
func RandomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// Context is a test-scoped context with a deadline.
func Context(t T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
