package source

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// ZooKeeper reads the document from one znode and watches it with one-shot
// watches (GetW, or ExistsW while the node does not exist), re-armed after
// every event, so a deleted and re-created node is followed. When the
// connection drops, Watch returns and the reconciler retries; when the
// session expired meanwhile, the client opens a new one and the next Watch
// reads and watches again, so nothing changed in between is missed.
type ZooKeeper struct {
	Path    string
	Servers []string
	// SessionTimeout is the ZooKeeper session timeout; default 10s.
	SessionTimeout time.Duration
	// Digest is "user:password" for digest authentication; empty for none.
	Digest string
	// Timeout bounds one read or write; default 3s.
	Timeout time.Duration
	// MaxBytes is the largest node read; 0 means DefaultMaxBytes.
	MaxBytes int64

	mu      sync.Mutex
	conn    *zk.Conn
	changed chan struct{} // signalled on every connection state change
}

// Name implements Source.
func (z *ZooKeeper) Name() string { return "zookeeper:" + z.Path }

func (z *ZooKeeper) timeout() time.Duration {
	if z.Timeout > 0 {
		return z.Timeout
	}
	return 3 * time.Second
}

type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

func (z *ZooKeeper) connect() (*zk.Conn, chan struct{}, error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.conn != nil {
		return z.conn, z.changed, nil
	}
	st := z.SessionTimeout
	if st <= 0 {
		st = 10 * time.Second
	}
	changed := make(chan struct{}, 1)
	conn, _, err := zk.Connect(z.Servers, st, zk.WithLogger(quietLogger{}), zk.WithLogInfo(false),
		zk.WithHostProvider(&backoffHosts{}), zk.WithDialer(handshakeDialer(st)),
		zk.WithEventCallback(func(ev zk.Event) {
			if ev.Type == zk.EventSession {
				select {
				case changed <- struct{}{}:
				default:
				}
			}
		}))
	if err != nil {
		return nil, nil, fmt.Errorf("zookeeper %s: %w", redactEndpoints(z.Servers), err)
	}
	if z.Digest != "" {
		if err := conn.AddAuth("digest", []byte(z.Digest)); err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("zookeeper %s: digest auth: %w", redactEndpoints(z.Servers), err)
		}
	}
	z.conn, z.changed = conn, changed
	return conn, changed, nil
}

// SessionID is the current ZooKeeper session, 0 when none.
func (z *ZooKeeper) SessionID() int64 {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.conn == nil {
		return 0
	}
	return z.conn.SessionID()
}

// Close ends the session.
func (z *ZooKeeper) Close() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.conn != nil {
		z.conn.Close()
		z.conn = nil
	}
	return nil
}

// ready waits, up to the timeout, for the client to hold a session; the
// client queues requests while disconnected without a deadline, so no
// request is sent before this says yes.
func (z *ZooKeeper) ready(ctx context.Context, conn *zk.Conn, changed chan struct{}) error {
	deadline := time.NewTimer(z.timeout())
	defer deadline.Stop()
	for {
		if conn.State() == zk.StateHasSession {
			return nil
		}
		select {
		case <-changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline.C:
			return fmt.Errorf("zookeeper %s: no session (state %v)", redactEndpoints(z.Servers), conn.State())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// call runs a request with the timeout: the client has none of its own.
func call[T any](z *ZooKeeper, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() { v, err := f(); ch <- result{v, err} }()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-time.After(z.timeout()):
		var zero T
		return zero, fmt.Errorf("zookeeper %s: no answer within %v", redactEndpoints(z.Servers), z.timeout())
	}
}

// Load implements Source.
func (z *ZooKeeper) Load(ctx context.Context) Revision {
	conn, changed, err := z.connect()
	if err == nil {
		err = z.ready(ctx, conn, changed)
	}
	if err != nil {
		return Revision{Source: z.Name(), Err: err}
	}
	data, err := call(z, func() ([]byte, error) { d, _, err := conn.Get(z.Path); return d, err })
	return z.revision(data, err)
}

func (z *ZooKeeper) revision(data []byte, err error) Revision {
	switch {
	case errors.Is(err, zk.ErrNoNode):
		return Revision{Source: z.Name(), Err: fmt.Errorf("zookeeper node %s: %w", z.Path, ErrNotFound)}
	case err != nil:
		return Revision{Source: z.Name(), Err: fmt.Errorf("zookeeper get %s: %w", z.Path, err)}
	}
	return sized(z.Name(), data, z.MaxBytes)
}

// Watch implements Source.
func (z *ZooKeeper) Watch(ctx context.Context, notify func(Revision)) error {
	conn, changed, err := z.connect()
	if err != nil {
		return err
	}
	for {
		if err := z.ready(ctx, conn, changed); err != nil {
			return err
		}
		type watched struct {
			data   []byte
			exists bool
			events <-chan zk.Event
		}
		w, err := call(z, func() (watched, error) {
			data, _, events, err := conn.GetW(z.Path)
			if errors.Is(err, zk.ErrNoNode) {
				var ok bool
				ok, _, events, err = conn.ExistsW(z.Path)
				if err == nil && ok { // created in between: read it on the next turn
					return watched{exists: true}, nil
				}
				return watched{events: events}, err
			}
			return watched{data: data, exists: true, events: events}, err
		})
		if err != nil {
			return fmt.Errorf("zookeeper watch %s: %w", z.Path, err)
		}
		if w.events == nil {
			continue
		}
		if w.exists {
			notify(z.revision(w.data, nil))
		} else {
			notify(z.revision(nil, zk.ErrNoNode))
		}
		select {
		case ev := <-w.events:
			// A change, or the watch ended because the session expired:
			// read and watch again (the client opens a new session).
			if errors.Is(ev.Err, zk.ErrClosing) {
				return ev.Err
			}
		case <-changed:
			if s := conn.State(); s != zk.StateHasSession {
				return fmt.Errorf("zookeeper %s: connection lost (%v)", redactEndpoints(z.Servers), s)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Write implements Writer: sets the node's data, creating the node (and
// its parents) when missing.
func (z *ZooKeeper) Write(data []byte) error {
	conn, changed, err := z.connect()
	if err == nil {
		err = z.ready(context.Background(), conn, changed)
	}
	if err != nil {
		return err
	}
	_, err = call(z, func() (struct{}, error) {
		_, err := conn.Set(z.Path, data, -1)
		if errors.Is(err, zk.ErrNoNode) {
			err = z.create(conn, z.Path, data)
		}
		return struct{}{}, err
	})
	if err != nil {
		return fmt.Errorf("zookeeper set %s: %w", z.Path, err)
	}
	return nil
}

// create creates the node at path with data, and its missing parents.
func (z *ZooKeeper) create(conn *zk.Conn, path string, data []byte) error {
	acl := zk.WorldACL(zk.PermAll)
	if user, pass, ok := strings.Cut(z.Digest, ":"); ok {
		acl = zk.DigestACL(zk.PermAll, user, pass)
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i := 1; i < len(parts); i++ {
		p := "/" + strings.Join(parts[:i], "/")
		if _, err := conn.Create(p, nil, 0, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return err
		}
	}
	_, err := conn.Create(path, data, 0, acl)
	if errors.Is(err, zk.ErrNodeExists) {
		_, err = conn.Set(path, data, -1)
	}
	return err
}

// backoffHosts gives the client its servers in turn. After a round with no
// connection it waits with capped exponential backoff, 50 ms up to 500 ms,
// where the client's default provider waits a fixed second: a server that
// returns is reached within about half a second.
type backoffHosts struct {
	mu      sync.Mutex
	servers []string
	next    int
	tried   int // connection attempts since the last success
}

func (h *backoffHosts) Init(servers []string) error {
	if len(servers) == 0 {
		return errors.New("no ZooKeeper servers")
	}
	h.servers = append([]string(nil), servers...)
	return nil
}

func (h *backoffHosts) Len() int { return len(h.servers) }

func (h *backoffHosts) Next() (string, bool) {
	h.mu.Lock()
	rounds := h.tried / len(h.servers)
	if h.tried > 0 && h.tried%len(h.servers) == 0 {
		h.mu.Unlock()
		time.Sleep(min(50*time.Millisecond<<min(rounds-1, 4), 500*time.Millisecond))
		h.mu.Lock()
	}
	s := h.servers[h.next]
	h.next = (h.next + 1) % len(h.servers)
	h.tried++
	h.mu.Unlock()
	return s, false
}

func (h *backoffHosts) Connected() {
	h.mu.Lock()
	h.tried = 0
	h.mu.Unlock()
}

// handshakeDialer dials connections on which the client's session
// handshake gives up after 3 s. The client waits ten times its receive
// timeout for it (66 s with 10 s sessions); a ZooKeeper that accepts
// connections while still starting can leave a handshake unanswered, and
// the client would sit connected without a session for that long. Reads
// and writes of an established session keep their deadlines.
func handshakeDialer(sessionTimeout time.Duration) zk.Dialer {
	normal := 2 * sessionTimeout * 2 / 3 // twice the client's receive timeout
	return func(network, address string, timeout time.Duration) (net.Conn, error) {
		c, err := net.DialTimeout(network, address, timeout)
		if err != nil {
			return nil, err
		}
		return &clampConn{Conn: c, longest: normal, handshake: 3 * time.Second}, nil
	}
}

// clampConn shortens deadlines further away than longest to handshake.
type clampConn struct {
	net.Conn
	longest, handshake time.Duration
}

func (c *clampConn) clamp(t time.Time) time.Time {
	if now := time.Now(); !t.IsZero() && t.Sub(now) > c.longest {
		return now.Add(c.handshake)
	}
	return t
}

func (c *clampConn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.clamp(t)) }
func (c *clampConn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.clamp(t)) }
func (c *clampConn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(c.clamp(t)) }

// ZooKeeperApps is the catalog of a ZooKeeper source: the children of the
// apps child of its node (/hector/production: /hector/production/apps/NAME). Children
// that are not app names are ignored. Watch sets one children watch on the
// apps node (an exists watch while it is absent) and one data watch per
// app, each re-armed only after it fired; ZooKeeper multiplexes them all on
// the source's one session.
type ZooKeeperApps struct {
	z   *ZooKeeper
	Dir string
}

// Apps returns the catalog under the source's node.
func (z *ZooKeeper) Apps() Catalog {
	return &ZooKeeperApps{z: z, Dir: strings.TrimSuffix(appsPrefix(z.Path), "/")}
}

// Name implements Catalog: "zookeeper:DIR".
func (a *ZooKeeperApps) Name() string { return "zookeeper:" + a.Dir }

// AppSource implements Catalog: "zookeeper:DIR/APP".
func (a *ZooKeeperApps) AppSource(app string) string { return "zookeeper:" + a.path(app) }

func (a *ZooKeeperApps) path(app string) string { return a.Dir + "/" + app }

// session connects and waits for a session.
func (a *ZooKeeperApps) session(ctx context.Context) (*zk.Conn, chan struct{}, error) {
	conn, changed, err := a.z.connect()
	if err == nil {
		err = a.z.ready(ctx, conn, changed)
	}
	return conn, changed, err
}

// revision is the revision of an app's node read with err.
func (a *ZooKeeperApps) revision(app string, data []byte, err error) Revision {
	switch {
	case errors.Is(err, zk.ErrNoNode):
		return appNotFound(a.AppSource(app), app)
	case err != nil:
		return Revision{Source: a.AppSource(app), Err: fmt.Errorf("zookeeper get %s: %w", a.path(app), err)}
	}
	return sized(a.AppSource(app), data, a.z.MaxBytes)
}

// List implements Catalog.
func (a *ZooKeeperApps) List(ctx context.Context) (map[string]Revision, error) {
	conn, _, err := a.session(ctx)
	if err != nil {
		return nil, err
	}
	names, err := call(a.z, func() ([]string, error) { n, _, err := conn.Children(a.Dir); return n, err })
	if errors.Is(err, zk.ErrNoNode) {
		return map[string]Revision{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("zookeeper children %s: %w", a.Dir, err)
	}
	apps := make(map[string]Revision, len(names))
	for _, app := range names {
		if CheckAppName(app) != nil {
			continue
		}
		data, err := call(a.z, func() ([]byte, error) { d, _, err := conn.Get(a.path(app)); return d, err })
		if errors.Is(err, zk.ErrNoNode) {
			continue // removed since listed
		}
		if err != nil {
			return nil, fmt.Errorf("zookeeper get %s: %w", a.path(app), err)
		}
		apps[app] = a.revision(app, data, nil)
	}
	return apps, nil
}

// Load implements Catalog.
func (a *ZooKeeperApps) Load(ctx context.Context, app string) Revision {
	if err := CheckAppName(app); err != nil {
		return Revision{Source: a.Name(), Err: err}
	}
	conn, _, err := a.session(ctx)
	if err != nil {
		return Revision{Source: a.AppSource(app), Err: err}
	}
	data, err := call(a.z, func() ([]byte, error) { d, _, err := conn.Get(a.path(app)); return d, err })
	return a.revision(app, data, err)
}

// Put implements Catalog: it creates the node and its parents as needed.
func (a *ZooKeeperApps) Put(ctx context.Context, app string, data []byte) error {
	if err := CheckAppName(app); err != nil {
		return err
	}
	conn, _, err := a.session(ctx)
	if err != nil {
		return err
	}
	_, err = call(a.z, func() (struct{}, error) {
		_, err := conn.Set(a.path(app), data, -1)
		if errors.Is(err, zk.ErrNoNode) {
			err = a.z.create(conn, a.path(app), data)
		}
		return struct{}{}, err
	})
	if err != nil {
		return fmt.Errorf("zookeeper set %s: %w", a.path(app), err)
	}
	return nil
}

// Delete implements Catalog.
func (a *ZooKeeperApps) Delete(ctx context.Context, app string) error {
	if err := CheckAppName(app); err != nil {
		return err
	}
	conn, _, err := a.session(ctx)
	if err != nil {
		return err
	}
	_, err = call(a.z, func() (struct{}, error) { return struct{}{}, conn.Delete(a.path(app), -1) })
	if errors.Is(err, zk.ErrNoNode) {
		return fmt.Errorf("zookeeper node %s: %w", a.path(app), ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("zookeeper delete %s: %w", a.path(app), err)
	}
	return nil
}

// zkFired is a one-shot watch that fired: the apps node's children watch
// (app "") or an app's data watch.
type zkFired struct {
	app string
	err error
	gen int
}

// zkAppsWatch is the state of one ZooKeeperApps.Watch: the watches armed
// and what their nodes held when armed.
type zkAppsWatch struct {
	a        *ZooKeeperApps
	conn     *zk.Conn
	fired    chan zkFired
	done     chan struct{}
	dirArmed bool
	gen      int                 // bumped when a lost session ends every watch
	names    []string            // the valid children at the last read
	armed    map[string]Revision // apps with a data watch, read when armed
}

// forward sends the watch's event to fired, until the Watch ends.
func (w *zkAppsWatch) forward(events <-chan zk.Event, app string) {
	gen := w.gen
	go func() {
		select {
		case ev := <-events:
			select {
			case w.fired <- zkFired{app: app, err: ev.Err, gen: gen}:
			case <-w.done:
			}
		case <-w.done:
		}
	}()
}

// armDir reads the apps node's children with a watch, or watches for the
// node to be created while it does not exist.
func (w *zkAppsWatch) armDir() error {
	type result struct {
		names  []string
		events <-chan zk.Event
		retry  bool
	}
	for {
		r, err := call(w.a.z, func() (result, error) {
			names, _, events, err := w.conn.ChildrenW(w.a.Dir)
			if errors.Is(err, zk.ErrNoNode) {
				var ok bool
				ok, _, events, err = w.conn.ExistsW(w.a.Dir)
				return result{events: events, retry: ok}, err
			}
			return result{names: names, events: events}, err
		})
		if err != nil {
			return fmt.Errorf("zookeeper watch %s: %w", w.a.Dir, err)
		}
		if r.retry { // created in between: list it
			continue
		}
		w.names = slices.DeleteFunc(r.names, func(n string) bool { return CheckAppName(n) != nil })
		w.dirArmed = true
		w.forward(r.events, "")
		return nil
	}
}

// armApps sets a data watch on every listed app that has none.
func (w *zkAppsWatch) armApps() error {
	type result struct {
		data   []byte
		events <-chan zk.Event
	}
	for _, app := range w.names {
		if _, ok := w.armed[app]; ok {
			continue
		}
		r, err := call(w.a.z, func() (result, error) {
			data, _, events, err := w.conn.GetW(w.a.path(app))
			return result{data, events}, err
		})
		if errors.Is(err, zk.ErrNoNode) {
			continue // removed: the children watch fires
		}
		if err != nil {
			return fmt.Errorf("zookeeper watch %s: %w", w.a.path(app), err)
		}
		w.armed[app] = w.a.revision(app, r.data, nil)
		w.forward(r.events, app)
	}
	return nil
}

// current is every listed app with its document.
func (w *zkAppsWatch) current() map[string]Revision {
	apps := make(map[string]Revision, len(w.names))
	for _, app := range w.names {
		if rev, ok := w.armed[app]; ok {
			apps[app] = rev
		}
	}
	return apps
}

// disarm forgets the watch that fired, so the next round reads and arms it
// again; a watch ended by a lost session forgets them all (and the other
// watches of that session, ending the same way, are then ignored).
func (w *zkAppsWatch) disarm(f zkFired) error {
	switch {
	case errors.Is(f.err, zk.ErrClosing):
		return f.err
	case f.gen != w.gen:
	case f.err != nil:
		w.dirArmed, w.armed = false, map[string]Revision{}
		w.gen++
	case f.app == "":
		w.dirArmed = false
	default:
		delete(w.armed, f.app)
	}
	return nil
}

// Watch implements Catalog.
func (a *ZooKeeperApps) Watch(ctx context.Context, notify func(app string, rev Revision)) error {
	conn, changed, err := a.z.connect()
	if err != nil {
		return err
	}
	w := &zkAppsWatch{a: a, conn: conn, fired: make(chan zkFired), done: make(chan struct{}), armed: map[string]Revision{}}
	defer close(w.done)
	report := newAppReport(notify)
	gone := func(app string) Revision { return appNotFound(a.AppSource(app), app) }
	for {
		if err := a.z.ready(ctx, conn, changed); err != nil {
			return err
		}
		if !w.dirArmed {
			if err := w.armDir(); err != nil {
				return err
			}
		}
		if err := w.armApps(); err != nil {
			return err
		}
		report.all(w.current(), gone)
		select {
		case f := <-w.fired:
			if err := w.disarm(f); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
