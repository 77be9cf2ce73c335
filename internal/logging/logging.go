// Package logging provides the process logger, whose level and format change
// live when the configuration's logger section does.
package logging

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"

	"github.com/hector-run/hector/internal/config"
)

// Switch is a slog.Handler whose level and format can change at run time.
// Loggers derived with With/WithGroup follow later switches too.
type Switch struct {
	out   io.Writer
	level *slog.LevelVar
	inner *atomic.Pointer[slog.Handler]
	// derive replays With/WithGroup calls, in order, on the current base handler
	derive []func(slog.Handler) slog.Handler
}

// New returns a handler writing text at info level to out.
func New(out io.Writer) *Switch {
	s := &Switch{out: out, level: new(slog.LevelVar), inner: new(atomic.Pointer[slog.Handler])}
	s.set("text")
	return s
}

func (s *Switch) set(format string) {
	opts := &slog.HandlerOptions{Level: s.level}
	var h slog.Handler = slog.NewTextHandler(s.out, opts)
	if format == "json" {
		h = slog.NewJSONHandler(s.out, opts)
	}
	s.inner.Store(&h)
}

// Apply switches level and format to those of cfg (validated and defaulted).
func (s *Switch) Apply(cfg config.Logger) {
	var l slog.Level
	_ = l.UnmarshalText([]byte(cfg.Level))
	s.level.Set(l)
	s.set(cfg.Format)
}

func (s *Switch) handler() slog.Handler {
	h := *s.inner.Load()
	for _, d := range s.derive {
		h = d(h)
	}
	return h
}

// Enabled implements slog.Handler.
func (s *Switch) Enabled(_ context.Context, l slog.Level) bool { return l >= s.level.Level() }

// Handle implements slog.Handler.
func (s *Switch) Handle(ctx context.Context, r slog.Record) error { return s.handler().Handle(ctx, r) }

// WithAttrs implements slog.Handler.
func (s *Switch) WithAttrs(as []slog.Attr) slog.Handler {
	return s.with(func(h slog.Handler) slog.Handler { return h.WithAttrs(as) })
}

// WithGroup implements slog.Handler.
func (s *Switch) WithGroup(name string) slog.Handler {
	return s.with(func(h slog.Handler) slog.Handler { return h.WithGroup(name) })
}

func (s *Switch) with(d func(slog.Handler) slog.Handler) *Switch {
	c := *s
	c.derive = append(append([]func(slog.Handler) slog.Handler(nil), s.derive...), d)
	return &c
}
