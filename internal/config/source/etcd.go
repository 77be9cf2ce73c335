package source

import (
	"context"
	"errors"
	"fmt"
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

	afterGet func() // tests: runs between Watch's read and its watch
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
	wctx, cancel := context.WithCancelCause(clientv3.WithRequireLeader(ctx))
	defer cancel(nil)
	go watchConn(wctx, cli.ActiveConnection(), func() { cancel(fmt.Errorf("etcd %s: %w", redactEndpoints(cli.Endpoints()), errUnreachable)) })
	for resp := range cli.Watch(wctx, e.Key, clientv3.WithRev(from)) {
		if err := resp.Err(); err != nil {
			if cause := context.Cause(wctx); cause != nil && !errors.Is(cause, context.Canceled) {
				return cause
			}
			return fmt.Errorf("etcd watch %s: %w", e.Key, err)
		}
		for _, ev := range resp.Events {
			if ev.Type == clientv3.EventTypeDelete {
				notify(Revision{Source: e.Name(), Err: fmt.Errorf("etcd key %s: %w", e.Key, ErrNotFound)})
			} else {
				notify(sized(e.Name(), ev.Kv.Value, e.MaxBytes))
			}
		}
	}
	if cause := context.Cause(wctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("etcd watch %s: closed by the server", e.Key)
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
