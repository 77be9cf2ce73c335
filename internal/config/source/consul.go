package source

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
)

// Consul reads the document from one Consul KV key and watches it with
// blocking queries: each query waits on the server until the key's index
// passes the last one seen. Following Consul's guidance, an index that goes
// backwards (a restored or rebuilt cluster) resets to 0, an index change
// without a change of content is not reported, and queries that return
// early with nothing new are spaced by a rate limit, so a misbehaving
// server cannot drive a hot loop. With several addresses, a failure moves to
// the next: Load and Write try each address in turn (so a server that is
// down at startup does not stop Hector while another answers), and a failed
// watch resumes on the next address.
type Consul struct {
	Key       string
	Addresses []string
	// Base holds token, TLS and datacenter settings; nil means
	// api.DefaultConfig (which reads CONSUL_HTTP_TOKEN and friends).
	Base *api.Config
	// WaitTime is how long one blocking query may wait; default 60s.
	WaitTime time.Duration
	// MinInterval spaces queries that return early with nothing new;
	// default 100ms.
	MinInterval time.Duration
	// Timeout bounds a plain read or write; default 3s.
	Timeout time.Duration
	// MaxBytes is the largest value read; 0 means DefaultMaxBytes.
	MaxBytes int64

	mu      sync.Mutex
	clients []*api.Client
	cur     int

	index   atomic.Uint64
	queries atomic.Int64
}

// Name implements Source.
func (c *Consul) Name() string { return "consul:" + c.Key }

// Index is the Consul index of the last blocking query's answer.
func (c *Consul) Index() uint64 { return c.index.Load() }

// Queries counts the KV queries made so far.
func (c *Consul) Queries() int64 { return c.queries.Load() }

func (c *Consul) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 3 * time.Second
}

func (c *Consul) waitTime() time.Duration {
	if c.WaitTime > 0 {
		return c.WaitTime
	}
	return 60 * time.Second
}

// client returns the client for the current address.
func (c *Consul) client() (*api.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.clients == nil {
		addrs := c.Addresses
		if len(addrs) == 0 {
			addrs = []string{""} // api.DefaultConfig: CONSUL_HTTP_ADDR or 127.0.0.1:8500
		}
		for _, a := range addrs {
			cfg := api.DefaultConfig()
			if c.Base != nil {
				base := *c.Base
				cfg = &base
			}
			if a != "" {
				cfg.Address = a
			}
			// Blocking queries may take WaitTime plus Consul's jitter of
			// up to WaitTime/16; anything longer is a dead connection.
			tlsConf := cfg.TLSConfig
			if tlsConf.Address == "" {
				tlsConf.Address = cfg.Address
			}
			hc, err := api.NewHttpClient(cfg.Transport, tlsConf)
			if err == nil {
				hc.Timeout = c.waitTime() + c.waitTime()/16 + 5*time.Second
				cfg.HttpClient = hc
				var cl *api.Client
				if cl, err = api.NewClient(cfg); err == nil {
					c.clients = append(c.clients, cl)
				}
			}
			if err != nil {
				c.clients = nil
				return nil, fmt.Errorf("consul %s: %w", RedactEndpoint(a), err)
			}
		}
	}
	return c.clients[c.cur], nil
}

// address is the address in use (before failover moves on).
func (c *Consul) address() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur < len(c.Addresses) {
		return c.Addresses[c.cur]
	}
	return "the default address"
}

// failover moves to the next address after a failure.
func (c *Consul) failover() {
	c.mu.Lock()
	if len(c.clients) > 0 {
		c.cur = (c.cur + 1) % len(c.clients)
	}
	c.mu.Unlock()
}

// Close implements io.Closer; the clients hold only idle HTTP connections.
func (c *Consul) Close() error { return nil }

// Load implements Source: it tries each address once, from the current one,
// each within Timeout, and reports every address's error if none answers.
func (c *Consul) Load(ctx context.Context) Revision {
	var rev Revision
	err := c.eachAddress(ctx, func(ctx context.Context) (err error) {
		rev, _, err = c.get(ctx, 0)
		return err
	})
	if err != nil {
		return Revision{Source: c.Name(), Err: err}
	}
	return rev
}

// eachAddress runs op, with its own Timeout, on the current address and,
// while it fails, on each other address in turn (get and put move to the
// next address on failure). It returns nil on the first success, else the
// errors of every attempt.
func (c *Consul) eachAddress(ctx context.Context, op func(context.Context) error) error {
	n := max(len(c.Addresses), 1)
	var errs []error
	for range n {
		actx, cancel := context.WithTimeout(ctx, c.timeout())
		err := op(actx)
		cancel()
		if err == nil {
			return nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

// get runs one (blocking, when index > 0) query and returns the document
// (a not-found Err when the key is absent) and the answer's index.
func (c *Consul) get(ctx context.Context, index uint64) (Revision, uint64, error) {
	cl, err := c.client()
	if err != nil {
		return Revision{}, 0, err
	}
	c.queries.Add(1)
	addr := c.address()
	q := (&api.QueryOptions{WaitIndex: index, WaitTime: c.waitTime()}).WithContext(ctx)
	pair, meta, err := cl.KV().Get(c.Key, q)
	if err != nil {
		c.failover()
		return Revision{}, 0, fmt.Errorf("consul get %s from %s: %w", c.Key, RedactEndpoint(addr), unwrapCtx(ctx, err))
	}
	if pair == nil {
		return Revision{Source: c.Name(), Err: fmt.Errorf("consul key %s: %w", c.Key, ErrNotFound)}, meta.LastIndex, nil
	}
	return sized(c.Name(), pair.Value, c.MaxBytes), meta.LastIndex, nil
}

// Watch implements Source.
func (c *Consul) Watch(ctx context.Context, notify func(Revision)) error {
	minInterval := c.MinInterval
	if minInterval <= 0 {
		minInterval = 100 * time.Millisecond
	}
	var index uint64
	last := "" // hash of the last content reported, or the error text
	for {
		started := time.Now()
		rev, next, err := c.get(ctx, index)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if next < index {
			next = 0 // the index went backwards: start over
		}
		index = next
		c.index.Store(index)
		seen := rev.Hash
		if rev.Err != nil {
			seen = "error:" + rev.Err.Error()
		}
		if seen != last {
			last = seen
			notify(rev)
			continue // news: ask again at once
		}
		// Nothing new. A query that returned early without news (an index
		// reset, a change elsewhere, a misbehaving server) waits out the
		// rest of MinInterval, so this can never spin.
		if wait := minInterval - time.Since(started); wait > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
	}
}

// Write implements Writer: a plain put of the whole document, tried on each
// address in turn like Load.
func (c *Consul) Write(data []byte) error {
	return c.eachAddress(context.Background(), func(ctx context.Context) error {
		cl, err := c.client()
		if err != nil {
			return err
		}
		addr := c.address()
		if _, err := cl.KV().Put(&api.KVPair{Key: c.Key, Value: data}, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
			c.failover()
			return fmt.Errorf("consul put %s to %s: %w", c.Key, RedactEndpoint(addr), unwrapCtx(ctx, err))
		}
		return nil
	})
}

// ConsulApps is the catalog of a Consul source: the keys under KEY/apps/
// of its key (hector/production: hector/production/apps/NAME). Keys below the
// prefix that are not app names are ignored. Watch runs blocking queries
// on the prefix, as Consul.Watch does on its key, and reports the apps
// that changed or went away since the last answer. It shares the source's
// clients and their failover.
type ConsulApps struct {
	c      *Consul
	Prefix string
}

// Apps returns the catalog beside the source's key.
func (c *Consul) Apps() Catalog { return &ConsulApps{c: c, Prefix: appsPrefix(c.Key)} }

// Name implements Catalog: "consul:PREFIX".
func (a *ConsulApps) Name() string { return "consul:" + a.Prefix }

// AppSource implements Catalog: "consul:PREFIX" and the app.
func (a *ConsulApps) AppSource(app string) string { return "consul:" + a.Prefix + app }

// list runs one (blocking, when index > 0) query on the prefix and returns
// every app and the answer's index.
func (a *ConsulApps) list(ctx context.Context, index uint64) (map[string]Revision, uint64, error) {
	cl, err := a.c.client()
	if err != nil {
		return nil, 0, err
	}
	a.c.queries.Add(1)
	addr := a.c.address()
	q := (&api.QueryOptions{WaitIndex: index, WaitTime: a.c.waitTime()}).WithContext(ctx)
	pairs, meta, err := cl.KV().List(a.Prefix, q)
	if err != nil {
		a.c.failover()
		return nil, 0, fmt.Errorf("consul list %s from %s: %w", a.Prefix, RedactEndpoint(addr), unwrapCtx(ctx, err))
	}
	apps := make(map[string]Revision, len(pairs))
	for _, p := range pairs {
		if app, ok := strings.CutPrefix(p.Key, a.Prefix); ok && CheckAppName(app) == nil {
			apps[app] = sized(a.AppSource(app), p.Value, a.c.MaxBytes)
		}
	}
	return apps, meta.LastIndex, nil
}

// List implements Catalog, trying each address in turn like Consul.Load.
func (a *ConsulApps) List(ctx context.Context) (map[string]Revision, error) {
	var apps map[string]Revision
	err := a.c.eachAddress(ctx, func(ctx context.Context) (err error) {
		apps, _, err = a.list(ctx, 0)
		return err
	})
	return apps, err
}

// Load implements Catalog.
func (a *ConsulApps) Load(ctx context.Context, app string) Revision {
	if err := CheckAppName(app); err != nil {
		return Revision{Source: a.Name(), Err: err}
	}
	var rev Revision
	err := a.c.eachAddress(ctx, func(ctx context.Context) error {
		pair, err := a.get(ctx, app)
		switch {
		case err != nil:
			return err
		case pair == nil:
			rev = appNotFound(a.AppSource(app), app)
		default:
			rev = sized(a.AppSource(app), pair.Value, a.c.MaxBytes)
		}
		return nil
	})
	if err != nil {
		return Revision{Source: a.AppSource(app), Err: err}
	}
	return rev
}

// get reads one app's pair (nil when absent), failing over on error.
func (a *ConsulApps) get(ctx context.Context, app string) (*api.KVPair, error) {
	cl, err := a.c.client()
	if err != nil {
		return nil, err
	}
	a.c.queries.Add(1)
	addr := a.c.address()
	pair, _, err := cl.KV().Get(a.Prefix+app, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		a.c.failover()
		return nil, fmt.Errorf("consul get %s%s from %s: %w", a.Prefix, app, RedactEndpoint(addr), unwrapCtx(ctx, err))
	}
	return pair, nil
}

// Watch implements Catalog.
func (a *ConsulApps) Watch(ctx context.Context, notify func(app string, rev Revision)) error {
	minInterval := a.c.MinInterval
	if minInterval <= 0 {
		minInterval = 100 * time.Millisecond
	}
	report := newAppReport(notify)
	gone := func(app string) Revision { return appNotFound(a.AppSource(app), app) }
	var index uint64
	for {
		started := time.Now()
		apps, next, err := a.list(ctx, index)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if next < index {
			next = 0 // the index went backwards: start over
		}
		index = next
		if report.all(apps, gone) {
			continue // ask again at once
		}
		if wait := minInterval - time.Since(started); wait > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
	}
}

// Put implements Catalog, tried on each address in turn.
func (a *ConsulApps) Put(ctx context.Context, app string, data []byte) error {
	if err := CheckAppName(app); err != nil {
		return err
	}
	return a.c.eachAddress(ctx, func(ctx context.Context) error {
		cl, err := a.c.client()
		if err != nil {
			return err
		}
		addr := a.c.address()
		if _, err := cl.KV().Put(&api.KVPair{Key: a.Prefix + app, Value: data}, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
			a.c.failover()
			return fmt.Errorf("consul put %s%s to %s: %w", a.Prefix, app, RedactEndpoint(addr), unwrapCtx(ctx, err))
		}
		return nil
	})
}

// Delete implements Catalog, tried on each address in turn.
func (a *ConsulApps) Delete(ctx context.Context, app string) error {
	if err := CheckAppName(app); err != nil {
		return err
	}
	var absent bool
	err := a.c.eachAddress(ctx, func(ctx context.Context) error {
		pair, err := a.get(ctx, app)
		if err != nil || pair == nil {
			absent = pair == nil && err == nil
			return err
		}
		cl, err := a.c.client()
		if err != nil {
			return err
		}
		addr := a.c.address()
		if _, err := cl.KV().Delete(a.Prefix+app, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
			a.c.failover()
			return fmt.Errorf("consul delete %s%s from %s: %w", a.Prefix, app, RedactEndpoint(addr), unwrapCtx(ctx, err))
		}
		return nil
	})
	if err == nil && absent {
		return fmt.Errorf("consul key %s%s: %w", a.Prefix, app, ErrNotFound)
	}
	return err
}
