package live

import (
	"fmt"
	"sync"
	"testing"
)

func TestHubKeepsOrderPerFollower(t *testing.T) {
	var h Hub
	if h.Followed("t") {
		t.Fatal("followed before anyone follows")
	}
	a, b := h.Follow("t"), h.Follow("t")
	other := h.Follow("u")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 1000 {
			h.Publish("t", fmt.Sprint(i, " "))
		}
	}()
	var got []string
	for len(got) < 1000 {
		<-a.Ready()
		got = append(got, a.Take()...)
	}
	wg.Wait()
	for i, s := range got {
		if s != fmt.Sprint(i, " ") {
			t.Fatalf("piece %d is %q", i, s)
		}
	}
	if n := len(b.Take()); n != 1000 {
		t.Fatalf("second follower got %d pieces", n)
	}
	if n := len(other.Take()); n != 0 {
		t.Fatalf("a follower of another task got %d pieces", n)
	}
	a.Stop()
	b.Stop()
	if h.Followed("t") {
		t.Fatal("still followed after every follower stopped")
	}
	other.Stop()
}
