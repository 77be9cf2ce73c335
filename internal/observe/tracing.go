package observe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// TracingConfig is observability.tracing, as Tracing applies it.
type TracingConfig struct {
	Enabled  bool
	Exporter string // otlp or stdout
	OTLPTarget
	SamplingRate   float64
	ServiceName    string
	CaptureContent bool
	// Stdout is where the stdout exporter writes; nil means os.Stdout.
	Stdout io.Writer
}

// Tracing is one process's OpenTelemetry tracing: a tracer provider that
// Apply replaces live, so spans started after a reload use the new
// exporter, sampling and service name. With tracing off it hands out a
// no-op tracer, which costs next to nothing. Safe for concurrent use.
type Tracing struct {
	mu       sync.Mutex // serialises Prepare's commits and Shutdown
	cur      atomic.Pointer[tracingState]
	retiring []*sdktrace.TracerProvider // replaced, kept for the spans still open on them; guarded by mu
}

// retireAfter is how long a replaced provider keeps exporting the spans
// started on it (a long streamed turn's), before it is shut down.
const retireAfter = 2 * time.Minute

type tracingState struct {
	cfg      TracingConfig
	provider trace.TracerProvider
	sdk      *sdktrace.TracerProvider // nil when off
}

// instrumentation names Hector's spans' instrumentation scope.
const instrumentation = "github.com/hector-run/hector"

// Tracer returns the current tracer (a no-op one when tracing is off or
// t is nil). Call it per unit of work, not once: it follows Apply.
func (t *Tracing) Tracer() trace.Tracer {
	if t == nil {
		return noop.NewTracerProvider().Tracer(instrumentation)
	}
	if s := t.cur.Load(); s != nil {
		return s.provider.Tracer(instrumentation)
	}
	return noop.NewTracerProvider().Tracer(instrumentation)
}

// CaptureContent reports whether spans may carry message content
// (observability.tracing.capture_content).
func (t *Tracing) CaptureContent() bool {
	if t == nil {
		return false
	}
	s := t.cur.Load()
	return s != nil && s.cfg.Enabled && s.cfg.CaptureContent
}

// Prepare builds the provider for c without putting it in force: the
// returned commit swaps it in and flushes the previous provider in the
// background; abort discards it. An unusable configuration (an exporter
// that cannot be made) is an error, and the current tracing stays.
func (t *Tracing) Prepare(c TracingConfig) (commit, abort func(), err error) {
	next, err := newTracingState(c)
	if err != nil {
		return nil, nil, err
	}
	commit = func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		prev := t.cur.Swap(next)
		if prev == nil || prev.sdk == nil {
			return
		}
		// Spans open on it (a turn in flight) end there and are exported;
		// it is shut down, flushing them, once they can be expected done.
		old := prev.sdk
		t.retiring = append(t.retiring, old)
		time.AfterFunc(retireAfter, func() {
			t.mu.Lock()
			t.retiring = slices.DeleteFunc(t.retiring, func(p *sdktrace.TracerProvider) bool { return p == old })
			t.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = old.Shutdown(ctx)
		})
	}
	abort = func() {
		if next.sdk != nil {
			_ = next.sdk.Shutdown(context.Background())
		}
	}
	return commit, abort, nil
}

// Shutdown flushes the spans not yet exported (within ctx), those of
// replaced providers too, and switches tracing off.
func (t *Tracing) Shutdown(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	providers := t.retiring
	t.retiring = nil
	if prev := t.cur.Swap(nil); prev != nil && prev.sdk != nil {
		providers = append(providers, prev.sdk)
	}
	var errs []error
	for _, p := range providers {
		errs = append(errs, p.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

func newTracingState(c TracingConfig) (*tracingState, error) {
	if !c.Enabled {
		return &tracingState{cfg: c, provider: noop.NewTracerProvider()}, nil
	}
	exp, err := newExporter(c)
	if err != nil {
		return nil, err
	}
	res, err := serviceResource(c.ServiceName)
	if err != nil {
		return nil, err
	}
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Second), sdktrace.WithMaxQueueSize(8192)),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.SamplingRate))),
		sdktrace.WithRawSpanLimits(sdktrace.SpanLimits{AttributeValueLengthLimit: 16 << 10, AttributeCountLimit: 128,
			EventCountLimit: 128, LinkCountLimit: 128, AttributePerEventCountLimit: 128, AttributePerLinkCountLimit: 128}),
		sdktrace.WithResource(res))
	return &tracingState{cfg: c, provider: sdk, sdk: sdk}, nil
}

// newExporter makes c's span exporter. The OTLP exporters connect lazily:
// an endpoint that is down loses spans (counted by the SDK), never
// requests.
func newExporter(c TracingConfig) (sdktrace.SpanExporter, error) {
	ctx := context.Background()
	switch c.Exporter {
	case "stdout":
		w := c.Stdout
		if w == nil {
			w = os.Stdout
		}
		return stdouttrace.New(stdouttrace.WithWriter(w))
	case "otlp", "":
	default:
		return nil, fmt.Errorf("tracing exporter %q: want otlp or stdout", c.Exporter)
	}
	if c.Protocol == "http" {
		return otlptracehttp.New(ctx, otlpOption[otlptracehttp.Option]{otlptracehttp.WithTimeout, otlptracehttp.WithEndpoint,
			otlptracehttp.WithURLPath, otlptracehttp.WithInsecure, otlptracehttp.WithHeaders}.options(c.OTLPTarget)...)
	}
	return otlptracegrpc.New(ctx, otlpOption[otlptracegrpc.Option]{otlptracegrpc.WithTimeout, otlptracegrpc.WithEndpoint,
		nil, otlptracegrpc.WithInsecure, otlptracegrpc.WithHeaders}.options(c.OTLPTarget)...)
}

// Middleware traces every request next serves as a server span named
// after its route pattern ("POST /v1/agents/{name}/messages", never the raw
// path), continuing the trace of a caller's traceparent header.
func (t *Tracing) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		m := method(r.Method)
		ctx, span := t.Tracer().Start(ctx, m, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", m)))
		if !span.IsRecording() {
			span.End()
			next.ServeHTTP(w, r.WithContext(ctx)) // a sampled-out or untraced request still passes its context on
			return
		}
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		r = r.WithContext(ctx)
		next.ServeHTTP(rec, r)
		if r.Pattern != "" && r.Pattern != "/" {
			route := r.Pattern
			if _, p, ok := strings.Cut(route, " "); ok {
				route = p
			}
			span.SetName(m + " " + route)
			span.SetAttributes(attribute.String("http.route", route))
		}
		span.SetAttributes(attribute.Int("http.response.status_code", rec.code))
		if rec.code >= 500 {
			span.SetStatus(codes.Error, http.StatusText(rec.code))
		}
		span.End()
	})
}

// TraceParent is the W3C traceparent of ctx's span, "" when ctx carries
// none: what a task stores so that its attempts continue the trace, and
// the one header sent to HTTP tools and remote agents (never the
// caller's tracestate, which the caller controls).
func TraceParent(ctx context.Context) string {
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}

// WithTraceParent is ctx continuing the trace of traceparent (as
// TraceParent gave it); ctx unchanged when it is "" or malformed.
func WithTraceParent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}
