// Package netguard classifies IP addresses against the IANA special-purpose
// address registries and refuses connections into them: the SSRF policy
// shared by push webhooks and the HTTP tool.
//
// The lists are the IPv4 and IPv6 Special-Purpose Address Registries
// (RFC 6890 and its updates), plus multicast and the deprecated site-local
// range. An IPv4-mapped IPv6 address is judged by its IPv4 address; NAT64
// (64:ff9b::/96, 64:ff9b:1::/48) and 6to4 (2002::/16) prefixes are refused
// whole, since they reach IPv4 addresses that may be internal.
package netguard

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

type block struct {
	prefix netip.Prefix
	name   string
}

func mustBlocks(pairs ...string) []block {
	out := make([]block, 0, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, block{netip.MustParsePrefix(pairs[i]), pairs[i+1]})
	}
	return out
}

// The registries, as of 2026. Ranges the registry marks globally reachable
// inside a larger special block (such as 192.0.0.9/32) are refused with
// their block: no webhook or tool needs them.
var special = mustBlocks(
	"0.0.0.0/8", "this network",
	"10.0.0.0/8", "private",
	"100.64.0.0/10", "shared address space",
	"127.0.0.0/8", "loopback",
	"169.254.0.0/16", "link-local",
	"172.16.0.0/12", "private",
	"192.0.0.0/24", "IETF protocol assignments",
	"192.0.2.0/24", "documentation",
	"192.31.196.0/24", "AS112",
	"192.52.193.0/24", "AMT",
	"192.88.99.0/24", "6to4 relay anycast",
	"192.168.0.0/16", "private",
	"192.175.48.0/24", "AS112",
	"198.18.0.0/15", "benchmarking",
	"198.51.100.0/24", "documentation",
	"203.0.113.0/24", "documentation",
	"224.0.0.0/4", "multicast",
	"255.255.255.255/32", "broadcast", // before 240/4, which holds it
	"240.0.0.0/4", "reserved",

	"::/128", "unspecified",
	"::1/128", "loopback",
	"64:ff9b::/96", "NAT64",
	"64:ff9b:1::/48", "NAT64 local use",
	"100::/64", "discard-only",
	"100:0:0:1::/64", "dummy prefix",
	"2001::/23", "IETF protocol assignments",
	"2001:db8::/32", "documentation",
	"2002::/16", "6to4",
	"3fff::/20", "documentation",
	"5f00::/16", "segment routing",
	"fc00::/7", "unique local",
	"fe80::/10", "link-local",
	"fec0::/10", "site-local",
	"ff00::/8", "multicast",
)

// Special reports whether addr lies in a special-purpose range, and the
// range's name ("loopback", "private", "shared address space", …).
// IPv4-mapped IPv6 addresses are judged as IPv4. The zero Addr is special.
func Special(addr netip.Addr) (string, bool) {
	if !addr.IsValid() {
		return "invalid", true
	}
	addr = addr.Unmap().WithZone("")
	for _, b := range special {
		if b.prefix.Contains(addr) {
			return b.name, true
		}
	}
	return "", false
}

// Error is a connection refused by the policy.
type Error struct {
	Addr netip.Addr
	Kind string // the range's name
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s is a %s address, which is refused", e.Addr, e.Kind)
}

// Check returns an *Error when addr is special.
func Check(addr netip.Addr) error {
	if kind, bad := Special(addr); bad {
		return &Error{Addr: addr.Unmap(), Kind: kind}
	}
	return nil
}

// Control is a net.Dialer Control function that refuses to connect to a
// special address. It runs after name resolution, on the address actually
// dialled, so a name that resolves (or re-resolves) inside the network is
// caught too.
func Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("netguard: %s: %w", address, err)
	}
	return Check(ap.Addr())
}

// Dialer returns a dialer that refuses special addresses, with the given
// connect timeout.
func Dialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: Control}
}

// Resolve checks host: an IP literal directly, a name by resolving it
// (within 3s) and checking every address. It returns the first refusal, or
// a resolution error.
func Resolve(ctx context.Context, host string) error {
	if addr, err := netip.ParseAddr(host); err == nil {
		return Check(addr)
	}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
	if err != nil {
		return fmt.Errorf("cannot resolve %s: %w", host, err)
	}
	for _, a := range addrs {
		if err := Check(a); err != nil {
			return err
		}
	}
	return nil
}
