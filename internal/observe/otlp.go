package observe

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
)

// OTLPTarget is where an OTLP exporter sends, as the configuration says:
// the traces' and the GenAI metrics' exporters take the same settings.
type OTLPTarget struct {
	Protocol string // grpc or http
	Endpoint string // host:port or a URL; "" reads OTEL_EXPORTER_OTLP_ENDPOINT
	Insecure bool
	Headers  map[string]string
}

// otlpTimeout bounds one export.
const otlpTimeout = 10 * time.Second

// otlpOption builds an exporter's options from its package's option
// constructors (otlptracegrpc, otlpmetrichttp, …); path is nil for gRPC,
// which has no URL path.
type otlpOption[O any] struct {
	timeout  func(time.Duration) O
	endpoint func(string) O
	path     func(string) O
	insecure func() O
	headers  func(map[string]string) O
}

// options are t's exporter options: the timeout, then whatever t sets.
func (o otlpOption[O]) options(t OTLPTarget) []O {
	endpoint, path, insecure := otlpEndpoint(t.Endpoint, t.Insecure)
	opts := []O{o.timeout(otlpTimeout)}
	if endpoint != "" {
		opts = append(opts, o.endpoint(endpoint))
	}
	if path != "" && o.path != nil {
		opts = append(opts, o.path(path))
	}
	if insecure {
		opts = append(opts, o.insecure())
	}
	if len(t.Headers) > 0 {
		opts = append(opts, o.headers(t.Headers))
	}
	return opts
}

// otlpEndpoint splits an endpoint written as a URL
// (http://collector:4318/custom) into the host:port, the path ("" for
// none) and whether it is plain HTTP; host:port is returned as is.
func otlpEndpoint(endpoint string, insecure bool) (hostPort, path string, plain bool) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return endpoint, "", insecure
	}
	if strings.Trim(u.Path, "/") != "" {
		path = u.Path
	}
	return u.Host, path, insecure || u.Scheme == "http"
}

// serviceResource is the resource of Hector's telemetry: service.name is
// name, else OTEL_SERVICE_NAME, else hector.
func serviceResource(name string) (*resource.Resource, error) {
	if name == "" {
		name = os.Getenv("OTEL_SERVICE_NAME")
	}
	if name == "" {
		name = "hector"
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", name)))
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	return res, nil
}
