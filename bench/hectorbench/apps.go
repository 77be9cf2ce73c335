package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/hector-run/hector/internal/llm/llmtest"
)

const (
	adminBenchKey = "bench-admin-key-0123456789"
	appBenchKey   = "bench-app-key-0123456789"
)

// appDocument is one app: an OpenAI-compatible LLM client (the fake LLM)
// and one agent, as a tenant would declare it.
func appDocument(fakeURL string, i int) string {
	return fmt.Sprintf(`llms:
  gpt: {provider: openai, model: bench, api_key: k, base_url: %q, max_retries: 0}
agents:
  helper: {llm: gpt, instruction: "tenant %d", description: "app %d's agent"}
`, fakeURL+"/v1", i, i)
}

// heapInUse is the heap in use after a collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// servingApps counts the apps GET /admin/apps reports serving.
func servingApps(base string) (int, error) {
	r, _ := http.NewRequest("GET", base+"/admin/apps", nil)
	r.Header.Set("Authorization", "Bearer "+adminBenchKey)
	resp, err := client.Do(r)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct{ Apps []struct{ Status string } }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, err
	}
	n := 0
	for _, a := range out.Apps {
		if a.Status == "serving" {
			n++
		}
	}
	return n, nil
}

// appsCost measures (e): the heap each app adds to one process, at 1, 100
// and 1,000 apps written into the apps/ directory of a running server
// (applied live by the one directory watch), how long they take to serve,
// and a turn with an app's agent against one with the main
// configuration's, at 1000 apps, same run.
func appsCost(d time.Duration) error {
	fake := llmtest.NewInstant()
	defer fake.Close()
	cfg := strings.Replace(config(fake.URL, "bench"), "server: {port: 0}", fmt.Sprintf(`server:
  port: 0
  auth:
    api_keys: [{name: admin, key: %s, role: admin}, {name: tenant, key: %s, role: user, app: app-0001}]`, adminBenchKey, appBenchKey), 1)
	in, err := start(cfg)
	if err != nil {
		return err
	}
	defer in.stop()
	dir := filepath.Join(filepath.Dir(in.cfgPath), "apps")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fmt.Println("(e) apps in one process: heap in use after GC, apps written into apps/ of a running server")
	fmt.Printf("    %6s %12s %14s %16s\n", "apps", "heap MiB", "per app KiB", "all serving in")
	base := heapInUse()
	fmt.Printf("    %6d %12.1f %14s %16s\n", 0, float64(base)/(1<<20), "-", "-")
	written := 0
	for _, n := range []int{1, 100, 1000} {
		t0 := time.Now()
		for ; written < n; written++ {
			name := fmt.Sprintf("app-%04d", written+1)
			if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(appDocument(fake.URL, written+1)), 0o600); err != nil {
				return err
			}
		}
		for {
			got, err := servingApps(in.base)
			if err != nil {
				return err
			}
			if got == n {
				break
			}
			if time.Since(t0) > 2*time.Minute {
				return fmt.Errorf("%d of %d apps serving after 2 minutes", got, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
		took := time.Since(t0)
		heap := heapInUse()
		fmt.Printf("    %6d %12.1f %14.1f %16s\n", n, float64(heap)/(1<<20), float64(heap-base)/float64(n)/1024, took.Round(time.Millisecond))
	}
	return appTurns(in.base, d)
}

// appTurns compares a turn with an app's agent (a key bound to the app)
// to a turn with the main configuration's agent, same server, same run.
func appTurns(base string, d time.Duration) error {
	rows := []struct{ name, path, key string }{
		{"main agent", "/v1/agents/a/messages", adminBenchKey},
		{"app agent", "/v1/agents/helper/messages", appBenchKey},
	}
	fmt.Printf("    turns at 1000 apps, %s per run:\n", d)
	fmt.Printf("    %-12s %8s %10s %10s %10s %8s\n", "agent", "clients", "req/s", "p50", "p99", "ratio")
	for _, n := range []int{1, 32} {
		var baseRPS float64
		for i, row := range rows {
			send := func(int, int) (*http.Response, error) {
				r, _ := http.NewRequest("POST", base+row.path, strings.NewReader(`{"message":"hi"}`))
				r.Header.Set("Content-Type", "application/json")
				r.Header.Set("Authorization", "Bearer "+row.key)
				return client.Do(r)
			}
			loadFunc(8, 300*time.Millisecond, nil, send) // warm up
			res := loadFunc(n, d, nil, send)
			if i == 0 {
				baseRPS = res.rps()
			}
			fmt.Printf("    %-12s %8d %10.0f %10s %10s %8.2f\n", row.name, n, res.rps(), ms(pct(res.latencies, 0.5)), ms(pct(res.latencies, 0.99)), res.rps()/baseRPS)
			if res.failed > 0 {
				return fmt.Errorf("%s: %d failed requests", row.name, res.failed)
			}
		}
	}
	return nil
}
