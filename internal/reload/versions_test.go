package reload

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/config/source"
	"github.com/hector-run/hector/internal/snapshot"
	"github.com/hector-run/hector/internal/testsvc"
)

// Instances sharing a database agree on version numbers: content already
// recorded as the latest version takes its number, so a fleet applying the
// same documents numbers them the same, whoever applies first, and the
// history holds each version once.
func TestInstancesShareVersionNumbers(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			url := "sqlite://" + filepath.Join(t.TempDir(), "shared.db")
			if db == "postgres" {
				url = testsvc.Postgres(t)
			}
			path := filepath.Join(t.TempDir(), "hector.yaml")
			write := func(s string) {
				if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write(doc("one"))
			start := func() (*Reconciler, *snapshot.Runtime) {
				rt := &snapshot.Runtime{}
				rec := &Reconciler{Runtime: rt, Source: &source.File{Path: path}, Env: func(string) (string, bool) { return "", false },
					Log: slog.New(slog.NewTextHandler(io.Discard, nil)), BuildOptions: snapshot.Options{DatabaseURL: url}}
				if _, err := rec.Start(context.Background()); err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { rec.RunTriggersOnly(ctx); close(done) }()
				t.Cleanup(func() { cancel(); <-done; rec.FlushHistory(); rt.Close() })
				return rec, rt
			}
			a, rtA := start()
			a.FlushHistory()
			b, rtB := start() // starts late, on the same content
			version := func(rt *snapshot.Runtime) int64 { return rt.Current().Version }
			if version(rtA) != 1 || version(rtB) != 1 {
				t.Fatalf("startup: a v%d, b v%d", version(rtA), version(rtB))
			}
			reload := func(r *Reconciler) Outcome {
				o, err := r.Reload(context.Background(), "test", "")
				if err != nil || o.Result != Applied {
					t.Fatalf("%+v %v", o, err)
				}
				return o
			}
			write(doc("two"))
			reload(a)
			a.FlushHistory()
			reload(b)
			write(doc("three")) // b first this time
			reload(b)
			b.FlushHistory()
			reload(a)
			write(doc("four")) // both at once, neither recorded yet
			reload(a)
			reload(b)
			a.FlushHistory()
			b.FlushHistory()
			for _, v := range []struct {
				rt   *snapshot.Runtime
				name string
			}{{rtA, "a"}, {rtB, "b"}} {
				if version(v.rt) != 4 {
					t.Errorf("%s at v%d, want 4", v.name, version(v.rt))
				}
			}
			st := rtA.Current().Store
			rows, err := st.ConfigVersions(context.Background(), "", 10)
			if err != nil || len(rows) != 4 {
				t.Fatalf("%d rows, %v", len(rows), err)
			}
			for i, instr := range []string{"four", "three", "two", "one"} {
				if rows[i].Version != int64(4-i) || rows[i].Hash != config.Hash([]byte(doc(instr))) {
					t.Errorf("row %d: v%d %s, want v%d of %q", i, rows[i].Version, rows[i].Hash, 4-i, instr)
				}
			}
		})
	}
}
