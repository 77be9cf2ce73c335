package server

import (
	"net"
	"net/http"
	"sync"
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
	idle  map[net.Conn]*time.Timer
	perIP map[string]int
}

// state is the http.Server's ConnState hook: an idle connection is closed
// once it has been idle for the idle timeout.
func (c *conns) state(conn net.Conn, st http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.idle[conn]; t != nil {
		t.Stop()
		delete(c.idle, conn)
	}
	if st != http.StateIdle {
		return
	}
	if c.idle == nil {
		c.idle = map[net.Conn]*time.Timer{}
	}
	c.idle[conn] = time.AfterFunc(c.settings().IdleTimeout.D(), func() { _ = conn.Close() })
}

// listener wraps ln so that a client address holding the maximum number of
// connections has further ones closed as soon as they are accepted.
func (c *conns) listener(ln net.Listener) net.Listener { return &limitedListener{Listener: ln, c: c} }

type limitedListener struct {
	net.Listener
	c *conns
}

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

// countedConn gives its client's slot back when closed, once.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
