package identity

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/hector-run/hector/internal/config"
)

// Verify checks token (a compact JWS, without "Bearer ") and returns its
// Principal: the signature against the provider's keys, the algorithm (only
// asymmetric ones), exp (required), nbf and iat with the configured leeway,
// iss and aud when configured, and a non-empty string subject claim. Before
// the first JWKS fetch has ended it waits for it, up to ctx and 5 seconds.
// A failure is always an *Error; its message never holds the token or a
// claim value.
func (i *Issuer) Verify(ctx context.Context, token string) (Principal, error) {
	if len(token) > maxTokenBytes {
		return Principal{}, fail(i.name, CheckMalformed, "token is too long")
	}
	now, sum := time.Now(), sha256Sum(token)
	if ks := i.keys.Load(); ks != nil {
		if p, ok := ks.seen.lookup(sum, now); ok {
			return p, nil
		}
	}
	if _, _, e := peek(token); e != nil {
		return Principal{}, fail(i.name, e.Check, "%s", e.Message)
	}
	ks, e := i.currentKeys(ctx)
	if e != nil {
		return Principal{}, e
	}
	claims, err := i.parse(ctx, ks, token)
	if err != nil && errors.Is(err, jwkset.ErrKeyNotFound) {
		if fresh, ok := i.onDemandRefresh(ctx, ks); ok {
			ks = fresh
			claims, err = i.parse(ctx, ks, token)
		}
	}
	if err != nil {
		return Principal{}, i.classify(err, claims)
	}
	p, err := i.principal(claims)
	if exp, eerr := claims.GetExpirationTime(); err == nil && eerr == nil && exp != nil {
		ks.seen.remember(sum, p, exp.Time, now)
	}
	return p, err
}

// parse verifies token with the keys of ks.
func (i *Issuer) parse(ctx context.Context, ks *keySet, token string) (jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	_, err := i.parser.ParseWithClaims(token, claims, ks.kf.KeyfuncCtx(ctx))
	return claims, err
}

// peek parses token without verifying it, refusing a malformed token or one
// whose algorithm is not accepted.
func peek(token string) (*jwt.Token, jwt.MapClaims, *Error) {
	if len(token) > maxTokenBytes {
		return nil, nil, &Error{Check: CheckMalformed, Message: "token is too long"}
	}
	claims := jwt.MapClaims{}
	tok, _, err := jwt.NewParser().ParseUnverified(token, claims)
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenUnverifiable): // an alg golang-jwt does not know
		return nil, nil, errAlgorithm()
	default:
		return nil, nil, &Error{Check: CheckMalformed, Message: "token is not a well-formed JWT"}
	}
	if !slices.Contains(allowedAlgs, tok.Method.Alg()) {
		return nil, nil, errAlgorithm()
	}
	return tok, claims, nil
}

// errAlgorithm is the refusal of a token's signing algorithm.
func errAlgorithm() *Error {
	return &Error{Check: CheckAlgorithm, Message: "token algorithm is not accepted " +
		"(only RS256/384/512, PS256/384/512, ES256/384/512 and EdDSA; never none or HMAC)"}
}

// classify turns a golang-jwt or keyfunc error into an *Error. claims are
// those parsed (unverified when the signature failed); only their presence
// is looked at, never their values.
func (i *Issuer) classify(err error, claims jwt.MapClaims) *Error {
	n := i.name
	switch {
	case errors.Is(err, jwkset.ErrKeyNotFound):
		return fail(n, CheckUnknownKey, "token is signed with a key (kid) not in the provider's JWKS")
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fail(n, CheckMalformed, "token is not a well-formed JWT")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return fail(n, CheckSignature, "token signature is invalid")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return fail(n, CheckIssuer, "token was not issued by %q", i.cfg.Issuer)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return fail(n, CheckAudience, "token is not for audience %q", i.cfg.Audience)
	case errors.Is(err, jwt.ErrTokenExpired):
		return fail(n, CheckExpired, "token has expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return fail(n, CheckNotYetValid, "token is not valid yet (nbf)")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return fail(n, CheckNotYetValid, "token was issued in the future (iat)")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return i.missingClaim(claims)
	}
	return fail(n, CheckMalformed, "token claims are invalid")
}

// missingClaim names the required claim token lacks: iss, aud or exp.
func (i *Issuer) missingClaim(claims jwt.MapClaims) *Error {
	n := i.name
	if _, ok := claims["iss"]; !ok && i.cfg.Issuer != "" {
		return fail(n, CheckIssuer, "token has no iss claim; %q is required", i.cfg.Issuer)
	}
	if _, ok := claims["aud"]; !ok && i.cfg.Audience != "" {
		return fail(n, CheckAudience, "token has no aud claim; %q is required", i.cfg.Audience)
	}
	if aud, _ := claims.GetAudience(); len(aud) == 0 && i.cfg.Audience != "" {
		return fail(n, CheckAudience, "token has an empty aud claim; %q is required", i.cfg.Audience)
	}
	return fail(n, CheckExpired, "token has no exp claim; an expiry is required")
}

// principal reads the subject, tenant and role of verified claims.
func (i *Issuer) principal(claims jwt.MapClaims) (Principal, error) {
	sub, _ := claims[i.cfg.SubjectClaim].(string)
	if sub == "" {
		return Principal{}, fail(i.name, CheckSubject, "token has no non-empty string claim %q", i.cfg.SubjectClaim)
	}
	tenant := ""
	if v, ok := claims[i.cfg.TenantClaim]; ok && v != nil {
		s, isString := v.(string)
		if !isString {
			return Principal{}, fail(i.name, CheckTenant, "token claim %q is not a string", i.cfg.TenantClaim)
		}
		tenant = s
	}
	return Principal{
		Subject: sub,
		Tenant:  tenant,
		Role:    roleOf(claims[i.cfg.RoleClaim], i.cfg.DefaultRole),
		Via:     i.name,
	}, nil
}

// roleOf returns the strongest known role in v (a string or a list of
// strings), or def when v names none. Roles match exactly ("Admin" is not
// "admin").
func roleOf(v any, def config.Role) config.Role {
	best := -1
	consider := func(x any) {
		if s, ok := x.(string); ok {
			best = max(best, roleRank(config.Role(s)))
		}
	}
	switch t := v.(type) {
	case string:
		consider(t)
	case []any:
		for _, x := range t {
			consider(x)
		}
	}
	if best < 0 {
		return def
	}
	return config.Roles[best]
}

// roleRank is r's index in config.Roles, or -1 for an unknown role.
func roleRank(r config.Role) int { return slices.Index(config.Roles, r) }
