package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/config/source"
	"github.com/hector-run/hector/internal/logging"
	"github.com/hector-run/hector/internal/reload"
	"github.com/hector-run/hector/internal/runtime"
	"github.com/hector-run/hector/internal/store"
)

// Options configure Run. Zero values mean defaults.
type Options struct {
	ConfigPath  string        // the configuration file
	Watch       bool          // apply file changes live
	Debounce    time.Duration // file-event debounce; default source.DefaultDebounce
	DatabaseURL string        // overrides database.url
	Version     string        // reported by /health
	LogOutput   io.Writer     // default os.Stderr
	Env         config.LookupEnv
	// Reload triggers a reload per receive (SIGHUP in the CLI).
	Reload <-chan struct{}
	// Ready, if set, is called with the bound address once serving.
	Ready func(addr string)
	// OnOutcome, if set, sees every reload outcome (tests use it).
	OnOutcome func(reload.Outcome)
}

// Run starts Hector and blocks until ctx ends, then shuts down gracefully:
// stop accepting, finish in-flight requests within server.shutdown_timeout,
// close the database. It returns an error when startup fails (the
// configuration is unreadable or invalid, the database cannot be opened, the
// address cannot be bound); nothing is left running then.
func Run(ctx context.Context, o Options) error {
	if o.LogOutput == nil {
		o.LogOutput = os.Stderr
	}
	if o.Env == nil {
		o.Env = os.LookupEnv
	}
	logs := logging.New(o.LogOutput)
	log := slog.New(logs)
	rt := &runtime.Runtime{}
	srv := &Server{Runtime: rt, Log: log, Version: o.Version}
	src := &source.File{Path: o.ConfigPath, Debounce: o.Debounce}
	rec := &reload.Reconciler{Runtime: rt, Source: src, Env: o.Env, Log: log, OnOutcome: o.OnOutcome}

	var dbURL string
	rec.Appliers = []reload.Applier{
		reload.ApplierFunc(func(_, next *config.Config) (reload.Prepared, error) {
			return reload.Prepared{Commit: func() { logs.Apply(next.Logger) }}, nil
		}),
		srv.ListenerApplier(),
		reload.ApplierFunc(func(cur, next *config.Config) (reload.Prepared, error) {
			if cur == nil || o.DatabaseURL != "" || databaseURL(next, "") == dbURL {
				return reload.Prepared{}, nil
			}
			return reload.Prepared{Warnings: []string{fmt.Sprintf(
				"database.url changed; the server keeps using %s until it is restarted (see docs/reload.md)", dbURL)}}, nil
		}),
	}
	first, err := rec.Start(ctx)
	if err != nil {
		return fmt.Errorf("configuration %s is not valid:\n%w", o.ConfigPath, err)
	}
	defer rt.Close()
	cfg := rt.Current().Config
	dbURL = databaseURL(cfg, o.DatabaseURL)
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer st.Close()
	srv.Store = st
	if err := srv.Listen(cfg.Server.Addr()); err != nil {
		return err
	}
	log.Info("hector started", "version", o.Version, "config", o.ConfigPath, "config_version", first.Version,
		"database", dbURL, "addr", srv.Addr(), "watch", o.Watch, "agents", len(cfg.Agents))
	if o.Ready != nil {
		o.Ready(srv.Addr())
	}

	loopCtx, stopLoop := context.WithCancel(context.Background())
	loopDone := make(chan struct{})
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
				if _, err := rec.Reload(loopCtx, "sighup"); err != nil {
					log.Warn("reload not run", "error", err)
				}
			}()
		}
	}
	log.Info("shutting down", "timeout", srv.shutdownTimeout())
	srv.Shutdown()
	stopLoop()
	<-loopDone
	log.Info("stopped")
	return nil
}

// databaseURL picks the flag, then database.url, then the default.
func databaseURL(cfg *config.Config, flag string) string {
	switch {
	case flag != "":
		return flag
	case cfg.Database.URL != "":
		return cfg.Database.URL
	}
	return config.DefaultDatabaseURL
}
