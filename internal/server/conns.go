package server

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hector-run/hector/internal/config"
)

// conns enforces the connection limits of the current configuration, so
// changes apply live to connections accepted and gone idle after them:
// server.idle_timeout closes keep-alive connections left idle, and
// server.max_connections_per_client refuses a client address's connections
// beyond the limit.
type conns struct {
	settings func() *config.Server // the current server settings

	mu    sync.Mutex
	perIP map[string]int
}

// state is the http.Server's ConnState hook: an idle connection is closed
// once it has been idle for the idle timeout. Every connection comes from
// listener, so it is a *countedConn.
func (c *conns) state(conn net.Conn, st http.ConnState) {
	cc, ok := conn.(*countedConn)
	if !ok {
		return
	}
	if st == http.StateIdle {
		cc.armIdle(c.settings().IdleTimeout.D())
	} else {
		cc.disarmIdle()
	}
}

// listener wraps ln so that a client address holding the maximum number of
// connections has further ones closed as soon as they are accepted.
func (c *conns) listener(ln net.Listener) net.Listener { return &limitedListener{Listener: ln, c: c} }

type limitedListener struct {
	net.Listener
	c *conns
}

// Accept returns the next connection within its client's limit, closing
// those beyond it.
func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(conn)
		if l.c.admit(ip) {
			return &countedConn{Conn: conn, release: func() { l.c.release(ip) }}, nil
		}
		_ = conn.Close()
	}
}

func remoteIP(conn net.Conn) string {
	host, _, err := net.SplitHostPort(conn.RemoteAddr().String())
	if err != nil {
		return conn.RemoteAddr().String()
	}
	return host
}

func (c *conns) admit(ip string) bool {
	limit := c.settings().MaxConnsPerIP
	c.mu.Lock()
	defer c.mu.Unlock()
	if limit > 0 && c.perIP[ip] >= limit {
		return false
	}
	if c.perIP == nil {
		c.perIP = map[string]int{}
	}
	c.perIP[ip]++
	return true
}

func (c *conns) release(ip string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.perIP[ip]--; c.perIP[ip] <= 0 {
		delete(c.perIP, ip)
	}
}

// countedConn gives its client's slot back when closed, once, and carries
// its idle timer: armed when the server sees the connection idle, disarmed
// by the first byte of the next request (the server reports the request
// only once its headers are read, too late for a slow sender).
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()

	armed atomic.Bool
	mu    sync.Mutex
	idle  *time.Timer
	gen   uint64 // which arming a firing timer belongs to
}

// Read implements net.Conn; data ends an idle period.
func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.armed.Load() {
		c.disarmIdle()
	}
	return n, err
}

// Close implements net.Conn.
func (c *countedConn) Close() error {
	c.disarmIdle()
	c.once.Do(c.release)
	return c.Conn.Close()
}

// CloseWrite half-closes, as net/http does before closing a connection
// whose request body it will not read (so the client sees the response,
// not a reset).
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *countedConn) armIdle(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopLocked()
	gen := c.gen
	c.idle = time.AfterFunc(d, func() {
		c.mu.Lock()
		current := c.gen == gen && c.idle != nil
		c.mu.Unlock()
		if current {
			_ = c.Close()
		}
	})
	c.armed.Store(true)
}

func (c *countedConn) disarmIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopLocked()
}

func (c *countedConn) stopLocked() {
	c.gen++
	if c.idle != nil {
		c.idle.Stop()
		c.idle = nil
	}
	c.armed.Store(false)
}
