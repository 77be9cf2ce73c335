package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// healthReport is the part of a server's /health answer that
// `hector health` prints.
type healthReport struct {
	Status   string `json:"status"`
	Version  string `json:"version"`
	Name     string `json:"name"`
	Database string `json:"database"`
	Config   struct {
		Version int64  `json:"version"`
		Source  string `json:"source"`
		Status  string `json:"status"`
		Since   string `json:"since"`
		Error   string `json:"error"`
	} `json:"config"`
	Apps *struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	} `json:"apps"`
}

// healthCmd runs `hector health`: it asks a running server's /health and
// exits 0 when the server answered 200 with status ok or degraded, 1
// otherwise (no answer, 503, an answer that is not Hector's). It needs no
// shell or HTTP client, so it serves as a FROM scratch image's HEALTHCHECK.
func healthCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := clientFlags(fs)
	asJSON := fs.Bool("json", false, "print the server's /health answer as JSON")
	if pos, err := parse(fs, args); err != nil || len(pos) > 0 {
		fmt.Fprintln(stderr, "usage: hector health [--server URL] [--timeout D] [--api-key KEY] [--json]")
		return 2
	}
	code, body, err := c.do("GET", "/health", nil)
	if code == 0 {
		fmt.Fprintf(stderr, "hector health: %v\n", err)
		return 1
	}
	var h healthReport
	jerr := json.Unmarshal(body, &h)
	if *asJSON {
		stdout.Write(bytes.TrimSpace(body))
		fmt.Fprintln(stdout)
	} else if jerr == nil && h.Status != "" {
		fmt.Fprintln(stdout, h.line())
	}
	switch {
	case jerr != nil || h.Status == "":
		fmt.Fprintf(stderr, "hector health: %s answered HTTP %d without a health report: %.200s\n", c.base, code, strings.TrimSpace(string(body)))
		return 1
	case code != http.StatusOK || (h.Status != "ok" && h.Status != "degraded"):
		fmt.Fprintf(stderr, "hector health: %s is %s (HTTP %d)\n", c.base, h.Status, code)
		return 1
	}
	return 0
}

// line is the one-line summary: status, server and configuration version,
// configuration source and database, and what is degraded.
func (h *healthReport) line() string {
	parts := []string{h.Status}
	if h.Name != "" {
		parts = append(parts, "name "+h.Name)
	}
	if h.Version != "" {
		parts = append(parts, "hector "+h.Version)
	}
	parts = append(parts, fmt.Sprintf("config v%d", h.Config.Version))
	if h.Config.Source != "" {
		parts = append(parts, "from "+h.Config.Source)
	}
	if h.Config.Status != "" && h.Config.Status != "ok" {
		s := "config source " + h.Config.Status
		if h.Config.Since != "" {
			s += " since " + h.Config.Since
		}
		if h.Config.Error != "" {
			s += ": " + h.Config.Error
		}
		parts = append(parts, s)
	}
	if h.Apps != nil && h.Apps.Status != "" && h.Apps.Status != "ok" {
		s := "apps " + h.Apps.Status
		if h.Apps.Error != "" {
			s += ": " + h.Apps.Error
		}
		parts = append(parts, s)
	}
	if h.Database != "" {
		parts = append(parts, "database "+h.Database)
	}
	return strings.Join(parts, ", ")
}
