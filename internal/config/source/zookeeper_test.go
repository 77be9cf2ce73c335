package source

import (
	"testing"
	"time"

	"github.com/hector-run/hector/internal/testsvc"
)

// After each of eight restarts of ZooKeeper, with downtimes from 0.1 s to
// 1.15 s, the client has a session again within seconds. Before the
// handshake deadline was shortened, one restart in eight left it connected
// without a session for over 20 s (the client waits 66 s for a handshake).
func TestZooKeeperRecoversFromRestarts(t *testing.T) {
	proc := testsvc.ZooKeeper(t)
	z := &ZooKeeper{Path: "/hector/restarts", Servers: []string{proc.Addr()}, Timeout: 5 * time.Second}
	defer z.Close()
	if err := z.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		down := time.Duration(100+i*150) * time.Millisecond
		proc.Stop()
		time.Sleep(down)
		proc.Start()
		start := time.Now()
		if err := z.Write([]byte("y")); err != nil {
			t.Fatalf("restart %d (down %v): %v", i+1, down, err)
		}
		t.Logf("restart %d (down %v): session back, write done after %v", i+1, down, time.Since(start).Round(time.Millisecond))
	}
}
