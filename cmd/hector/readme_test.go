package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// tourStep is one command of the README's tour and what the README says it
// prints: fragments (split at "…") that must appear in order.
type tourStep struct {
	command string
	expect  []string
}

// readmeBlocks returns the commands of the ```sh blocks of the README
// section that starts with heading and ends at the next heading of the
// same or a higher level.
func readmeBlocks(t *testing.T, heading string) [][]tourStep {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "\n"+heading+"\n")
	if start < 0 {
		t.Fatalf("README has no %q", heading)
	}
	level := strings.Index(heading, " ")
	lines := strings.Split(text[start+len(heading)+2:], "\n")
	fenced := false
	for i, line := range lines {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		if h := strings.Index(line, " "); !fenced && h > 0 && h <= level && strings.Trim(line[:h], "#") == "" {
			lines = lines[:i]
			break
		}
	}
	rest := strings.Join(lines, "\n")
	var blocks [][]tourStep
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(rest, -1) {
		var steps []tourStep
		var cmd string
		for _, line := range strings.Split(m[1], "\n") {
			switch {
			case cmd != "": // a continued command: a trailing \ or an open quote
				cmd += "\n" + line
			case strings.HasPrefix(line, "curl "):
				cmd = line
			case strings.HasPrefix(line, "# ") && len(steps) > 0 && (strings.HasPrefix(line, "# {") || strings.HasPrefix(line, "# event") || strings.HasPrefix(line, "#   ")):
				last := &steps[len(steps)-1]
				last.expect = append(last.expect, strings.Split(strings.TrimPrefix(line, "# "), "…")...)
			}
			if cmd != "" && !strings.HasSuffix(cmd, "\\") && strings.Count(cmd, "'")%2 == 0 {
				steps = append(steps, tourStep{command: cmd})
				cmd = ""
			}
		}
		blocks = append(blocks, steps)
	}
	return blocks
}

// run runs a README command through sh against addr, with placeholders
// (the example session id) replaced, and checks what the README says it
// prints.
func (s tourStep) run(t *testing.T, addr string, subst *strings.Replacer) string {
	t.Helper()
	command := subst.Replace(strings.ReplaceAll(s.command, "localhost:8080", addr))
	out, err := exec.Command("sh", "-c", command).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", command, err, out)
	}
	got := string(out)
	at := 0
	for _, frag := range s.expect {
		frag = strings.TrimSpace(subst.Replace(frag))
		if frag == "" {
			continue
		}
		i := strings.Index(got[at:], frag)
		if i < 0 {
			t.Fatalf("%s\nprinted:\n%s\nthe README promises %q (after byte %d)", command, got, frag, at)
		}
		at += i + len(frag)
	}
	return got
}

// The README's tour, run as a reader would: its commands, pasted, against
// the quickstart, print what the README says they print.
func TestReadmeTour(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("the README tour uses curl; install it")
	}
	bin := buildBinary(t)
	quickstart, err := os.ReadFile("../../examples/quickstart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "quickstart.yaml")
	if err := os.WriteFile(cfg, quickstart, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PORT", "0") // the quickstart's port is ${PORT:-8080}
	p := startServe(t, bin, "--config", cfg)
	tour := readmeBlocks(t, "## Five-minute tour")
	if len(tour) < 2 || len(tour[0]) < 3 {
		t.Fatalf("the tour's blocks: %+v", tour)
	}
	// The first command starts a session; the README calls it "4b24…".
	first := tour[0][0]
	first.expect = nil
	var started struct {
		SessionID string `json:"session_id"`
	}
	if err := json.Unmarshal([]byte(first.run(t, p.addr, strings.NewReplacer())), &started); err != nil || started.SessionID == "" {
		t.Fatalf("first command: %v", err)
	}
	subst := strings.NewReplacer(`"4b24…"`, `"`+started.SessionID+`"`, `"4b24`, `"`+started.SessionID)
	for i, step := range tour[0] {
		if i == 0 { // a new session each time: any id
			step.run(t, p.addr, strings.NewReplacer(`"4b24`, `"`))
			continue
		}
		step.run(t, p.addr, subst)
	}
	// "set the agent's instruction: to You are a pirate., then save"
	pirate := strings.Replace(string(quickstart), "instruction: You are a helpful assistant.", "instruction: You are a pirate.", 1)
	if err := os.WriteFile(cfg, []byte(pirate), 0o600); err != nil {
		t.Fatal(err)
	}
	p.waitFor(t, func(l string) bool { return strings.Contains(l, "result=applied version=2") })
	for _, step := range tour[1] {
		step.run(t, p.addr, subst)
	}
	// Over A2A, on the quickstart as shipped.
	if err := os.WriteFile(cfg, quickstart, 0o600); err != nil {
		t.Fatal(err)
	}
	p.waitFor(t, func(l string) bool { return strings.Contains(l, "result=applied version=3") })
	time.Sleep(10 * time.Millisecond)
	a2a := readmeBlocks(t, "### Over A2A")
	if len(a2a) != 1 || len(a2a[0]) != 2 {
		t.Fatalf("the A2A block: %+v", a2a)
	}
	for _, step := range a2a[0] {
		step.run(t, p.addr, subst)
	}
}
