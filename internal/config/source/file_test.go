package source

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestBusyWriterCannotStarveTheWatch: a file rewritten more often than the
// debounce still produces reads while the writes go on.
func TestBusyWriterCannotStarveTheWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("v: 0"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &File{Path: path, Debounce: 40 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var reads []time.Time
	first := make(chan struct{})
	go func() {
		_ = f.Watch(ctx, func(r Revision) {
			mu.Lock()
			reads = append(reads, time.Now())
			if len(reads) == 1 {
				close(first)
			}
			mu.Unlock()
		})
	}()
	<-first // the watch's initial read
	start := time.Now()
	for i := 1; time.Since(start) < 600*time.Millisecond; i++ {
		if err := os.WriteFile(path, []byte(fmt.Sprintf("v: %d", i)), 0o600); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // faster than the debounce
	}
	mu.Lock()
	defer mu.Unlock()
	during := 0
	for _, r := range reads[1:] {
		if r.Before(start.Add(600 * time.Millisecond)) {
			during++
		}
	}
	// 600 ms of writes with reads capped at 2×40 ms apart: expect about 7.
	if during < 3 {
		t.Fatalf("only %d reads during 600 ms of continuous writes", during)
	}
}

func TestWriteIsAtomicAndKeepsMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	f := &File{Path: path}
	if err := f.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if b, _ := os.ReadFile(path); string(b) != "new" || st.Mode().Perm() != 0o640 {
		t.Fatalf("%q %v", b, st.Mode())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary file left behind: %v", entries)
	}
	if r := f.Load(context.Background()); r.Err != nil || r.Hash == "" || r.Source != "file:"+path {
		t.Fatalf("%+v", r)
	}
}
