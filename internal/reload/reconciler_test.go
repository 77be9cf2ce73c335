package reload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/config/source"
	"github.com/hector-run/hector/internal/snapshot"
)

func doc(instruction string) string {
	return fmt.Sprintf("llms: {e: {provider: echo}}\nagents:\n  a: {llm: e, instruction: %q}\n", instruction)
}

type harness struct {
	t        *testing.T
	rec      *Reconciler
	rt       *snapshot.Runtime
	outcomes chan Outcome
	path     string
}

// start runs a reconciler on the file at path (which must exist).
func start(t *testing.T, path string, appliers ...Applier) *harness {
	t.Helper()
	h := startSource(t, &source.File{Path: path, Debounce: 30 * time.Millisecond}, appliers...)
	h.path = path
	return h
}

// startSource runs a reconciler on src, which must hold a valid document.
func startSource(t *testing.T, src source.Source, appliers ...Applier) *harness {
	t.Helper()
	h := &harness{t: t, rt: &snapshot.Runtime{}, outcomes: make(chan Outcome, 100)}
	h.rec = &Reconciler{Runtime: h.rt, Source: src,
		Env: func(string) (string, bool) { return "", false }, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
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
	if o := <-h.outcomes; o.Result != NoOp || o.Trigger != "watch" { // the watch's first read
		t.Fatalf("first watch outcome %+v", o)
	}
	return h
}

func (h *harness) instruction() string {
	s, release := h.rt.Acquire()
	defer release()
	return s.Agents["a"].Instruction
}

// next waits for the next outcome that is not a no-op.
func (h *harness) next() Outcome {
	h.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case o := <-h.outcomes:
			if o.Result != NoOp {
				return o
			}
		case <-deadline:
			h.t.Fatal("no reload outcome within 5s")
		}
	}
}

// quiet asserts that no further apply or rejection happens for a while.
func (h *harness) quiet() {
	h.t.Helper()
	deadline := time.After(300 * time.Millisecond)
	for {
		select {
		case o := <-h.outcomes:
			if o.Result != NoOp {
				h.t.Fatalf("unexpected extra outcome: %+v", o)
			}
		case <-deadline:
			return
		}
	}
}

// nextApplied waits for the next apply, skipping rejections: an in-place
// write can be read half-written, which is rejected, never applied.
func (h *harness) nextApplied() Outcome {
	h.t.Helper()
	for {
		if o := h.next(); o.Result == Applied {
			return o
		}
	}
}

// noMoreApplies asserts that nothing more is applied for a while.
func (h *harness) noMoreApplies() {
	h.t.Helper()
	deadline := time.After(300 * time.Millisecond)
	for {
		select {
		case o := <-h.outcomes:
			if o.Result == Applied {
				h.t.Fatalf("unexpected extra apply: %+v", o)
			}
		case <-deadline:
			return
		}
	}
}

// writeFile saves atomically, as editors do; TestInPlaceWriteAppliesOnce
// covers in-place writes on purpose.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := (&source.File{Path: path}).WriteMode([]byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAtomicRenameSaveAppliesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hector.yaml")
	writeFile(t, path, doc("v1"))
	h := start(t, path)
	if err := (&source.File{Path: path}).Write([]byte(doc("v2"))); err != nil {
		t.Fatal(err)
	}
	o := h.next()
	if o.Result != Applied || o.Version != 2 || o.Trigger != "watch" || h.instruction() != "v2" {
		t.Fatalf("%+v instruction %q", o, h.instruction())
	}
	if c := o.Applied["agents"]; len(c.Changed) != 1 || c.Changed[0] != "a" {
		t.Fatalf("plan %+v", o.Applied)
	}
	h.quiet()
}

func TestInPlaceWriteAppliesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hector.yaml")
	writeFile(t, path, doc("v1"))
	h := start(t, path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0) // truncate, then write in two parts
	if err != nil {
		t.Fatal(err)
	}
	content := doc("v2-in-place")
	_, _ = f.WriteString(content[:10])
	_ = f.Sync()
	_, _ = f.WriteString(content[10:])
	f.Close()
	if o := h.nextApplied(); h.instruction() != "v2-in-place" {
		t.Fatalf("%+v", o)
	}
	h.noMoreApplies()
}

func TestSymlinkSwapAppliesOnce(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []string{"v1", "v2"} {
		_ = os.Mkdir(filepath.Join(dir, v), 0o700)
		writeFile(t, filepath.Join(dir, v, "hector.yaml"), doc(v))
	}
	link := filepath.Join(dir, "hector.yaml")
	if err := os.Symlink("v1/hector.yaml", link); err != nil {
		t.Fatal(err)
	}
	h := start(t, link)
	tmp := filepath.Join(dir, "tmp-link")
	if err := os.Symlink("v2/hector.yaml", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
	if o := h.next(); o.Result != Applied || h.instruction() != "v2" {
		t.Fatalf("%+v", o)
	}
	h.quiet()
	// An edit of the symlink target itself is seen too.
	writeFile(t, filepath.Join(dir, "v2", "hector.yaml"), doc("v2-edited"))
	if o := h.next(); o.Result != Applied || h.instruction() != "v2-edited" {
		t.Fatalf("%+v", o)
	}
	h.quiet()
}

// TestConfigMapDataSwap mimics how the kubelet updates a mounted ConfigMap:
// hector.yaml -> ..data/hector.yaml, ..data -> ..TIMESTAMP, swapped by renaming
// a new ..data_tmp symlink over ..data.
func TestConfigMapDataSwap(t *testing.T) {
	dir := t.TempDir()
	mk := func(ts, v string) {
		_ = os.Mkdir(filepath.Join(dir, ts), 0o700)
		writeFile(t, filepath.Join(dir, ts, "hector.yaml"), doc(v))
	}
	mk("..2026_01_01", "v1")
	_ = os.Symlink("..2026_01_01", filepath.Join(dir, "..data"))
	_ = os.Symlink("..data/hector.yaml", filepath.Join(dir, "hector.yaml"))
	h := start(t, filepath.Join(dir, "hector.yaml"))
	mk("..2026_01_02", "v2")
	_ = os.Symlink("..2026_01_02", filepath.Join(dir, "..data_tmp"))
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	_ = os.RemoveAll(filepath.Join(dir, "..2026_01_01"))
	if o := h.next(); o.Result != Applied || h.instruction() != "v2" {
		t.Fatalf("%+v", o)
	}
	h.quiet()
}

func TestInvalidConfigIsRejectedAndOldKeepsServing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hector.yaml")
	writeFile(t, path, doc("v1"))
	h := start(t, path)
	writeFile(t, path, "llms: {e: {provider: echo}}\nagents:\n  a: {llm: missing, instrucion: x}\n")
	o := h.next()
	if o.Result != Rejected || o.Version != 1 || len(o.Errors) != 2 || o.Errors[0].Line != 3 || h.instruction() != "v1" {
		t.Fatalf("%+v", o)
	}
	// The rejected revision does not block the next valid one.
	writeFile(t, path, doc("v3"))
	if o := h.next(); o.Result != Applied || o.Version != 2 || h.instruction() != "v3" {
		t.Fatalf("%+v", o)
	}
	// Going back to the rejected content is rejected again, not a no-op.
	writeFile(t, path, "agents: 1\n")
	if o := h.next(); o.Result != Rejected {
		t.Fatalf("%+v", o)
	}
}

func TestReloadOfUnchangedContentIsNoOp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hector.yaml")
	writeFile(t, path, doc("v1"))
	h := start(t, path)
	o, err := h.rec.Reload(context.Background(), "sighup", "")
	if err != nil || o.Result != NoOp || o.Version != 1 || o.Trigger != "sighup" {
		t.Fatalf("%+v %v", o, err)
	}
	writeFile(t, path, doc("v2"))
	h.next()
	o, _ = h.rec.Reload(context.Background(), "sighup", "")
	if o.Result != NoOp || o.Version != 2 {
		t.Fatalf("%+v", o)
	}
	if n := len(h.rec.Outcomes()); n < 3 {
		t.Fatalf("outcomes kept: %d", n)
	}
}

func TestApplierFailureAbortsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hector.yaml")
	writeFile(t, path, doc("v1"))
	var aborted, committed int
	ok := ApplierFunc(func(cur, next *config.Config) (Prepared, error) {
		return Prepared{Commit: func() { committed++ }, Abort: func() { aborted++ }, Warnings: []string{"w"}}, nil
	})
	failing := ApplierFunc(func(cur, next *config.Config) (Prepared, error) {
		if cur != nil && strings.Contains(next.Agents["a"].Instruction, "bad") {
			return Prepared{}, errors.New("port in use")
		}
		return Prepared{}, nil
	})
	h := start(t, path, ok, failing)
	writeFile(t, path, doc("bad"))
	o := h.next()
	if o.Result != Rejected || o.Errors[0].Message != "port in use" || aborted != 1 || committed != 1 || h.instruction() != "v1" {
		t.Fatalf("%+v aborted=%d committed=%d", o, aborted, committed)
	}
	writeFile(t, path, doc("good"))
	if o := h.next(); o.Result != Applied || committed != 2 || len(o.Warnings) != 1 {
		t.Fatalf("%+v", o)
	}
}

func TestStartFailsOnInvalidOrMissingConfig(t *testing.T) {
	dir := t.TempDir()
	rec := &Reconciler{Runtime: &snapshot.Runtime{}, Source: &source.File{Path: filepath.Join(dir, "none.yaml")},
		Env: func(string) (string, bool) { return "", false }, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if _, err := rec.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing file: %v", err)
	}
	if rec.Runtime.Current() != nil {
		t.Fatal("something was applied")
	}
}

// TestStaleWatchReadDoesNotRevertAWriteBack: a watcher read taken before an
// API edit's write-back reaches the loop after it; the loop re-reads and
// finds the edit, so nothing is reverted.
func TestStaleWatchReadDoesNotRevertAWriteBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hector.yaml")
	writeFile(t, path, doc("v1"))
	h := start(t, path)
	stale := (&source.File{Path: path}).Load(context.Background()) // v1, read "before" the edit
	o, err := h.rec.Submit(context.Background(), []byte(doc("edited")), "api", "ada", "")
	if err != nil || o.Result != Applied {
		t.Fatalf("%+v %v", o, err)
	}
	h.nextApplied() // the edit's own outcome
	h.rec.offer(stale)
	h.noMoreApplies()
	if got := h.instruction(); got != "edited" {
		t.Fatalf("the stale read reverted the edit: %q", got)
	}
}
