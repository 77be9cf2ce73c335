// Package app wires one Hector process: the configuration source and its
// reconciler, the snapshot runtime, the metrics, the task queue, the A2A
// service, the HTTP server and the fleet reload broker. It owns their start
// and their shutdown; none of them starts or stops another.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/hector-run/hector/internal/a2ahttp"
	"github.com/hector-run/hector/internal/apps"
	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/config/source"
	"github.com/hector-run/hector/internal/live"
	"github.com/hector-run/hector/internal/logging"
	"github.com/hector-run/hector/internal/observe"
	"github.com/hector-run/hector/internal/queue"
	"github.com/hector-run/hector/internal/reload"
	"github.com/hector-run/hector/internal/server"
	"github.com/hector-run/hector/internal/snapshot"
	"github.com/hector-run/hector/internal/store"
)

// Options configure Run. Zero values mean defaults.
type Options struct {
	// Source is where the configuration lives; nil means the file at
	// ConfigPath.
	Source      source.Source
	ConfigPath  string        // the configuration file, when Source is nil
	Watch       bool          // apply source changes live
	Debounce    time.Duration // file-event debounce; default source.DefaultDebounce
	DatabaseURL string        // overrides database.url
	Host        string        // overrides server.host (--host)
	Port        *int          // overrides server.port when not nil (--port)
	Debug       bool          // logs at debug level, whatever logger.level says (--debug)
	// ConfigCache is where the last applied configuration is kept (mode
	// 0600); "" disables the cache.
	ConfigCache string
	// FallbackToCache starts from ConfigCache when the source is unreadable.
	FallbackToCache bool
	// ReloadBroker, if set, is a NATS URL on which the server answers fleet
	// reload requests (subject hector.control.reload) signed with one of
	// ReloadBrokerKeys, which must then hold at least one key.
	ReloadBroker     string
	ReloadBrokerKeys []reload.Key
	// InstanceID names this process in broker answers; default host-pid.
	InstanceID string
	Version    string    // reported by /health
	LogOutput  io.Writer // default os.Stderr
	// TraceOutput is where the stdout span exporter writes
	// (observability.tracing.exporter: stdout); default os.Stdout.
	TraceOutput io.Writer
	Env         config.LookupEnv
	// Reload triggers a reload per receive (SIGHUP in the CLI).
	Reload <-chan struct{}
	// Ready, if set, is called with the bound address once serving.
	Ready func(addr string)
	// OnOutcome, if set, sees every reload outcome of the main
	// configuration (tests use it); it is a reconciler listener (see
	// reload.Reconciler.AddListener).
	OnOutcome func(reload.Outcome)
	// QueueOverride adjusts the task queue's settings from the
	// configuration (the --queue-* flags).
	QueueOverride func(queue.Settings) queue.Settings
	// QueuePoll is how often idle queue workers look for work; default 200ms.
	QueuePoll time.Duration
	// ConfigHistory is how many applied versions the history keeps;
	// default 1000 (reload.DefaultHistoryLimit).
	ConfigHistory int
	// Warnings are logged at startup, before the configuration is read
	// (the CLI's: credentials given on the command line).
	Warnings []string
	// Notes are logged at info level at startup (the CLI's: the backend a
	// pointer file named).
	Notes []string
}

// Run starts Hector and blocks until ctx ends, then shuts down gracefully,
// in this order: stop accepting and finish in-flight requests within
// server.shutdown_timeout; stop the queue, handing running tasks back with
// their checkpoints; stop the reconciler; write the history rows and the
// last-good cache still pending; close the snapshot's resources (the
// database among them). It returns nil then.
//
// It returns an error when startup fails: the configuration is unreadable
// or invalid, the database cannot be opened, the address cannot be bound,
// the reload broker has no key or its URL is unusable. Nothing is left running then.
//
// Run owns everything it starts, and o.Source too: a Source that is an
// io.Closer is closed when Run returns, either way. The caller owes nothing
// after Run returns.
func Run(ctx context.Context, o Options) error {
	if o.LogOutput == nil {
		o.LogOutput = os.Stderr
	}
	if o.Env == nil {
		o.Env = os.LookupEnv
	}
	if o.TraceOutput == nil {
		o.TraceOutput = os.Stdout
	}
	if o.InstanceID == "" {
		host, _ := os.Hostname()
		o.InstanceID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	logs := logging.New(o.LogOutput)
	log := slog.New(logs)
	for _, w := range o.Warnings {
		log.Warn(w)
	}
	for _, n := range o.Notes {
		log.Info(n)
	}
	rt := &snapshot.Runtime{}
	src := o.Source
	if src == nil {
		src = &source.File{Path: o.ConfigPath, Debounce: o.Debounce}
	}
	if c, ok := src.(io.Closer); ok {
		defer c.Close()
	}
	rec := &reload.Reconciler{Runtime: rt, Source: src, Env: o.Env, Log: log,
		CachePath: o.ConfigCache, FallbackToCache: o.FallbackToCache, HistoryLimit: o.ConfigHistory}
	if o.Host != "" || o.Port != nil || o.Debug {
		host, port, debug := o.Host, o.Port, o.Debug
		rec.Override = func(c *config.Config) {
			if host != "" {
				c.Server.Host = host
			}
			if port != nil {
				p := *port
				c.Server.Port = &p
			}
			if debug {
				c.Logger.Level = "debug"
			}
		}
	}
	metrics := observe.NewMetrics()
	tracing := &observe.Tracing{}
	defer shutdownTelemetry(tracing, metrics, log)
	rec.BuildOptions = snapshot.Options{DatabaseURL: o.DatabaseURL, Log: log, Metrics: metrics, Tracing: tracing}
	metrics.TaskStates(store.TaskStateNames(), func(state string) (int, error) {
		snap, release := rt.Acquire()
		defer release()
		if snap == nil {
			return 0, errors.New("shutting down")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return snap.Store.CountTasks(ctx, store.TaskState(state))
	})
	srv := &server.Server{Runtime: rt, Reconciler: rec, Metrics: metrics, Tracing: tracing, Log: log, Version: o.Version}
	q := &queue.Queue{Runtime: rt, Log: log, Instance: o.InstanceID, Override: o.QueueOverride, PollInterval: o.QueuePoll,
		Observe: func(o queue.Outcome) { metrics.TaskAttempt(string(o)) }, OnTurn: metrics.AgentTurn, Tracing: tracing}
	srv.Queue = q
	q.Live = &live.Hub{}
	srv.A2A = &a2ahttp.Service{Runtime: rt, Queue: q, Log: log, Live: q.Live, OnPush: metrics.PushResult}
	rec.OnSourceError = func(error) { metrics.SourceError(src.Name()) }
	rec.AddListener(func(out reload.Outcome) {
		metrics.Reload(out.Metric())
		forgetRemoved(metrics, out)
		traceReload(tracing, out)
	})
	rec.AddListener(srv.PublishOutcome)
	if o.OnOutcome != nil {
		rec.AddListener(o.OnOutcome)
	}
	rec.Appliers = []reload.Applier{
		reload.ApplierFunc(func(_, next *config.Config) (reload.Prepared, error) {
			return reload.Prepared{Commit: func() { logs.Apply(next.Logger); metrics.SetEnabled(next.Observability.Metrics.On()) }}, nil
		}),
		tracingApplier(tracing, o.TraceOutput),
		otlpMetricsApplier(metrics),
		srv.ListenerApplier(),
		q,
	}
	first, err := rec.Start(ctx)
	if err != nil {
		if len(first.Errors) > 0 && first.Errors[0].Path == "(source)" {
			hint := ""
			if !o.FallbackToCache && o.ConfigCache != "" {
				hint = "\n(--config-fallback last-good starts from the last known good configuration in " + o.ConfigCache + ")"
			}
			return fmt.Errorf("configuration source %s cannot be read: %s%s", src.Name(), first.Errors[0].Message, hint)
		}
		return fmt.Errorf("configuration %s is not valid:\n%w", src.Name(), err)
	}
	defer func() {
		// Every retired snapshot's MCP servers (processes) are closed
		// before the process exits, so nothing they started outlives it.
		rt.Close()
		rt.Drain(10 * time.Second)
	}()
	snap := rt.Current()
	cfg := snap.Config
	loopCtx, stopLoop := context.WithCancel(context.Background())
	defer stopLoop()
	var registry *apps.Registry
	if cat, ok := source.AppsOf(src); ok {
		registry = &apps.Registry{Catalog: cat, Main: rt, Env: o.Env, Log: log, HistoryLimit: o.ConfigHistory,
			OnCatalogError: func(error) { metrics.SourceError(cat.Name()) },
			Metrics:        metrics,
			Tracing:        tracing,
			OnOutcome: func(_ string, out reload.Outcome) {
				metrics.AppReload(string(out.Result))
				forgetRemoved(metrics, out)
				traceReload(tracing, out)
				srv.PublishOutcome(out) // on /admin/config/events, with its app named
			}}
		registry.Start(loopCtx) // before serving: every valid app serves from the first request
		defer registry.Close()  // before rt closes: the apps borrow its store
		srv.Apps, q.Tenants, srv.A2A.Tenants = registry, registry, registry
		rec.AddListener(func(out reload.Outcome) {
			if out.Result == reload.Applied {
				go registry.Rebase() // the apps follow a move of the main database
			}
		})
	}
	metrics.MCPServers(func() []observe.MCPStatus { return mcpStatus(rt, registry) })
	if err := srv.Listen(cfg.Server.Addr()); err != nil {
		return err
	}
	warnLoopbackInContainer(log, cfg.Server.Host, o.Env)
	log.Info("hector started", "version", o.Version, "config", src.Name(), "config_version", first.Version,
		"addr", srv.Addr(), "watch", o.Watch, "agents", len(cfg.Agents), "instance", o.InstanceID)
	if o.Ready != nil {
		o.Ready(srv.Addr())
	}

	if o.ReloadBroker != "" {
		// Before the queue and the loop start, so that a failure leaves
		// nothing running; requests wait for the loop.
		stopBroker, err := reload.StartBroker(loopCtx, reload.BrokerOptions{URL: o.ReloadBroker, Instance: o.InstanceID,
			Keys: o.ReloadBrokerKeys, Refused: metrics.BrokerRefused}, rec, log)
		if err != nil {
			srv.Shutdown()
			return err
		}
		defer stopBroker()
	}
	queueCtx, stopQueue := context.WithCancel(context.Background())
	defer stopQueue()
	q.Start(queueCtx)
	srv.A2A.Start(queueCtx)
	loopDone := make(chan struct{})
	if registry != nil && o.Watch {
		go registry.Run(loopCtx)
	}
	go func() {
		defer close(loopDone)
		if o.Watch {
			rec.Run(loopCtx)
			return
		}
		rec.RunTriggersOnly(loopCtx)
	}()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-o.Reload:
			go func() {
				if _, err := rec.Reload(loopCtx, reload.TriggerSIGHUP, "signal"); err != nil {
					log.Warn("reload not run", "error", err)
				}
				if registry != nil {
					if err := registry.Resync(loopCtx); err != nil {
						log.Warn("apps not reloaded", "error", err)
					}
				}
			}()
		}
	}
	log.Info("shutting down", "timeout", srv.ShutdownTimeout())
	srv.Shutdown()
	stopQueue()
	q.Wait() // running tasks are handed back to the queue, checkpoints kept
	stopLoop()
	<-loopDone
	rec.FlushHistory() // history rows and the last-good cache still being written
	log.Info("stopped")
	return nil
}

// forgetRemoved stops exporting the model, agent and tool series of what an
// applied outcome removed, and of the LLMs it changed (their provider and
// model labels may have changed); a changed agent or tool keeps its series
// and its counts, as its labels stay the same.
func forgetRemoved(m *observe.Metrics, out reload.Outcome) {
	if out.Result != reload.Applied {
		return
	}
	for _, kind := range []string{"llms", "agents", "tools"} {
		ch := out.Applied[kind]
		names := append([]string(nil), ch.Removed...)
		if kind == "llms" {
			names = append(names, ch.Changed...)
		}
		if len(names) > 0 {
			m.Forget(out.App, kind, names)
		}
	}
}

// warnLoopbackInContainer says loudly that a server in a container (PID
// 1, or Kubernetes' variables set) listening on loopback is unreachable
// from outside it: every probe and client would fail.
func warnLoopbackInContainer(log *slog.Logger, host string, env config.LookupEnv) {
	_, k8s := env("KUBERNETES_SERVICE_HOST")
	if !(k8s || os.Getpid() == 1) {
		return
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return
	}
	log.Warn("LISTENING ON LOOPBACK IN A CONTAINER: probes and clients outside the container cannot reach "+host+
		"; set server.host: 0.0.0.0, --host 0.0.0.0 or HECTOR_HOST=0.0.0.0", "host", host)
}

// mcpStatus reports the MCP servers of the main configuration and of every
// app (registry may be nil), for the metrics.
func mcpStatus(rt *snapshot.Runtime, registry *apps.Registry) []observe.MCPStatus {
	runtimes := []*snapshot.Runtime{rt}
	if registry != nil {
		for _, a := range registry.List() {
			runtimes = append(runtimes, a.Runtime)
		}
	}
	var out []observe.MCPStatus
	for _, r := range runtimes {
		s, release := r.Acquire()
		if s != nil {
			out = append(out, s.MCPStatus()...)
		}
		release()
	}
	return out
}
