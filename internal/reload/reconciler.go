// Package reload is the configuration reconciler: the one loop through which
// every change — file watch, SIGHUP, and later the admin API — reaches the
// running server.
//
// Pipeline per revision: source error? -> same hash as applied? (no-op) ->
// parse+validate -> plan -> build candidate snapshot -> prepare appliers ->
// commit. A failure before commit leaves the running snapshot untouched and
// yields a rejected Outcome listing every error. The applied hash advances
// only on commit, so a rejected revision never blocks a later one.
package reload

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/config/source"
	"github.com/hector-run/hector/internal/runtime"
)

// Results of a reload attempt.
const (
	Applied  = "applied"
	Rejected = "rejected"
	NoOp     = "noop"
)

// Outcome reports one reload attempt.
type Outcome struct {
	Result    string        `json:"result"`
	Version   int64         `json:"version"` // the version serving after this attempt
	Hash      string        `json:"hash,omitempty"`
	Source    string        `json:"source"`
	Trigger   string        `json:"trigger"`
	Applied   config.Plan   `json:"applied,omitempty"`
	Warnings  []string      `json:"warnings,omitempty"`
	Errors    config.Errors `json:"errors,omitempty"`
	ElapsedMS float64       `json:"elapsed_ms"`
	At        time.Time     `json:"at"`
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
	Runtime  *runtime.Runtime
	Source   source.Source
	Env      config.LookupEnv
	Log      *slog.Logger
	Appliers []Applier
	// OnOutcome, if set, is called after every attempt, from the loop.
	OnOutcome func(Outcome)

	mailbox  chan source.Revision // capacity 1: the newest revision wins
	requests chan request

	mu          sync.Mutex
	appliedHash string
	outcomes    []Outcome
}

type request struct {
	trigger string
	reply   chan Outcome
}

func (r *Reconciler) init() {
	if r.mailbox == nil {
		r.mailbox = make(chan source.Revision, 1)
		r.requests = make(chan request)
	}
}

// Start loads and applies the initial configuration. It fails, applying
// nothing, when the source cannot be read or the document is invalid; the
// error then lists every problem.
func (r *Reconciler) Start(ctx context.Context) (Outcome, error) {
	r.init()
	out := r.apply(r.Source.Load(ctx), "startup")
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

// RunTriggersOnly is Run without watching the source: only Reload calls
// (SIGHUP, API) apply changes.
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
			r.apply(rev, "watch")
		case req := <-r.requests:
			req.reply <- r.apply(r.Source.Load(ctx), req.trigger)
		}
	}
}

func (r *Reconciler) watch(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := r.Source.Watch(ctx, r.offer)
		if ctx.Err() != nil {
			return
		}
		r.Log.Error("config watch failed; retrying", "source", r.Source.Name(), "error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
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

// Reload re-reads the source and applies it through the loop, returning the
// outcome. trigger names the cause ("sighup", "api"). It fails only when ctx
// ends first or the loop is not running.
func (r *Reconciler) Reload(ctx context.Context, trigger string) (Outcome, error) {
	r.init()
	req := request{trigger: trigger, reply: make(chan Outcome, 1)}
	select {
	case r.requests <- req:
	case <-ctx.Done():
		return Outcome{}, ctx.Err()
	}
	select {
	case out := <-req.reply:
		return out, nil
	case <-ctx.Done():
		return Outcome{}, ctx.Err()
	}
}

// Outcomes returns the most recent attempts, oldest first.
func (r *Reconciler) Outcomes() []Outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Outcome(nil), r.outcomes...)
}

// apply runs the pipeline for one revision. Only the loop (or Start, before
// the loop runs) calls it, so applies never overlap.
func (r *Reconciler) apply(rev source.Revision, trigger string) Outcome {
	start := time.Now()
	cur := r.Runtime.Current()
	out := Outcome{Source: rev.Source, Trigger: trigger, Hash: rev.Hash, At: start}
	if cur != nil {
		out.Version = cur.Version
	}
	r.mu.Lock()
	applied := r.appliedHash
	r.mu.Unlock()
	switch {
	case rev.Err != nil:
		out.Result, out.Errors = Rejected, config.Errors{{Path: "(source)", Message: rev.Err.Error()}}
	case rev.Hash == applied:
		out.Result = NoOp
	default:
		r.commit(rev, cur, &out)
	}
	out.ElapsedMS = float64(time.Since(start).Microseconds()) / 1000
	r.record(out)
	return out
}

func (r *Reconciler) commit(rev source.Revision, cur *runtime.Snapshot, out *Outcome) {
	out.Result = Rejected
	doc, errs := config.Parse(rev.Data, r.Env)
	if errs != nil {
		out.Errors = errs
		return
	}
	var curCfg *config.Config
	if cur != nil {
		curCfg = cur.Config
	}
	plan := config.Diff(curCfg, doc.Config)
	next, err := runtime.Build(doc.Config, cur)
	if err != nil {
		out.Errors = config.Errors{{Path: "(build)", Message: err.Error()}}
		return
	}
	var prepared []Prepared
	for _, a := range r.Appliers {
		p, err := a.Prepare(curCfg, doc.Config)
		if err != nil {
			for _, done := range prepared {
				if done.Abort != nil {
					done.Abort()
				}
			}
			next.Discard()
			var ce config.Errors
			if !errors.As(err, &ce) {
				ce = config.Errors{{Path: "(apply)", Message: err.Error()}}
			}
			out.Errors = ce
			return
		}
		prepared = append(prepared, p)
		out.Warnings = append(out.Warnings, p.Warnings...)
	}
	r.Runtime.Commit(next, rev.Hash, rev.Source)
	for _, p := range prepared {
		if p.Commit != nil {
			p.Commit()
		}
	}
	r.mu.Lock()
	r.appliedHash = rev.Hash
	r.mu.Unlock()
	out.Result, out.Version, out.Applied = Applied, next.Version, plan
}

func (r *Reconciler) record(out Outcome) {
	r.mu.Lock()
	r.outcomes = append(r.outcomes, out)
	if len(r.outcomes) > historySize {
		r.outcomes = r.outcomes[len(r.outcomes)-historySize:]
	}
	r.mu.Unlock()
	attrs := []any{"result", out.Result, "version", out.Version, "trigger", out.Trigger, "source", out.Source, "elapsed_ms", out.ElapsedMS}
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
		r.Log.Info("config reload", attrs...)
		for _, w := range out.Warnings {
			r.Log.Warn("config reload warning", "version", out.Version, "warning", w)
		}
	case Rejected:
		r.Log.Error("config reload rejected; the running configuration keeps serving",
			append(attrs, "errors", out.Errors.Error())...)
	default:
		r.Log.Debug("config reload", attrs...)
	}
	if r.OnOutcome != nil {
		r.OnOutcome(out)
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
