package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/reload"
)

// appsCmd runs `hector apps list|show|create|put|delete|history|rollback`
// against a running server's /admin/apps API.
func appsCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	const usage = "usage: hector apps list | show NAME | create NAME FILE | put NAME FILE [--if-match TAG] | delete NAME [--purge]\n" +
		"       hector apps history NAME [--limit N] | rollback NAME VERSION [--force]\n" +
		"       [--server URL] [--api-key KEY] [--json]   (FILE may be - for standard input)"
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("apps "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := clientFlags(fs)
	asJSON := fs.Bool("json", false, "print the server's JSON answer")
	ifMatch := fs.String("if-match", "", "put: replace the document only if its ETag is still this (default: the ETag read just before)")
	purge := fs.Bool("purge", false, "delete: also delete the app's sessions, tasks and configuration history")
	limit := fs.Int("limit", 0, "history: at most this many versions, newest first (default: the server's, 100)")
	force := fs.Bool("force", false, "rollback: apply a version that requires no credential (admin only)")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return 2
	}
	need := map[string]int{"list": 0, "show": 1, "create": 2, "put": 2, "delete": 1, "history": 1, "rollback": 2}
	n, ok := need[sub]
	if !ok || len(pos) != n {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	name := "hector apps " + sub
	cmd := "apps " + sub
	var app string
	if n > 0 {
		app = url.PathEscape(pos[0])
	}
	switch sub {
	case "list":
		_, body, err := c.do("GET", "/admin/apps", nil)
		if err != nil {
			return fail(stderr, cmd, err)
		}
		if *asJSON {
			_, _ = stdout.Write(body)
			return 0
		}
		var l struct {
			Apps []struct {
				Name, Status, Source string
				Version              int64
				Agents               int
			}
			Catalog string
		}
		if err := json.Unmarshal(body, &l); err != nil {
			return fail(stderr, cmd, fmt.Errorf("unexpected answer: %s", body))
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSTATUS\tVERSION\tAGENTS\tSOURCE")
		for _, a := range l.Apps {
			v := "-"
			if a.Version > 0 {
				v = fmt.Sprint(a.Version)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", a.Name, a.Status, v, a.Agents, a.Source)
		}
		_ = tw.Flush()
	case "show":
		_, body, err := c.do("GET", "/admin/apps/"+app, nil)
		if err != nil {
			return fail(stderr, cmd, err)
		}
		_, _ = stdout.Write(body)
		if len(body) > 0 && body[len(body)-1] != '\n' {
			fmt.Fprintln(stdout)
		}
	case "create", "put":
		doc, err := readDocument(pos[1], stdin)
		if err != nil {
			return fail(stderr, cmd, err)
		}
		var body []byte
		if sub == "create" {
			req, _ := json.Marshal(map[string]string{"name": pos[0], "config": string(doc)})
			_, body, _, err = c.send("POST", "/admin/apps", req, map[string]string{"Content-Type": "application/json"})
		} else {
			tag := *ifMatch
			if tag == "" {
				var hdr http.Header
				_, _, hdr, err = c.send("GET", "/admin/apps/"+app, nil, nil)
				if err != nil {
					return fail(stderr, cmd, err)
				}
				if tag = hdr.Get("ETag"); tag == "" {
					return fail(stderr, cmd, fmt.Errorf("the server sent no ETag for app %q; pass --if-match", pos[0]))
				}
			}
			if !strings.HasPrefix(tag, `"`) && !strings.HasPrefix(tag, `W/`) {
				tag = `"` + tag + `"`
			}
			_, body, _, err = c.send("PUT", "/admin/apps/"+app, doc,
				map[string]string{"Content-Type": contentTypeOf(doc), "If-Match": tag})
		}
		if err != nil {
			return fail(stderr, cmd, err)
		}
		return printOutcome(c, body, *asJSON, stdout, stderr, name)
	case "delete":
		path := "/admin/apps/" + app
		if *purge {
			path += "?purge=true"
		}
		_, body, err := c.do("DELETE", path, nil)
		if err != nil {
			return fail(stderr, cmd, err)
		}
		if *asJSON {
			_, _ = stdout.Write(body)
			return 0
		}
		if *purge {
			fmt.Fprintf(stdout, "deleted app %s and its sessions, tasks and history\n", pos[0])
		} else {
			fmt.Fprintf(stdout, "deleted app %s (its sessions, tasks and history are kept; --purge deletes them)\n", pos[0])
		}
	case "history":
		path := "/admin/apps/" + app + "/history"
		if *limit > 0 {
			path += fmt.Sprintf("?limit=%d", *limit)
		}
		_, body, err := c.do("GET", path, nil)
		if err != nil {
			return fail(stderr, cmd, err)
		}
		if *asJSON {
			_, _ = stdout.Write(body)
			return 0
		}
		printHistory(stdout, body)
	case "rollback":
		path := "/admin/apps/" + app + "/rollback/" + url.PathEscape(pos[1])
		if *force {
			path += "?force=true"
		}
		_, body, err := c.do("POST", path, nil)
		if err != nil {
			return fail(stderr, cmd, err)
		}
		return printOutcome(c, body, *asJSON, stdout, stderr, name)
	}
	return 0
}

// printOutcome prints a reload outcome as `hector config` does and
// returns its exit code: 0 applied or no-op, 2 rejected.
func printOutcome(c *client, body []byte, asJSON bool, stdout, stderr io.Writer, name string) int {
	var o reload.Outcome
	if err := json.Unmarshal(body, &o); err != nil || o.Result == "" {
		fmt.Fprintf(stderr, "%s: unexpected answer: %s\n", name, body)
		return 2
	}
	if asJSON {
		_, _ = stdout.Write(body)
	} else {
		printOutcomes(stdout, [][2]any{{c.base, o}})
	}
	return exitFor(o.Result)
}

// readDocument reads FILE, or standard input for "-".
func readDocument(file string, stdin io.Reader) ([]byte, error) {
	if file == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(file)
}

func contentTypeOf(doc []byte) string {
	if config.DetectFormat(doc) == "json" {
		return "application/json"
	}
	return "application/yaml"
}

// send is client.do with request headers, and the response's headers
// returned too; errors are the same.
func (c *client) send(method, path string, body []byte, headers map[string]string) (int, []byte, http.Header, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.base, "/")+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%w from %s: %v", errNoAnswer, c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%w from %s: %v", errNoAnswer, c.base, err)
	}
	if resp.StatusCode >= 400 && resp.StatusCode != http.StatusUnprocessableEntity {
		var e struct {
			Error struct{ Code, Message string }
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			return resp.StatusCode, b, resp.Header, fmt.Errorf("%s (HTTP %d)", e.Error.Message, resp.StatusCode)
		}
		return resp.StatusCode, b, resp.Header, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return resp.StatusCode, b, resp.Header, nil
}
