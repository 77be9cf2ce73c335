package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestPruneConfigVersions(t *testing.T) { eachDatabase(t, testPruneConfigVersions) }

func testPruneConfigVersions(t *testing.T, url string) {
	ctx := context.Background()
	s := open(t, url)
	defer s.Close()
	if n, err := s.PruneConfigVersions(ctx, 3); err != nil || n != 0 {
		t.Fatalf("prune of an empty history: %d %v", n, err)
	}
	for v := int64(1); v <= 5; v++ {
		if err := s.SaveConfigVersion(ctx, ConfigVersion{Version: v, Hash: fmt.Sprint("h", v), Source: "test",
			Trigger: "api", Format: "yaml", AppliedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.PruneConfigVersions(ctx, 3); err != nil || n != 2 {
		t.Fatalf("prune to 3 of 5: deleted %d, %v", n, err)
	}
	vs, err := s.ConfigVersions(ctx, 0)
	if err != nil || len(vs) != 3 || vs[0].Version != 5 || vs[2].Version != 3 {
		t.Fatalf("kept %+v %v", vs, err)
	}
	if n, err := s.PruneConfigVersions(ctx, 3); err != nil || n != 0 {
		t.Fatalf("second prune: %d %v", n, err)
	}
	if _, err := s.PruneConfigVersions(ctx, 0); err == nil {
		t.Fatal("keep 0 accepted")
	}
}
