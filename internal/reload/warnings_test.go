package reload

import (
	"path/filepath"
	"strings"
	"testing"
)

// A document's warnings are listed in the outcome of the reload that
// applies it, with the line they point at, and do not stop it applying.
func TestConfigWarningsReachTheOutcome(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hector.yaml")
	writeFile(t, path, doc("v1"))
	h := start(t, path)
	writeFile(t, path, doc("v2")+"tools:\n  run:\n    type: command\n    allowed_commands: [date, env]\n")
	o := h.nextApplied()
	if len(o.Warnings) != 1 || !strings.HasPrefix(o.Warnings[0], "tools.run.allowed_commands[1] (line 7:") ||
		!strings.Contains(o.Warnings[0], `"env", which runs the program named in its arguments`) {
		t.Fatalf("warnings %q", o.Warnings)
	}
	if d := h.rec.DryRun([]byte(doc("v3") + "tools:\n  run: {type: command, allowed_commands: [bash]}\n")); d.Result != "valid" ||
		len(d.Warnings) != 1 || !strings.Contains(d.Warnings[0], `"bash", which is a shell`) {
		t.Fatalf("dry run %+v", d)
	}
}
