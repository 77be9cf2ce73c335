package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/hector-run/hector/internal/llm/llmtest"
)

// sink is an OTLP/gRPC collector that counts the spans it receives and
// keeps none.
type sink struct {
	collectortrace.UnimplementedTraceServiceServer
	spans atomic.Int64
}

func (s *sink) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			s.spans.Add(int64(len(ss.Spans)))
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// observeCost measures (f): what metrics and tracing cost on the message
// round trip, against a server with both off, same run: metrics alone,
// then metrics with tracing at sampling 1.0 and 0.1, exporting over
// OTLP/gRPC to a collector in this process.
func observeCost(d time.Duration) error {
	fake := llmtest.NewInstant()
	defer fake.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	col := &sink{}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, col)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	tracing := func(rate string) string {
		return fmt.Sprintf("observability: {tracing: {enabled: true, endpoint: %q, insecure: true, sampling_rate: %s}}\n", ln.Addr(), rate)
	}
	rows := []struct{ name, extra string }{
		{"both off", "observability: {metrics: {enabled: false}}\n"},
		{"metrics", ""},
		{"+ traces 1.0", tracing("1.0")},
		{"+ traces 0.1", tracing("0.1")},
	}
	fmt.Printf("(f) metrics and tracing cost, same run: POST /v1/agents/a/messages, %s per run\n", d)
	fmt.Printf("    %-14s %8s %10s %10s %10s %8s %10s\n", "observability", "clients", "req/s", "p50", "p99", "ratio", "spans")
	for _, n := range []int{1, 32} {
		var baseRPS float64
		for i, row := range rows {
			in, err := start(config(fake.URL, "bench") + row.extra)
			if err != nil {
				return err
			}
			send := func(int, int) (*http.Response, error) {
				return client.Post(in.base+"/v1/agents/a/messages", "application/json", strings.NewReader(`{"message":"hi"}`))
			}
			loadFunc(8, 300*time.Millisecond, nil, send) // warm up
			before := col.spans.Load()
			res := loadFunc(n, d, nil, send)
			in.stop() // flushes the spans
			if i == 0 {
				baseRPS = res.rps()
			}
			fmt.Printf("    %-14s %8d %10.0f %10s %10s %8.2f %10d\n", row.name, n, res.rps(), ms(pct(res.latencies, 0.5)), ms(pct(res.latencies, 0.99)),
				res.rps()/baseRPS, col.spans.Load()-before)
			if res.failed > 0 {
				return fmt.Errorf("%s: %d failed requests", row.name, res.failed)
			}
		}
	}
	return nil
}
