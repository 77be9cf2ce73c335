package logging

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/hector-run/hector/internal/config"
)

func TestLevelAndFormatSwitchLive(t *testing.T) {
	var buf bytes.Buffer
	sw := New(&buf)
	base := slog.New(sw)
	derived := base.With("component", "reload").WithGroup("g") // created before the switch
	base.Debug("hidden")
	base.Info("text line")
	sw.Apply(config.Logger{Level: "debug", Format: "json"})
	derived.Debug("json line", "k", "v")
	sw.Apply(config.Logger{Level: "error", Format: "text"})
	base.Warn("hidden too")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[0], "level=INFO msg=\"text line\"") {
		t.Errorf("text line: %s", lines[0])
	}
	if !strings.Contains(lines[1], `"level":"DEBUG"`) || !strings.Contains(lines[1], `"component":"reload"`) || !strings.Contains(lines[1], `"g":{"k":"v"}`) {
		t.Errorf("json line from a logger derived before the switch: %s", lines[1])
	}
}
