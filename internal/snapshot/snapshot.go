// Package snapshot holds the live configuration as immutable snapshots.
//
// A Snapshot is everything a request needs — built agents, LLM clients and
// tools — for one configuration version. Readers Acquire the current snapshot
// once per unit of work and release it when done; only the reconciler calls
// Commit. Resources a new snapshot no longer uses are closed when the last
// reader of the old snapshot releases it, never earlier.
package snapshot

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hector-run/hector/internal/agent"
	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/identity"
	"github.com/hector-run/hector/internal/llm"
	"github.com/hector-run/hector/internal/observe"
	"github.com/hector-run/hector/internal/remote"
	"github.com/hector-run/hector/internal/store"
	"github.com/hector-run/hector/internal/tool"
)

// Snapshot is one applied configuration with its built objects. It is never
// mutated after Commit; the exported fields may be read freely.
type Snapshot struct {
	Version   int64
	Hash      string
	Source    string
	AppliedAt time.Time
	Config    *config.Config
	Agents    map[string]*agent.Agent
	LLMs      map[string]llm.Client
	Tools     map[string]tool.Tool
	// MCP are the tools of type mcp: connected servers, each a set of
	// tools.
	MCP map[string]*tool.MCPServer
	// Issuers verify the JWTs of server.auth.jwt, in its order.
	Issuers identity.Set
	// KeyDigests are the SHA-256 of server.auth.api_keys' keys, in their
	// order, so a request hashes only the key it presents.
	KeyDigests [][sha256.Size]byte
	// Store is the database in effect; DatabaseURL is its (secret-bearing) URL.
	Store       *store.Store
	DatabaseURL string
	// App is the app (tenant) whose configuration this is; "" is the main
	// configuration's.
	App string

	handles map[string]*shared // "llm:NAME", "jwt:NAME", "mcp:NAME" and "database", with their cross-snapshot refcount
	metrics *observe.Metrics   // Options.Metrics
	tracing *observe.Tracing   // Options.Tracing

	refs    atomic.Int64 // readers plus one for being current; 0 = drained
	held    []*shared    // resources this snapshot holds one reference to
	drained chan struct{}
}

// shared is a resource held by one or more snapshots. It is closed when the
// last snapshot holding it drains, so a client reused across reloads lives
// exactly as long as some snapshot may still use it.
type shared struct {
	c    io.Closer
	refs atomic.Int32
}

func (s *Snapshot) hold(key string, h *shared) {
	h.refs.Add(1)
	s.held = append(s.held, h)
	s.handles[key] = h
}

// own holds a resource this snapshot created.
func (s *Snapshot) own(key string, c io.Closer) { s.hold(key, &shared{c: c}) }

// reuse holds prev's resource under key.
func (s *Snapshot) reuse(key string, prev *Snapshot) { s.hold(key, prev.handles[key]) }

// drop releases the snapshot's hold on its resources, closing the ones
// no other snapshot holds, concurrently (stdio MCP servers take a moment
// each), and waits for them.
func (s *Snapshot) drop() {
	var wg sync.WaitGroup
	for _, h := range s.held {
		if h.refs.Add(-1) == 0 {
			wg.Go(func() { _ = h.c.Close() })
		}
	}
	wg.Wait()
}

// Drained is closed once the snapshot is no longer current, its last
// reader has released it, and the resources no other snapshot holds are
// closed (in the background of that release).
func (s *Snapshot) Drained() <-chan struct{} { return s.drained }

func (s *Snapshot) tryRef() bool {
	for {
		n := s.refs.Load()
		if n <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Retain holds s for work that outlives the caller's own hold (a
// background write to its store). It returns false when s has already
// drained. The returned release must be called once.
func (s *Snapshot) Retain() (release func(), ok bool) {
	if !s.tryRef() {
		return func() {}, false
	}
	var once sync.Once
	return func() { once.Do(s.release) }, true
}

// RetainStore holds the snapshot's database open for work that outlives
// the snapshot (a task attempt, which takes a newer snapshot for each
// step): the store stays open until release runs, even after the snapshot
// drains, while the snapshot's LLM clients and tools are retired as usual.
// The caller must hold s (Acquire or Retain) when calling. The returned
// release must be called once; later calls do nothing.
func (s *Snapshot) RetainStore() (st *store.Store, release func()) {
	h := s.handles["database"]
	if h == nil { // a snapshot not made by Build
		return s.Store, func() {}
	}
	h.refs.Add(1)
	var once sync.Once
	return s.Store, func() {
		once.Do(func() {
			if h.refs.Add(-1) == 0 {
				_ = h.c.Close()
			}
		})
	}
}

func (s *Snapshot) release() {
	switch n := s.refs.Add(-1); {
	case n == 0:
		// Closing happens beside the releaser, which may be a request
		// or Commit: a stdio MCP server can take seconds to exit.
		go func() {
			s.drop()
			close(s.drained)
		}()
	case n < 0:
		panic("snapshot: released more often than acquired")
	}
}

// Options are the parts of a build that do not come from the document.
type Options struct {
	// DatabaseURL, when set, overrides database.url (the --database flag).
	DatabaseURL string
	// Log receives the warnings of resources the snapshot opens (the
	// database's listener, MCP servers that stop and restart); nil
	// discards them.
	Log *slog.Logger
	// Plan, when set, must be the plan from prev.Config to cfg: what
	// config.Diff returns, and Document.PlanFrom computes cheaply. With it,
	// and no LLM or tool changed, the agents it does not list are taken
	// from prev without comparing each one: a one-agent edit of 10,000
	// agents then builds one agent. A wrong plan builds a wrong snapshot.
	Plan config.Plan
	// Store, when set, is lent: the snapshot uses it instead of opening
	// database.url, and never closes it. The lender must keep it open
	// until every snapshot built on it has drained (an app's snapshots
	// borrow the main configuration's store).
	Store *store.Store
	// App is stamped on the snapshot (Snapshot.App).
	App string
	// Metrics, when set, count the snapshot's model calls, turns and tool
	// calls, as App's; Tracing, when set, traces them.
	Metrics *observe.Metrics
	Tracing *observe.Tracing
}

// EffectiveDatabaseURL is the database a snapshot of cfg uses: the override,
// then database.url, then the default.
func (o Options) EffectiveDatabaseURL(cfg *config.Config) string {
	switch {
	case o.DatabaseURL != "":
		return o.DatabaseURL
	case cfg.Database.URL != "":
		return cfg.Database.URL
	}
	return config.DefaultDatabaseURL
}

// Build constructs a candidate snapshot for cfg (validated and defaulted).
// The database, LLM clients, MCP servers and tools whose configuration
// equals their counterpart in prev (which may be nil) are reused, not
// rebuilt, so their connections and processes survive the reload; a
// changed database is opened and migrated, and a changed MCP server
// started and its tools listed, here, before any swap. Build changes nothing that is running: on error it
// closes what it opened and returns; on success the caller owns the
// candidate and must either Commit it or Discard it.
func Build(ctx context.Context, cfg *config.Config, prev *Snapshot, opts Options) (*Snapshot, error) {
	s := &Snapshot{Config: cfg, Agents: make(map[string]*agent.Agent, len(cfg.Agents)), LLMs: make(map[string]llm.Client, len(cfg.LLMs)),
		Tools: make(map[string]tool.Tool, len(cfg.Tools)), MCP: map[string]*tool.MCPServer{}, drained: make(chan struct{}), handles: make(map[string]*shared, len(cfg.LLMs)+len(cfg.Tools)+1)}
	s.refs.Store(1)
	s.App, s.metrics, s.tracing = opts.App, opts.Metrics, opts.Tracing
	s.DatabaseURL = opts.EffectiveDatabaseURL(cfg)
	switch {
	case opts.Store != nil:
		s.Store, s.DatabaseURL = opts.Store, ""
	case prev != nil && prev.DatabaseURL == s.DatabaseURL:
		s.reuse("database", prev)
		s.Store = prev.Store
	default:
		var storeOpts []store.Option
		if opts.Log != nil {
			storeOpts = append(storeOpts, store.WithLog(opts.Log))
		}
		if opts.Tracing != nil {
			storeOpts = append(storeOpts, store.WithTracing(opts.Tracing))
		}
		st, err := store.Open(ctx, s.DatabaseURL, storeOpts...)
		if err != nil {
			return nil, config.Errors{{Path: "database.url", Message: err.Error()}}
		}
		s.Store = st
		s.own("database", st)
	}
	for name, lc := range cfg.LLMs {
		key := "llm:" + name
		if prev != nil {
			if old, ok := prev.Config.LLMs[name]; ok && old.Equal(lc) {
				s.reuse(key, prev)
				s.LLMs[name] = prev.LLMs[name]
				continue
			}
		}
		c, err := newLLM(lc)
		if err != nil {
			s.Discard()
			return nil, fmt.Errorf("llms.%s: %w", name, err)
		}
		s.own(key, c)
		s.LLMs[name] = observed(c, s, name, lc)
	}
	for _, k := range cfg.Server.Auth.APIKeys {
		s.KeyDigests = append(s.KeyDigests, sha256.Sum256([]byte(k.Key)))
	}
	if err := s.buildIssuers(prev); err != nil {
		s.Discard()
		return nil, err
	}
	if err := s.buildMCP(ctx, prev, opts.Log); err != nil {
		s.Discard()
		return nil, err
	}
	for name, tc := range cfg.Tools {
		if tc.Type == "mcp" {
			continue
		}
		if prev != nil {
			if old, ok := prev.Config.Tools[name]; ok && old.Equal(tc) {
				s.Tools[name] = prev.Tools[name]
				continue
			}
		}
		t, err := tool.New(name, tc)
		if err != nil {
			s.Discard()
			return nil, fmt.Errorf("tools.%s: %w", name, err)
		}
		s.Tools[name] = t
	}
	if err := s.buildAgents(prev, opts.Plan); err != nil {
		s.Discard()
		return nil, err
	}
	return s, nil
}

// buildAgents builds the agents, sharing prev's where nothing they use
// changed.
func (s *Snapshot) buildAgents(prev *Snapshot, plan config.Plan) error {
	cfg := s.Config
	var names []string
	if prev != nil && plan != nil && plan["llms"].Empty() && plan["tools"].Empty() {
		ch := plan["agents"]
		s.Agents = maps.Clone(prev.Agents)
		for _, name := range ch.Removed {
			delete(s.Agents, name)
		}
		names = slices.Concat(ch.Added, ch.Changed)
	} else {
		for name, ac := range cfg.Agents {
			if prev != nil && sameAgent(prev, s, name, ac) {
				s.Agents[name] = prev.Agents[name] // agents are immutable: share it
				continue
			}
			names = append(names, name)
		}
	}
	for _, name := range names {
		if err := s.toolNamesUnique(name); err != nil {
			return err
		}
		s.Agents[name] = newAgent(name, cfg, s)
	}
	return nil
}

// buildMCP connects the MCP servers, reusing prev's unchanged ones (their
// processes keep running) and starting the others concurrently. A server
// that fails rejects the build with its reason.
func (s *Snapshot) buildMCP(ctx context.Context, prev *Snapshot, log *slog.Logger) error {
	type started struct {
		name string
		srv  *tool.MCPServer
		err  error
	}
	var todo []string
	for name, tc := range s.Config.Tools {
		if tc.Type != "mcp" {
			continue
		}
		key := "mcp:" + name
		if prev != nil && prev.handles[key] != nil {
			if old, ok := prev.Config.Tools[name]; ok && old.Equal(tc) {
				s.reuse(key, prev)
				s.MCP[name] = prev.MCP[name]
				continue
			}
		}
		todo = append(todo, name)
	}
	results := make(chan started, len(todo))
	for _, name := range todo {
		go func() {
			srv, err := tool.StartMCP(ctx, name, s.Config.Tools[name], log)
			results <- started{name, srv, err}
		}()
	}
	var errs config.Errors
	for range todo {
		r := <-results
		if r.err != nil {
			errs = append(errs, config.Error{Path: "tools." + r.name, Message: "MCP server: " + config.RedactText(r.err.Error())})
			continue
		}
		s.own("mcp:"+r.name, r.srv)
		s.MCP[r.name] = r.srv
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b config.Error) int { return strings.Compare(a.Path, b.Path) })
		return errs
	}
	return nil
}

// toolNamesUnique checks that no two of agent name's tools, the MCP
// servers' included, share a name as the model would see them.
func (s *Snapshot) toolNamesUnique(name string) error {
	ac := s.Config.Agents[name]
	seen := map[string]string{}
	for _, entry := range ac.Tools {
		names := []string{entry}
		if srv, ok := s.MCP[entry]; ok {
			names = names[:0]
			for _, t := range srv.Tools() {
				names = append(names, t.Spec().Name)
			}
		}
		for _, n := range names {
			if other, dup := seen[n]; dup {
				return config.Errors{{Path: "agents." + name + ".tools", Message: fmt.Sprintf("two of its tools are called %s: from %s and from %s (give an mcp entry a prefix)", n, other, entry)}}
			}
			seen[n] = entry
		}
	}
	return nil
}

// buildIssuers makes a JWT issuer for each of server.auth.jwt, reusing
// prev's when its configuration is unchanged, so its cached keys and
// refresh survive the reload.
func (s *Snapshot) buildIssuers(prev *Snapshot) error {
	for i, ic := range s.Config.Server.Auth.JWT {
		key := "jwt:" + ic.Name
		if prev != nil {
			if j := slices.IndexFunc(prev.Config.Server.Auth.JWT, func(o config.JWTIssuer) bool { return o == ic }); j >= 0 && prev.handles[key] != nil {
				s.reuse(key, prev)
				s.Issuers = append(s.Issuers, prev.Issuers[j])
				continue
			}
		}
		is, err := identity.NewIssuer(ic, nil)
		if err != nil {
			return config.Errors{{Path: fmt.Sprintf("server.auth.jwt[%d]", i), Message: err.Error()}}
		}
		s.own(key, is)
		s.Issuers = append(s.Issuers, is)
	}
	return nil
}

// newAgent builds cfg's agent name on s's LLM clients and tools.
func newAgent(name string, cfg *config.Config, s *Snapshot) *agent.Agent {
	ac := cfg.Agents[name]
	if ac.Remote() {
		// The remote agent answers in one call; its card is fetched on
		// first use, so building never waits on the network.
		return agent.New(name, ac.Description, "", 1, remote.NewNamed(name, ac.URL, ac.Headers), nil, nil, nil)
	}
	sets := make(map[string]tool.Set, len(s.MCP))
	for n, srv := range s.MCP {
		sets[n] = srv
	}
	ag := agent.New(name, ac.Description, ac.Instruction, ac.MaxIterations, s.LLMs[ac.LLM], ac.Tools, s.Tools, sets)
	if s.metrics != nil || s.tracing != nil {
		ag.Observer = &observer{m: s.metrics, t: s.tracing, app: s.App, cfg: cfg, tools: ac.Tools, mcp: s.MCP}
	}
	for _, t := range ac.Tools {
		if tc := cfg.Tools[t]; tc.Type != "mcp" && tc.RequireApproval.Any() {
			if ag.Approvals == nil {
				ag.Approvals = map[string]string{}
			}
			ag.Approvals[t] = tc.ApprovalPrompt
		}
	}
	return ag
}

// sameAgent reports whether prev's agent name can serve in s unchanged: the
// same configuration, LLM client and tool objects.
func sameAgent(prev, s *Snapshot, name string, ac config.Agent) bool {
	old, ok := prev.Config.Agents[name]
	if !ok || !old.Equal(ac) || prev.LLMs[ac.LLM] != s.LLMs[ac.LLM] {
		return false
	}
	for _, t := range ac.Tools {
		if prev.Tools[t] != s.Tools[t] || prev.MCP[t] != s.MCP[t] {
			return false
		}
	}
	return true
}

// WithDelegation lets agent tools called under ctx reach this snapshot's
// agents: a delegated turn runs on the same configuration as the turn
// that delegated. The delegate's turn stands alone (no session); a call
// of its that needs approval fails the delegation, as nobody could
// approve it.
func (s *Snapshot) WithDelegation(ctx context.Context) context.Context {
	return tool.WithDelegator(ctx, func(ctx context.Context, name, message string) (string, error) {
		ag, ok := s.Agents[name]
		if !ok {
			return "", fmt.Errorf("agent %q is not in the configuration (version %d)", name, s.Version)
		}
		res, err := ag.Run(ctx, nil, message, nil)
		if err != nil {
			return "", fmt.Errorf("agent %s: %w", name, err)
		}
		return res.Reply, nil
	})
}

// Discard abandons an uncommitted candidate, closing the clients that no
// other snapshot holds.
func (s *Snapshot) Discard() { s.drop() }

// Runtime holds the current snapshot.
type Runtime struct {
	mu      sync.Mutex // serialises Commit: one writer
	cur     atomic.Pointer[Snapshot]
	retired []*Snapshot // replaced or closed and perhaps still draining; under mu
}

// retire records prev, no longer current, for Drain, forgetting those
// that have drained. The caller holds r.mu.
func (r *Runtime) retire(prev *Snapshot) {
	r.retired = slices.DeleteFunc(r.retired, func(s *Snapshot) bool {
		select {
		case <-s.drained:
			return true
		default:
			return false
		}
	})
	r.retired = append(r.retired, prev)
}

// Drain waits until every snapshot r replaced or closed has drained (its
// resources closed), or d has passed; it reports whether they all did.
// Shutdown calls it after Close, so that no MCP server outlives the
// process.
func (r *Runtime) Drain(d time.Duration) bool {
	r.mu.Lock()
	snaps := slices.Clone(r.retired)
	r.mu.Unlock()
	deadline := time.After(d)
	for _, s := range snaps {
		select {
		case <-s.drained:
		case <-deadline:
			return false
		}
	}
	return true
}

// Acquire returns the current snapshot and a release function that must be
// called exactly once when the unit of work ends. It returns nil and a no-op
// before the first Commit. Acquire never blocks.
func (r *Runtime) Acquire() (*Snapshot, func()) {
	for {
		s := r.cur.Load()
		if s == nil {
			return nil, func() {}
		}
		if s.tryRef() {
			var once sync.Once
			return s, func() { once.Do(s.release) }
		}
		// s drained between Load and tryRef: a newer one is current; retry.
	}
}

// Current returns the current snapshot without holding it. Use it only for
// reading plain fields (version, hash); use Acquire to call into agents.
func (r *Runtime) Current() *Snapshot { return r.cur.Load() }

// Commit makes next current and returns the snapshot it replaced (nil for
// the first). The caller sets next's Version (greater than the current one),
// Hash and Source. The replaced snapshot drains when its last reader
// releases it; resources no other snapshot holds are closed then.
func (r *Runtime) Commit(next *Snapshot) *Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := r.cur.Load()
	if prev != nil && next.Version <= prev.Version {
		panic(fmt.Sprintf("snapshot: commit of version %d over version %d", next.Version, prev.Version))
	}
	next.AppliedAt = time.Now()
	r.cur.Store(next)
	if prev != nil {
		r.retire(prev)
		prev.release() // drop the current-reference; readers may still hold it
	}
	return prev
}

// Close retires the current snapshot: its resources close once in-flight
// readers release it (wait on its Drained to know when). Acquire returns
// nil afterwards.
func (r *Runtime) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.cur.Swap(nil); s != nil {
		r.retire(s)
		s.release()
	}
}

// newLLM builds LLM clients; tests replace it to observe Close.
var newLLM = llm.New

// Tenants finds the runtime that serves a tenant: the main
// configuration's for "", an app's for the app's name, nil for a tenant
// without one. The apps registry implements it.
type Tenants interface {
	Runtime(tenant string) *Runtime
}
