package config

import (
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// urlSpan is one secret part of a URL: the password of its userinfo (or
// the whole userinfo when it has no password: a bare token), or the value
// of a secret-looking query parameter. name identifies it between two
// versions of the URL ("password", "user", or "query:" + the parameter's
// name), so Unredact can restore it.
type urlSpan struct {
	start, end int
	name       string
}

// secretParams are query parameter names (lower case) whose values are
// credentials; names containing one of secretParamParts are too.
var (
	secretParams     = map[string]bool{"key": true, "sig": true, "signature": true, "auth": true, "code": true, "pwd": true, "passwd": true, "pass": true}
	secretParamParts = []string{"token", "secret", "password", "apikey", "api_key", "api-key", "access_key", "accesskey", "private", "credential", "session", "signature"}
)

// SecretQueryParam reports whether a query parameter of this name carries a
// credential (api_key, token, password, key, …).
func SecretQueryParam(name string) bool {
	n := strings.ToLower(name)
	if secretParams[n] || strings.HasSuffix(n, "key") || strings.HasPrefix(n, "auth") { // subscription-key, authorization
		return true
	}
	for _, part := range secretParamParts {
		if strings.Contains(n, part) {
			return true
		}
	}
	return false
}

// urlSecrets returns the secret spans of u in order: the userinfo's
// password, then each secret query value. It works on the text, so a URL
// that does not parse (a template, a typo) is still redacted.
func urlSecrets(u string) []urlSpan {
	var spans []urlSpan
	start, at, _ := authority(u)
	if at > start {
		if colon := strings.Index(u[start:at], ":"); colon >= 0 {
			spans = append(spans, urlSpan{start + colon + 1, at, "password"})
		} else { // a bare token: https://TOKEN@host
			spans = append(spans, urlSpan{start, at, "user"})
		}
	}
	q := strings.Index(u[start:], "?")
	if q < 0 {
		return spans
	}
	q += start + 1
	end := len(u)
	if h := strings.Index(u[q:], "#"); h >= 0 {
		end = q + h
	}
	for pos := q; pos < end; {
		next := strings.IndexByte(u[pos:end], '&')
		if next < 0 {
			next = end - pos
		}
		pair := u[pos : pos+next]
		if eq := strings.IndexByte(pair, '='); eq >= 0 && eq < len(pair)-1 {
			name, err := url.QueryUnescape(pair[:eq])
			if err != nil {
				name = pair[:eq]
			}
			if SecretQueryParam(name) {
				spans = append(spans, urlSpan{pos + eq + 1, pos + next, "query:" + name})
			}
		}
		pos += next + 1
	}
	return spans
}

// redactURLSecrets replaces each literal secret span of u with REDACTED
// (${VAR} references are kept: they name a secret without holding it).
func redactURLSecrets(u string) string {
	spans := urlSecrets(u)
	for i := len(spans) - 1; i >= 0; i-- {
		s := spans[i]
		if v := u[s.start:s.end]; v != Redacted && !isReference(v) {
			u = u[:s.start] + Redacted + u[s.end:]
		}
	}
	return u
}

// unredactURL restores the REDACTED spans of u from old, matching spans by
// name; ok is false when one has nothing to restore.
func unredactURL(u, old string) (string, bool) {
	known := map[string]string{}
	for _, s := range urlSecrets(old) {
		known[s.name] = old[s.start:s.end]
	}
	spans := urlSecrets(u)
	sort.Slice(spans, func(i, j int) bool { return spans[i].start > spans[j].start })
	for _, s := range spans {
		if u[s.start:s.end] != Redacted {
			continue
		}
		v, ok := known[s.name]
		if !ok || v == Redacted {
			return "", false
		}
		u = u[:s.start] + v + u[s.end:]
	}
	return u, true
}

// RedactURL makes a URL fit for messages and logs: the whole userinfo (a
// password, or a bare token such as https://TOKEN@host) and the values of
// secret-looking query parameters become REDACTED. It works on the text,
// so malformed URLs are covered too.
func RedactURL(s string) string {
	s = redactURLSecrets(s)
	if start, at, _ := authority(s); at >= start {
		s = s[:start] + Redacted + s[at:]
	}
	return s
}

// authority finds, in the text of u, where its authority starts (after
// "://"; 0 without a scheme), the index of the "@" ending its userinfo
// (-1 without one) and where the authority ends.
func authority(u string) (start, at, end int) {
	at = -1
	i := strings.Index(u, "://")
	if i < 0 {
		return 0, at, 0
	}
	start, end = i+3, len(u)
	if j := strings.IndexAny(u[start:], "/?#"); j >= 0 {
		end = start + j
	}
	if a := strings.LastIndex(u[start:end], "@"); a >= 0 {
		at = start + a
	}
	return start, at, end
}

var urlInText = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>\x60]+`)

// RedactText applies RedactURL to every URL inside s: for error messages
// and log lines that quote a URL (an HTTP client's "Post \"URL\": …").
func RedactText(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlInText.ReplaceAllStringFunc(s, RedactURL)
}
