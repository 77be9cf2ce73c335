// Package apps runs the apps (tenants) of one Hector process: each app is
// a configuration document of its own — agents, tools, LLMs — kept in a
// source.Catalog beside the main document, applied by its own reconciler
// into its own snapshot runtime, with its own history. A broken app
// document is rejected for that app only; the others and the main
// configuration keep serving.
//
// Apps borrow the main configuration's database (their sessions and tasks
// carry the app's name as their tenant) and its listener, auth issuers,
// queue and logging: an app's document may not set those sections.
package apps

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/config/source"
	"github.com/hector-run/hector/internal/observe"
	"github.com/hector-run/hector/internal/reload"
	"github.com/hector-run/hector/internal/snapshot"
	"github.com/hector-run/hector/internal/store"
)

// writeTimeout bounds one write of an app's document to the catalog.
const writeTimeout = 10 * time.Second

// Errors of Create and Delete.
var (
	ErrExists   = errors.New("app already exists")
	ErrNotFound = errors.New("no such app")
)

// App is one running app. Its Runtime serves requests of its tenant; its
// Reconciler applies its document. Runtime.Current is nil while the app
// has never had a valid document.
type App struct {
	Name       string
	Runtime    *snapshot.Runtime
	Reconciler *reload.Reconciler

	src    *appSource
	cancel context.CancelFunc
	done   chan struct{} // closed when the reconciler's loop has returned
}

// Registry runs one App per document of Catalog. Start it after the main
// configuration is committed; Close it before the main runtime closes.
type Registry struct {
	Catalog source.Catalog
	// Main is the main configuration's runtime: it serves tenant "" and
	// lends its store to every app.
	Main         *snapshot.Runtime
	Env          config.LookupEnv
	Log          *slog.Logger
	HistoryLimit int // per app; see reload.Reconciler.HistoryLimit
	// OnOutcome, if set, sees every outcome of every app (see
	// reload.Reconciler.AddListener for what it may do).
	OnOutcome func(app string, o reload.Outcome)
	// OnCatalogError, if set, is called for every failed list or watch of
	// the catalog (metrics count them).
	OnCatalogError func(err error)
	// Metrics, if set, count the apps' model calls, turns and tool calls;
	// a removed app's series are deleted. Tracing, if set, traces them.
	Metrics *observe.Metrics
	Tracing *observe.Tracing

	ops sync.Mutex // serialises starting, creating, deleting and rebasing apps

	mu          sync.RWMutex
	apps        map[string]*App
	ctx         context.Context // the apps' reconcilers run under it
	lent        *store.Store    // the main store the apps use
	releaseLent func()
	closed      bool // by Close; guarded by ops

	catalogMu sync.Mutex
	catalog   CatalogStatus

	pendingMu sync.Mutex
	pending   map[string]source.Revision // catalog news not yet handled
	kick      chan struct{}
}

// Start lends the main configuration's store to the apps and starts every
// app the catalog lists, each applying its document (an invalid one is
// rejected and logged; the app then waits for a valid one). Apps run
// under ctx until Close. A catalog that cannot be listed is logged, and
// Run's watch picks the apps up when it answers. Start needs a committed
// main snapshot; call it once, before Run.
func (r *Registry) Start(ctx context.Context) {
	r.ctx = ctx
	r.apps = map[string]*App{}
	r.pending = map[string]source.Revision{}
	r.kick = make(chan struct{}, 1)
	r.ops.Lock()
	defer r.ops.Unlock()
	r.lend()
	list, err := r.Catalog.List(ctx)
	if err != nil {
		r.catalogFailed(err)
		r.Log.Error("apps not listed; they start when the catalog answers", "catalog", r.Catalog.Name(), "error", err)
		return
	}
	names := make([]string, 0, len(list))
	for name := range list {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		r.start(name, reload.TriggerStartup, "")
	}
	r.Log.Info("apps started", "catalog", r.Catalog.Name(), "apps", len(names))
}

// lend holds the main snapshot's store for the apps. The caller holds ops.
func (r *Registry) lend() {
	snap, release := r.Main.Acquire()
	defer release()
	if snap == nil {
		panic("apps: Start before the main configuration was committed")
	}
	r.lent, r.releaseLent = snap.RetainStore()
}

// start builds and starts app name's reconciler, applying its document
// now, and registers it, in place of a running app of that name if any
// (which the caller then stops). The caller holds ops.
func (r *Registry) start(name string, trigger reload.Trigger, actor string) (*App, reload.Outcome) {
	a := r.newApp(name)
	out, err := a.Reconciler.StartAs(r.ctx, trigger, actor)
	if err != nil {
		r.Log.Warn("app configuration rejected; the app serves nothing until its document is valid", "app", name, "error", err)
	}
	ctx, cancel := context.WithCancel(r.ctx)
	a.cancel = cancel
	go func() {
		defer close(a.done)
		a.Reconciler.Run(ctx)
	}()
	r.mu.Lock()
	r.apps[name] = a
	r.mu.Unlock()
	return a, out
}

// newApp makes app name's runtime and reconciler, not started.
func (r *Registry) newApp(name string) *App {
	src := &appSource{cat: r.Catalog, name: name}
	log := r.Log.With("app", name)
	rec := &reload.Reconciler{Runtime: &snapshot.Runtime{}, Source: src, Env: r.Env, Log: log, App: name,
		HistoryLimit: r.HistoryLimit, BuildOptions: snapshot.Options{Store: r.lent, App: name, Log: log, Metrics: r.Metrics, Tracing: r.Tracing}}
	if r.OnOutcome != nil {
		rec.AddListener(func(o reload.Outcome) { r.OnOutcome(name, o) })
	}
	return &App{Name: name, Runtime: rec.Runtime, Reconciler: rec, src: src, done: make(chan struct{})}
}

// stop unregisters a (unless another app took its place), so new
// requests no longer reach it, stops its reconciler and retires its
// snapshot: requests in flight finish on it, and its LLM clients close
// after the last. It returns that snapshot (nil when it had none), whose
// Drained says when the last request left. The caller holds ops.
func (r *Registry) stop(a *App) *snapshot.Snapshot {
	r.mu.Lock()
	if r.apps[a.Name] == a {
		delete(r.apps, a.Name)
	}
	r.mu.Unlock()
	a.cancel()
	<-a.done
	a.Reconciler.FlushHistory()
	last := a.Runtime.Current()
	a.Runtime.Close()
	return last
}

// drainTimeout bounds how long a purge, a move of the database or Close
// waits for an app's requests in flight.
const drainTimeout = 30 * time.Second

// awaitDrained waits until every snapshot of snaps has drained, or
// drainTimeout has passed; it reports whether they all drained.
func awaitDrained(snaps []*snapshot.Snapshot) bool {
	deadline := time.After(drainTimeout)
	for _, s := range snaps {
		if s == nil {
			continue
		}
		select {
		case <-s.Drained():
		case <-deadline:
			return false
		}
	}
	return true
}

// forget deletes a removed app's metric series.
func (r *Registry) forget(app string) {
	if r.Metrics != nil {
		r.Metrics.ForgetApp(app)
	}
}

// Get returns the running app name, or nil.
func (r *Registry) Get(name string) *App {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.apps[name]
}

// List returns the running apps, by name.
func (r *Registry) List() []*App {
	r.mu.RLock()
	out := make([]*App, 0, len(r.apps))
	for _, a := range r.apps {
		out = append(out, a)
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Runtime returns the runtime serving tenant: the main one for "", the
// app's for an app's name, nil for a tenant without an app. It
// implements snapshot.Tenants.
func (r *Registry) Runtime(tenant string) *snapshot.Runtime {
	if tenant == "" {
		return r.Main
	}
	if a := r.Get(tenant); a != nil {
		return a.Runtime
	}
	return nil
}

// Create validates data as app name's document and, when valid, stores it
// in the catalog and starts the app, returning the outcome of applying it
// (trigger and actor are recorded in its history). A rejected document is
// not stored (the outcome lists its errors, err is nil). err is ErrExists
// when the app exists, an invalid-name error, or the catalog's error.
func (r *Registry) Create(ctx context.Context, name string, data []byte, trigger reload.Trigger, actor string) (reload.Outcome, error) {
	if err := source.CheckAppName(name); err != nil {
		return reload.Outcome{}, err
	}
	r.ops.Lock()
	defer r.ops.Unlock()
	switch {
	case r.closed:
		return reload.Outcome{}, errors.New("the server is shutting down")
	case r.Get(name) != nil:
		return reload.Outcome{}, fmt.Errorf("app %q: %w", name, ErrExists)
	}
	if out := r.newApp(name).Reconciler.DryRun(data); out.Result == reload.Rejected {
		return out, nil
	}
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	if err := r.Catalog.Put(wctx, name, data); err != nil {
		return reload.Outcome{}, fmt.Errorf("app %q not stored in %s: %w", name, r.Catalog.Name(), err)
	}
	a, out := r.start(name, trigger, actor)
	if out.Result != reload.Applied {
		// Refused after the dry run (too large for the source, a build
		// that failed): nothing of it stays.
		r.stop(a)
		if err := r.Catalog.Delete(wctx, name); err != nil && !errors.Is(err, source.ErrNotFound) {
			r.Log.Error("a rejected app's document could not be removed", "app", name, "error", err)
		}
	}
	return out, nil
}

// Delete removes app name's document from the catalog and stops the app:
// new requests to it get 404 at once, requests in flight finish. Its
// sessions, tasks and history stay in the database unless purge, when
// they are deleted too. err is ErrNotFound when no such app runs.
func (r *Registry) Delete(ctx context.Context, name string, purge bool) error {
	r.ops.Lock()
	defer r.ops.Unlock()
	a := r.Get(name)
	if a == nil {
		return fmt.Errorf("app %q: %w", name, ErrNotFound)
	}
	// Stopped first, so that no change it is applying writes its document
	// back after the delete.
	last := r.stop(a)
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	if err := r.Catalog.Delete(wctx, name); err != nil && !errors.Is(err, source.ErrNotFound) {
		r.start(name, reload.TriggerStartup, "") // it is still stored: it still runs
		return fmt.Errorf("app %q not deleted from %s: %w", name, r.Catalog.Name(), err)
	}
	r.Log.Info("app deleted", "app", name, "purge", purge)
	r.forget(name)
	if !purge {
		return nil
	}
	// Requests in flight would store their turns after the purge.
	if !awaitDrained([]*snapshot.Snapshot{last}) {
		return fmt.Errorf("app %q deleted, but its data was not purged: requests still ran after %s; delete it again with purge", name, drainTimeout)
	}
	if err := r.lent.PurgeTenant(ctx, name); err != nil {
		return fmt.Errorf("app %q deleted, but its data was not purged: %w", name, err)
	}
	return nil
}

// Run watches the catalog until ctx ends, starting apps that appear,
// stopping those removed (their data is kept) and handing changed
// documents to their reconcilers. A failed watch is retried with capped
// backoff; each new watch reports every app again.
func (r *Registry) Run(ctx context.Context) {
	go r.handle(ctx)
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		if r.degraded() {
			// A catalog with no app reports nothing once watched: a
			// successful list says it recovered.
			if _, err := r.Catalog.List(ctx); err == nil {
				r.catalogOK()
			}
		}
		healthy := false
		err := r.Catalog.Watch(ctx, func(app string, rev source.Revision) {
			if !healthy {
				healthy = true
				r.catalogOK()
			}
			r.notify(app, rev)
		})
		if ctx.Err() != nil {
			return
		}
		r.catalogFailed(err)
		if healthy {
			backoff = 50 * time.Millisecond
		}
		r.Log.Warn("apps watch failed; running apps keep serving while it reconnects", "catalog", r.Catalog.Name(), "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff/2 + rand.N(backoff/2+1)):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// CatalogStatus is the health of the catalog as last seen, and how many
// apps serve: "ok", or "degraded" with the error and since when (running
// apps keep serving their last documents meanwhile).
type CatalogStatus struct {
	Status  string    `json:"status"`
	Error   string    `json:"error,omitempty"`
	Since   time.Time `json:"since"`
	Serving int       `json:"serving"` // apps with an applied document
	Invalid int       `json:"invalid"` // apps whose document was never valid
}

// Status reports the catalog's health and the apps' counts.
func (r *Registry) Status() CatalogStatus {
	r.catalogMu.Lock()
	st := r.catalog
	r.catalogMu.Unlock()
	if st.Status == "" {
		st.Status = "ok"
	}
	for _, a := range r.List() {
		if a.Runtime.Current() != nil {
			st.Serving++
		} else {
			st.Invalid++
		}
	}
	return st
}

func (r *Registry) catalogFailed(err error) {
	if r.OnCatalogError != nil {
		r.OnCatalogError(err)
	}
	r.catalogMu.Lock()
	defer r.catalogMu.Unlock()
	if r.catalog.Status != "degraded" {
		r.catalog.Since = time.Now()
	}
	r.catalog.Status, r.catalog.Error = "degraded", err.Error()
}

func (r *Registry) degraded() bool {
	r.catalogMu.Lock()
	defer r.catalogMu.Unlock()
	return r.catalog.Status == "degraded"
}

func (r *Registry) catalogOK() {
	r.catalogMu.Lock()
	defer r.catalogMu.Unlock()
	if r.catalog.Status == "degraded" {
		r.Log.Info("apps catalog recovered", "catalog", r.Catalog.Name(), "degraded_for", time.Since(r.catalog.Since).Round(time.Millisecond))
	}
	r.catalog = CatalogStatus{Status: "ok", Since: time.Now()}
}

// notify queues a catalog report; the newest per app wins.
func (r *Registry) notify(app string, rev source.Revision) {
	r.pendingMu.Lock()
	r.pending[app] = rev
	r.pendingMu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// handle applies the queued catalog reports until ctx ends.
func (r *Registry) handle(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		}
		r.pendingMu.Lock()
		batch := r.pending
		r.pending = map[string]source.Revision{}
		r.pendingMu.Unlock()
		r.ops.Lock()
		for app, rev := range batch {
			r.changed(app, rev)
		}
		r.ops.Unlock()
	}
}

// changed handles one catalog report. The caller holds ops.
func (r *Registry) changed(app string, rev source.Revision) {
	a := r.Get(app)
	switch {
	case r.closed:
	case errors.Is(rev.Err, source.ErrNotFound):
		// News of a deletion undone since (an app deleted and created
		// again through the API before the watch event was handled) is
		// stale: the document is back, and the app serves it.
		if a != nil && errors.Is(r.Catalog.Load(r.ctx, app).Err, source.ErrNotFound) {
			r.stop(a)
			r.forget(app)
			r.Log.Info("app removed from the catalog; its data is kept", "app", app)
		}
	case a != nil:
		a.src.feed(rev)
	case errors.Is(r.Catalog.Load(r.ctx, app).Err, source.ErrNotFound):
		// News of a document deleted since (an app created and deleted
		// through the API before its watch event was handled).
	default:
		r.start(app, reload.TriggerWatch, "")
	}
}

// Resync lists the catalog now and applies what changed, as the watch
// would: new apps start, removed ones stop, the others re-read their
// documents. It is how apps follow their documents without a watch
// (--config-watch=false: on SIGHUP). A failed list changes nothing and
// is returned.
func (r *Registry) Resync(ctx context.Context) error {
	list, err := r.Catalog.List(ctx)
	if err != nil {
		r.catalogFailed(err)
		return fmt.Errorf("apps not re-read from %s: %w", r.Catalog.Name(), err)
	}
	r.catalogOK()
	r.ops.Lock()
	defer r.ops.Unlock()
	for _, a := range r.List() {
		if _, ok := list[a.Name]; !ok {
			r.changed(a.Name, source.Revision{Err: source.ErrNotFound})
		}
	}
	for app, rev := range list {
		if a := r.Get(app); a != nil {
			if _, err := a.Reconciler.Reload(ctx, reload.TriggerSIGHUP, "signal"); err != nil {
				r.Log.Warn("app not reloaded", "app", app, "error", err)
			}
			continue
		}
		r.changed(app, rev)
	}
	return nil
}

// Rebase restarts every app on the main configuration's current store
// when the main configuration moved to another database (database.url
// changed); otherwise it does nothing. Call it after each applied main
// reload, not from a reconciler listener (it waits for the apps' loops).
func (r *Registry) Rebase() {
	r.ops.Lock()
	defer r.ops.Unlock()
	if cur := r.Main.Current(); r.closed || cur == nil || cur.Store == r.lent {
		return
	}
	old := r.releaseLent
	r.lend()
	// Each app is replaced in place, so that it never stops serving:
	// requests and tasks reach the old app until the new one is current.
	running := r.List()
	retired := make([]*snapshot.Snapshot, 0, len(running))
	for _, a := range running {
		r.start(a.Name, reload.TriggerStartup, "")
		retired = append(retired, r.stop(a))
	}
	go func() { // the old store stays open for the old apps' requests in flight
		awaitDrained(retired)
		old()
	}()
	r.Log.Info("apps moved to the main configuration's new database", "apps", len(running))
}

// Close stops every app (requests in flight finish on their snapshots)
// and returns the main store it borrowed. Call it once, after Run's ctx
// ended, before the main runtime closes.
func (r *Registry) Close() {
	r.ops.Lock()
	defer r.ops.Unlock()
	r.closed = true
	var retired []*snapshot.Snapshot
	for _, a := range r.List() {
		retired = append(retired, r.stop(a))
	}
	if r.releaseLent != nil {
		awaitDrained(retired)
		r.releaseLent()
	}
}
