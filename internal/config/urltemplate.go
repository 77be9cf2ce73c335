package config

import (
	"regexp"
	"strings"
)

// urlParam matches the {name} placeholders of an http tool URL template.
var urlParam = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// URLOrigin returns the scheme and authority of an http tool URL template:
// everything before the path, query or fragment. In a valid configuration
// it holds no placeholder, so the model never chooses where a request goes.
func URLOrigin(tmpl string) string {
	i := strings.Index(tmpl, "://")
	if i < 0 {
		return tmpl
	}
	if j := strings.IndexAny(tmpl[i+3:], "/?#"); j >= 0 {
		return tmpl[:i+3+j]
	}
	return tmpl
}

// URLParams returns the placeholder names of an http tool URL template, in
// order of first appearance.
func URLParams(tmpl string) []string {
	var names []string
	seen := map[string]bool{}
	for _, m := range urlParam.FindAllStringSubmatch(tmpl, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			names = append(names, m[1])
		}
	}
	return names
}

// URLParamIndex returns, for each placeholder of tmpl, the submatch indexes
// [start, end, nameStart, nameEnd].
func URLParamIndex(tmpl string) [][]int { return urlParam.FindAllStringSubmatchIndex(tmpl, -1) }
