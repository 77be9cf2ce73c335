package identity

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hector-run/hector/internal/config"
)

func TestVerifyValidTokens(t *testing.T) {
	r1, _, ec, ed := keys(t)
	srv := newJWKSServer(t, r1, ec, ed)
	iss := newTestIssuer(t, srv, nil)
	for _, k := range []*testKey{r1, ec, ed} {
		t.Run(k.kid, func(t *testing.T) {
			p, err := iss.Verify(context.Background(), k.sign(t, claims(nil)))
			if err != nil {
				t.Fatal(err)
			}
			want := Principal{Subject: "alice", Tenant: "acme", Role: config.RoleOperator, Via: "test-idp"}
			if p != want {
				t.Fatalf("principal = %+v, want %+v", p, want)
			}
		})
	}
	if iss.Name() != "test-idp" || iss.Claims() != testIss {
		t.Fatalf("Name, Claims = %q, %q", iss.Name(), iss.Claims())
	}
}

func TestVerifyClaimsMapping(t *testing.T) {
	r1, _, _, _ := keys(t)
	srv := newJWKSServer(t, r1)
	iss := newTestIssuer(t, srv, nil)
	custom := newTestIssuer(t, srv, func(c *config.JWTIssuer) {
		c.Name, c.RoleClaim, c.TenantClaim, c.SubjectClaim = "", "groups", "org", "email"
		c.DefaultRole = config.RoleViewer
	})
	cases := []struct {
		name  string
		iss   *Issuer
		extra jwt.MapClaims
		want  Principal
	}{
		{"role list", iss, jwt.MapClaims{"role": []any{"viewer", "admin", "nonsense", 7}},
			Principal{"alice", "acme", config.RoleAdmin, "test-idp"}},
		{"default role", iss, jwt.MapClaims{"role": nil},
			Principal{"alice", "acme", config.RoleUser, "test-idp"}},
		{"unknown role", iss, jwt.MapClaims{"role": "Admin"},
			Principal{"alice", "acme", config.RoleUser, "test-idp"}},
		{"no tenant", iss, jwt.MapClaims{"tenant_id": nil},
			Principal{"alice", "", config.RoleOperator, "test-idp"}},
		{"custom claims", custom, jwt.MapClaims{"email": "bob@x", "org": "o1", "groups": []any{"operator"}},
			Principal{"bob@x", "o1", config.RoleOperator, testIss}},
		{"custom default role", custom, jwt.MapClaims{"email": "bob@x"},
			Principal{"bob@x", "", config.RoleViewer, testIss}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.iss.Verify(context.Background(), r1.sign(t, claims(tc.extra)))
			if err != nil {
				t.Fatal(err)
			}
			if p != tc.want {
				t.Fatalf("principal = %+v, want %+v", p, tc.want)
			}
		})
	}
}

// hmacWithPublicKey signs claims with HS256, using the bytes of k's public
// key as the HMAC secret: the classic algorithm-confusion attack.
func hmacWithPublicKey(t *testing.T, k *testKey, claims jwt.MapClaims, asPEM bool) string {
	der, err := x509.MarshalPKIXPublicKey(k.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	secret := der
	if asPEM {
		secret = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyRefusals(t *testing.T) {
	r1, r2, ec, _ := keys(t)
	srv := newJWKSServer(t, r1, ec)
	iss := newTestIssuer(t, srv, nil)
	now := time.Now()
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	valid := r1.sign(t, claims(nil))
	tampered := valid[:strings.LastIndex(valid, ".")] + "." + strings.Repeat("A", 342)
	forged := &testKey{kid: r1.kid, method: r2.method, priv: r2.priv} // right kid, wrong key
	hs512 := jwt.NewWithClaims(jwt.SigningMethodHS512, claims(nil))
	hs512Tok, _ := hs512.SignedString([]byte("secret"))
	cases := []struct {
		name, token, check string
	}{
		{"alg none", none, CheckAlgorithm},
		{"hmac with public key PEM", hmacWithPublicKey(t, r1, claims(nil), true), CheckAlgorithm},
		{"hmac with public key DER", hmacWithPublicKey(t, r1, claims(nil), false), CheckAlgorithm},
		{"hs512", hs512Tok, CheckAlgorithm},
		{"unknown alg", "eyJhbGciOiJYWTEyMyJ9.eyJzdWIiOiJ4In0.c2ln", CheckAlgorithm},
		{"bad signature", tampered, CheckSignature},
		{"wrong key", forged.sign(t, claims(nil)), CheckSignature},
		{"malformed", "not.a.jwt", CheckMalformed},
		{"expired", r1.sign(t, claims(jwt.MapClaims{"exp": now.Add(-time.Hour).Unix()})), CheckExpired},
		{"no exp", r1.sign(t, claims(jwt.MapClaims{"exp": nil})), CheckExpired},
		{"not yet valid", r1.sign(t, claims(jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()})), CheckNotYetValid},
		{"issued in the future", r1.sign(t, claims(jwt.MapClaims{"iat": now.Add(time.Hour).Unix()})), CheckNotYetValid},
		{"wrong audience", r1.sign(t, claims(jwt.MapClaims{"aud": "secret-other-api"})), CheckAudience},
		{"no audience", r1.sign(t, claims(jwt.MapClaims{"aud": nil})), CheckAudience},
		{"wrong issuer", r1.sign(t, claims(jwt.MapClaims{"iss": "https://secret-evil.example/"})), CheckIssuer},
		{"no issuer", r1.sign(t, claims(jwt.MapClaims{"iss": nil})), CheckIssuer},
		{"no subject", r1.sign(t, claims(jwt.MapClaims{"sub": nil})), CheckSubject},
		{"empty subject", r1.sign(t, claims(jwt.MapClaims{"sub": ""})), CheckSubject},
		{"number subject", r1.sign(t, claims(jwt.MapClaims{"sub": 42})), CheckSubject},
		{"number tenant", r1.sign(t, claims(jwt.MapClaims{"tenant_id": 42})), CheckTenant},
		{"unknown kid", (&testKey{kid: "secret-kid", method: r2.method, priv: r2.priv}).sign(t, claims(nil)), CheckUnknownKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := iss.Verify(context.Background(), tc.token)
			if got := checkOf(t, err); got != tc.check {
				t.Fatalf("check = %q (%v), want %q", got, err, tc.check)
			}
			if testing.Verbose() {
				t.Log(err)
			}
			msg := err.Error()
			if strings.Contains(msg, tc.token) || strings.Contains(msg, "secret") || strings.Contains(msg, "alice") {
				t.Fatalf("error message leaks the token or a claim: %s", msg)
			}
			for _, part := range strings.Split(tc.token, ".") {
				if len(part) > 8 && strings.Contains(msg, part) {
					t.Fatalf("error message leaks a token segment: %s", msg)
				}
			}
		})
	}
}

func TestVerifyLeeway(t *testing.T) {
	r1, _, _, _ := keys(t)
	srv := newJWKSServer(t, r1)
	lenient := newTestIssuer(t, srv, nil) // default leeway 30s
	strict := newTestIssuer(t, srv, func(c *config.JWTIssuer) { c.Leeway = config.Duration(time.Second) })
	recent := r1.sign(t, claims(jwt.MapClaims{"exp": time.Now().Add(-5 * time.Second).Unix()}))
	if _, err := lenient.Verify(context.Background(), recent); err != nil {
		t.Fatalf("expired 5s ago with 30s leeway: %v", err)
	}
	if _, err := strict.Verify(context.Background(), recent); checkOf(t, err) != CheckExpired {
		t.Fatalf("expired 5s ago with 1s leeway: %v", err)
	}
	soon := r1.sign(t, claims(jwt.MapClaims{"nbf": time.Now().Add(5 * time.Second).Unix()}))
	if _, err := lenient.Verify(context.Background(), soon); err != nil {
		t.Fatalf("nbf in 5s with 30s leeway: %v", err)
	}
}

func TestRotationWithoutDowntime(t *testing.T) {
	r1, r2, _, _ := keys(t)
	srv := newJWKSServer(t, r1)
	iss := newTestIssuer(t, srv, nil) // refresh every hour: only unknown kids refresh
	ctx := context.Background()
	old := r1.sign(t, claims(nil))
	if _, err := iss.Verify(ctx, old); err != nil {
		t.Fatal(err)
	}
	before := srv.requests.Load()

	srv.setKeys(r1, r2) // the provider publishes key 2, then signs with it
	if _, err := iss.Verify(ctx, r2.sign(t, claims(nil))); err != nil {
		t.Fatalf("new kid after rotation: %v", err)
	}
	if got := srv.requests.Load() - before; got != 1 {
		t.Fatalf("unknown kid caused %d fetches, want 1", got)
	}
	if _, err := iss.Verify(ctx, old); err != nil {
		t.Fatalf("old kid while still published: %v", err)
	}

	srv.setKeys(r2) // key 1 retired
	if _, err := iss.Verify(ctx, old); err != nil {
		t.Fatalf("old kid before the next refresh: %v", err)
	}
	if err := iss.refresh(ctx); err != nil { // the next scheduled refresh
		t.Fatal(err)
	}
	if _, err := iss.Verify(ctx, old); checkOf(t, err) != CheckUnknownKey {
		t.Fatalf("retired kid: %v", err)
	}
	if _, err := iss.Verify(ctx, r2.sign(t, claims(nil))); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownKIDRefreshIsRateLimited(t *testing.T) {
	r1, r2, _, _ := keys(t)
	srv := newJWKSServer(t, r1)
	iss := newTestIssuer(t, srv, nil)
	ctx := context.Background()
	if _, err := iss.Verify(ctx, r1.sign(t, claims(nil))); err != nil {
		t.Fatal(err)
	}
	before := srv.requests.Load()
	start := time.Now()
	for range 50 {
		_, err := iss.Verify(ctx, r2.sign(t, claims(nil)))
		if checkOf(t, err) != CheckUnknownKey {
			t.Fatalf("unknown kid: %v", err)
		}
	}
	if got := srv.requests.Load() - before; got != 1 {
		t.Fatalf("50 unknown-kid tokens caused %d fetches, want 1", got)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("rate-limited refusals took %v: they must not wait for the limiter", d)
	}
}

func TestKeysUnavailableThenRecover(t *testing.T) {
	r1, _, _, _ := keys(t)
	srv := newJWKSServer(t, r1)
	srv.setDown(true)
	iss := newTestIssuer(t, srv, func(c *config.JWTIssuer) { c.RefreshInterval = config.Duration(50 * time.Millisecond) })
	tok := r1.sign(t, claims(nil))
	_, err := iss.Verify(context.Background(), tok)
	if checkOf(t, err) != CheckKeysUnavailable {
		t.Fatalf("JWKS down: %v", err)
	}
	if strings.Contains(err.Error(), tok) || strings.Contains(err.Error(), srv.URL) {
		t.Fatalf("error leaks the token or the JWKS URL: %v", err)
	}
	srv.setDown(false)
	waitFor(t, "verification after the JWKS came up", func() bool {
		_, err := iss.Verify(context.Background(), tok)
		return err == nil
	})
	srv.setDown(true) // an outage after a good fetch keeps the last keys
	n := srv.requests.Load()
	waitFor(t, "a failed refresh", func() bool { return srv.requests.Load() > n+1 })
	if _, err := iss.Verify(context.Background(), tok); err != nil {
		t.Fatalf("during an outage with known keys: %v", err)
	}
}

func TestVerifyWaitsForFirstFetch(t *testing.T) {
	r1, _, _, _ := keys(t)
	srv := newJWKSServer(t, r1)
	srv.delay = 300 * time.Millisecond
	start := time.Now()
	iss := newTestIssuer(t, srv, nil)
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Fatalf("NewIssuer blocked for %v", d)
	}
	if _, err := iss.Verify(context.Background(), r1.sign(t, claims(nil))); err != nil {
		t.Fatalf("verify during the first fetch: %v", err)
	}
	// A caller's deadline shorter than the fetch ends the wait.
	slow := newTestIssuer(t, srv, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := slow.Verify(ctx, r1.sign(t, claims(nil))); checkOf(t, err) != CheckKeysUnavailable {
		t.Fatalf("verify with a short deadline: %v", err)
	}
}

func TestJWKSResponseBounded(t *testing.T) {
	r1, _, _, _ := keys(t)
	srv := newJWKSServer(t, r1)
	srv.body = []byte(`{"keys":[` + strings.Repeat(" ", maxJWKSBytes) + `]}`)
	iss := newTestIssuer(t, srv, nil)
	if _, err := iss.Verify(context.Background(), r1.sign(t, claims(nil))); checkOf(t, err) != CheckKeysUnavailable {
		t.Fatalf("oversized JWKS: %v", err)
	}
}

func TestJWKSSkipsUnusableKeys(t *testing.T) {
	r1, _, _, _ := keys(t)
	srv := newJWKSServer(t)
	srv.body = []byte(`{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"},{"kty":"XYZ","kid":"x"},` +
		`{"kty":"RSA","kid":"broken","n":"!!","e":"AQAB"},` + mustJSON(t, r1.jwk) + `]}`)
	iss := newTestIssuer(t, srv, nil)
	if _, err := iss.Verify(context.Background(), r1.sign(t, claims(nil))); err != nil {
		t.Fatalf("good key next to unusable ones: %v", err)
	}
}

func TestCloseStopsRefresh(t *testing.T) {
	r1, r2, _, _ := keys(t)
	srv := newJWKSServer(t, r1)
	iss := newTestIssuer(t, srv, func(c *config.JWTIssuer) { c.RefreshInterval = config.Duration(50 * time.Millisecond) })
	waitFor(t, "periodic refreshes", func() bool { return srv.requests.Load() >= 3 })
	done := make(chan error, 1)
	go func() { done <- iss.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	n := srv.requests.Load()
	_, _ = iss.Verify(context.Background(), r2.sign(t, claims(nil))) // unknown kid: must not fetch
	time.Sleep(250 * time.Millisecond)
	if got := srv.requests.Load(); got != n {
		t.Fatalf("%d JWKS requests after Close", got-n)
	}
	if _, err := iss.Verify(context.Background(), r1.sign(t, claims(nil))); err != nil {
		t.Fatalf("verify with cached keys after Close: %v", err)
	}
	if err := iss.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestCloseAbortsSlowFetch(t *testing.T) {
	r1, _, _, _ := keys(t)
	srv := newJWKSServer(t, r1)
	srv.delay = 2 * time.Second
	iss := newTestIssuer(t, srv, nil)
	time.Sleep(20 * time.Millisecond) // the first fetch is in progress
	start := time.Now()
	_ = iss.Close()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Close waited %v for a fetch in progress", d)
	}
}

func TestNewIssuerBadURL(t *testing.T) {
	for _, u := range []string{"", "jwks.json", "ftp://x/jwks", "http://", "://x"} {
		if _, err := NewIssuer(config.JWTIssuer{JWKSURL: u}, nil); err == nil {
			t.Errorf("NewIssuer(%q) = nil error", u)
		}
	}
	iss, err := NewIssuer(config.JWTIssuer{JWKSURL: "http://127.0.0.1:1/jwks"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if iss.Name() != "jwt" || iss.Claims() != "" {
		t.Fatalf("defaults: Name %q Claims %q", iss.Name(), iss.Claims())
	}
	if err := iss.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSet(t *testing.T) {
	r1, r2, ec, _ := keys(t)
	srvA, srvB := newJWKSServer(t, r1), newJWKSServer(t, r2, ec)
	a := newTestIssuer(t, srvA, func(c *config.JWTIssuer) { c.Name = "a" })
	b := newTestIssuer(t, srvB, func(c *config.JWTIssuer) { c.Name, c.Issuer = "b", "https://b.example/" })
	set := Set{a, b}
	ctx := context.Background()
	p, err := set.Verify(ctx, ec.sign(t, claims(jwt.MapClaims{"iss": "https://b.example/"})))
	if err != nil || p.Via != "b" {
		t.Fatalf("iss b: %+v, %v", p, err)
	}
	if p, err := set.Verify(ctx, r1.sign(t, claims(nil))); err != nil || p.Via != "a" {
		t.Fatalf("iss a: %+v, %v", p, err)
	}
	// Key of a, iss of b: routed to b, whose keys do not include it.
	if _, err := set.Verify(ctx, r1.sign(t, claims(jwt.MapClaims{"iss": "https://b.example/"}))); checkOf(t, err) != CheckUnknownKey {
		t.Fatalf("a's key claiming b: %v", err)
	}
	for _, extra := range []jwt.MapClaims{{"iss": "https://secret-unknown.example/"}, {"iss": nil}} {
		tok := r1.sign(t, claims(extra))
		_, err := set.Verify(ctx, tok)
		if checkOf(t, err) != CheckIssuer || strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), tok) {
			t.Fatalf("unknown iss: %v", err)
		}
		if !strings.Contains(err.Error(), "token issuer is not configured") {
			t.Fatalf("unknown iss message: %v", err)
		}
	}
	if _, err := (Set{}).Verify(ctx, r1.sign(t, claims(nil))); checkOf(t, err) != CheckIssuer {
		t.Fatalf("empty set: %v", err)
	}
	if _, err := set.Verify(ctx, "a.b.c"); checkOf(t, err) != CheckMalformed {
		t.Fatalf("malformed: %v", err)
	}
}

func TestSetSingleIssuerWithoutIss(t *testing.T) {
	r1, _, _, _ := keys(t)
	srv := newJWKSServer(t, r1)
	only := newTestIssuer(t, srv, func(c *config.JWTIssuer) { c.Issuer = "" })
	for _, extra := range []jwt.MapClaims{{"iss": "https://anyone.example/"}, {"iss": nil}} {
		if p, err := (Set{only}).Verify(context.Background(), r1.sign(t, claims(extra))); err != nil || p.Subject != "alice" {
			t.Fatalf("single issuer without iss: %+v, %v", p, err)
		}
	}
}

func TestLooksLikeJWT(t *testing.T) {
	r1, _, _, _ := keys(t)
	cases := map[string]bool{
		r1.sign(t, claims(nil)):                true,
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.": true, // unsigned: still sent to Verify, refused there
		"hk_live_0123456789abcdef":             false,
		"":                                     false,
		"a.b.c":                                false, // header is not JSON
		"eyJhbGciOiJSUzI1NiJ9..c2ln":           false,
		"eyJhbGciOiJSUzI1NiJ9.e30.c2ln.x":      false,
		"eyJhbGciOiJSUzI1NiJ9.e30=.c2ln":       false, // padding is not base64url
		"eyJhbGciOiJSUzI1NiJ9.e+0.c2ln":        false,
		strings.Repeat("a", maxTokenBytes+1):   false,
	}
	for tok, want := range cases {
		if got := LooksLikeJWT(tok); got != want {
			t.Errorf("LooksLikeJWT(%.40q) = %v, want %v", tok, got, want)
		}
	}
}
