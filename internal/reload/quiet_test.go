package reload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/config/source"
	"github.com/hector-run/hector/internal/snapshot"
	"github.com/hector-run/hector/internal/testsvc"
)

// logBuffer collects log lines from the reconciler's goroutines.
type logBuffer struct{ testsvc.Buffer }

// count returns how many lines contain every one of parts.
func (b *logBuffer) count(parts ...string) int {
	n := 0
	for _, l := range strings.Split(b.String(), "\n") {
		all := l != ""
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			n++
		}
	}
	return n
}

// startLogged is start with the reconciler's log (info and up) kept.
func startLogged(t *testing.T, path string, appliers ...Applier) (*harness, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	h := &harness{t: t, rt: &snapshot.Runtime{}, outcomes: make(chan Outcome, 100), path: path}
	h.rec = &Reconciler{Runtime: h.rt, Source: &source.File{Path: path, Debounce: 10 * time.Millisecond},
		Env: func(string) (string, bool) { return "", false }, Log: slog.New(slog.NewTextHandler(logs, nil)),
		Appliers:     appliers,
		BuildOptions: snapshot.Options{DatabaseURL: "sqlite://" + filepath.Join(t.TempDir(), "h.db")}}
	h.rec.AddListener(func(o Outcome) { h.outcomes <- o })
	if _, err := h.rec.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-h.outcomes // startup
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.rec.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; h.rt.Close() })
	if o := <-h.outcomes; o.Result != NoOp || o.Trigger != "watch" {
		t.Fatalf("first watch outcome %+v", o)
	}
	return h, logs
}

// touch makes the watch read the file again without changing it.
func touch(t *testing.T, path string, times int) {
	t.Helper()
	for range times {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, path, string(data))
		time.Sleep(30 * time.Millisecond) // past the debounce: one read each
	}
}

// noOutcome asserts that no outcome at all arrives for a while.
func (h *harness) noOutcome() {
	h.t.Helper()
	select {
	case o := <-h.outcomes:
		h.t.Fatalf("unexpected outcome: %+v", o)
	case <-time.After(200 * time.Millisecond):
	}
}

// A document rejected by validation is reported once by the watch, however
// often the source reports it again; an explicit reload still answers.
func TestRejectedDocumentReportedOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hector.yaml")
	writeFile(t, path, doc("v1"))
	h, logs := startLogged(t, path)
	invalid := "llms: {e: {provider: echo}}\nagents:\n  a: {llm: missing}\n"
	writeFile(t, path, invalid)
	if o := h.next(); o.Result != Rejected || o.Errors[0].Path != "agents.a.llm" {
		t.Fatalf("%+v", o)
	}
	touch(t, path, 5)
	h.noOutcome()
	if n := logs.count("level=ERROR", "config reload rejected"); n != 1 {
		t.Fatalf("%d rejected lines for one rejected document, want 1:\n%s", n, logs.String())
	}
	o, err := h.rec.Reload(context.Background(), "sighup", "signal")
	if err != nil || o.Result != Rejected || o.Trigger != "sighup" {
		t.Fatalf("explicit reload of the rejected document: %+v %v", o, err)
	}
	<-h.outcomes
	// Back to a valid document, then to the rejected one: reported again.
	writeFile(t, path, doc("v2"))
	if o := h.next(); o.Result != Applied {
		t.Fatalf("%+v", o)
	}
	writeFile(t, path, invalid)
	if o := h.next(); o.Result != Rejected {
		t.Fatalf("the rejected document, back after a valid one: %+v", o)
	}
}

// A failure after validation (here an applier's, like a port in use) may
// be transient: every report of the document is tried again, but logged
// once per failureLogInterval.
func TestBuildFailureRetriedButLoggedOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hector.yaml")
	writeFile(t, path, doc("v1"))
	var mu sync.Mutex
	fail := true
	flaky := ApplierFunc(func(cur, next *config.Config) (Prepared, error) {
		mu.Lock()
		defer mu.Unlock()
		if cur != nil && fail {
			return Prepared{}, errors.New("port in use")
		}
		return Prepared{}, nil
	})
	h, logs := startLogged(t, path, flaky)
	writeFile(t, path, doc("v2"))
	if o := h.next(); o.Result != Rejected {
		t.Fatalf("%+v", o)
	}
	touch(t, path, 3)
	for range 3 {
		if o := h.next(); o.Result != Rejected || o.Errors[0].Message != "port in use" {
			t.Fatalf("retry: %+v", o)
		}
	}
	if n := logs.count("level=ERROR", "port in use"); n != 1 {
		t.Fatalf("%d error lines for one failing document, want 1:\n%s", n, logs.String())
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	touch(t, path, 1)
	if o := h.next(); o.Result != Applied || h.instruction() != "v2" {
		t.Fatalf("once the failure cleared: %+v", o)
	}
}

// No-ops are logged at info, as documented; the watch reporting the same
// document again does not repeat the line.
func TestNoOpLoggedAtInfoOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hector.yaml")
	writeFile(t, path, doc("v1"))
	h, logs := startLogged(t, path)
	if o, err := h.rec.Reload(context.Background(), "sighup", "signal"); err != nil || o.Result != NoOp {
		t.Fatalf("%+v %v", o, err)
	}
	if n := logs.count("level=INFO", "result=noop", "trigger=sighup"); n != 1 {
		t.Fatalf("no-op reload logged %d times at info:\n%s", n, logs.String())
	}
	touch(t, path, 4)
	if n := logs.count("level=INFO", "result=noop", "trigger=watch"); n != 1 {
		t.Fatalf("the watch's no-ops logged %d times at info, want 1 (the first read):\n%s", n, logs.String())
	}
}

// Starting from the last known good cache reports the source degraded from
// the start; once the source is readable its document is applied, even
// when identical to the cache, so the snapshot names the real source.
func TestFallbackIsDegradedAtOnceAndRelabelledOnRecovery(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hector.yaml")
	cache := filepath.Join(dir, "last-good")
	writeFile(t, cache, doc("cached"))
	h := &harness{t: t, rt: &snapshot.Runtime{}, outcomes: make(chan Outcome, 100), path: path}
	h.rec = &Reconciler{Runtime: h.rt, Source: &source.File{Path: path, Debounce: 10 * time.Millisecond},
		Env: func(string) (string, bool) { return "", false }, Log: slog.New(slog.NewTextHandler(&logBuffer{}, nil)),
		CachePath: cache, FallbackToCache: true,
		BuildOptions: snapshot.Options{DatabaseURL: "sqlite://" + filepath.Join(dir, "h.db")}}
	h.rec.AddListener(func(o Outcome) { h.outcomes <- o })
	out, err := h.rec.Start(context.Background())
	if err != nil || out.Trigger != "startup-fallback" {
		t.Fatalf("%+v %v", out, err)
	}
	if st := h.rec.SourceStatus(); st.Status != "degraded" || !strings.Contains(st.Error, "no such file") || st.Since.IsZero() {
		t.Fatalf("serving from the cache, status %+v", st)
	}
	<-h.outcomes
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.rec.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; h.rt.Close() })
	if s := h.rt.Current().Source; s != "cache:"+cache {
		t.Fatalf("source while serving the cache: %q", s)
	}
	// The watch reports the failure once, as an outcome.
	if o := h.next(); o.Result != Rejected || o.Trigger != "watch" || o.Errors[0].Path != "(source)" {
		t.Fatalf("the watch's first read: %+v", o)
	}
	writeFile(t, path, doc("cached")) // the source is back, with the same document
	o := h.next()
	if o.Result != Applied || o.Source != "file:"+path || o.Version != 2 {
		t.Fatalf("recovery: %+v", o)
	}
	if s := h.rt.Current().Source; s != "file:"+path {
		t.Fatalf("source after recovery: %q", s)
	}
	if st := h.rec.SourceStatus(); st.Status != "ok" {
		t.Fatalf("status after recovery: %+v", st)
	}
	touch(t, path, 2)
	h.quiet() // from then on, the same document is a no-op
}

// The history keeps the newest HistoryLimit versions; older ones are
// deleted as new ones are recorded.
func TestHistoryRetention(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hector.yaml")
	writeFile(t, path, doc("v1"))
	h, _ := startLogged(t, path)
	h.rec.FlushHistory()
	h.rec.HistoryLimit = 3 // read by the history writer, idle until the next apply
	for i := 2; i <= 6; i++ {
		if o, err := h.rec.Submit(context.Background(), []byte(doc(fmt.Sprint("v", i))), "api", "test", ""); err != nil || o.Result != Applied {
			t.Fatalf("%+v %v", o, err)
		}
	}
	h.rec.FlushHistory()
	snap, release := h.rt.Acquire()
	defer release()
	vs, err := snap.Store.ConfigVersions(context.Background(), "", 100)
	if err != nil || len(vs) != 3 || vs[0].Version != 6 || vs[2].Version != 4 {
		t.Fatalf("history with a limit of 3 after 6 versions: %+v %v", vs, err)
	}
}

// A document over the source's size limit is not read: the running
// configuration keeps serving and the outcome names the limit and the size.
func TestOversizedDocumentKeepsTheRunningOne(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hector.yaml")
	writeFile(t, path, doc("v1"))
	h := startSource(t, &source.File{Path: path, Debounce: 10 * time.Millisecond, MaxBytes: 200})
	big := doc("v2") + "# " + strings.Repeat("x", 300) + "\n"
	writeFile(t, path, big)
	o := h.next()
	if o.Result != Rejected || !strings.Contains(o.Errors[0].Message, fmt.Sprintf("is %d bytes, over the limit of 200 bytes", len(big))) {
		t.Fatalf("%+v", o)
	}
	if h.instruction() != "v1" {
		t.Fatalf("instruction %q after an oversized document", h.instruction())
	}
	writeFile(t, path, doc("v3"))
	if o := h.nextApplied(); h.instruction() != "v3" {
		t.Fatalf("%+v", o)
	}
}
