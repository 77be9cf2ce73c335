package main

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hector-run/hector/internal/llm/llmtest"
)

// openAICost compares a turn through the OpenAI-compatible API with the
// same turn through the REST API, in the same run on the same server: POST
// /v1/chat/completions (one user message, a new session each) against
// POST /v1/agents/a/messages (a new session each), plain and streamed.
func openAICost(d time.Duration) error {
	fake := llmtest.NewInstant()
	defer fake.Close()
	in, err := start(config(fake.URL, "bench"))
	if err != nil {
		return err
	}
	defer in.stop()
	rows := []struct{ name, path, body, accept string }{
		{"REST", "/v1/agents/a/messages", `{"message":"hi"}`, ""},
		{"chat", "/v1/chat/completions", `{"model":"a","messages":[{"role":"user","content":"hi"}]}`, ""},
		{"REST SSE", "/v1/agents/a/messages", `{"message":"hi"}`, "text/event-stream"},
		{"chat stream", "/v1/chat/completions", `{"model":"a","stream":true,"messages":[{"role":"user","content":"hi"}]}`, ""},
	}
	fmt.Printf("(g) the OpenAI-compatible API against the REST API, same server and run, %s per run\n", d)
	fmt.Printf("    %-12s %8s %10s %10s %10s %8s\n", "route", "clients", "req/s", "p50", "p99", "ratio")
	for _, n := range []int{1, 32} {
		var base float64
		for i, row := range rows {
			send := func(int, int) (*http.Response, error) {
				r, _ := http.NewRequest("POST", in.base+row.path, strings.NewReader(row.body))
				r.Header.Set("Content-Type", "application/json")
				if row.accept != "" {
					r.Header.Set("Accept", row.accept)
				}
				return client.Do(r)
			}
			loadFunc(8, 300*time.Millisecond, nil, send) // warm up
			res := loadFunc(n, d, nil, send)
			if i%2 == 0 {
				base = res.rps() // each OpenAI row against the REST row above it
			}
			fmt.Printf("    %-12s %8d %10.0f %10s %10s %8.2f\n", row.name, n, res.rps(), ms(pct(res.latencies, 0.5)), ms(pct(res.latencies, 0.99)), res.rps()/base)
			if res.failed > 0 {
				return fmt.Errorf("%s: %d failed requests", row.name, res.failed)
			}
		}
	}
	return nil
}
