// Command hectorbench measures Hector on loopback and prints the figures
// described in bench/README.md:
//
//	roundtrip  message round trip with an instant fake LLM, 1 and 32 clients
//	reload     requests during 100 reloads vs the same load without reloads
//	watch      file write-to-applied latency, debounce subtracted
//	auth       what an API key and a JWT add per request, against no auth
//	apps       heap per app at 1, 100 and 1,000 apps; app turns against main ones
//	observe    what metrics and tracing (sampling 1.0 and 0.1) cost per turn
//	openai     /v1/chat/completions against /v1/agents/{name}/messages
//
// Every server it starts (Hector itself and the fake LLM) runs in this
// process on 127.0.0.1 and stops when the suite ends.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hector-run/hector/internal/app"
	"github.com/hector-run/hector/internal/config/source"
	"github.com/hector-run/hector/internal/llm/llmtest"
	"github.com/hector-run/hector/internal/reload"
	"github.com/hector-run/hector/internal/testsvc"
)

func main() {
	testsvc.ServeMCPIfAsked() // the mcp suite runs this program as its stdio MCP server
	suite := flag.String("suite", "all", "roundtrip, reload, watch, auth, apps, observe, openai, mcp or all")
	duration := flag.Duration("duration", 5*time.Second, "length of each timed load run")
	writes := flag.Int("writes", 100, "file writes for the watch suite and reloads for the reload suite")
	flag.Parse()
	run := func(name string, f func() error) {
		if *suite != "all" && *suite != name {
			return
		}
		if err := f(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			os.Exit(1)
		}
	}
	run("roundtrip", func() error { return roundTrip(*duration) })
	run("reload", func() error { return reloadUnderLoad(*duration, *writes) })
	run("watch", func() error { return watchLatency(*writes) })
	run("auth", func() error { return authCost(*duration) })
	run("apps", func() error { return appsCost(*duration) })
	run("observe", func() error { return observeCost(*duration) })
	run("openai", func() error { return openAICost(*duration) })
	run("mcp", func() error { return mcpCost(*duration) })
}

// instance is an in-process Hector on a temporary config and database.
type instance struct {
	base     string
	cfgPath  string
	outcomes chan reload.Outcome
	stop     func()
}

const debounce = 50 * time.Millisecond

func start(cfg string) (*instance, error) {
	dir, err := os.MkdirTemp("", "hectorbench-")
	if err != nil {
		return nil, err
	}
	in := &instance{cfgPath: filepath.Join(dir, "hector.yaml"), outcomes: make(chan reload.Outcome, 10000)}
	if err := os.WriteFile(in.cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- app.Run(ctx, app.Options{ConfigPath: in.cfgPath, Watch: true, Debounce: debounce,
			DatabaseURL: "sqlite://" + filepath.Join(dir, "hector.db"), LogOutput: io.Discard,
			Ready: func(a string) { ready <- a }, OnOutcome: func(o reload.Outcome) { in.outcomes <- o }})
	}()
	select {
	case a := <-ready:
		in.base = "http://" + a
	case err := <-errc:
		cancel()
		return nil, err
	}
	in.stop = func() { cancel(); <-errc; os.RemoveAll(dir) }
	for o := range in.outcomes { // wait for the watcher's first read
		if o.Trigger == "watch" {
			break
		}
	}
	return in, nil
}

func config(fakeURL, instruction string) string {
	return fmt.Sprintf(`llms:
  gpt: {provider: openai, model: bench, api_key: k, base_url: %q, max_retries: 0}
agents:
  a: {llm: gpt, instruction: %q}
server: {port: 0}
logger: {level: error}
`, fakeURL+"/v1", instruction)
}

var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128}}

type loadResult struct {
	latencies []time.Duration
	failed    int64
	elapsed   time.Duration
}

// load sends messages from n clients until stop is closed (or for d when
// stop is nil), each to a new session the server makes.
func load(base string, n int, d time.Duration, stop <-chan struct{}) loadResult {
	return loadSessions(base, n, d, stop, false)
}

// loadSessions is load; with named, each message names a new session of
// the client's own (as a client continuing a conversation names its
// session), so the server takes the session's lease for the turn.
func loadSessions(base string, n int, d time.Duration, stop <-chan struct{}, named bool) loadResult {
	begin := time.Now()
	return loadFunc(n, d, stop, func(c, i int) (*http.Response, error) {
		body := `{"message":"hi"}`
		if named {
			body = fmt.Sprintf(`{"message":"hi","session_id":"bench-%d-%d-%d"}`, begin.UnixNano(), c, i)
		}
		return client.Post(base+"/v1/agents/a/messages", "application/json", strings.NewReader(body))
	})
}

// loadFunc runs send(client, i) from n clients until stop is closed (or
// for d when stop is nil), counting anything but 200 as failed.
func loadFunc(n int, d time.Duration, stop <-chan struct{}, send func(c, i int) (*http.Response, error)) loadResult {
	var mu sync.Mutex
	var res loadResult
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	running := func() bool {
		if stop == nil {
			return time.Now().Before(deadline)
		}
		select {
		case <-stop:
			return false
		default:
			return true
		}
	}
	begin := time.Now()
	for c := 0; c < n; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var failed int64
			for i := 0; running(); i++ {
				t0 := time.Now()
				resp, err := send(c, i)
				if err != nil {
					failed++
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed++
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			res.latencies, res.failed = append(res.latencies, mine...), res.failed+failed
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(begin)
	return res
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*p)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func (r loadResult) rps() float64 { return float64(len(r.latencies)) / r.elapsed.Seconds() }

func roundTrip(d time.Duration) error {
	fake := llmtest.NewInstant()
	defer fake.Close()
	in, err := start(config(fake.URL, "bench"))
	if err != nil {
		return err
	}
	defer in.stop()
	fmt.Printf("(a) message round trip, instant fake OpenAI-compatible LLM via the real SDK, SQLite, %s per run\n", d)
	fmt.Printf("    %-8s %10s %10s %10s %8s  %s\n", "clients", "req/s", "p50", "p99", "failed", "sessions")
	load(in.base, 8, time.Second, nil) // warm up connections and the database
	for _, row := range []struct {
		n     int
		named bool
	}{{1, false}, {32, false}, {1, true}, {32, true}} {
		r := loadSessions(in.base, row.n, d, nil, row.named)
		kind := "made by the server"
		if row.named {
			kind = "named by the client (session lease taken)"
		}
		fmt.Printf("    %-8d %10.0f %10s %10s %8d  %s\n", row.n, r.rps(), ms(pct(r.latencies, 0.5)), ms(pct(r.latencies, 0.99)), r.failed, kind)
	}
	return nil
}

func reloadUnderLoad(d time.Duration, reloads int) error {
	fake := llmtest.NewInstant()
	defer fake.Close()
	in, err := start(config(fake.URL, "v0"))
	if err != nil {
		return err
	}
	defer in.stop()
	const clients = 32
	load(in.base, 8, time.Second, nil)
	base := load(in.base, clients, d, nil)

	stop := make(chan struct{})
	resc := make(chan loadResult, 1)
	go func() { resc <- load(in.base, clients, 0, stop) }()
	src := &source.File{Path: in.cfgPath}
	applied := 0
	for i := 1; i <= reloads; i++ {
		if err := src.Write([]byte(config(fake.URL, fmt.Sprintf("v%d", i)))); err != nil {
			return err
		}
		for o := range in.outcomes { // wait for this write to apply before the next
			if o.Result == reload.Rejected {
				return fmt.Errorf("reload rejected: %v", o.Errors)
			}
			if o.Result == reload.Applied {
				applied++
				break
			}
		}
	}
	close(stop)
	with := <-resc
	fmt.Printf("(b) reload under load: %d clients; %d reloads applied one after another (%.1f reloads/s)\n", clients, applied, float64(applied)/with.elapsed.Seconds())
	fmt.Printf("    %-16s %10s %10s %10s %10s\n", "", "req/s", "p50", "p99", "failed")
	fmt.Printf("    %-16s %10.0f %10s %10s %10d\n", "without reloads", base.rps(), ms(pct(base.latencies, 0.5)), ms(pct(base.latencies, 0.99)), base.failed)
	fmt.Printf("    %-16s %10.0f %10s %10s %10d\n", "during reloads", with.rps(), ms(pct(with.latencies, 0.5)), ms(pct(with.latencies, 0.99)), with.failed)
	fmt.Printf("    ratio (during/without): req/s %.2f, p99 %.2f\n", with.rps()/base.rps(),
		float64(pct(with.latencies, 0.99))/float64(pct(base.latencies, 0.99)))
	if with.failed+base.failed > 0 {
		return fmt.Errorf("%d failed requests", with.failed+base.failed)
	}
	return nil
}

func watchLatency(writes int) error {
	in, err := start("llms: {e: {provider: echo}}\nagents: {a: {llm: e, instruction: v0}}\nserver: {port: 0}\nlogger: {level: error}\n")
	if err != nil {
		return err
	}
	defer in.stop()
	src := &source.File{Path: in.cfgPath}
	var lat []time.Duration
	for i := 1; i <= writes; i++ {
		t0 := time.Now()
		if err := src.Write([]byte(fmt.Sprintf("llms: {e: {provider: echo}}\nagents: {a: {llm: e, instruction: v%d}}\nserver: {port: 0}\nlogger: {level: error}\n", i))); err != nil {
			return err
		}
		for o := range in.outcomes {
			if o.Result == reload.Applied {
				lat = append(lat, time.Since(t0)-debounce)
				break
			}
		}
	}
	fmt.Printf("(c) file write-to-applied latency over %d atomic-rename writes, debounce (%s) subtracted\n", writes, debounce)
	fmt.Printf("    p50 %s   p99 %s   max %s\n", ms(pct(lat, 0.5)), ms(pct(lat, 0.99)), ms(pct(lat, 1)))
	return nil
}
