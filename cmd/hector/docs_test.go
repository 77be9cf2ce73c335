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
		"reload-broker", "server", "api-key", "timeout", "broker", "wait", "expect",
		"config-type", "config-endpoints", "config-username", "config-password", "config-token", "config-ca", "config-cert",
		"config-key", "config-poll-interval", "format", "no-validate", "if-version", "config-source", "origin",
		"queue-workers", "queue-max-retries", "queue-initial-delay", "queue-max-delay", "queue-stale-threshold", "status", "agent", "limit", "reason",
		"config-max-bytes", "config-history", "reload-broker-key-file", "key-file", "purge", "if-match", "force", "host", "to", "debug", "port", "write"} {
		known[f] = true
	}
	// The list above must match the real flag sets.
	for _, args := range [][]string{
		{"serve", "--config", "x", "--config-watch=false", "--config-debounce", "1s", "--database", "sqlite://x", "extra"},
		{"validate", "--json"},
		{"serve", "--config-cache", "x", "--config-fallback", "bogus", "--reload-broker", "nats://x", "--reload-broker-key-file", "x", "--config-history", "1"},
		{"config", "put", "--config-type", "bogus", "--config-max-bytes", "1"},
		{"reload", "--server", "http://127.0.0.1:1", "--api-key", "k", "--timeout", "1ms", "--json"},
		{"reload", "--broker", "nats://127.0.0.1:1", "--key-file", "x", "--wait", "1ms", "--expect", "1"},
		{"serve", "--config-type", "bogus", "--config-endpoints", "x", "--config-username", "u", "--config-password", "p",
			"--config-token", "t", "--config-ca", "c", "--config-cert", "c", "--config-key", "k", "--config-poll-interval", "1s"},
		{"config", "get", "--config-type", "bogus", "--config-endpoints", "x", "--config-username", "u", "--config-password", "p",
			"--config-token", "t", "--config-ca", "c", "--config-cert", "c", "--config-key", "k", "--config-poll-interval", "1s",
			"--format", "json", "--database", "x"},
		{"config", "put", "--config-type", "bogus", "--no-validate", "--if-version", "1", "--format", "bogus"},
		{"config", "show", "--origin", "--config-source", "bogus"},
		{"serve", "--config-source", "bogus"},
		{"serve", "--queue-workers", "0", "--queue-max-retries", "1", "--queue-initial-delay", "1s", "--queue-max-delay", "1s", "--queue-stale-threshold", "1s"},
		{"tasks", "list", "--status", "x", "--agent", "a", "--limit", "1", "--server", "http://127.0.0.1:1", "--timeout", "1ms"},
		{"tasks", "reject", "t_x", "--reason", "r", "--server", "http://127.0.0.1:1", "--timeout", "1ms"},
		{"apps", "delete", "x", "--purge", "--server", "http://127.0.0.1:1", "--timeout", "1ms"},
		{"serve", "--host", "0.0.0.0", "--port", "0", "--debug", "--config-fallback", "bogus"},
		{"config", "migrate", "--write"},
		{"backup", "--to", "x", "--database", "bogus://", "--config", "x"},
		{"apps", "put", "x", "f.yaml", "--if-match", "t", "--server", "http://127.0.0.1:1", "--timeout", "1ms"},
		{"apps", "rollback", "x", "1", "--force", "--server", "http://127.0.0.1:1", "--timeout", "1ms"},
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
