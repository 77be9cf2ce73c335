package store

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/observe"
)

// WithTracing traces the store's operations of a turn or a task (reading
// a history, storing a turn, taking a session's lease, creating a task,
// saving a step, completing a task) as client spans after the
// OpenTelemetry database conventions. Only operations inside a traced
// request or task are traced: polls and heartbeats start no trace.
func WithTracing(t *observe.Tracing) Option { return func(s *Store) { s.tracing = t } }

// span starts the span of one operation (op on table) when ctx is
// traced; end records err (ErrNotFound is an answer, not a failure).
func (s *Store) span(ctx context.Context, op, table string) (context.Context, func(error)) {
	if s.tracing == nil || !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, func(error) {}
	}
	system := "sqlite"
	if s.pg {
		system = "postgresql"
	}
	ctx, span := s.tracing.Tracer().Start(ctx, op+" "+table, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("db.system.name", system), attribute.String("db.operation.name", op), attribute.String("db.collection.name", table)))
	return ctx, func(err error) {
		if err != nil && !errors.Is(err, ErrNotFound) {
			span.SetStatus(codes.Error, config.RedactText(err.Error()))
		}
		span.End()
	}
}
