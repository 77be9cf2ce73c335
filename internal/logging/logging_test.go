package logging

import (
	"bytes"
	"errors"
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

func TestLongValuesAreCut(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		var buf bytes.Buffer
		sw := New(&buf)
		sw.Apply(config.Logger{Level: "info", Format: format})
		log := slog.New(sw)
		huge := strings.Repeat("e", 1<<20)
		log.Error(huge, "errors", huge, slog.Group("agents", "added", huge), "err", errors.New(huge), "n", 3)
		if buf.Len() > 5*MaxValueBytes {
			t.Fatalf("%s: a %d-byte line", format, buf.Len())
		}
		if !strings.Contains(buf.String(), "bytes cut)") || !strings.Contains(buf.String(), "3") {
			t.Fatalf("%s: %.300s", format, buf.String())
		}
	}
}

func TestURLCredentialsAreRedacted(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(New(&buf))
	log = log.With("source", "etcd://root:with-secret@10.0.0.1:2379")
	log.Warn("dial http://u:hunter2@db.example/x failed", "url", "https://h/v1?api_key=sk-live-1", "err", errors.New(`Get "https://h/?token=tok-9": EOF`))
	for _, secret := range []string{"hunter2", "sk-live-1", "tok-9", "with-secret"} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("%s logged: %s", secret, buf.String())
		}
	}
}
