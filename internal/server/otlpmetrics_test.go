package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	collectormetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/hector-run/hector/internal/llm/llmtest"
)

// metricsReceiver is an OTLP/gRPC metrics collector in the test process.
type metricsReceiver struct {
	collectormetrics.UnimplementedMetricsServiceServer
	addr string
	mu   sync.Mutex
	// sums holds, per metric name and its data point's attributes, the
	// histogram sum and count last exported (cumulative).
	sums map[string][2]float64
}

func newMetricsReceiver(t *testing.T) *metricsReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &metricsReceiver{addr: ln.Addr().String(), sums: map[string][2]float64{}}
	srv := grpc.NewServer()
	collectormetrics.RegisterMetricsServiceServer(srv, r)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return r
}

func (r *metricsReceiver) Export(_ context.Context, req *collectormetrics.ExportMetricsServiceRequest) (*collectormetrics.ExportMetricsServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rm := range req.ResourceMetrics {
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				for _, dp := range m.GetHistogram().GetDataPoints() {
					attrs := attrMap(dp.Attributes)
					key := fmt.Sprintf("%s{provider=%s,model=%s,type=%s,error=%s}", m.Name, attrs["gen_ai.provider.name"], attrs["gen_ai.request.model"],
						attrs["gen_ai.token.type"], attrs["error.type"])
					r.sums[key] = [2]float64{dp.GetSum(), float64(dp.GetCount())}
				}
			}
		}
	}
	return &collectormetrics.ExportMetricsServiceResponse{}, nil
}

func (r *metricsReceiver) get(key string) ([2]float64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.sums[key]
	return v, ok
}

// With observability.metrics.otlp on, model calls are exported as the
// OpenTelemetry GenAI client metrics: token usage by type (the fake's 10
// input and 5 output tokens per call) and operation duration, with the
// error type of a failed call.
func TestGenAIMetricsOverOTLP(t *testing.T) {
	recv := newMetricsReceiver(t)
	fake := llmtest.NewOpenAI(t)
	h := newHector(t, fmt.Sprintf("llms: {gpt: {provider: openai, model: m1, base_url: %s/v1, api_key: k, max_retries: 0}}\nagents: {a: {llm: gpt}}\nserver: {port: 0}\n", fake.URL)+
		fmt.Sprintf("observability: {metrics: {otlp: {enabled: true, endpoint: %q, insecure: true, interval: 1s}}}\n", recv.addr))
	for i := 0; i < 2; i++ {
		if r := h.send("a", "", "hi"); r.status != 200 {
			t.Fatal(r.raw)
		}
	}
	fake.Push(llmtest.Reply{Status: 400})
	h.send("a", "", "fails")
	eventually(t, "the GenAI metrics are exported", func() string {
		in, ok1 := recv.get("gen_ai.client.token.usage{provider=openai,model=m1,type=input,error=}")
		out, ok2 := recv.get("gen_ai.client.token.usage{provider=openai,model=m1,type=output,error=}")
		dur, ok3 := recv.get("gen_ai.client.operation.duration{provider=openai,model=m1,type=,error=}")
		failed, ok4 := recv.get("gen_ai.client.operation.duration{provider=openai,model=m1,type=,error=error}")
		if !ok1 || !ok2 || !ok3 || !ok4 || in != [2]float64{20, 2} || out != [2]float64{10, 2} || dur[1] != 2 || failed[1] != 1 {
			recv.mu.Lock()
			defer recv.mu.Unlock()
			var got []string
			for k, v := range recv.sums {
				got = append(got, fmt.Sprint(k, v))
			}
			return strings.Join(got, "; ")
		}
		return ""
	})
}

// protocol: http sends the spans as OTLP http/protobuf to the endpoint's
// /v1/traces.
func TestTracesOverOTLPHTTP(t *testing.T) {
	var mu sync.Mutex
	names := map[string]bool{}
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req collectortrace.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "not a trace export", http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					names[s.Name] = true
				}
			}
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		_, _ = w.Write(b)
	}))
	t.Cleanup(collector.Close)
	h := newHector(t, "llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\nserver: {port: 0}\n"+
		fmt.Sprintf("observability: {tracing: {enabled: true, protocol: http, endpoint: %q}}\n", collector.URL))
	if r := h.send("a", "", "hi"); r.status != 200 {
		t.Fatal(r.raw)
	}
	eventually(t, "the spans arrive over http/protobuf", func() string {
		mu.Lock()
		defer mu.Unlock()
		if !names["invoke_agent a"] || !names["POST /v1/agents/{name}/messages"] {
			return fmt.Sprint(names)
		}
		return ""
	})
}
