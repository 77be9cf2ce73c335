// Package logging provides the process logger, whose level and format change
// live when the configuration's logger section does.
package logging

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"

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

// MaxValueBytes bounds each logged string (the message and every
// attribute, in groups too): a long error list or a plan of ten thousand
// agents makes one bounded line, not megabytes.
const MaxValueBytes = 8 << 10

// Handle implements slog.Handler. Every string logged is bounded to
// MaxValueBytes, and every URL in it has its credentials redacted
// (config.RedactText), whoever logged it.
//
// A line logged with a context (InfoContext, …) carries the request's id
// (WithRequestID) and the trace and span ids of its span, when it has them.
func (s *Switch) Handle(ctx context.Context, r slog.Record) error {
	r = clean(r)
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return s.handler().Handle(ctx, r)
}

type requestIDKey struct{}

// WithRequestID is ctx of the request named id (X-Request-Id).
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID is the id of ctx's request, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// clean returns r with every string bounded and its URLs redacted.
func clean(r slog.Record) slog.Record {
	dirty := needsCleaning(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		dirty = dirty || dirtyValue(a.Value)
		return !dirty
	})
	if !dirty {
		return r
	}
	out := slog.NewRecord(r.Time, r.Level, cleanString(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(cleanAttr(a))
		return true
	})
	return out
}

func needsCleaning(s string) bool { return len(s) > MaxValueBytes || strings.Contains(s, "://") }

func cleanString(s string) string { return cut(config.RedactText(s)) }

func dirtyValue(v slog.Value) bool {
	switch v.Kind() {
	case slog.KindString:
		return needsCleaning(v.String())
	case slog.KindGroup:
		for _, a := range v.Group() {
			if dirtyValue(a.Value) {
				return true
			}
		}
	case slog.KindAny, slog.KindLogValuer:
		return needsCleaning(v.Resolve().String())
	}
	return false
}

func cleanAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		g := v.Group()
		out := make([]slog.Attr, len(g))
		for i, ga := range g {
			out[i] = cleanAttr(ga)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}
	case slog.KindString, slog.KindAny:
		if s := v.String(); needsCleaning(s) {
			return slog.String(a.Key, cleanString(s))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func cut(s string) string {
	if len(s) <= MaxValueBytes {
		return s
	}
	n := MaxValueBytes
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "… (" + strconv.Itoa(len(s)-n) + " bytes cut)"
}

// WithAttrs implements slog.Handler.
func (s *Switch) WithAttrs(as []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(as))
	for i, a := range as {
		clean[i] = cleanAttr(a)
	}
	return s.with(func(h slog.Handler) slog.Handler { return h.WithAttrs(clean) })
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
