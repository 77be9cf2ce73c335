// Package observe holds what Hector reports about itself: the Prometheus
// metrics of one process (Metrics) and its OpenTelemetry traces (Tracing). app.Run creates one Metrics and hands its methods
// to the components that count (the reconciler, the queue, the A2A service,
// the HTTP server), which take them as plain functions. The package imports
// no other Hector package, so any component may use it without an import
// cycle.
package observe

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are one process's Prometheus metrics, in a registry of their own
// (never the global one, so two servers in one test process do not
// collide). Every method is safe for concurrent use.
type Metrics struct {
	reg            *prometheus.Registry
	reloads        *prometheus.CounterVec
	reloadDuration prometheus.Histogram
	version        prometheus.Gauge
	validationErrs prometheus.Counter
	backendErrs    *prometheus.CounterVec
	lastSuccess    prometheus.Gauge
	requests       *prometheus.CounterVec
	requestSecs    *prometheus.HistogramVec
	taskAttempts   *prometheus.CounterVec
	pushes         *prometheus.CounterVec
	brokerRefused  *prometheus.CounterVec
	appReloads     *prometheus.CounterVec
	agents         agentMetrics
	off            atomic.Bool           // observability.metrics.enabled: false
	otlp           atomic.Pointer[genAI] // observability.metrics.otlp; nil when off
}

// NewMetrics returns Hector's metrics, registered with the Go runtime and
// process collectors in a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hector_config_reloads_total",
		Help: "Configuration reload attempts by result (applied, rejected, noop) and source."}, []string{"result", "source"})
	m.reloadDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hector_config_reload_duration_seconds",
		Help: "Time from reading a configuration to its outcome.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)})
	m.version = prometheus.NewGauge(prometheus.GaugeOpts{Name: "hector_config_version", Help: "Version of the configuration being served."})
	m.validationErrs = prometheus.NewCounter(prometheus.CounterOpts{Name: "hector_config_validation_errors_total",
		Help: "Errors found in rejected configurations."})
	m.backendErrs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hector_config_backend_errors_total",
		Help: "Failures to read or watch the configuration source, by backend."}, []string{"backend"})
	m.lastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{Name: "hector_config_last_success_timestamp_seconds",
		Help: "Unix time of the last applied configuration."})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hector_http_requests_total",
		Help: "HTTP requests by method, route pattern and status code."}, []string{"method", "route", "code"})
	m.requestSecs = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hector_http_request_duration_seconds",
		Help: "HTTP request duration by route pattern.", Buckets: prometheus.DefBuckets}, []string{"route"})
	m.taskAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hector_task_attempts_total",
		Help: "Task attempts by this instance, by how they ended: completed, retried, failed, canceled, waiting (for approval), released (at shutdown), lost (lease)."},
		[]string{"outcome"})
	m.pushes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hector_a2a_push_notifications_total",
		Help: "A2A push notifications this instance sent, by result: delivered, or failed (after 3 tries)."}, []string{"result"})
	m.brokerRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hector_reload_broker_refused_total",
		Help: "Fleet reload requests this instance ignored, by reason: unsigned, bad_signature, stale, replayed, malformed."}, []string{"reason"})
	m.appReloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hector_app_reloads_total",
		Help: "Reload attempts of the apps' documents by result (applied, rejected, noop); the main configuration's are hector_config_reloads_total."},
		[]string{"result"})
	m.agents = newAgentMetrics()
	m.reg.MustRegister(m.agents.collectors()...)
	m.reg.MustRegister(m.appReloads, m.reloads, m.reloadDuration, m.version, m.validationErrs, m.backendErrs, m.lastSuccess, m.brokerRefused,
		m.requests, m.requestSecs, m.taskAttempts, m.pushes, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the registry the metrics are in. Register further collectors
// on it; Handler serves them too.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves every registered metric in the Prometheus exposition
// format (the /metrics route).
//
// With the metrics switched off (SetEnabled) it answers 404.
func (m *Metrics) Handler() http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.off.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"code":"metrics_disabled","message":"metrics are switched off (observability.metrics.enabled: false)"}}` + "\n"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// SetEnabled switches the recording of model, agent and tool metrics and
// the /metrics endpoint on or off (observability.metrics.enabled).
func (m *Metrics) SetEnabled(on bool) { m.off.Store(!on) }

// Reload is one configuration reload attempt, as the metrics count it
// (reload.Outcome.Metric builds it).
type Reload struct {
	Result  string        // applied, rejected or noop
	Source  string        // the source's name ("file:/etc/hector.yaml"), counted by its backend ("file")
	Version int64         // the configuration version serving after the attempt
	Elapsed time.Duration // from reading the configuration to the outcome
	// AppliedAt is when an applied configuration went into force; zero
	// for any other result.
	AppliedAt time.Time
	// ValidationErrors is how many errors a rejected document had (a
	// source that could not be read is counted by SourceError instead).
	ValidationErrors int
}

// Reload counts one reload attempt and sets the version served. Add it (via
// reload.Outcome.Metric) as a reconciler listener.
func (m *Metrics) Reload(r Reload) {
	m.reloads.WithLabelValues(r.Result, backend(r.Source)).Inc()
	m.reloadDuration.Observe(r.Elapsed.Seconds())
	m.version.Set(float64(r.Version))
	if !r.AppliedAt.IsZero() {
		m.lastSuccess.Set(float64(r.AppliedAt.Unix()))
	}
	m.validationErrs.Add(float64(r.ValidationErrors))
}

// SourceError counts one failed read or watch of the configuration source
// named source; wire it to reload.Reconciler.OnSourceError.
func (m *Metrics) SourceError(source string) {
	m.backendErrs.WithLabelValues(backend(source)).Inc()
}

// AppReload counts one reload attempt of an app's document, by result.
func (m *Metrics) AppReload(result string) { m.appReloads.WithLabelValues(result).Inc() }

// BrokerRefused counts a fleet reload request the broker ignored, by
// reason; wire it to reload.BrokerOptions.Refused.
func (m *Metrics) BrokerRefused(reason string) {
	m.brokerRefused.WithLabelValues(reason).Inc()
}

// TaskAttempt counts a task attempt by how it ended (completed, retried,
// failed, canceled, waiting, released, lost); wire it to queue.Queue.Observe.
func (m *Metrics) TaskAttempt(outcome string) {
	m.taskAttempts.WithLabelValues(outcome).Inc()
}

// PushResult counts an A2A push notification by whether it was delivered;
// wire it to a2ahttp.Service.OnPush.
func (m *Metrics) PushResult(delivered bool) {
	result := "failed"
	if delivered {
		result = "delivered"
	}
	m.pushes.WithLabelValues(result).Inc()
}

// TaskStates registers the gauge hector_tasks{state}: for each of states,
// count(state) read at scrape time. A state whose count fails is left out
// of that scrape. Call it at most once per Metrics (a second registration
// panics).
func (m *Metrics) TaskStates(states []string, count func(state string) (int, error)) {
	m.reg.MustRegister(taskStates{
		desc:   prometheus.NewDesc("hector_tasks", "Tasks in the database by state.", []string{"state"}, nil),
		states: states, count: count})
}

// taskStates is a collector of the number of tasks in each state.
type taskStates struct {
	desc   *prometheus.Desc
	states []string
	count  func(state string) (int, error)
}

func (c taskStates) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c taskStates) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.states {
		if n, err := c.count(st); err == nil {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), st)
		}
	}
}

// MCPStatus is one MCP server (a tool entry of type mcp) as the metrics
// see it.
type MCPStatus struct {
	App, Tool string
	Up        bool // connected now
	Restarts  int  // reconnections since it was started
}

// MCPServers registers hector_mcp_server_up{app,tool} and
// hector_mcp_server_restarts_total{app,tool}, read from list at scrape
// time. Call it at most once per Metrics (a second registration panics).
func (m *Metrics) MCPServers(list func() []MCPStatus) {
	m.reg.MustRegister(mcpServers{
		up: prometheus.NewDesc("hector_mcp_server_up", "1 while the MCP server of a tool entry of type mcp is connected, 0 while it restarts.",
			[]string{"app", "tool"}, nil),
		restarts: prometheus.NewDesc("hector_mcp_server_restarts_total", "Reconnections of an MCP server after its process exited or its session ended, since the entry was started.",
			[]string{"app", "tool"}, nil),
		list: list})
}

type mcpServers struct {
	up, restarts *prometheus.Desc
	list         func() []MCPStatus
}

func (c mcpServers) Describe(ch chan<- *prometheus.Desc) { ch <- c.up; ch <- c.restarts }

func (c mcpServers) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.list() {
		up := 0.0
		if s.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, s.App, s.Tool)
		ch <- prometheus.MustNewConstMetric(c.restarts, prometheus.CounterValue, float64(s.Restarts), s.App, s.Tool)
	}
}

// backend names the kind of a source ("file:/etc/hector.yaml" -> "file").
func backend(source string) string {
	kind, _, _ := strings.Cut(source, ":")
	return kind
}

// Instrument counts the requests next serves, by method, route pattern
// (never the raw path, so agent and session names do not explode the label
// space) and status code, and times them by route.
func (m *Metrics) Instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" || route == "/" {
			route = "unmatched"
		} else if _, p, ok := strings.Cut(route, " "); ok {
			route = p
		}
		m.requests.WithLabelValues(method(r.Method), route, strconv.Itoa(rec.code)).Inc()
		m.requestSecs.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// method is the label of an HTTP method: the standard ones, else _OTHER
// (any token is a method to the Go server: a caller must not make series).
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete,
		http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "_OTHER"
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
