package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestPruneConfigVersions(t *testing.T) { eachDatabase(t, testPruneConfigVersions) }

func testPruneConfigVersions(t *testing.T, url string) {
	ctx := context.Background()
	s := open(t, url)
	defer s.Close()
	if n, err := s.PruneConfigVersions(ctx, "", 3); err != nil || n != 0 {
		t.Fatalf("prune of an empty history: %d %v", n, err)
	}
	for v := int64(1); v <= 5; v++ {
		if err := s.SaveConfigVersion(ctx, ConfigVersion{Version: v, Hash: fmt.Sprint("h", v), Source: "test",
			Trigger: "api", Format: "yaml", AppliedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.PruneConfigVersions(ctx, "", 3); err != nil || n != 2 {
		t.Fatalf("prune to 3 of 5: deleted %d, %v", n, err)
	}
	vs, err := s.ConfigVersions(ctx, "", 0)
	if err != nil || len(vs) != 3 || vs[0].Version != 5 || vs[2].Version != 3 {
		t.Fatalf("kept %+v %v", vs, err)
	}
	if n, err := s.PruneConfigVersions(ctx, "", 3); err != nil || n != 0 {
		t.Fatalf("second prune: %d %v", n, err)
	}
	if _, err := s.PruneConfigVersions(ctx, "", 0); err == nil {
		t.Fatal("keep 0 accepted")
	}
}

// Apps number their versions on their own, and one app's history never
// shows, prunes or answers for another's.
func TestAppsHaveTheirOwnHistory(t *testing.T) { eachDatabase(t, testAppsHaveTheirOwnHistory) }

func testAppsHaveTheirOwnHistory(t *testing.T, url string) {
	ctx := context.Background()
	s := open(t, url)
	defer s.Close()
	save := func(app string, v int64, hash string) {
		t.Helper()
		if err := s.SaveConfigVersion(ctx, ConfigVersion{App: app, Version: v, Hash: hash, Source: "test", Trigger: "api",
			Format: "yaml", Content: app + hash, AppliedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	for v := int64(1); v <= 3; v++ {
		save("", v, fmt.Sprint("main", v))
		save("a", v, fmt.Sprint("a", v))
	}
	save("b", 1, "b1")
	if err := s.SaveConfigVersion(ctx, ConfigVersion{App: "b", Version: 1, Hash: "other"}); !errors.Is(err, ErrVersionTaken) {
		t.Fatalf("b's version 1 again with other content: %v", err)
	}
	if v, h, err := s.LatestConfigRecord(ctx, "a"); err != nil || v != 3 || h != "a3" {
		t.Fatalf("latest of a: %d %q %v", v, h, err)
	}
	if v, h, err := s.LatestConfigRecord(ctx, "none"); err != nil || v != 0 || h != "" {
		t.Fatalf("latest of an app without history: %d %q %v", v, h, err)
	}
	got, err := s.GetConfigVersion(ctx, "b", 1)
	if err != nil || got.Content != "bb1" || got.App != "b" {
		t.Fatalf("b's version 1: %+v %v", got, err)
	}
	if _, err := s.GetConfigVersion(ctx, "b", 2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("b's version 2 (a has one): %v", err)
	}
	if n, err := s.PruneConfigVersions(ctx, "a", 1); err != nil || n != 2 {
		t.Fatalf("prune a to 1: %d %v", n, err)
	}
	for app, want := range map[string]int{"": 3, "a": 1, "b": 1} {
		if vs, err := s.ConfigVersions(ctx, app, 0); err != nil || len(vs) != want {
			t.Fatalf("history of %q: %d versions, want %d (%v)", app, len(vs), want, err)
		}
	}
}

// A database made before apps existed keeps its history, as the main
// configuration's.
func TestHistoryKeptByTheAppsMigration(t *testing.T) {
	eachDatabase(t, testHistoryKeptByTheAppsMigration)
}

func testHistoryKeptByTheAppsMigration(t *testing.T, url string) {
	ctx := context.Background()
	old, err := openURLUpTo(ctx, url, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.db.ExecContext(ctx, old.q(`INSERT INTO config_versions (version, hash, source, trigger, format, content, applied_at)
		VALUES (?, 'h7', 'file:old.yaml', 'startup', 'yaml', 'name: old', ?)`), 7, now()); err != nil {
		t.Fatal(err)
	}
	old.db.Close()
	s := open(t, url)
	defer s.Close()
	v, err := s.GetConfigVersion(ctx, "", 7)
	if err != nil || v.Hash != "h7" || v.Content != "name: old" || v.Source != "file:old.yaml" {
		t.Fatalf("version 7 after the upgrade: %+v %v", v, err)
	}
	if last, _, err := s.LatestConfigRecord(ctx, ""); err != nil || last != 7 {
		t.Fatalf("latest after the upgrade: %d %v", last, err)
	}
}
