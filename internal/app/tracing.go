package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/observe"
	"github.com/hector-run/hector/internal/reload"
)

// tracingApplier applies observability.tracing live: a changed section
// builds the new provider while the old one serves (an exporter that
// cannot be made rejects the reload), and the swap flushes the old one.
// stdout is where the stdout exporter writes.
func tracingApplier(t *observe.Tracing, stdout io.Writer) reload.Applier {
	return reload.ApplierFunc(func(cur, next *config.Config) (reload.Prepared, error) {
		if cur != nil && reflect.DeepEqual(cur.Observability.Tracing, next.Observability.Tracing) {
			return reload.Prepared{}, nil
		}
		tc := next.Observability.Tracing
		commit, abort, err := t.Prepare(observe.TracingConfig{Enabled: tc.Enabled, Exporter: tc.Exporter,
			OTLPTarget: observe.OTLPTarget{Protocol: tc.Protocol, Endpoint: tc.Endpoint, Insecure: tc.Insecure, Headers: tc.Headers}, SamplingRate: tc.Rate(), ServiceName: tc.ServiceName,
			CaptureContent: tc.CaptureContent, Stdout: stdout})
		if err != nil {
			return reload.Prepared{}, fmt.Errorf("observability.tracing: %w", err)
		}
		return reload.Prepared{Commit: commit, Abort: abort}, nil
	})
}

// otlpMetricsApplier applies observability.metrics.otlp live, as
// tracingApplier does tracing.
func otlpMetricsApplier(m *observe.Metrics) reload.Applier {
	return reload.ApplierFunc(func(cur, next *config.Config) (reload.Prepared, error) {
		if cur != nil && reflect.DeepEqual(cur.Observability.Metrics.OTLP, next.Observability.Metrics.OTLP) &&
			cur.Observability.Tracing.ServiceName == next.Observability.Tracing.ServiceName {
			return reload.Prepared{}, nil
		}
		oc := next.Observability.Metrics.OTLP
		commit, abort, err := m.PrepareOTLP(observe.OTLPMetricsConfig{Enabled: oc.Enabled,
			OTLPTarget: observe.OTLPTarget{Protocol: oc.Protocol, Endpoint: oc.Endpoint, Insecure: oc.Insecure, Headers: oc.Headers}, Interval: oc.Interval.D(), ServiceName: next.Observability.Tracing.ServiceName})
		if err != nil {
			return reload.Prepared{}, fmt.Errorf("observability.metrics.otlp: %w", err)
		}
		return reload.Prepared{Commit: commit, Abort: abort}, nil
	})
}

// traceReload records a reload attempt that applied or was rejected as a
// config_reload span, timed as it ran, with its stages.
func traceReload(t *observe.Tracing, out reload.Outcome) {
	if out.Result != reload.Applied && out.Result != reload.Rejected {
		return
	}
	start := out.At
	end := start.Add(time.Duration(out.ElapsedMS * float64(time.Millisecond)))
	attrs := []attribute.KeyValue{attribute.String("hector.reload.result", string(out.Result)), attribute.Int64("hector.config.version", out.Version),
		attribute.String("hector.reload.trigger", string(out.Trigger)), attribute.String("hector.config.source", config.RedactText(out.Source))}
	if out.App != "" {
		attrs = append(attrs, attribute.String("hector.app", out.App))
	}
	for stage, ms := range out.Stages {
		attrs = append(attrs, attribute.Float64("hector.reload.stage."+stage+"_ms", ms))
	}
	_, span := t.Tracer().Start(context.Background(), "config_reload", trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	if out.Result == reload.Rejected {
		span.SetStatus(codes.Error, config.RedactText(out.Errors.Error()))
	}
	span.End(trace.WithTimestamp(end))
}

// shutdownTelemetry flushes the spans and GenAI metrics not yet
// exported, for at most 5 s.
func shutdownTelemetry(t *observe.Tracing, m *observe.Metrics, log *slog.Logger) {
	flush := func(what string, f func(context.Context) error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := f(ctx); err != nil {
			log.Warn(what+" not exported at shutdown", "error", err)
		}
	}
	flush("spans", t.Shutdown)
	flush("metrics", m.ShutdownOTLP)
}
