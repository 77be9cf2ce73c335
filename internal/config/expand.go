package config

import (
	"fmt"
	"strings"
)

// expandEnv replaces ${NAME} and ${NAME:-default} in s. "$${" is a literal
// "${". ${NAME} with NAME unset is an error; ${NAME:-default} uses default
// when NAME is unset or empty, as a POSIX shell does. ${NAME:default}, the
// original Hector's spelling, means the same.
func expandEnv(s string, env LookupEnv) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' { // escaped: $${ -> ${
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ in %q", s[i:])
		}
		expr := s[i+2 : i+end]
		s = s[i+end+1:]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !hasDef { // the original Hector's ${NAME:default}
			name, def, hasDef = strings.Cut(expr, ":")
		}
		if !validEnvName(name) {
			return "", fmt.Errorf("invalid environment variable name %q in ${%s}", name, expr)
		}
		val, ok := env(name)
		switch {
		case hasDef && val == "":
			val = def
		case !ok:
			return "", fmt.Errorf("environment variable %s is not set (write ${%s:-default} to make it optional)", name, name)
		}
		b.WriteString(val)
	}
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// ExpandEnv expands ${VAR}, ${VAR:-default} and $${ in s as the document's
// values are expanded; an unset variable without a default is an error
// naming it.
func ExpandEnv(s string, env LookupEnv) (string, error) { return expandEnv(s, env) }
