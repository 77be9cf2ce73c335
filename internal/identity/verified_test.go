package identity

import (
	"context"
	"net/http"
	"net/http/httptest"
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

// The keys are not taken from another origin a JWKS URL redirects to.
func TestJWKSRedirectsStayOnOrigin(t *testing.T) {
	r1, _, _, _ := keys(t)
	elsewhere := newJWKSServer(t, r1)
	redirect := httptest.NewServer(http.RedirectHandler(elsewhere.URL+"/jwks.json", http.StatusFound))
	t.Cleanup(redirect.Close)
	iss, err := NewIssuer(config.JWTIssuer{Issuer: testIss, Audience: testAud, JWKSURL: redirect.URL + "/jwks.json"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = iss.Close() })
	if _, err := iss.Verify(context.Background(), r1.sign(t, claims(nil))); checkOf(t, err) != CheckKeysUnavailable {
		t.Fatalf("keys fetched through a cross-origin redirect: %v", err)
	}
	if n := elsewhere.requests.Load(); n != 0 {
		t.Fatalf("the other origin was asked %d times", n)
	}
}
