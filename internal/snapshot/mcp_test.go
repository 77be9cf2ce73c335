//go:build unix

package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/testsvc"
)

func TestMain(m *testing.M) {
	testsvc.ServeMCPIfAsked() // this binary is also the tests' stdio MCP server
	os.Exit(m.Run())
}

// mcpDoc is a configuration with two stdio MCP servers (this test binary),
// fa and fb, used by agent a; fbEnv is fb's extra variable, so changing
// it changes fb alone.
func mcpDoc(dir, fbCommand, fbEnv, prefixB string) string {
	server := func(name, command, extra, prefix string) string {
		return fmt.Sprintf("  %s: {type: mcp, command: %q, prefix: %q, env: {%s: \"1\", %s: %q%s}}\n", name, command, prefix,
			testsvc.MCPServerEnv, testsvc.MCPStartsEnv, filepath.Join(dir, name), extra)
	}
	return "llms:\n  m: {provider: echo}\nagents:\n  a: {llm: m, tools: [fa, fb]}\ntools:\n" +
		server("fa", os.Args[0], "", "a_") + server("fb", fbCommand, ", V: \""+fbEnv+"\"", prefixB)
}

func mcpCall(s *Snapshot, server, name string, args map[string]any) (string, error) {
	for _, t := range s.MCP[server].Tools() {
		if t.Spec().Name == name {
			return t.Call(context.Background(), args)
		}
	}
	return "", errors.New("no tool " + name)
}

// A reload that changes one MCP server while calls on both are in flight:
// the unchanged server is the same connection and process (started once),
// the changed one is started before the swap, both calls finish, and the
// old process ends only when its snapshot drains. A server that fails to
// start, or tools whose names collide, reject the reload and leave the
// running configuration alone.
func TestMCPServersAcrossReloads(t *testing.T) {
	dir := t.TempDir()
	var rt Runtime
	s1 := build(t, mcpDoc(dir, os.Args[0], "1", "b_"), nil)
	rt.Commit(s1)
	t.Cleanup(func() {
		rt.Close()
		if !rt.Drain(10 * time.Second) {
			t.Error("the runtime did not drain")
		}
	})
	if n := len(s1.Agents["a"].Sets); n != 2 {
		t.Fatalf("agent a has %d tool sets", n)
	}
	oldPid, _ := mcpCall(s1, "fb", "b_pid", nil)

	cur, release := rt.Acquire() // the in-flight request's hold
	type result struct {
		out string
		err error
	}
	calls := make(chan result, 2)
	for _, c := range []struct{ server, tool string }{{"fa", "a_slow"}, {"fb", "b_slow"}} {
		go func() {
			out, err := mcpCall(cur, c.server, c.tool, map[string]any{"ms": 1500})
			calls <- result{out, err}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	s2 := build(t, mcpDoc(dir, os.Args[0], "2", "b_"), s1)
	rt.Commit(s2)
	if s2.MCP["fa"] != s1.MCP["fa"] || s2.MCP["fb"] == s1.MCP["fb"] {
		t.Fatal("fa must be reused and fb replaced")
	}
	if a, b := testsvc.MCPStarts(filepath.Join(dir, "fa")), testsvc.MCPStarts(filepath.Join(dir, "fb")); a != 1 || b != 2 {
		t.Fatalf("process starts: fa %d, fb %d; want 1 and 2", a, b)
	}
	for range 2 {
		if r := <-calls; r.err != nil || r.out != "slept 1500ms" {
			t.Errorf("in-flight call: %q %v", r.out, r.err)
		}
	}
	if out, err := mcpCall(s2, "fb", "b_echo", map[string]any{"text": "new"}); err != nil || out != "echo: new" {
		t.Errorf("new fb: %q %v", out, err)
	}
	release()
	select {
	case <-s1.Drained():
	case <-time.After(10 * time.Second):
		t.Fatal("the old snapshot did not drain")
	}
	if _, err := mcpCall(s1, "fb", "b_echo", map[string]any{"text": "old"}); err == nil {
		t.Error("the old fb still answers after its snapshot drained")
	}
	if processAlive(oldPid) {
		t.Errorf("the old fb process %s still runs", oldPid)
	}

	for name, tc := range map[string]struct{ doc, path, want string }{
		"start fails": {mcpDoc(dir, "/nonexistent/server", "3", "b_"), "tools.fb", "MCP server: starting /nonexistent/server"},
		"collision":   {mcpDoc(dir, os.Args[0], "4", "a_"), "agents.a.tools", "two of its tools are called a_big: from fa and from fb"},
	} {
		_, err := Build(context.Background(), parse(t, tc.doc), s2, Options{DatabaseURL: "sqlite://" + filepath.Join(dbDir(t), "h.db")})
		var errs config.Errors
		if !errors.As(err, &errs) || errs[0].Path != tc.path || !strings.Contains(errs[0].Message, tc.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if out, err := mcpCall(rt.Current(), "fa", "a_echo", map[string]any{"text": "still"}); err != nil || out != "echo: still" {
		t.Errorf("after the rejected reloads: %q %v", out, err)
	}
	if a := testsvc.MCPStarts(filepath.Join(dir, "fa")); a != 1 {
		t.Errorf("fa started %d times", a)
	}
}

func processAlive(pid string) bool {
	n, err := strconv.Atoi(pid)
	return err == nil && syscall.Kill(n, 0) == nil
}
