package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDocumentedFlagsExist: every --flag named in the README or docs is
// accepted by some hector command.
func TestDocumentedFlagsExist(t *testing.T) {
	files, _ := filepath.Glob("../../docs/*.md")
	files = append(files, "../../README.md")
	known := map[string]bool{"help": true, "version": true}
	for _, f := range []string{"config", "config-watch", "config-debounce", "database", "json", "config-cache", "config-fallback",
		"reload-broker", "server", "api-key", "timeout", "broker", "wait", "expect"} {
		known[f] = true
	}
	// The list above must match the real flag sets.
	for _, args := range [][]string{
		{"serve", "--config", "x", "--config-watch=false", "--config-debounce", "1s", "--database", "sqlite://x", "extra"},
		{"validate", "--json"},
		{"serve", "--config-cache", "x", "--config-fallback", "bogus", "--reload-broker", "nats://x"},
		{"reload", "--server", "http://127.0.0.1:1", "--api-key", "k", "--timeout", "1ms", "--json"},
		{"reload", "--broker", "nats://127.0.0.1:1", "--wait", "1ms", "--expect", "1"},
	} {
		if code, _, errOut := runCLI(args...); strings.Contains(errOut, "flag provided but not defined") {
			t.Fatalf("%v: %d %s", args, code, errOut)
		}
	}
	flagRe := regexp.MustCompile("(?:^|[\\s`(])--([a-z][a-z-]+)")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range flagRe.FindAllStringSubmatch(string(b), -1) {
			if !known[m[1]] {
				t.Errorf("%s mentions --%s, which no command accepts", f, m[1])
			}
		}
	}
}
