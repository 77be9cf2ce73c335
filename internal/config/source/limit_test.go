package source

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/testsvc"
)

// Every backend refuses to read a document over MaxBytes, naming both
// sizes; the watch reports it as a read error and keeps watching.
func TestDocumentSizeLimit(t *testing.T) {
	const max = 100
	small := "agents: {a: {llm: e}}\n"
	big := small + "# " + strings.Repeat("x", max) + "\n"
	backends := map[string]func(t *testing.T) Spec{
		"file": func(t *testing.T) Spec { return Spec{Type: "file", Key: filepath.Join(t.TempDir(), "hector.yaml")} },
		"sqlite": func(t *testing.T) Spec {
			return Spec{Type: "database", Endpoints: []string{"sqlite://" + filepath.Join(t.TempDir(), "c.db")}, PollInterval: 20 * time.Millisecond}
		},
		"postgres": func(t *testing.T) Spec { return Spec{Type: "database", Endpoints: []string{testsvc.Postgres(t)}} },
		"etcd":     func(t *testing.T) Spec { return Spec{Type: "etcd", Endpoints: []string{testsvc.Etcd(t).Addr()}} },
		"consul":   func(t *testing.T) Spec { return Spec{Type: "consul", Endpoints: []string{testsvc.Consul(t).Addr()}} },
		"zookeeper": func(t *testing.T) Spec {
			return Spec{Type: "zookeeper", Endpoints: []string{testsvc.ZooKeeper(t).Addr()}}
		},
	}
	for name, spec := range backends {
		t.Run(name, func(t *testing.T) {
			sp := spec(t)
			sp.MaxBytes = max
			src := open(t, sp)
			if err := src.(Writer).Write([]byte(small)); err != nil {
				t.Fatal(err)
			}
			ctx := testsvc.Context(t, 20*time.Second)
			if r := src.Load(ctx); r.Err != nil || string(r.Data) != small {
				t.Fatalf("a document under the limit: %+v", r)
			}
			if err := src.(Writer).Write([]byte(big)); err != nil {
				t.Fatal(err)
			}
			r := src.Load(ctx)
			var tooLarge *TooLargeError
			if !errors.As(r.Err, &tooLarge) || r.Data != nil || tooLarge.Limit != max || tooLarge.Size != int64(len(big)) ||
				!strings.Contains(r.Err.Error(), strconv.Itoa(len(big))+" bytes") || !strings.Contains(r.Err.Error(), "limit of 100 bytes") {
				t.Fatalf("a document over the limit: %+v", r)
			}
			// The watch reports it and goes on: a document back under the
			// limit is read.
			reads := make(chan Revision, 100)
			werr := make(chan error, 1)
			go func() { werr <- src.Watch(ctx, func(r Revision) { reads <- r }) }()
			select {
			case r := <-reads:
				if !errors.As(r.Err, &tooLarge) {
					t.Fatalf("watch's first read: %+v", r)
				}
			case err := <-werr:
				t.Fatalf("watch ended: %v", err)
			}
			if name == "file" {
				_ = os.WriteFile(sp.Key, []byte(small), 0o600)
			} else if err := src.(Writer).Write([]byte(small)); err != nil {
				t.Fatal(err)
			}
			for {
				select {
				case r := <-reads:
					if r.Err == nil && string(r.Data) == small {
						return
					}
				case err := <-werr:
					t.Fatalf("watch ended: %v", err)
				case <-ctx.Done():
					t.Fatal("the document back under the limit was not read")
				}
			}
		})
	}
}
