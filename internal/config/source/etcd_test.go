package source

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/hector-run/hector/internal/testsvc"
)

// A compaction between the read and the watch makes the watch's start
// revision unavailable (ErrCompacted); the source reads again and watches
// from the new revision, reporting the newest value and none in between.
func TestEtcdWatchAfterCompaction(t *testing.T) {
	proc := testsvc.Etcd(t)
	ctx := testsvc.Context(t, 30*time.Second)
	cli, err := clientv3.New(NewEtcdConfig([]string{proc.Addr()}))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	key := "/hector/compaction/config"
	put := func(v string) int64 {
		resp, err := cli.Put(ctx, key, v)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Revision
	}
	put("v1")
	src := &Etcd{Key: key, Config: NewEtcdConfig([]string{proc.Addr()})}
	defer src.Close()
	reads := 0
	src.afterGet = func() {
		reads++
		if reads == 1 {
			put("v2")
			put("v3")
			if _, err := cli.Compact(ctx, put("v4")); err != nil {
				t.Error(err)
			}
		}
	}
	got := make(chan string, 10)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- src.Watch(wctx, func(r Revision) {
			if r.Err != nil {
				got <- "error: " + r.Err.Error()
				return
			}
			got <- string(r.Data)
		})
	}()
	for _, want := range []string{"v1", "v4"} {
		select {
		case v := <-got:
			if v != want {
				t.Fatalf("notified %q, want %q", v, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no notification (want %q)", want)
		}
	}
	put("v5")
	if v := <-got; v != "v5" {
		t.Fatalf("after re-watch: %q", v)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Watch returned %v", err)
	}
	if reads != 2 {
		t.Fatalf("%d reads, want 2 (one after the compaction)", reads)
	}
}
