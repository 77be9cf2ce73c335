// Package test checks Hector's deployment files: the Kubernetes overlays
// (rendered with kubectl kustomize and decoded strictly into the official
// API types), the Prometheus rules and the Grafana dashboard. It is a module
// of its own so that k8s.io/api stays out of the server's go.mod:
//
//	cd deploy/kubernetes/test && go test ./... -count=1
package test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// repoRoot is the Hector repository, three levels up.
const repoRoot = "../../.."

var (
	hectorOnce sync.Once
	hectorBin  string
	hectorErr  error
	hectorDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if hectorDir != "" {
		os.RemoveAll(hectorDir)
	}
	os.Exit(code)
}

// hector builds ./cmd/hector of this checkout once per run.
func hector(t *testing.T) string {
	t.Helper()
	hectorOnce.Do(func() {
		hectorDir, hectorErr = os.MkdirTemp("", "hector-deploy-test")
		if hectorErr != nil {
			return
		}
		hectorBin = filepath.Join(hectorDir, "hector")
		cmd := exec.Command("go", "build", "-o", hectorBin, "./cmd/hector")
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			hectorErr = &buildError{err: err, out: out}
		}
	})
	if hectorErr != nil {
		t.Fatalf("go build ./cmd/hector: %v", hectorErr)
	}
	return hectorBin
}

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + string(e.out) }

var flagLine = regexp.MustCompile(`^\s+-([a-z0-9][a-z0-9-]*)(\s|$)`)

// commandFlags returns the flags `hector SUB -h` lists, or ok false when
// hector has no such command.
func commandFlags(t *testing.T, sub string) (flags map[string]bool, ok bool) {
	t.Helper()
	out, _ := exec.Command(hector(t), sub, "-h").CombinedOutput()
	if bytes.Contains(out, []byte("unknown command")) {
		return nil, false
	}
	flags = map[string]bool{"help": true, "h": true}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := flagLine.FindStringSubmatch(sc.Text()); m != nil {
			flags[m[1]] = true
		}
	}
	if len(flags) == 2 {
		t.Fatalf("hector %s -h listed no flags:\n%s", sub, out)
	}
	return flags, true
}

// hectorInvocation finds the hector command line a container runs: its
// command and args directly, or the words of a `sh -c SCRIPT` after the word
// whose base name is hector. ok is false when it runs no hector.
func hectorInvocation(command, args []string) (argv []string, ok bool) {
	all := append(append([]string{}, command...), args...)
	if len(all) >= 3 && filepath.Base(all[0]) == "sh" && all[1] == "-c" {
		all = strings.Fields(strings.Join(all[2:], " "))
	}
	for i, w := range all {
		if filepath.Base(strings.Trim(w, `"'`)) == "hector" {
			for _, a := range all[i+1:] {
				if a == ";" || a == "&&" || a == "||" || a == "|" {
					break
				}
				argv = append(argv, strings.Trim(a, `"'`))
			}
			return argv, true
		}
	}
	return nil, false
}
