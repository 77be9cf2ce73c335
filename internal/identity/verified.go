package identity

import (
	"crypto/sha256"
	"sync"
	"time"
)

// Verifying a signature costs far more than the rest of a request (an
// RS256 check is about 50µs), and clients send the same token many times.
// A keySet therefore remembers the tokens it verified, by SHA-256, for at
// most verifiedTTL and never past the token's exp. The memory belongs to
// one fetched JWKS: a refresh that fetches the keys again starts an empty
// one, so a key removed at the provider stops verifying by the next
// refresh, as without the memory, or within verifiedTTL of an on-demand
// one.
const (
	verifiedTTL = time.Minute
	maxVerified = 10_000 // then the memory is emptied and starts again
)

type verified struct {
	mu     sync.Mutex
	tokens map[[sha256.Size]byte]verifiedToken
}

type verifiedToken struct {
	p     Principal
	until time.Time
}

// lookup returns the principal of a token verified before and still valid.
func (v *verified) lookup(sum [sha256.Size]byte, now time.Time) (Principal, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	t, ok := v.tokens[sum]
	if !ok || !now.Before(t.until) {
		return Principal{}, false
	}
	return t.p, true
}

// remember records a verified token until exp, at most verifiedTTL.
func (v *verified) remember(sum [sha256.Size]byte, p Principal, exp, now time.Time) {
	until := now.Add(verifiedTTL)
	if exp.Before(until) {
		until = exp
	}
	if !now.Before(until) {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.tokens == nil || len(v.tokens) >= maxVerified {
		v.tokens = make(map[[sha256.Size]byte]verifiedToken)
	}
	v.tokens[sum] = verifiedToken{p, until}
}

func sha256Sum(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }
