package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Credentials reports whether any API key or JWT issuer is configured,
// counting the one-issuer shorthand.
func (a Auth) Credentials() bool {
	return len(a.APIKeys) > 0 || len(a.JWT) > 0 || a.JWKSURL != ""
}

// Required reports whether a request without a credential is refused on
// every route that is not public: server.auth.require (its spelling
// enabled is normalised into it), by default whether any credential is
// configured.
func (a Auth) Required() bool {
	if a.Require != nil {
		return *a.Require
	}
	return a.Credentials()
}

// Issuers returns the configured JWT issuers, the shorthand included.
func (a Auth) Issuers() []JWTIssuer {
	if a.JWKSURL == "" {
		return a.JWT
	}
	short := JWTIssuer{Issuer: a.Issuer, Audience: a.Audience, JWKSURL: a.JWKSURL}
	return append([]JWTIssuer{short}, a.JWT...)
}

// auth checks server.auth.
func (v *validator) auth(a Auth) {
	if a.Required() && !a.Credentials() {
		v.fail("server.auth.require", "true needs a credential to check: list api_keys or configure jwt (or jwks_url)")
	}
	if a.JWKSURL == "" && (a.Issuer != "" || a.Audience != "") {
		v.fail("server.auth.jwks_url", "required when server.auth.issuer or server.auth.audience is set")
	}
	v.apiKeys(a.APIKeys)
	v.issuers(a)
}

func (v *validator) apiKeys(list []APIKey) {
	keys, names := map[string]bool{}, map[string]bool{}
	for i, k := range list {
		p := fmt.Sprintf("server.auth.api_keys[%d]", i)
		kp := p + ".key"
		if k.Plain {
			kp = p
		}
		switch {
		case k.Key == "":
			v.fail(kp, "required")
		case strings.TrimSpace(k.Key) != k.Key:
			v.fail(kp, "must not start or end with white space (a key is sent as one bearer token)")
		case len(k.Key) < 16:
			v.fail(kp, "must be at least 16 characters")
		case keys[k.Key]:
			v.fail(kp, "the same key is listed twice")
		}
		keys[k.Key] = true
		switch {
		case k.Role == "" && !k.Plain:
			v.fail(p+".role", "required: one of %s", strings.Join(RoleNames(), ", "))
		case k.Role != "":
			v.oneOf(p+".role", string(k.Role), RoleNames()...)
		}
		if strings.Contains(k.Name, ":") {
			v.fail(p+".name", "must not contain ':' (NAME:SUBJECT names the principals of JWTs)")
		}
		if k.App != "" {
			if err := CheckAppName(k.App); err != nil {
				v.fail(p+".app", "%s", err)
			}
		}
		if reservedPrincipal(k.Name) {
			v.fail(p+".name", "%q is reserved", k.Name)
		}
		if k.Name != "" {
			if names[k.Name] {
				v.fail(p+".name", "name %q is used twice", k.Name)
			}
			names[k.Name] = true
		}
	}
}

// issuers checks each JWT issuer, the shorthand as server.auth.
func (v *validator) issuers(a Auth) {
	all := a.Issuers()
	short := len(all) - len(a.JWT) // 1 when the shorthand is the first entry
	seen, names := map[string]bool{}, map[string]bool{}
	for i, is := range all {
		p := "server.auth" // the shorthand's keys sit there
		if i >= short {
			p = fmt.Sprintf("server.auth.jwt[%d]", i-short)
		}
		switch u, ok := httpURL(is.JWKSURL); {
		case is.JWKSURL == "":
			v.fail(p+".jwks_url", "required: the URL of the provider's signing keys (JWKS)")
		case !ok:
			v.fail(p+".jwks_url", "must be an http or https URL")
		case u.Scheme == "http" && !loopbackHost(u.Hostname()):
			v.fail(p+".jwks_url", "must use https (http only on a loopback address): keys fetched in the clear can be replaced on the way")
		}
		if is.Issuer == "" && len(all) > 1 {
			v.fail(p+".issuer", "required when several issuers are configured: tokens are routed by their iss claim")
		}
		if is.Issuer != "" && seen[is.Issuer] {
			v.fail(p+".issuer", "issuer %q is configured twice", is.Issuer)
		}
		seen[is.Issuer] = true
		switch name := issuerName(is, i); {
		case !validEntityName(name):
			v.fail(p+".name", "%q is not a valid name (letters, digits, '_', '.', '-'; it names the principals of the issuer's tokens, NAME:SUBJECT)", name)
		case reservedPrincipal(name):
			v.fail(p+".name", "%q is reserved", name)
		case names[name]:
			v.fail(p+".name", "name %q is used twice (by default an issuer is named after its host): give each issuer a name", name)
		default:
			names[name] = true
		}
		if is.DefaultRole != "" {
			v.oneOf(p+".default_role", string(is.DefaultRole), RoleNames()...)
		}
		if is.Leeway < 0 {
			v.fail(p+".leeway", "must not be negative")
		}
		if is.RefreshInterval != 0 && is.RefreshInterval.D().Seconds() < 1 {
			v.fail(p+".refresh_interval", "must be at least 1s")
		}
	}
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// authDefaults names keys and issuers and fills the issuers' claims and
// intervals. The parsed slices may be shared, so they are copied.
func authDefaults(a *Auth) {
	if keys := a.APIKeys; len(keys) > 0 {
		keys = append([]APIKey(nil), keys...)
		for i := range keys {
			if keys[i].Name == "" {
				keys[i].Name = fmt.Sprintf("key-%d", i+1)
			}
			if keys[i].Role == "" && keys[i].Plain {
				keys[i].Role = RoleAdmin
			}
		}
		a.APIKeys = keys
	}
	if len(a.JWT) > 0 || a.JWKSURL != "" {
		list := a.Issuers() // the shorthand becomes the first entry
		list = append([]JWTIssuer(nil), list...)
		for i := range list {
			issuerDefaults(&list[i], i)
		}
		a.JWT, a.JWKSURL, a.Issuer, a.Audience = list, "", "", ""
	}
	r := a.Required()
	a.Require, a.Enabled = &r, nil
}

// issuerName is an issuer's name: its own, else the host of its issuer
// URL (or the issuer itself when it is a plain name), else jwt-N.
func issuerName(is JWTIssuer, i int) string {
	switch u, err := url.Parse(is.Issuer); {
	case is.Name != "":
		return is.Name
	case err == nil && u.Hostname() != "":
		return u.Hostname()
	case validEntityName(is.Issuer):
		return is.Issuer
	}
	return fmt.Sprintf("jwt-%d", i+1)
}

// reservedPrincipal reports whether name would make principals collide:
// "anonymous" is the principal without a credential, and "key" the
// source of API keys.
func reservedPrincipal(name string) bool { return name == "anonymous" || name == "key" }

func issuerDefaults(is *JWTIssuer, i int) {
	is.Name = issuerName(*is, i)
	if is.RoleClaim == "" {
		is.RoleClaim = DefaultRoleClaim
	}
	if is.DefaultRole == "" {
		is.DefaultRole = RoleUser
	}
	if is.TenantClaim == "" {
		is.TenantClaim = DefaultTenantClaim
	}
	if is.SubjectClaim == "" {
		is.SubjectClaim = DefaultSubjectClaim
	}
	if is.Leeway == 0 {
		is.Leeway = Duration(DefaultJWTLeeway)
	}
	if is.RefreshInterval == 0 {
		is.RefreshInterval = Duration(DefaultJWKSRefresh)
	}
}

// authWarnings lists what server.auth allows but probably should not.
func (v *validator) authWarnings(a Auth) {
	for i, k := range a.APIKeys {
		if k.Plain {
			v.fail(fmt.Sprintf("server.auth.api_keys[%d]", i),
				"a key written as a plain string has role admin and the name %s: write {name, key, role} to say whose it is and what it may do", k.Name)
		}
	}
	for i, is := range a.JWT {
		if is.Audience == "" {
			v.fail(fmt.Sprintf("server.auth.jwt[%d].audience", i),
				"not set: tokens %s issued for any other service are accepted too", is.Name)
		}
	}
	if a.Require != nil && !*a.Require && a.Credentials() {
		v.fail("server.auth.require", "false: callers without a credential are admitted as the anonymous user (role user), and share its sessions and tasks")
	}
}
