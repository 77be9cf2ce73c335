package identity

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hector-run/hector/internal/config"
)

// A remembered token is answered without verifying it again, but never
// past its exp: the memory does not extend a token's life.
func TestVerifiedTokensAreRememberedUntilExp(t *testing.T) {
	r1, _, _, _ := keys(t)
	srv := newJWKSServer(t, r1)
	iss := newTestIssuer(t, srv, func(c *config.JWTIssuer) { c.Leeway = config.Duration(time.Nanosecond) })
	ctx := context.Background()
	exp := time.Now().Add(1500 * time.Millisecond).Truncate(time.Second).Add(time.Second)
	tok := r1.sign(t, claims(jwt.MapClaims{"exp": exp.Unix()}))
	if _, err := iss.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	sum := sha256Sum(tok)
	if _, ok := iss.keys.Load().seen.lookup(sum, time.Now()); !ok {
		t.Fatal("a verified token is not remembered")
	}
	if _, err := iss.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(exp) + 50*time.Millisecond)
	if _, err := iss.Verify(ctx, tok); checkOf(t, err) != CheckExpired {
		t.Fatalf("after exp: %v", err)
	}
	// Refused tokens are not remembered.
	bad := r1.sign(t, claims(jwt.MapClaims{"aud": "other"}))
	_, _ = iss.Verify(ctx, bad)
	if _, ok := iss.keys.Load().seen.lookup(sha256Sum(bad), time.Now()); ok {
		t.Fatal("a refused token was remembered")
	}
}

func TestVerifiedMemoryIsBounded(t *testing.T) {
	var v verified
	now := time.Now()
	for i := 0; i < maxVerified+10; i++ {
		v.remember(sha256Sum(string(rune(i))+"x"), Principal{Subject: "s"}, now.Add(time.Hour), now)
	}
	if n := len(v.tokens); n > maxVerified {
		t.Fatalf("%d tokens remembered, limit %d", n, maxVerified)
	}
}
