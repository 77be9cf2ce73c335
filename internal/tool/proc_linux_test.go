//go:build linux

package tool

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/config"
)

// gone waits up to 3s for pid to be neither running nor a zombie.
func gone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
			t.Fatalf("process %d outlived its tool call: %s", pid, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readPid(t *testing.T, s string) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || pid <= 1 {
		t.Fatalf("no pid in %q", s)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) }) // when the test fails
	return pid
}

// A timeout kills what left the command's process group and session.
func TestCommandTimeoutKillsEscapedDescendants(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pid")
	tl := cmdTool(t, config.Tool{AllowedCommands: []string{"sh"}, Timeout: config.Duration(time.Second)})
	start := time.Now()
	_, err := tl.Call(context.Background(), map[string]any{
		"command": `sh -c 'setsid sh -c "sleep 300 & echo \$! > ` + pidfile + `; wait" & wait'`})
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("want a timeout, got %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("the call took %v", d)
	}
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	gone(t, readPid(t, string(b)))
}

// A command that exits leaves nothing running either, and a process
// holding its output does not make the call wait or fail.
func TestCommandExitKillsWhatItLeft(t *testing.T) {
	tl := cmdTool(t, config.Tool{AllowedCommands: []string{"sh"}})
	start := time.Now()
	out, err := tl.Call(context.Background(), map[string]any{"command": `sh -c 'setsid sleep 300 & echo $!'`})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Fatalf("the call took %v", d)
	}
	gone(t, readPid(t, out))
}

// The double fork of a daemon: the middle process exits at once, so the
// grandchild is re-parented (to the server, the subreaper) in a new
// session; it is found by its marker.
func TestCommandKillsDoubleForkedDaemon(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pid")
	tl := cmdTool(t, config.Tool{AllowedCommands: []string{"sh"}})
	_, err := tl.Call(context.Background(), map[string]any{
		"command": `sh -c '(setsid sh -c "sleep 300 > /dev/null 2>&1 & echo \$! > ` + pidfile + `" &) ; sleep 0.3'`})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	gone(t, readPid(t, string(b)))
}

// Many calls at once: each kills only its own processes, and the server
// is left with no zombies.
func TestConcurrentCommandsKillOnlyTheirOwn(t *testing.T) {
	long := cmdTool(t, config.Tool{AllowedCommands: []string{"sh"}, Timeout: config.Duration(10 * time.Second)})
	short := cmdTool(t, config.Tool{AllowedCommands: []string{"sh", "echo"}})
	done := make(chan error, 1)
	go func() {
		out, err := long.Call(context.Background(), map[string]any{"command": `sh -c 'sleep 1.5; echo survived'`})
		if err == nil && out != "survived\n" {
			err = os.ErrInvalid
		}
		done <- err
	}()
	for range 20 {
		if _, err := short.Call(context.Background(), map[string]any{"command": `sh -c 'setsid sleep 300 & echo $!'`}); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("a concurrent call's process was killed: %v", err)
	}
	procs := readProcs()
	for pid, p := range procs {
		if p.ppid == os.Getpid() && p.state == 'Z' {
			st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
			t.Errorf("zombie child %d left: %s", pid, st)
		}
	}
}
