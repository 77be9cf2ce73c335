package source

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
)

// Etcd reads the document from one etcd key and watches it with etcd's
// watch API: no polling. The watch starts at the revision read plus one, so
// no change between the read and the watch is missed; it requires a leader,
// so a member cut off from its cluster does not serve a stale view; after a
// compaction it re-reads and watches again from the new revision. When the
// connection fails, Watch returns and the reconciler retries it with backoff;
// the next Watch reads the key first, so a change made during the outage is
// applied as soon as etcd answers again.
type Etcd struct {
	Key    string
	Config clientv3.Config // Endpoints, Username/Password, TLS
	// Timeout bounds one read or write; default 3s.
	Timeout time.Duration
	// MaxBytes is the largest value read; 0 means DefaultMaxBytes.
	MaxBytes int64

	mu  sync.Mutex
	cli *clientv3.Client

	afterGet func() // tests: runs between Watch's (or the catalog Watch's) read and its watch
}

// NewEtcdConfig returns a client configuration with Hector's defaults:
// reconnects back off from 50 ms to at most 500 ms, keepalive pings find a
// silent partition within 5 s, and the client's own logging is off (errors
// reach the reconciler instead).
func NewEtcdConfig(endpoints []string) clientv3.Config {
	return clientv3.Config{
		Endpoints:            endpoints,
		DialTimeout:          3 * time.Second,
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		Logger:               zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 500 * time.Millisecond},
			MinConnectTimeout: 2 * time.Second,
		})},
	}
}

// Name implements Source.
func (e *Etcd) Name() string { return "etcd:" + e.Key }

func (e *Etcd) timeout() time.Duration {
	if e.Timeout > 0 {
		return e.Timeout
	}
	return 3 * time.Second
}

func (e *Etcd) client() (*clientv3.Client, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cli != nil {
		return e.cli, nil
	}
	cfg := e.Config
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd %s: %w", redactEndpoints(cfg.Endpoints), err)
	}
	e.cli = cli
	return cli, nil
}

// Close releases the client connection.
func (e *Etcd) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cli == nil {
		return nil
	}
	err := e.cli.Close()
	e.cli = nil
	return err
}

// Load implements Source.
func (e *Etcd) Load(ctx context.Context) Revision {
	rev, _ := e.get(ctx)
	return rev
}

// get reads the key and returns it with the store revision of the read.
func (e *Etcd) get(ctx context.Context) (Revision, int64) {
	cli, err := e.client()
	if err != nil {
		return Revision{Source: e.Name(), Err: err}, 0
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout())
	defer cancel()
	resp, err := cli.Get(ctx, e.Key)
	if err != nil {
		return Revision{Source: e.Name(), Err: fmt.Errorf("etcd get %s from %s: %w", e.Key, redactEndpoints(cli.Endpoints()), unwrapCtx(ctx, err))}, 0
	}
	if len(resp.Kvs) == 0 {
		return Revision{Source: e.Name(), Err: fmt.Errorf("etcd key %s: %w", e.Key, ErrNotFound)}, resp.Header.Revision
	}
	return sized(e.Name(), resp.Kvs[0].Value, e.MaxBytes), resp.Header.Revision
}

// Watch implements Source.
func (e *Etcd) Watch(ctx context.Context, notify func(Revision)) error {
	cli, err := e.client()
	if err != nil {
		return err
	}
	for {
		rev, at := e.get(ctx)
		if at == 0 { // the read itself failed
			return rev.Err
		}
		if e.afterGet != nil {
			e.afterGet()
		}
		notify(rev)
		err := e.watchFrom(ctx, cli, at+1, notify)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, rpctypes.ErrCompacted) {
			return err
		}
		// Compacted past our revision: read again and watch from there.
	}
}

var errUnreachable = errors.New("connection lost")

func (e *Etcd) watchFrom(ctx context.Context, cli *clientv3.Client, from int64, notify func(Revision)) error {
	return watchEvents(ctx, cli, e.Key, from, nil, func(ev *clientv3.Event) {
		if ev.Type == clientv3.EventTypeDelete {
			notify(Revision{Source: e.Name(), Err: fmt.Errorf("etcd key %s: %w", e.Key, ErrNotFound)})
		} else {
			notify(sized(e.Name(), ev.Kv.Value, e.MaxBytes))
		}
	})
}

// watchEvents watches key (with opts, e.g. a prefix) from revision from,
// requiring a leader, and hands every event to handle until the watch
// fails, the connection is lost or ctx ends; it returns why.
func watchEvents(ctx context.Context, cli *clientv3.Client, key string, from int64, opts []clientv3.OpOption, handle func(*clientv3.Event)) error {
	wctx, cancel := context.WithCancelCause(clientv3.WithRequireLeader(ctx))
	defer cancel(nil)
	go watchConn(wctx, cli.ActiveConnection(), func() { cancel(fmt.Errorf("etcd %s: %w", redactEndpoints(cli.Endpoints()), errUnreachable)) })
	for resp := range cli.Watch(wctx, key, append([]clientv3.OpOption{clientv3.WithRev(from)}, opts...)...) {
		if err := resp.Err(); err != nil {
			if cause := context.Cause(wctx); cause != nil && !errors.Is(cause, context.Canceled) {
				return cause
			}
			return fmt.Errorf("etcd watch %s: %w", key, err)
		}
		for _, ev := range resp.Events {
			handle(ev)
		}
	}
	if cause := context.Cause(wctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("etcd watch %s: closed by the server", key)
}

// watchConn calls lost once the gRPC connection fails, so a watch on a dead
// or partitioned server ends instead of waiting silently.
func watchConn(ctx context.Context, conn *grpc.ClientConn, lost func()) {
	for {
		s := conn.GetState()
		switch s {
		case connectivity.TransientFailure, connectivity.Shutdown:
			lost()
			return
		case connectivity.Idle:
			conn.Connect()
		}
		if !conn.WaitForStateChange(ctx, s) {
			return
		}
	}
}

// Write implements Writer: a plain put of the whole document.
func (e *Etcd) Write(data []byte) error {
	cli, err := e.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout())
	defer cancel()
	if _, err := cli.Put(ctx, e.Key, string(data)); err != nil {
		return fmt.Errorf("etcd put %s to %s: %w", e.Key, redactEndpoints(cli.Endpoints()), unwrapCtx(ctx, err))
	}
	return nil
}

// unwrapCtx says plainly that a call timed out, and after how long.
func unwrapCtx(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("no answer in time (is the server up and reachable?): %w", err)
	}
	return err
}

// EtcdApps is the catalog of an Etcd source: the keys under KEY/apps/
// of its key (/hector/production: /hector/production/apps/NAME). Keys below the prefix that are not app
// names (a nested a/b) are ignored. It shares the source's client; closing
// the source closes it.
type EtcdApps struct {
	e      *Etcd
	Prefix string
}

// Apps returns the catalog beside the source's key.
func (e *Etcd) Apps() Catalog { return &EtcdApps{e: e, Prefix: appsPrefix(e.Key)} }

// Name implements Catalog: "etcd:PREFIX".
func (c *EtcdApps) Name() string { return "etcd:" + c.Prefix }

// AppSource implements Catalog: "etcd:PREFIX" and the app.
func (c *EtcdApps) AppSource(app string) string { return "etcd:" + c.Prefix + app }

// app returns the app a key stands for, and false for other keys.
func (c *EtcdApps) app(key []byte) (string, bool) {
	app, ok := strings.CutPrefix(string(key), c.Prefix)
	return app, ok && CheckAppName(app) == nil
}

// List implements Catalog: one prefix read.
func (c *EtcdApps) List(ctx context.Context) (map[string]Revision, error) {
	apps, _, err := c.list(ctx)
	return apps, err
}

// list reads every app and returns the store revision of the read.
func (c *EtcdApps) list(ctx context.Context) (map[string]Revision, int64, error) {
	cli, err := c.e.client()
	if err != nil {
		return nil, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.e.timeout())
	defer cancel()
	resp, err := cli.Get(ctx, c.Prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("etcd get %s* from %s: %w", c.Prefix, redactEndpoints(cli.Endpoints()), unwrapCtx(ctx, err))
	}
	apps := make(map[string]Revision, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if app, ok := c.app(kv.Key); ok {
			apps[app] = sized(c.AppSource(app), kv.Value, c.e.MaxBytes)
		}
	}
	return apps, resp.Header.Revision, nil
}

// Load implements Catalog.
func (c *EtcdApps) Load(ctx context.Context, app string) Revision {
	if err := CheckAppName(app); err != nil {
		return Revision{Source: c.Name(), Err: err}
	}
	sub := &Etcd{Key: c.Prefix + app, MaxBytes: c.e.MaxBytes, Timeout: c.e.Timeout}
	cli, err := c.e.client()
	if err != nil {
		return Revision{Source: sub.Name(), Err: err}
	}
	sub.cli = cli // shared: sub is never closed
	rev, _ := sub.get(ctx)
	return rev
}

// Watch implements Catalog: one prefix watch from the revision of the
// list, read again (reporting what changed meanwhile) after a compaction.
func (c *EtcdApps) Watch(ctx context.Context, notify func(app string, rev Revision)) error {
	cli, err := c.e.client()
	if err != nil {
		return err
	}
	report := newAppReport(notify)
	gone := func(app string) Revision { return appNotFound(c.AppSource(app), app) }
	for {
		apps, at, err := c.list(ctx)
		if err != nil {
			return err
		}
		if c.e.afterGet != nil {
			c.e.afterGet()
		}
		report.all(apps, gone)
		err = watchEvents(ctx, cli, c.Prefix, at+1, []clientv3.OpOption{clientv3.WithPrefix()}, func(ev *clientv3.Event) {
			app, ok := c.app(ev.Kv.Key)
			switch {
			case !ok:
			case ev.Type == clientv3.EventTypeDelete:
				report.set(app, gone(app))
			default:
				report.set(app, sized(c.AppSource(app), ev.Kv.Value, c.e.MaxBytes))
			}
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, rpctypes.ErrCompacted) {
			return err
		}
	}
}

// Put implements Catalog.
func (c *EtcdApps) Put(ctx context.Context, app string, data []byte) error {
	if err := CheckAppName(app); err != nil {
		return err
	}
	cli, err := c.e.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.e.timeout())
	defer cancel()
	if _, err := cli.Put(ctx, c.Prefix+app, string(data)); err != nil {
		return fmt.Errorf("etcd put %s%s to %s: %w", c.Prefix, app, redactEndpoints(cli.Endpoints()), unwrapCtx(ctx, err))
	}
	return nil
}

// Delete implements Catalog.
func (c *EtcdApps) Delete(ctx context.Context, app string) error {
	if err := CheckAppName(app); err != nil {
		return err
	}
	cli, err := c.e.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.e.timeout())
	defer cancel()
	resp, err := cli.Delete(ctx, c.Prefix+app)
	if err != nil {
		return fmt.Errorf("etcd delete %s%s from %s: %w", c.Prefix, app, redactEndpoints(cli.Endpoints()), unwrapCtx(ctx, err))
	}
	if resp.Deleted == 0 {
		return fmt.Errorf("etcd key %s%s: %w", c.Prefix, app, ErrNotFound)
	}
	return nil
}
