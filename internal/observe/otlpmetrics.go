package observe

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// OTLPMetricsConfig is observability.metrics.otlp, as Metrics applies it.
type OTLPMetricsConfig struct {
	Enabled bool
	OTLPTarget
	Interval    time.Duration // between exports
	ServiceName string
}

// genAI is an OTLP meter provider with the OpenTelemetry GenAI client
// metrics: gen_ai.client.token.usage and gen_ai.client.operation.duration.
type genAI struct {
	provider *sdkmetric.MeterProvider
	tokens   metric.Int64Histogram
	duration metric.Float64Histogram
}

// PrepareOTLP builds the OTLP export of the GenAI metrics for c without
// putting it in force: commit swaps it in (model calls from then on are
// recorded in it too) and flushes the previous export in the background;
// abort discards it. c disabled prepares switching the export off.
func (m *Metrics) PrepareOTLP(c OTLPMetricsConfig) (commit, abort func(), err error) {
	var next *genAI
	if c.Enabled {
		if next, err = newGenAI(c); err != nil {
			return nil, nil, err
		}
	}
	commit = func() {
		if prev := m.otlp.Swap(next); prev != nil {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = prev.provider.Shutdown(ctx)
			}()
		}
	}
	abort = func() {
		if next != nil {
			_ = next.provider.Shutdown(context.Background())
		}
	}
	return commit, abort, nil
}

// ShutdownOTLP exports what the GenAI metrics hold (within ctx) and stops
// their export.
func (m *Metrics) ShutdownOTLP(ctx context.Context) error {
	if prev := m.otlp.Swap(nil); prev != nil {
		return prev.provider.Shutdown(ctx)
	}
	return nil
}

func newGenAI(c OTLPMetricsConfig) (*genAI, error) {
	exp, err := newMetricExporter(c)
	if err != nil {
		return nil, err
	}
	res, err := serviceResource(c.ServiceName)
	if err != nil {
		return nil, err
	}
	interval := c.Interval
	if interval <= 0 {
		interval = time.Minute
	}
	p := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(interval))))
	meter := p.Meter(instrumentation)
	g := &genAI{provider: p}
	// The conventions' bucket boundaries for both.
	if g.tokens, err = meter.Int64Histogram("gen_ai.client.token.usage", metric.WithUnit("{token}"),
		metric.WithDescription("Tokens used per model call, by type (input, output)."),
		metric.WithExplicitBucketBoundaries(1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)); err != nil {
		return nil, err
	}
	if g.duration, err = meter.Float64Histogram("gen_ai.client.operation.duration", metric.WithUnit("s"),
		metric.WithDescription("Model call duration."),
		metric.WithExplicitBucketBoundaries(0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)); err != nil {
		return nil, err
	}
	return g, nil
}

// record adds one model call to the GenAI metrics.
func (g *genAI) record(c LLMCall) {
	ctx := context.Background()
	attrs := []attribute.KeyValue{attribute.String("gen_ai.operation.name", "chat"), attribute.String("gen_ai.provider.name", c.Provider),
		attribute.String("gen_ai.request.model", c.Model)}
	if c.App != "" {
		attrs = append(attrs, attribute.String("hector.app", c.App))
	}
	if c.Outcome != "ok" {
		g.duration.Record(ctx, c.Elapsed.Seconds(), metric.WithAttributes(append(attrs, attribute.String("error.type", c.Outcome))...))
		return
	}
	g.duration.Record(ctx, c.Elapsed.Seconds(), metric.WithAttributes(attrs...))
	g.tokens.Record(ctx, c.InputTokens, metric.WithAttributes(append(attrs, attribute.String("gen_ai.token.type", "input"))...))
	g.tokens.Record(ctx, c.OutputTokens, metric.WithAttributes(append(attrs, attribute.String("gen_ai.token.type", "output"))...))
}

func newMetricExporter(c OTLPMetricsConfig) (sdkmetric.Exporter, error) {
	ctx := context.Background()
	if c.Protocol == "http" {
		return otlpmetrichttp.New(ctx, otlpOption[otlpmetrichttp.Option]{otlpmetrichttp.WithTimeout, otlpmetrichttp.WithEndpoint,
			otlpmetrichttp.WithURLPath, otlpmetrichttp.WithInsecure, otlpmetrichttp.WithHeaders}.options(c.OTLPTarget)...)
	}
	return otlpmetricgrpc.New(ctx, otlpOption[otlpmetricgrpc.Option]{otlpmetricgrpc.WithTimeout, otlpmetricgrpc.WithEndpoint,
		nil, otlpmetricgrpc.WithInsecure, otlpmetricgrpc.WithHeaders}.options(c.OTLPTarget)...)
}
