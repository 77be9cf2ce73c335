// Package reload is the configuration reconciler: the one loop through which
// every change reaches the running server — the source watch, SIGHUP, the
// admin API, rollbacks and broker messages.
//
// Pipeline per revision (apply, then commit's stages): source error? ->
// same hash as applied? (no-op) -> parse+validate -> guard -> plan -> build
// candidate snapshot -> number the version -> prepare appliers -> swap ->
// remember and record. A failure before the swap leaves the running
// snapshot untouched and yields a rejected Outcome listing every error. The
// applied hash advances only on the swap, so a rejected revision never
// blocks a later one.
package reload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/config/source"
	"github.com/hector-run/hector/internal/snapshot"
	"github.com/hector-run/hector/internal/store"
)

// Result is how a reload attempt ended.
type Result string

// Results of a reload attempt.
const (
	Applied  Result = "applied"
	Rejected Result = "rejected"
	NoOp     Result = "noop"
	// Valid is a dry run (Validate) that found no error.
	Valid Result = "valid"
)

// Trigger names what caused a reload attempt.
type Trigger string

// Triggers of a reload attempt.
const (
	TriggerStartup         Trigger = "startup"
	TriggerStartupFallback Trigger = "startup-fallback" // the cached configuration, the source failing
	TriggerWatch           Trigger = "watch"
	TriggerSIGHUP          Trigger = "sighup"
	TriggerAPI             Trigger = "api"
	TriggerRollback        Trigger = "rollback"
	TriggerBroker          Trigger = "broker"
	TriggerValidate        Trigger = "validate" // a dry run
)

// Outcome reports one reload attempt.
type Outcome struct {
	// App is the app (tenant) whose document this was; "" for the main
	// configuration.
	App       string        `json:"app,omitempty"`
	Result    Result        `json:"result"`
	Version   int64         `json:"version"` // the version serving after this attempt
	Hash      string        `json:"hash,omitempty"`
	Source    string        `json:"source"`
	Trigger   Trigger       `json:"trigger"`
	Actor     string        `json:"actor,omitempty"`
	Applied   config.Plan   `json:"applied,omitempty"`
	Warnings  []string      `json:"warnings,omitempty"`
	Errors    config.Errors `json:"errors,omitempty"`
	ElapsedMS float64       `json:"elapsed_ms"`
	At        time.Time     `json:"at"`
	// Stages breaks ElapsedMS down (parse, validate, plan, build, prepare,
	// commit). The history row is written after the outcome, in the
	// background.
	Stages map[string]float64 `json:"stages_ms,omitempty"`

	denied *ForbiddenError // a guard refused the change
}

// Prepared is an applier's readied change: Commit runs right after the
// snapshot swap, Abort when another step failed. Either may be nil.
type Prepared struct {
	Commit   func()
	Abort    func()
	Warnings []string
}

// Applier applies parts of the configuration that live outside the snapshot
// (listeners, log handlers). Prepare readies next while cur (nil at startup)
// keeps running, must not disturb cur, and leaves nothing behind on error.
type Applier interface {
	Prepare(cur, next *config.Config) (Prepared, error)
}

// ApplierFunc adapts a function to Applier.
type ApplierFunc func(cur, next *config.Config) (Prepared, error)

// Prepare implements Applier.
func (f ApplierFunc) Prepare(cur, next *config.Config) (Prepared, error) { return f(cur, next) }

// historySize is how many outcomes Outcomes keeps.
const historySize = 100

// Reconciler owns the runtime's snapshot: it is the only caller of Commit.
type Reconciler struct {
	Runtime      *snapshot.Runtime
	Source       source.Source
	Env          config.LookupEnv
	Log          *slog.Logger
	Appliers     []Applier
	BuildOptions snapshot.Options
	// CachePath, if set, receives every applied document (mode 0600): the
	// last known good configuration.
	CachePath string
	// FallbackToCache lets Start use CachePath when the source cannot be read.
	FallbackToCache bool
	// OnSourceError, if set, is called for every failed read or watch of
	// the source (metrics count them); outcomes report only the first of a
	// run of identical failures.
	OnSourceError func(err error)
	// MaxBackoff caps the wait between attempts to re-establish a failed
	// watch; default 500ms, so a change made while the backend was down is
	// applied within about that long of its return.
	MaxBackoff time.Duration
	// HistoryLimit is how many applied versions the database's history
	// keeps, newest first; older ones are deleted as new ones are
	// recorded. 0 means DefaultHistoryLimit.
	HistoryLimit int
	// Override, if set, adjusts every valid document before it is planned
	// and applied, the same way each time (the serve command's --host,
	// which wins over server.host). It must be deterministic.
	Override func(*config.Config)
	// App, when set, names the app (tenant) whose document this
	// reconciler applies: its history is the app's, and its document may
	// not set the server-wide sections (config.ServerWide). BuildOptions
	// must then lend it the main configuration's store.
	App string

	mailbox  chan source.Revision // capacity 1: the newest revision wins
	requests chan request
	parser   config.Parser // reuses the parse of unchanged entities between revisions

	history historyWriter // records applied versions off the reload's critical path
	quiet   quiet         // what the watch already reported

	mu       sync.Mutex
	applied  []byte // the document now applied (secrets included), for Unredact
	hash     string
	outcomes []Outcome
	status   SourceStatus
	// listeners see every outcome (AddListener); guarded by mu.
	listeners []func(Outcome)
}

// AddListener registers fn to see every outcome of this reconciler (applied,
// rejected, no-op), in the order listeners were added, after the outcome is
// logged and kept in Outcomes. Listeners only observe: whatever a change
// puts in force is applied by an Applier before the outcome exists.
//
// Listeners are called from the loop goroutine (and from Start's), and also
// from the goroutine of a Submit whose document is refused before it reaches
// the loop (its secrets cannot be restored), so two calls may overlap: fn
// must be safe for concurrent use. The reconciler waits for fn, so it must
// not block, and it must not call Reload or Submit (the loop would wait on
// itself). AddListener may be called at any time; an outcome already being
// delivered is not seen by a listener added meanwhile.
func (r *Reconciler) AddListener(fn func(Outcome)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.listeners = append(r.listeners, fn)
}

// SourceStatus is the health of the configuration source as last seen:
// "ok", or "degraded" with the error and when the failures began. While
// degraded the last applied configuration keeps serving.
type SourceStatus struct {
	Status string    `json:"status"`
	Source string    `json:"source"`
	Error  string    `json:"error,omitempty"`
	Since  time.Time `json:"since"`
}

// SourceStatus reports the source's health.
func (r *Reconciler) SourceStatus() SourceStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.status
	if st.Status == "" {
		st.Status = "ok"
	}
	st.Source = r.Source.Name()
	return st
}

// sourceFailed records a failed read or watch. It reports whether this is
// news (the source was healthy, or failed differently), which is when an
// outcome and a log line are due.
func (r *Reconciler) sourceFailed(err error) bool {
	if r.OnSourceError != nil {
		r.OnSourceError(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	msg := err.Error()
	if r.status.Status == "degraded" && r.status.Error == msg {
		return r.quiet.firstReport(msg) // else reported already
	}
	if r.status.Status != "degraded" {
		r.status.Since = time.Now()
	}
	r.status.Status, r.status.Error = "degraded", msg
	return true
}

// sourceOK records a successful read; it logs the recovery.
func (r *Reconciler) sourceOK() {
	r.mu.Lock()
	was := r.status
	if was.Status != "ok" {
		r.status = SourceStatus{Status: "ok", Since: time.Now()}
	}
	r.mu.Unlock()
	if was.Status == "degraded" {
		r.Log.Info("config source recovered", "source", r.Source.Name(), "degraded_for", time.Since(was.Since).Round(time.Millisecond))
	}
}

type request struct {
	trigger  Trigger
	actor    string
	data     []byte // nil: re-read the source
	ifMatch  string // non-empty: apply only if this is the applied hash
	guard    Guard
	reply    chan Outcome
	conflict chan string
}

// Guard decides whether the caller of a Reload or Submit may make the
// change from cur (nil at startup) to next, a valid configuration. It runs
// inside the loop, after validation and before anything is built, so it
// judges exactly what would be applied. A refusal is a *ForbiddenError.
type Guard func(cur, next *config.Config) error

// ForbiddenError is a change its caller may not make (see Guard). The
// attempt is recorded as rejected, naming the refusal.
type ForbiddenError struct{ Path, Reason string }

func (e *ForbiddenError) Error() string { return e.Path + ": " + e.Reason }

// Option adjusts one Reload or Submit.
type Option func(*request)

// WithGuard makes the change subject to g.
func WithGuard(g Guard) Option { return func(r *request) { r.guard = g } }

// PreconditionError reports that an edit was based on a configuration that
// is no longer the applied one.
type PreconditionError struct{ Expected, Current string }

func (e *PreconditionError) Error() string {
	// No hash is quoted: callers see only keyed hashes (the ETag header).
	return "the configuration changed since it was read: GET /admin/config returns the current document and its ETag"
}

func (r *Reconciler) init() {
	if r.mailbox == nil {
		r.mailbox = make(chan source.Revision, 1)
		r.requests = make(chan request)
	}
}

// Start loads and applies the initial configuration. It fails, applying
// nothing, when the source cannot be read or the document is invalid; the
// error then lists every problem. With FallbackToCache, an unreadable source
// falls back to the last known good document at CachePath.
func (r *Reconciler) Start(ctx context.Context) (Outcome, error) {
	return r.StartAs(ctx, TriggerStartup, "")
}

// StartAs is Start recording trigger and actor in the outcome and the
// history: an app created through the API starts as TriggerAPI by its
// creator.
func (r *Reconciler) StartAs(ctx context.Context, trigger Trigger, actor string) (Outcome, error) {
	r.init()
	rev := r.Source.Load(ctx)
	if rev.Err != nil && r.FallbackToCache && r.CachePath != "" {
		data, err := os.ReadFile(r.CachePath)
		if err == nil {
			r.Log.Warn("CONFIG SOURCE UNREADABLE: starting from the last known good configuration; it will be replaced when the source can be read again",
				"source", r.Source.Name(), "error", rev.Err, "cache", r.CachePath)
			r.sourceFailed(rev.Err) // degraded from the first request served
			r.quiet.startedDegraded(rev.Err)
			rev = source.NewRevision("cache:"+r.CachePath, data)
			trigger = TriggerStartupFallback
		} else {
			rev.Err = fmt.Errorf("%w (and no last known good configuration at %s: %v)", rev.Err, r.CachePath, err)
		}
	}
	out := r.apply(ctx, rev, trigger, actor, false, nil)
	if out.Result != Applied {
		return out, out.Errors
	}
	return out, nil
}

// Run watches the source and applies changes until ctx ends. Call it once,
// after Start. A failing watch is restarted with capped backoff while the
// last applied configuration keeps serving.
func (r *Reconciler) Run(ctx context.Context) {
	r.init()
	go r.watch(ctx)
	r.loop(ctx)
}

// RunTriggersOnly is Run without watching the source: only Reload and Submit
// apply changes.
func (r *Reconciler) RunTriggersOnly(ctx context.Context) {
	r.init()
	r.loop(ctx)
}

func (r *Reconciler) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case rev := <-r.mailbox:
			// The watcher's read is a hint: it may predate a write-back this
			// loop has done since (an API edit or rollback), and applying it
			// would revert that. Read again, after every write of our own.
			// Errors from the watch were recorded (and deduplicated) there.
			if rev.Err == nil {
				rev = r.Source.Load(ctx)
				if errors.Is(rev.Err, fs.ErrNotExist) {
					continue // mid-swap: the next event reads it
				}
				if rev.Err != nil && !r.sourceFailed(rev.Err) {
					continue // reported already
				}
				if r.quiet.repeat(rev) {
					continue // rejected already, and validation would say the same
				}
			}
			r.apply(ctx, rev, TriggerWatch, "", false, nil)
		case req := <-r.requests:
			r.mu.Lock()
			current := r.hash
			r.mu.Unlock()
			if req.ifMatch != "" && req.ifMatch != current {
				req.conflict <- current
				continue
			}
			if req.data == nil {
				rev := r.Source.Load(ctx)
				if rev.Err != nil {
					r.sourceFailed(rev.Err)
				} else {
					r.sourceOK()
				}
				req.reply <- r.apply(ctx, rev, req.trigger, req.actor, false, req.guard)
			} else {
				req.reply <- r.apply(ctx, source.NewRevision(r.Source.Name(), req.data), req.trigger, req.actor, true, req.guard)
			}
		}
	}
}

// watch keeps a watch on the source, re-establishing it with capped
// exponential backoff (and jitter) when it fails. Each Watch begins with a
// read, so whatever changed while the source was unreachable is applied on
// its return.
func (r *Reconciler) watch(ctx context.Context) {
	const initial = 50 * time.Millisecond
	maxBackoff := r.MaxBackoff
	if maxBackoff <= 0 {
		maxBackoff = 500 * time.Millisecond
	}
	backoff := initial
	for ctx.Err() == nil {
		var healthy atomic.Bool
		err := r.Source.Watch(ctx, func(rev source.Revision) {
			if rev.Err != nil {
				if r.sourceFailed(rev.Err) {
					r.offer(rev)
				}
				return
			}
			healthy.Store(true)
			r.sourceOK()
			r.offer(rev)
		})
		if ctx.Err() != nil {
			return
		}
		if healthy.Load() {
			backoff = initial
		}
		if r.sourceFailed(err) {
			r.Log.Error("config watch failed; the running configuration keeps serving while it reconnects",
				"source", r.Source.Name(), "error", err)
			r.offer(source.Revision{Source: r.Source.Name(), Err: err})
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// offer puts rev in the mailbox, replacing an older revision not yet applied.
func (r *Reconciler) offer(rev source.Revision) {
	for {
		select {
		case r.mailbox <- rev:
			return
		default:
		}
		select {
		case <-r.mailbox:
		default:
		}
	}
}

func (r *Reconciler) send(ctx context.Context, req request, opts []Option) (Outcome, error) {
	r.init()
	for _, o := range opts {
		o(&req)
	}
	req.reply, req.conflict = make(chan Outcome, 1), make(chan string, 1)
	select {
	case r.requests <- req:
	case <-ctx.Done():
		return Outcome{}, ctx.Err()
	}
	select {
	case out := <-req.reply:
		if out.denied != nil {
			return out, out.denied
		}
		return out, nil
	case current := <-req.conflict:
		return Outcome{}, &PreconditionError{Expected: req.ifMatch, Current: current}
	case <-ctx.Done():
		return Outcome{}, ctx.Err()
	}
}

// Reload re-reads the source and applies it through the loop, returning the
// outcome. trigger names the cause ("sighup", "api"), actor who asked. An
// unreadable source or an invalid document is not an error: the outcome is
// Rejected and lists why. The error is a *ForbiddenError, returned with the
// outcome, when a guard refused the change, or ctx's error when ctx ended
// before the outcome arrived.
//
// Reload waits for the loop (Run or RunTriggersOnly) to take the request:
// with no loop running it blocks until ctx ends. Once the loop has taken
// it, ending ctx only stops the wait; the attempt runs to its end and is
// recorded.
func (r *Reconciler) Reload(ctx context.Context, trigger Trigger, actor string, opts ...Option) (Outcome, error) {
	return r.send(ctx, request{trigger: trigger, actor: actor}, opts)
}

// Submit applies data through the loop as if the source held it. Once
// applied, data is written back to the source when the source is writable,
// so the source of truth agrees (a failed write-back is a warning). data may
// contain REDACTED secrets; they are restored from the running document.
// With ifMatch set, nothing happens unless the applied document's hash is
// ifMatch; the error is then a *PreconditionError. A guard's refusal is a
// *ForbiddenError, returned with the outcome. Data whose secrets cannot be
// restored is rejected (and recorded) on the caller's goroutine, without
// the loop; otherwise Submit waits for the loop as Reload does.
func (r *Reconciler) Submit(ctx context.Context, data []byte, trigger Trigger, actor, ifMatch string, opts ...Option) (Outcome, error) {
	full, err := config.Unredact(data, r.Applied())
	if err != nil {
		out := r.rejected(source.NewRevision(r.Source.Name(), data), trigger, actor, err)
		r.record(out)
		return out, nil
	}
	return r.send(ctx, request{trigger: trigger, actor: actor, data: full, ifMatch: ifMatch}, opts)
}

// DryRun parses, validates and plans data against the running configuration
// without building or applying anything. Nothing is recorded.
func (r *Reconciler) DryRun(data []byte) Outcome {
	start := time.Now()
	rev := source.NewRevision(r.Source.Name(), data)
	out := Outcome{Result: Valid, Source: rev.Source, Trigger: TriggerValidate, Hash: rev.Hash, At: start}
	cur := r.Runtime.Current()
	if cur != nil {
		out.Version = cur.Version
	}
	full, err := config.Unredact(data, r.Applied())
	var errs config.Errors
	var doc *config.Document
	if err == nil {
		doc, errs = config.Parse(full, r.Env)
		if errs == nil && r.App != "" {
			errs = doc.AppErrors()
		}
		if errs == nil && r.Override != nil {
			r.Override(doc.Config)
		}
	} else {
		errs = asErrors(err, "(document)")
	}
	if errs != nil {
		out.Result, out.Errors = Rejected, errs
	} else {
		for _, w := range doc.Warnings {
			out.Warnings = append(out.Warnings, w.Warning())
		}
		if cur != nil {
			out.Applied = config.Diff(cur.Config, doc.Config)
		}
	}
	out.ElapsedMS = msSince(start)
	return out
}

// Applied returns the document now applied, secrets included.
func (r *Reconciler) Applied() []byte {
	doc, _ := r.AppliedWithHash()
	return doc
}

// AppliedWithHash returns the document now applied and its hash, read
// together: an ETag made from the hash matches the document.
func (r *Reconciler) AppliedWithHash() ([]byte, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applied, r.hash
}

// PublicHash is hash as API callers see it (store.PublicHash of the
// current snapshot's database): never the plain hash of a document that
// may hold literal secrets.
func (r *Reconciler) PublicHash(hash string) string {
	snap, release := r.Runtime.Acquire()
	defer release()
	if snap == nil || snap.Store == nil {
		return ""
	}
	return snap.Store.PublicHash(hash)
}

// Public returns o as API callers and fleet acks show it: its hash made
// public (see PublicHash).
func (r *Reconciler) Public(o Outcome) Outcome {
	o.Hash = r.PublicHash(o.Hash)
	return o
}

// Outcomes returns the most recent attempts, oldest first.
func (r *Reconciler) Outcomes() []Outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Outcome(nil), r.outcomes...)
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

func (r *Reconciler) rejected(rev source.Revision, trigger Trigger, actor string, err error) Outcome {
	out := Outcome{Result: Rejected, Source: rev.Source, Trigger: trigger, Actor: actor, Hash: rev.Hash, At: time.Now()}
	if cur := r.Runtime.Current(); cur != nil {
		out.Version = cur.Version
	}
	out.Errors = asErrors(err, "(document)")
	return out
}

// asErrors returns err as the errors of an outcome: the config.Errors it is
// or wraps, with their paths and positions, else one error at path, which
// names the step that failed ("(document)", "(build)", "(apply)").
func asErrors(err error, path string) config.Errors {
	var errs config.Errors
	if errors.As(err, &errs) {
		return errs
	}
	return config.Errors{{Path: path, Message: err.Error()}}
}

// apply runs the pipeline for one revision. Only the loop (or Start, before
// the loop runs) calls it, so applies never overlap. writeBack writes an
// applied revision to the source; guard, if set, may refuse the change.
func (r *Reconciler) apply(ctx context.Context, rev source.Revision, trigger Trigger, actor string, writeBack bool, guard Guard) Outcome {
	start := time.Now()
	cur := r.Runtime.Current()
	out := Outcome{Source: rev.Source, Trigger: trigger, Actor: actor, Hash: rev.Hash, At: start}
	if cur != nil {
		out.Version = cur.Version
	}
	r.mu.Lock()
	applied := r.hash
	r.mu.Unlock()
	switch {
	case rev.Err != nil:
		out.Result, out.Errors = Rejected, config.Errors{{Path: "(source)", Message: rev.Err.Error()}}
	case rev.Hash == applied && !fromCache(cur, rev):
		out.Result = NoOp
	default:
		r.commit(ctx, rev, cur, guard, &out)
		if out.Result == Applied && writeBack {
			if w, ok := r.Source.(source.Writer); ok {
				if err := w.Write(rev.Data); err != nil {
					out.Warnings = append(out.Warnings, fmt.Sprintf("applied, but writing back to %s failed: %v", r.Source.Name(), err))
				}
			}
		}
	}
	out.ElapsedMS = msSince(start)
	r.record(out)
	return out
}

// stageClock times the pipeline's steps into Outcome.Stages: each mark
// records the time since the previous one under a stage's name.
type stageClock struct {
	stages map[string]float64
	since  time.Time
}

func (c *stageClock) mark(name string) {
	c.stages[name] = msSince(c.since)
	c.since = time.Now()
}

// commit takes rev, a readable revision that differs from the applied one,
// from parse to swap: parse, guard, plan, build, number, prepare, swap,
// remember. It fills out, whose Result is Applied only if the snapshot was
// swapped; at every earlier failure out lists the errors and nothing of the
// attempt is left running or open: the running snapshot and appliers are
// untouched. cur is the running snapshot (nil at startup). The caller must
// be apply, so that only one commit runs at a time.
//
// out.Stages has the keys parse and validate (from the parser), plan
// (guard and plan), build, prepare (version number and appliers) and commit
// (swap): bench/reloadcost reports them.
func (r *Reconciler) commit(ctx context.Context, rev source.Revision, cur *snapshot.Snapshot, guard Guard, out *Outcome) {
	out.Result = Rejected
	out.Stages = map[string]float64{}
	doc, ok := r.parse(rev, out)
	if !ok {
		return
	}
	clock := stageClock{stages: out.Stages, since: time.Now()}
	for _, w := range doc.Warnings {
		out.Warnings = append(out.Warnings, w.Warning())
	}
	var curCfg *config.Config
	var curHash string
	if cur != nil {
		curCfg, curHash = cur.Config, cur.Hash
	}
	if !admit(guard, curCfg, doc.Config, out) {
		return
	}
	plan := doc.PlanFrom(curCfg, curHash)
	if r.App != "" { // the defaults of sections an app cannot set are not its changes
		for _, section := range config.ServerWide {
			delete(plan, section)
		}
	}
	clock.mark("plan")
	next, err := r.build(ctx, rev, doc.Config, cur, plan)
	clock.mark("build")
	if err != nil {
		out.Errors = asErrors(err, "(build)")
		return
	}
	if err := r.number(ctx, next, cur); err != nil {
		next.Discard()
		out.Errors = config.Errors{{Path: "database.url", Message: err.Error()}}
		return
	}
	prepared, err := r.prepare(curCfg, doc.Config, out)
	if err != nil {
		next.Discard()
		out.Errors = asErrors(err, "(apply)")
		return
	}
	clock.mark("prepare")
	r.swap(next, prepared, rev)
	out.Result, out.Version, out.Applied = Applied, next.Version, plan
	clock.mark("commit")
	r.remember(next, rev, doc.Format, *out)
}

// parse decodes and validates rev with the reconciler's Parser, which
// reuses the unchanged parts of the previous revision, and records the
// parse and validate stages in out. On false out.Errors lists every
// problem. It holds nothing that needs releasing.
func (r *Reconciler) parse(rev source.Revision, out *Outcome) (*config.Document, bool) {
	var ps config.ParseStats
	doc, errs := r.parser.ParseHashed(rev.Data, rev.Hash, r.Env, &ps)
	out.Stages["parse"] = float64(ps.Decode.Microseconds()) / 1000
	out.Stages["validate"] = float64(ps.Validate.Microseconds()) / 1000
	if errs == nil && r.App != "" {
		errs = doc.AppErrors()
	}
	if errs == nil && r.Override != nil {
		r.Override(doc.Config)
	}
	if errs != nil {
		out.Errors = errs
		return nil, false
	}
	return doc, true
}

// admit asks guard (none: every change is admitted) whether the change from
// cur to next may be made, before anything is built. On a refusal it marks
// out as denied, so Reload and Submit return the *ForbiddenError, and
// reports false.
func admit(guard Guard, cur, next *config.Config, out *Outcome) bool {
	if guard == nil {
		return true
	}
	err := guard(cur, next)
	if err == nil {
		return true
	}
	var fe *ForbiddenError
	if !errors.As(err, &fe) {
		fe = &ForbiddenError{Path: "(document)", Reason: err.Error()}
	}
	out.denied, out.Errors = fe, config.Errors{{Path: fe.Path, Message: fe.Reason}}
	return false
}

// build constructs the candidate snapshot of cfg, reusing whatever of cur
// plan leaves unchanged, and stamps it with rev's hash and source. On error
// nothing is left open (snapshot.Build closes what it opened). On success
// the caller owns the candidate: it must either swap it in or Discard it.
func (r *Reconciler) build(ctx context.Context, rev source.Revision, cfg *config.Config, cur *snapshot.Snapshot, plan config.Plan) (*snapshot.Snapshot, error) {
	opts := r.BuildOptions
	opts.Plan = plan
	next, err := snapshot.Build(ctx, cfg, cur, opts)
	if err != nil {
		return nil, err
	}
	next.Hash, next.Source = rev.Hash, rev.Source
	return next, nil
}

// number sets next.Version. Versions are numbered in the database, so they
// continue across restarts and instances sharing it agree: content that is
// already the latest recorded version (another instance applied it first)
// takes that number; anything else the next one. Our own latest version
// may not be recorded yet (history is written in the background), hence
// the max with cur. When the database does not answer, a running
// reconciler numbers the version locally (and logs it); at startup
// (cur nil) there is nothing to continue from, and number returns the
// database's error: the caller must then Discard next.
func (r *Reconciler) number(ctx context.Context, next, cur *snapshot.Snapshot) error {
	last, lastHash, err := next.Store.LatestConfigRecord(ctx, r.App)
	switch {
	case err != nil && cur == nil:
		return err
	case err != nil:
		r.Log.Warn("config version numbered locally: the database did not answer", "error", err)
		next.Version = cur.Version + 1
	case lastHash == next.Hash && last > 0 && (cur == nil || last > cur.Version):
		next.Version = last
	default:
		next.Version = last + 1
		if cur != nil {
			next.Version = max(last, cur.Version) + 1
		}
	}
	return nil
}

// prepare readies every Applier's part of the change from cur to next, in
// order, while cur keeps running, adding each one's warnings to out. On
// error it has aborted the changes already prepared, so no applier is left
// half-done; the caller still owns (and must Discard) its candidate
// snapshot. On success the caller must pass the result to swap.
func (r *Reconciler) prepare(cur, next *config.Config, out *Outcome) ([]Prepared, error) {
	prepared := make([]Prepared, 0, len(r.Appliers))
	for _, a := range r.Appliers {
		p, err := a.Prepare(cur, next)
		if err != nil {
			for _, done := range prepared {
				if done.Abort != nil {
					done.Abort()
				}
			}
			return nil, err
		}
		prepared = append(prepared, p)
		out.Warnings = append(out.Warnings, p.Warnings...)
	}
	return prepared, nil
}

// swap puts next in force: it becomes the running snapshot (the old one is
// retired when its last request ends), the prepared changes are committed
// in the order they were prepared, and rev becomes the applied document and
// hash. It cannot fail: from here the revision is applied. Only commit
// calls it, so the reconciler stays the one writer of the snapshot.
func (r *Reconciler) swap(next *snapshot.Snapshot, prepared []Prepared, rev source.Revision) {
	r.Runtime.Commit(next)
	for _, p := range prepared {
		if p.Commit != nil {
			p.Commit()
		}
	}
	r.mu.Lock()
	r.hash, r.applied = rev.Hash, rev.Data
	r.mu.Unlock()
}

// remember queues the applied version for the history and the last-good
// cache. They are written in order by one background writer, so the next
// reload does not wait for them; FlushHistory waits for them. A failure is
// logged: the version is applied either way.
func (r *Reconciler) remember(snap *snapshot.Snapshot, rev source.Revision, format string, out Outcome) {
	redact := r.parser.RedactLater(rev.Data) // the 1 MB of a large document is built in the background
	plan, _ := json.Marshal(out.Applied)
	row := store.ConfigVersion{App: r.App, Version: out.Version, Hash: rev.Hash, Source: rev.Source, Trigger: string(out.Trigger),
		Actor: out.Actor, Format: format, Plan: plan, AppliedAt: snap.AppliedAt}
	release, held := snap.Retain() // keep its store open until the row is written
	cache, data := r.CachePath, rev.Data
	r.history.do(func() {
		defer release()
		redacted, err := redact()
		if err != nil {
			redacted = []byte("# content could not be redacted and is not stored\n")
		}
		row.Content = string(redacted)
		if held {
			if err := snap.Store.SaveConfigVersion(context.Background(), row); errors.Is(err, store.ErrVersionTaken) {
				r.Log.Warn("config version already recorded by another instance with different content; the history keeps theirs",
					"version", row.Version, "hash", row.Hash)
			} else if err != nil {
				r.Log.Error("config history not saved", "version", row.Version, "error", err)
			} else {
				r.prune(snap.Store)
			}
		}
		if cache != "" {
			if err := writeCache(cache, data); err != nil {
				r.Log.Error("last known good configuration not written", "path", cache, "error", err)
			}
		}
	})
}

// FlushHistory waits until every applied version so far is recorded.
func (r *Reconciler) FlushHistory() { r.history.flush() }

// historyWriter runs jobs one at a time, in order, on its own goroutine.
type historyWriter struct {
	mu      sync.Mutex
	queue   []func()
	running bool
	idle    *sync.Cond
}

func (h *historyWriter) do(job func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.idle == nil {
		h.idle = sync.NewCond(&h.mu)
	}
	h.queue = append(h.queue, job)
	if !h.running {
		h.running = true
		go h.run()
	}
}

func (h *historyWriter) run() {
	h.mu.Lock()
	for len(h.queue) > 0 {
		job := h.queue[0]
		h.queue = h.queue[1:]
		h.mu.Unlock()
		job()
		h.mu.Lock()
	}
	h.running = false
	h.idle.Broadcast()
	h.mu.Unlock()
}

func (h *historyWriter) flush() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for h.running {
		h.idle.Wait()
	}
}

// writeCache writes data to path atomically with mode 0600.
func writeCache(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return (&source.File{Path: path}).WriteMode(data, 0o600)
}

// record keeps out among the Outcomes, logs it, and hands it to the
// listeners. It runs for every attempt, on the goroutine that made it.
func (r *Reconciler) record(out Outcome) {
	out.App = r.App
	r.mu.Lock()
	r.outcomes = append(r.outcomes, out)
	if len(r.outcomes) > historySize {
		r.outcomes = r.outcomes[len(r.outcomes)-historySize:]
	}
	listeners := r.listeners
	r.mu.Unlock()
	attrs := []any{"result", out.Result, "version", out.Version, "trigger", out.Trigger, "source", out.Source, "elapsed_ms", out.ElapsedMS}
	if out.Actor != "" {
		attrs = append(attrs, "actor", out.Actor)
	}
	level := r.quiet.level(out)
	switch out.Result {
	case Applied:
		for _, kind := range sortedKinds(out.Applied) {
			c := out.Applied[kind]
			var g []any
			for _, l := range []struct {
				name  string
				names []string
			}{{"added", c.Added}, {"removed", c.Removed}, {"changed", c.Changed}} {
				if len(l.names) > 0 {
					g = append(g, l.name, strings.Join(l.names, ","))
				}
			}
			attrs = append(attrs, slog.Group(kind, g...))
		}
		r.Log.Log(context.Background(), level, "config reload", attrs...)
		for _, w := range out.Warnings {
			r.Log.Warn("config reload warning", "version", out.Version, "warning", w)
		}
	case Rejected:
		msg := "config reload rejected; the running configuration keeps serving"
		if out.Trigger == TriggerStartup || out.Trigger == TriggerStartupFallback {
			msg = "configuration not applied"
		}
		r.Log.Log(context.Background(), level, msg,
			append(attrs, "errors", out.Errors.Error())...)
	default:
		r.Log.Log(context.Background(), level, "config reload", attrs...)
	}
	for _, fn := range listeners {
		fn(out)
	}
}

func sortedKinds(p config.Plan) []string {
	kinds := make([]string, 0, len(p))
	for k := range p {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}
