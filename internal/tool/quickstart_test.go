package tool

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/hector-run/hector/internal/config"
)

// The quickstart's clock tool answers the README tour's call, and the model
// cannot make it read a file.
func TestQuickstartClockReadsNoFiles(t *testing.T) {
	b, err := os.ReadFile("../../examples/quickstart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, errs := config.Parse(b, os.LookupEnv)
	if errs != nil {
		t.Fatal(errs)
	}
	if doc.Warnings != nil {
		t.Fatalf("the quickstart has warnings: %v", doc.Warnings)
	}
	clock, err := New("clock", doc.Config.Tools["clock"])
	if err != nil {
		t.Fatal(err)
	}
	if out, err := clock.Call(context.Background(), map[string]any{"command": "uptime"}); err != nil || !strings.Contains(out, "up") {
		t.Fatalf("uptime: %q %v", out, err)
	}
	secret := t.TempDir() + "/secret"
	if err := os.WriteFile(secret, []byte("s3cret-line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"date -f " + secret, "date --file=" + secret, "cat " + secret, "uptime " + secret} {
		out, err := clock.Call(context.Background(), map[string]any{"command": cmd})
		if err != nil {
			out += err.Error()
		}
		if strings.Contains(out, "s3cret-line") {
			t.Errorf("%s printed the file: %q %v", cmd, out, err)
		}
	}
}
