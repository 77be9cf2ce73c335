package server

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hector-run/hector/internal/reload"
	"github.com/hector-run/hector/internal/store"
)

// metrics are one server's Prometheus metrics, in their own registry.
type metrics struct {
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
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
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
	m.reg.MustRegister(m.reloads, m.reloadDuration, m.version, m.validationErrs, m.backendErrs, m.lastSuccess,
		m.requests, m.requestSecs, m.taskAttempts, m.pushes, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// taskStates is a collector of the number of tasks in each state, read
// from the database at scrape time.
type taskStates struct {
	desc  *prometheus.Desc
	count func(state string) (int, error)
}

func (c taskStates) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c taskStates) Collect(ch chan<- prometheus.Metric) {
	for _, st := range store.TaskStates {
		if n, err := c.count(st); err == nil {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), st)
		}
	}
}

// backend names the kind of a source ("file:/etc/hector.yaml" -> "file").
func backend(source string) string {
	kind, _, _ := strings.Cut(source, ":")
	return kind
}

// observe records one reload outcome.
func (m *metrics) observe(o reload.Outcome) {
	m.reloads.WithLabelValues(o.Result, backend(o.Source)).Inc()
	m.reloadDuration.Observe(o.ElapsedMS / 1000)
	m.version.Set(float64(o.Version))
	if o.Result == reload.Applied {
		m.lastSuccess.Set(float64(o.At.Add(time.Duration(o.ElapsedMS * float64(time.Millisecond))).Unix()))
	}
	if o.Result == reload.Rejected {
		for _, e := range o.Errors {
			if e.Path != "(source)" { // source failures are counted by sourceError
				m.validationErrs.Inc()
			}
		}
	}
}

// sourceError counts one failed read or watch of the configuration source.
func (m *metrics) sourceError(source string) {
	m.backendErrs.WithLabelValues(backend(source)).Inc()
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
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

// instrument counts requests by their route pattern (never the raw path, so
// agent and session names do not explode the label space).
func (m *metrics) instrument(next http.Handler) http.Handler {
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
		m.requests.WithLabelValues(r.Method, route, strconv.Itoa(rec.code)).Inc()
		m.requestSecs.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// hub fans reload outcomes out to event-stream subscribers. A subscriber
// that falls behind by more than its buffer misses outcomes rather than
// slowing the reconciler.
type hub struct {
	mu   sync.Mutex
	subs map[chan reload.Outcome]struct{}
}

func (h *hub) subscribe() (<-chan reload.Outcome, func()) {
	ch := make(chan reload.Outcome, 64)
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[chan reload.Outcome]struct{}{}
	}
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}
}

func (h *hub) publish(o reload.Outcome) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- o:
		default:
		}
	}
}
