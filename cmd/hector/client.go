package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/reload"
	"github.com/hector-run/hector/internal/store"
)

// client talks to a running server's /admin API.
type client struct {
	base, key string
	timeout   time.Duration
}

func clientFlags(fs *flag.FlagSet) *client {
	c := &client{}
	fs.StringVar(&c.base, "server", envOr("HECTOR_SERVER", "http://127.0.0.1:8080"), "server URL (env HECTOR_SERVER)")
	fs.StringVar(&c.key, "api-key", os.Getenv("HECTOR_API_KEY"), "API key, once the server has keys (env HECTOR_API_KEY)")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "give up when the server has not answered within this time")
	return c
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// errNoAnswer means the server could not be reached or did not answer in time.
var errNoAnswer = errors.New("no answer")

// do sends a request and returns the status and body. A 4xx/5xx with a JSON
// error body other than 422 becomes an error carrying the server's message.
func (c *client) do(method, path string, body io.Reader) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.base, "/")+path, body)
	if err != nil {
		return 0, nil, err
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%w from %s: %v", errNoAnswer, c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("%w from %s: %v", errNoAnswer, c.base, err)
	}
	if resp.StatusCode >= 400 && resp.StatusCode != http.StatusUnprocessableEntity {
		var e struct {
			Error struct{ Code, Message string }
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			return resp.StatusCode, b, fmt.Errorf("%s (HTTP %d)", e.Error.Message, resp.StatusCode)
		}
		return resp.StatusCode, b, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return resp.StatusCode, b, nil
}

// exitFor maps an outcome to the reload exit code: 0 applied or no-op, 2 rejected.
func exitFor(results ...reload.Result) int {
	for _, r := range results {
		if r == reload.Rejected {
			return 2
		}
	}
	return 0
}

func fail(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "hector %s: %v\n", cmd, err)
	if errors.Is(err, errNoAnswer) {
		return 1
	}
	return 2
}

func printOutcomes(w io.Writer, rows [][2]any) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tRESULT\tVERSION\tELAPSED\tDETAIL")
	for _, r := range rows {
		inst, o := r[0].(string), r[1].(reload.Outcome)
		detail := ""
		switch o.Result {
		case reload.Applied:
			var parts []string
			for kind, c := range o.Applied {
				parts = append(parts, fmt.Sprintf("%s +%d -%d ~%d", kind, len(c.Added), len(c.Removed), len(c.Changed)))
			}
			sort.Strings(parts)
			detail = strings.Join(parts, ", ")
		case reload.Rejected:
			msgs := make([]string, len(o.Errors))
			for i, e := range o.Errors {
				msgs[i] = e.Error()
			}
			detail = strings.Join(msgs, "; ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1fms\t%s\n", inst, o.Result, o.Version, o.ElapsedMS, detail)
	}
	_ = tw.Flush()
}

// reloadCmd: hector reload [--json] [--server URL] | --broker nats://... --key-file FILE
func reloadCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := clientFlags(fs)
	asJSON := fs.Bool("json", false, "print outcomes as JSON")
	broker := fs.String("broker", "", "reload every instance listening on this NATS URL instead of one server")
	wait := fs.Duration("wait", 3*time.Second, "with --broker: how long to collect answers")
	expect := fs.Int("expect", 0, "with --broker: stop waiting once this many instances answered")
	keyFile := fs.String("key-file", os.Getenv("HECTOR_RELOAD_BROKER_KEY_FILE"),
		"with --broker: sign the request with the first key in this file, as the servers' --reload-broker-key-file (env HECTOR_RELOAD_BROKER_KEY_FILE)")
	if pos, err := parse(fs, args); err != nil || len(pos) > 0 {
		return 2
	}
	if *broker != "" {
		if *keyFile == "" {
			return fail(stderr, "reload", errors.New("--broker needs --key-file: servers act only on signed fleet reloads"))
		}
		keys, warning, err := reload.ReadKeyFile(*keyFile)
		if err != nil {
			return fail(stderr, "reload", err)
		}
		if warning != "" {
			fmt.Fprintln(stderr, "hector reload: warning:", warning)
		}
		return fleetReload(*broker, keys, *wait, *expect, *asJSON, stdout, stderr)
	}
	_, body, err := c.do("POST", "/admin/reload", nil)
	if err != nil {
		return fail(stderr, "reload", err)
	}
	var o reload.Outcome
	if err := json.Unmarshal(body, &o); err != nil {
		return fail(stderr, "reload", fmt.Errorf("unexpected answer: %s", body))
	}
	if *asJSON {
		_, _ = stdout.Write(body)
	} else {
		printOutcomes(stdout, [][2]any{{c.base, o}})
	}
	return exitFor(o.Result)
}

// fleetReload publishes a request signed with keys[0] and collects the
// acks that come back signed with one of keys; others are ignored and
// counted, since anyone allowed to publish on the ack subject could
// otherwise report reloads that never happened.
func fleetReload(url string, keys []reload.Key, wait time.Duration, expect int, asJSON bool, stdout, stderr io.Writer) int {
	key := keys[0]
	nc, err := nats.Connect(url, nats.Name("hector reload"), nats.Timeout(5*time.Second))
	if err != nil {
		return fail(stderr, "reload", fmt.Errorf("%w: broker %s: %s", errNoAnswer, config.RedactURL(url),
			strings.ReplaceAll(err.Error(), url, config.RedactURL(url))))
	}
	defer nc.Close()
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	corr := hex.EncodeToString(id)
	acks := make(chan reload.ReloadAck, 256)
	verify := reload.AckVerifier(keys, reload.DefaultMaxSkew)
	var forged atomic.Int64
	sub, err := nc.Subscribe(reload.ReloadAckSubject, func(m *nats.Msg) {
		var a reload.ReloadAck
		if json.Unmarshal(m.Data, &a) != nil || a.CorrelationID != corr {
			return
		}
		if verify(m.Header.Get(reload.SignatureHeader), m.Data) != nil {
			forged.Add(1)
			return
		}
		acks <- a
	})
	if err != nil {
		return fail(stderr, "reload", err)
	}
	defer sub.Unsubscribe()
	host, _ := os.Hostname()
	req, _ := json.Marshal(reload.ReloadRequest{CorrelationID: corr, Actor: "cli@" + host})
	msg := &nats.Msg{Subject: reload.ReloadSubject, Data: req, Header: nats.Header{}}
	msg.Header.Set(reload.SignatureHeader, reload.Sign(key, req, time.Now()))
	if err := nc.PublishMsg(msg); err != nil {
		return fail(stderr, "reload", err)
	}
	_ = nc.Flush()
	var got []reload.ReloadAck
	deadline := time.After(wait)
collect:
	for expect <= 0 || len(got) < expect {
		select {
		case a := <-acks:
			got = append(got, a)
		case <-deadline:
			break collect
		}
	}
	if n := forged.Load(); n > 0 {
		fmt.Fprintf(stderr, "hector reload: ignored %d answer(s) not signed with a key of the key file\n", n)
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Instance < got[j].Instance })
	if asJSON {
		b, _ := json.MarshalIndent(got, "", "  ")
		fmt.Fprintln(stdout, string(b))
	} else {
		rows := make([][2]any, len(got))
		for i, a := range got {
			rows[i] = [2]any{a.Instance, a.Outcome}
		}
		printOutcomes(stdout, rows)
	}
	if len(got) == 0 || (expect > 0 && len(got) < expect) {
		fmt.Fprintf(stderr, "hector reload: %d instance(s) answered within %s\n", len(got), wait)
		return 1
	}
	results := make([]reload.Result, len(got))
	for i, a := range got {
		results[i] = a.Outcome.Result
	}
	return exitFor(results...)
}

// configCmd: hector config history|show V|diff A [B]|rollback V
func configCmd(args []string, stdout, stderr io.Writer) int {
	const usage = "usage: hector config history | show VERSION | diff FROM [TO] | rollback VERSION  [--server URL] [--api-key KEY] [--json]\n" +
		"       hector config get | put [FILE]  [--config-type T] [--config KEY] [--config-endpoints E] [--format as-is|yaml|json]\n" +
		"       hector config show --origin  [--config-source TYPE:KEY ...]\n" +
		"       hector config migrate FILE [--write]"
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	sub := args[0]
	if sub == "migrate" {
		return migrateCmd(args[1:], stdout, stderr)
	}
	if sub == "get" || sub == "put" || (sub == "show" && slices.Contains(args[1:], "--origin")) {
		return sourceCmd(sub, args[1:], os.Stdin, stdout, stderr)
	}
	fs := flag.NewFlagSet("config "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := clientFlags(fs)
	asJSON := fs.Bool("json", false, "print the server's JSON answer")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return 2
	}
	need := map[string][2]int{"history": {0, 0}, "show": {1, 1}, "diff": {1, 2}, "rollback": {1, 1}}
	n, ok := need[sub]
	if !ok || len(pos) < n[0] || len(pos) > n[1] {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	switch sub {
	case "history":
		_, body, err := c.do("GET", "/admin/config/history", nil)
		if err != nil {
			return fail(stderr, "config history", err)
		}
		if *asJSON {
			_, _ = stdout.Write(body)
			return 0
		}
		printHistory(stdout, body)
	case "show":
		_, body, err := c.do("GET", "/admin/config/versions/"+pos[0], nil)
		if err != nil {
			return fail(stderr, "config show", err)
		}
		if *asJSON {
			_, _ = stdout.Write(body)
			return 0
		}
		var v store.ConfigVersion
		_ = json.Unmarshal(body, &v)
		fmt.Fprint(stdout, v.Content)
	case "diff":
		q := "/admin/config/diff?from=" + pos[0]
		if len(pos) == 2 {
			q += "&to=" + pos[1]
		}
		_, body, err := c.do("GET", q, nil)
		if err != nil {
			return fail(stderr, "config diff", err)
		}
		_, _ = stdout.Write(body)
	case "rollback":
		_, body, err := c.do("POST", "/admin/config/rollback/"+pos[0], nil)
		if err != nil {
			return fail(stderr, "config rollback", err)
		}
		var o reload.Outcome
		_ = json.Unmarshal(body, &o)
		if *asJSON {
			_, _ = stdout.Write(body)
		} else {
			printOutcomes(stdout, [][2]any{{c.base, o}})
		}
		return exitFor(o.Result)
	}
	return 0
}

// printHistory prints a history answer (of /admin/config/history or an
// app's) as a table, * marking the version serving.
func printHistory(stdout io.Writer, body []byte) {
	var h struct {
		Versions []store.ConfigVersion
		Current  int64
	}
	_ = json.Unmarshal(body, &h)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tAPPLIED AT\tTRIGGER\tACTOR\tSOURCE\tHASH")
	for _, v := range h.Versions {
		mark := ""
		if v.Version == h.Current {
			mark = " *"
		}
		fmt.Fprintf(tw, "%d%s\t%s\t%s\t%s\t%s\t%.12s\n", v.Version, mark, v.AppliedAt.Local().Format(time.DateTime), v.Trigger, v.Actor, v.Source, v.Hash)
	}
	_ = tw.Flush()
}
