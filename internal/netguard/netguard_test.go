package netguard

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

func TestSpecial(t *testing.T) {
	refused := map[string]string{
		"127.0.0.1": "loopback", "10.1.2.3": "private", "172.31.255.255": "private",
		"192.168.1.1": "private", "169.254.169.254": "link-local",
		"100.100.100.200": "shared address space", // a cloud metadata address
		"100.64.0.1":      "shared address space", "198.18.0.1": "benchmarking",
		"198.19.255.255": "benchmarking", "0.0.0.0": "this network", "0.1.2.3": "this network",
		"240.0.0.1": "reserved", "255.255.255.255": "broadcast", "224.0.0.1": "multicast",
		"192.0.0.170": "IETF protocol assignments", "192.0.2.1": "documentation",
		"::1": "loopback", "::": "unspecified", "::ffff:127.0.0.1": "loopback",
		"::ffff:169.254.169.254": "link-local", "64:ff9b::a9fe:a9fe": "NAT64",
		"64:ff9b::808:808": "NAT64", "fd00::1": "unique local", "fe80::1": "link-local",
		"ff02::1": "multicast", "2001:db8::1": "documentation", "2002:7f00:1::": "6to4",
		"fec0::1": "site-local", "100::1": "discard-only",
	}
	for s, want := range refused {
		kind, bad := Special(netip.MustParseAddr(s))
		if !bad || kind != want {
			t.Errorf("Special(%s) = %q, %v; want %q, true", s, kind, bad, want)
		}
	}
	for _, s := range []string{"8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.0", "198.20.0.0",
		"2606:4700::1111", "2a00:1450:4001::200e", "::ffff:8.8.8.8", "223.255.255.255"} {
		if kind, bad := Special(netip.MustParseAddr(s)); bad {
			t.Errorf("Special(%s) = %q; want public", s, kind)
		}
	}
	if _, bad := Special(netip.Addr{}); !bad {
		t.Error("the zero address must be refused")
	}
}

func TestDialerRefusesLoopbackAfterResolution(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	client := &http.Client{Transport: &http.Transport{DialContext: Dialer(time.Second).DialContext}}
	// "localhost" is a name: the refusal happens on the resolved address.
	_, err := client.Get("http://localhost:" + port + "/")
	var ne *Error
	if !errors.As(err, &ne) || ne.Kind != "loopback" {
		t.Fatalf("err = %v; want a netguard loopback refusal", err)
	}
}

func TestResolve(t *testing.T) {
	ctx := context.Background()
	if err := Resolve(ctx, "127.0.0.2"); err == nil {
		t.Error("a loopback literal must be refused")
	}
	if err := Resolve(ctx, "localhost"); err == nil {
		t.Error("localhost must be refused")
	}
	if err := Resolve(ctx, "93.184.215.14"); err != nil {
		t.Errorf("a public literal: %v", err)
	}
}
