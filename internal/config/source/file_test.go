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

// TestWatchIgnoresOtherFilesInTheDirectory: files written beside the
// configuration (a log, an SSE capture, an editor's swap file) cause no
// read; the configuration's own changes still do.
func TestWatchIgnoresOtherFilesInTheDirectory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hector.yaml")
	if err := os.WriteFile(path, []byte("v: 0"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &File{Path: path, Debounce: 10 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reads := make(chan Revision, 100)
	go func() { _ = f.Watch(ctx, func(r Revision) { reads <- r }) }()
	<-reads // the watch's initial read
	log, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	for i := range 20 { // a busy log next to the configuration
		fmt.Fprintf(log, "line %d\n", i)
		time.Sleep(5 * time.Millisecond)
	}
	if err := os.WriteFile(filepath.Join(dir, "other-file"), nil, 0o600); err != nil { // touch other-file
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".hector.yaml.swp"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-reads:
		t.Fatalf("a write to another file read the configuration: %+v", r)
	case <-time.After(200 * time.Millisecond):
	}
	// An editor's save: a temporary file renamed over the configuration.
	tmp := filepath.Join(dir, ".hector.yaml.tmp")
	if err := os.WriteFile(tmp, []byte("v: 1"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-reads:
		if string(r.Data) != "v: 1" {
			t.Fatalf("read after the rename-save: %+v", r)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a rename over the configuration was not seen")
	}
	select {
	case r := <-reads:
		t.Fatalf("one save read twice: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
}
