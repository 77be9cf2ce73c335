package identity

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/hector-run/hector/internal/config"
)

const (
	// defaultHTTPTimeout is the timeout of the client NewIssuer makes when
	// given none.
	defaultHTTPTimeout = 10 * time.Second
	// firstFetchWait bounds how long Verify waits for the first JWKS fetch.
	firstFetchWait = 5 * time.Second
	// unknownKIDEvery is the least time between two on-demand refreshes
	// (unknown kid, or no keys yet) of one issuer.
	unknownKIDEvery = 10 * time.Second
)

// allowedAlgs are the only signing algorithms accepted: asymmetric ones.
var allowedAlgs = []string{
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
	"EdDSA",
}

// errClosed is returned by refresh after Close.
var errClosed = errors.New("issuer closed")

// Issuer verifies the tokens of one identity provider against the keys it
// publishes at its JWKS URL.
//
// NewIssuer starts a goroutine that fetches the keys at once and then every
// RefreshInterval; a token whose kid is not among the keys triggers one more
// fetch, at most one per 10 seconds. A failed fetch keeps the keys of the
// last good one, so a provider's outage does not refuse tokens signed with
// keys already known. The caller owns the Issuer and must Close it once.
// Verify is safe for concurrent use.
type Issuer struct {
	cfg      config.JWTIssuer // defaults applied
	name     string
	url      string
	client   *http.Client
	parser   *jwt.Parser
	interval time.Duration
	limiter  *rate.Limiter // on-demand refreshes

	keys    atomic.Pointer[keySet] // nil until the first good fetch
	fetchMu chan struct{}          // one fetch at a time; a context-aware mutex
	ready   chan struct{}          // closed when the first fetch has ended

	ctx       context.Context // ended by Close
	cancel    context.CancelFunc
	done      chan struct{} // closed when the refresh goroutine has returned
	closeOnce sync.Once
}

// keySet is one fetched JWKS, and the tokens verified with it.
type keySet struct {
	kf   keyfunc.Keyfunc
	seen verified
}

// NewIssuer returns an Issuer for cfg and starts fetching its keys in the
// background; it does not wait for the network. Empty or zero fields of cfg
// take their defaults (config.DefaultRoleClaim and so on; Name defaults to
// Issuer, then "jwt"; DefaultRole to config.RoleUser). client makes the
// JWKS requests and stays the caller's; nil means a client with a 10s
// timeout that follows redirects only to the same origin. The error is for an unusable configuration only (a JWKS URL that
// is not an absolute http or https URL).
func NewIssuer(cfg config.JWTIssuer, client *http.Client) (*Issuer, error) {
	cfg = withDefaults(cfg)
	if err := checkURL(cfg.JWKSURL); err != nil {
		return nil, fmt.Errorf("jwt issuer %q: %w", cfg.Name, err)
	}
	if client == nil {
		client = &http.Client{Timeout: defaultHTTPTimeout, CheckRedirect: sameOrigin}
	}
	ctx, cancel := context.WithCancel(context.Background())
	i := &Issuer{
		cfg:      cfg,
		name:     cfg.Name,
		url:      cfg.JWKSURL,
		client:   client,
		parser:   newParser(cfg),
		interval: cfg.RefreshInterval.D(),
		limiter:  rate.NewLimiter(rate.Every(unknownKIDEvery), 1),
		fetchMu:  make(chan struct{}, 1),
		ready:    make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
	}
	go i.run()
	return i, nil
}

// sameOrigin follows a JWKS redirect only within the URL's scheme, host
// and port, at most 5 times: the keys that decide who may do anything are
// not taken from wherever a redirect points, nor over http after https.
func sameOrigin(req *http.Request, via []*http.Request) error {
	first := via[0].URL
	if len(via) >= 5 || req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
		return errors.New("the JWKS URL redirects elsewhere")
	}
	return nil
}

// withDefaults fills the empty and zero fields of cfg.
func withDefaults(cfg config.JWTIssuer) config.JWTIssuer {
	if cfg.Name == "" {
		cfg.Name = cfg.Issuer
	}
	if cfg.Name == "" {
		cfg.Name = "jwt"
	}
	if cfg.RoleClaim == "" {
		cfg.RoleClaim = config.DefaultRoleClaim
	}
	if roleRank(cfg.DefaultRole) < 0 {
		cfg.DefaultRole = config.RoleUser
	}
	if cfg.TenantClaim == "" {
		cfg.TenantClaim = config.DefaultTenantClaim
	}
	if cfg.SubjectClaim == "" {
		cfg.SubjectClaim = config.DefaultSubjectClaim
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = config.Duration(config.DefaultJWTLeeway)
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = config.Duration(config.DefaultJWKSRefresh)
	}
	return cfg
}

// checkURL accepts an absolute http or https URL with a host.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("jwks_url is not a URL") // the URL may hold a secret: not repeated
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("jwks_url must be an absolute http or https URL")
	}
	return nil
}

// newParser returns the parser enforcing cfg's checks.
func newParser(cfg config.JWTIssuer) *jwt.Parser {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(allowedAlgs),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway.D()),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	return jwt.NewParser(opts...)
}

// Name returns the issuer's name: the configured Name, or its default. It
// is Principal.Via for the tokens this Issuer verifies.
func (i *Issuer) Name() string { return i.name }

// Claims returns the configured issuer string, the iss claim its tokens must
// carry; "" when none is configured (then iss is not checked).
func (i *Issuer) Claims() string { return i.cfg.Issuer }

// Close stops the background refresh, aborting a fetch in progress, and
// waits for its goroutine to return. Verify keeps working afterwards with
// the keys last fetched but never fetches again. Close always returns nil;
// calling it more than once is harmless.
func (i *Issuer) Close() error {
	i.closeOnce.Do(func() {
		i.cancel()
		<-i.done
	})
	return nil
}

// run is the refresh goroutine: one fetch at once, then one per interval.
func (i *Issuer) run() {
	defer close(i.done)
	_ = i.refresh(i.ctx)
	close(i.ready)
	t := time.NewTicker(i.interval)
	defer t.Stop()
	for {
		select {
		case <-i.ctx.Done():
			return
		case <-t.C:
			_ = i.refresh(i.ctx)
		}
	}
}

// refresh fetches the JWKS and, when it is good, makes it the current keys.
// It fails without fetching once the Issuer is closed. The request ends with
// ctx or Close, whichever comes first.
func (i *Issuer) refresh(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(i.ctx, cancel)
	defer stop()
	select {
	case i.fetchMu <- struct{}{}:
		defer func() { <-i.fetchMu }()
	case <-ctx.Done():
		return ctx.Err()
	}
	if i.ctx.Err() != nil {
		return errClosed
	}
	kf, err := fetchKeys(ctx, i.client, i.url)
	if err != nil {
		return err
	}
	i.keys.Store(&keySet{kf: kf})
	return nil
}

// onDemandRefresh refreshes once if the rate limit allows and reports
// whether the current keys differ from ks afterwards (a refresh by anyone,
// this one or a concurrent one, replaced them).
func (i *Issuer) onDemandRefresh(ctx context.Context, ks *keySet) (*keySet, bool) {
	if i.keys.Load() == ks && i.limiter.Allow() {
		_ = i.refresh(ctx)
	}
	fresh := i.keys.Load()
	return fresh, fresh != nil && fresh != ks
}

// currentKeys returns the keys, waiting for the first fetch (up to ctx and
// firstFetchWait) and trying one on-demand refresh when there are none.
func (i *Issuer) currentKeys(ctx context.Context) (*keySet, *Error) {
	if ks := i.keys.Load(); ks != nil {
		return ks, nil
	}
	wctx, cancel := context.WithTimeout(ctx, firstFetchWait)
	defer cancel()
	select {
	case <-i.ready:
	case <-wctx.Done():
	}
	if ks := i.keys.Load(); ks != nil {
		return ks, nil
	}
	if wctx.Err() == nil { // time is left: the first fetch failed; try once more
		if ks, ok := i.onDemandRefresh(wctx, nil); ok {
			return ks, nil
		}
	}
	return nil, fail(i.name, CheckKeysUnavailable, "the signing keys (JWKS) could not be fetched")
}
