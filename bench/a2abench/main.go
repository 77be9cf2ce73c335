// Command a2abench compares a round trip over A2A with one over the REST
// messages endpoint, in the same run against the same server
// (bench/README.md).
//
// A Hector server runs in this process (app.Run, as `hector serve`
// does) on loopback, with an instant fake OpenAI-compatible LLM that the
// real SDK client calls over HTTP. The REST client POSTs
// /v1/agents/a/messages (a synchronous turn, stored as a session). The A2A
// client is the official a2a-go v2 client calling SendMessage over
// JSON-RPC 1.0 and HTTP+JSON 1.0: each creates a durable task, which a
// queue worker claims, checkpoints and completes, and the call returns
// when the task is completed.
package main

import (
	"bytes"
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

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2aclient"
	"github.com/a2aproject/a2a-go/v2/a2aclient/agentcard"

	"github.com/hector-run/hector/internal/app"
	"github.com/hector-run/hector/internal/llm/llmtest"
	"github.com/hector-run/hector/internal/testsvc"
)

// measure runs n calls from c concurrent clients and returns each call's
// duration and the wall time.
func measure(n, c int, call func() error) ([]time.Duration, time.Duration, error) {
	durs := make([]time.Duration, n)
	var next int
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				t := time.Now()
				if err := call(); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				durs[i] = time.Since(t)
			}
		}()
	}
	wg.Wait()
	sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
	return durs, time.Since(start), firstErr
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func main() {
	n := flag.Int("calls", 1000, "calls per measurement")
	only := flag.String("databases", "sqlite,postgres", "comma-separated: sqlite, postgres")
	flag.Parse()
	t := &testsvc.Program{}
	defer t.Close()
	llm := llmtest.NewInstant()
	defer llm.Close()
	fmt.Printf("round trips, instant fake LLM (real OpenAI SDK over loopback), %d calls per row, 4 queue workers\n", *n)
	fmt.Printf("%-9s %-22s %8s %9s %9s %9s %10s\n", "database", "call", "clients", "p50 ms", "p99 ms", "calls/s", "p50/REST")
	for _, db := range strings.Split(*only, ",") {
		dir := t.TempDir()
		url := "sqlite://" + filepath.Join(dir, "bench.db")
		if db == "postgres" {
			url = testsvc.Postgres(t)
		}
		cfg := filepath.Join(dir, "hector.yaml")
		doc := fmt.Sprintf("llms: {m: {provider: openai, model: m, api_key: k, base_url: %s/v1, max_retries: 0}}\n"+
			"agents: {a: {llm: m}}\nserver: {port: 0}\nqueue: {workers: 4}\n", llm.URL)
		if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		ready := make(chan string, 1)
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- app.Run(ctx, app.Options{ConfigPath: cfg, DatabaseURL: url, LogOutput: io.Discard,
				Env: func(string) (string, bool) { return "", false }, Ready: func(a string) { ready <- a }})
		}()
		var base string
		select {
		case a := <-ready:
			base = "http://" + a
		case err := <-done:
			t.Fatal(err)
		}
		httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		rest := func() error {
			resp, err := httpc.Post(base+"/v1/agents/a/messages", "application/json", bytes.NewReader([]byte(`{"message":"hi"}`)))
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != 200 {
				return fmt.Errorf("REST: %s", resp.Status)
			}
			return nil
		}
		card, err := (&agentcard.Resolver{Client: httpc}).Resolve(ctx, base+"/a2a/a")
		if err != nil {
			t.Fatal(err)
		}
		a2aCall := func(binding a2a.TransportProtocol) func() error {
			var iface *a2a.AgentInterface
			for _, i := range card.SupportedInterfaces {
				if i.ProtocolBinding == binding && i.ProtocolVersion == a2a.Version {
					iface = i
				}
			}
			c, err := a2aclient.NewFromEndpoints(ctx, []*a2a.AgentInterface{iface},
				a2aclient.WithJSONRPCTransport(httpc), a2aclient.WithRESTTransport(httpc))
			if err != nil {
				t.Fatal(err)
			}
			return func() error {
				res, err := c.SendMessage(ctx, &a2a.SendMessageRequest{Message: a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("hi"))})
				if err != nil {
					return err
				}
				if task, ok := res.(*a2a.Task); !ok || task.Status.State != a2a.TaskStateCompleted {
					return fmt.Errorf("A2A: %#v", res)
				}
				return nil
			}
		}
		calls := []struct {
			name string
			call func() error
		}{
			{"REST /messages", rest},
			{"A2A JSON-RPC SendMessage", a2aCall(a2a.TransportProtocolJSONRPC)},
			{"A2A HTTP+JSON SendMessage", a2aCall(a2a.TransportProtocolHTTPJSON)},
		}
		for _, clients := range []int{1, 8} {
			var restP50 time.Duration
			for _, c := range calls {
				_, _, _ = measure(min(*n/10, 50), clients, c.call) // warm up
				durs, wall, err := measure(*n, clients, c.call)
				if err != nil {
					t.Fatal(err)
				}
				p50, p99 := durs[len(durs)/2], durs[len(durs)*99/100]
				if restP50 == 0 {
					restP50 = p50
				}
				fmt.Printf("%-9s %-26s %4d %9.2f %9.2f %9.0f %9.1fx\n", db, c.name, clients, ms(p50), ms(p99),
					float64(len(durs))/wall.Seconds(), float64(p50)/float64(restP50))
			}
		}
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
