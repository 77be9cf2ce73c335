package source

import (
	"context"
	"fmt"
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
			// Writes fail over too (Consul moves on after one failure).
			var err error
			for range 2 {
				if err = src.(Writer).Write([]byte(authDoc)); err == nil {
					break
				}
			}
			if err != nil {
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
