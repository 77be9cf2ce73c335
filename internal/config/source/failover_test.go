package source

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/testsvc"
)

// With several endpoints and the first one dead, every backend reads from
// and watches the live one.
func TestEndpointFailover(t *testing.T) {
	for _, typ := range []string{"etcd", "consul", "zookeeper"} {
		t.Run(typ, func(t *testing.T) {
			var live *testsvc.Proc
			switch typ {
			case "etcd":
				live = testsvc.Etcd(t)
			case "consul":
				live = testsvc.Consul(t)
			case "zookeeper":
				live = testsvc.ZooKeeper(t)
			}
			dead := fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(t))
			src := open(t, Spec{Type: typ, Endpoints: []string{dead, live.Addr()}, Key: "/hector/failover"})
			// Writes fail over too, on the first attempt.
			if err := src.(Writer).Write([]byte(authDoc)); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			got := make(chan Revision, 10)
			go func() { _ = src.Watch(ctx, func(r Revision) { got <- r }) }()
			select {
			case r := <-got:
				if r.Err != nil || string(r.Data) != authDoc {
					t.Fatalf("first read: %+v", r)
				}
			case <-ctx.Done():
				t.Fatal("no read through the live endpoint")
			}
		})
	}
}

// Consul with its first address down: the very first read (the one startup
// makes) comes from the next address, and so does a first write.
func TestConsulFirstReadSkipsADeadAddress(t *testing.T) {
	live := testsvc.Consul(t)
	dead := fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(t))
	writer := open(t, Spec{Type: "consul", Endpoints: []string{live.Addr()}, Key: "hector/startup"})
	if err := writer.(Writer).Write([]byte(authDoc)); err != nil {
		t.Fatal(err)
	}
	ctx := testsvc.Context(t, 20*time.Second)
	src := open(t, Spec{Type: "consul", Endpoints: []string{dead, live.Addr()}, Key: "hector/startup"})
	if r := src.Load(ctx); r.Err != nil || string(r.Data) != authDoc {
		t.Fatalf("first read with the first address down: %+v", r)
	}
	all := open(t, Spec{Type: "consul", Endpoints: []string{dead, dead}, Key: "hector/startup"})
	if r := all.Load(ctx); r.Err == nil || strings.Count(r.Err.Error(), "consul get") != 2 {
		t.Fatalf("every address down: the error should name each attempt: %+v", r)
	}
	fresh := open(t, Spec{Type: "consul", Endpoints: []string{dead, live.Addr()}, Key: "hector/startup"})
	if err := fresh.(Writer).Write([]byte(authDoc)); err != nil {
		t.Fatalf("first write with the first address down: %v", err)
	}
}
