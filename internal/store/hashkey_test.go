package store

import (
	"testing"
)

// Two stores on one database (instances of a fleet, or a restart) key the
// public hash alike; it is not the plain hash.
func TestPublicHashIsKeyedPerDatabase(t *testing.T) {
	eachDatabase(t, testPublicHashIsKeyedPerDatabase)
}

func testPublicHashIsKeyedPerDatabase(t *testing.T, url string) {
	a, b := open(t, url), open(t, url)
	defer a.Close()
	defer b.Close()
	const raw = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	if pa, pb := a.PublicHash(raw), b.PublicHash(raw); pa != pb || len(pa) != 64 || pa == raw {
		t.Fatalf("%s %s", pa, pb)
	}
	if a.PublicHash("") != "" || a.PublicHash(raw) == a.PublicHash(raw+"x") {
		t.Fatal("PublicHash")
	}
	other := open(t, "sqlite://"+t.TempDir()+"/other.db")
	defer other.Close()
	if other.PublicHash(raw) == a.PublicHash(raw) {
		t.Fatal("two databases share a key")
	}
}
