package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/reload"
	"github.com/hector-run/hector/internal/server"
)

// generation i of a config: agent a's instruction names i, and agent
// "extra-i" exists only in generation i.
func generation(i int) string {
	return fmt.Sprintf("llms: {e: {provider: echo}}\nagents:\n  a: {llm: e, instruction: gen-%d}\n  extra-%d: {llm: e}\nserver: {port: 0}\n", i, i)
}

// TestRequestsDuringManyReloads sends requests continuously while the config
// is rewritten many times. Every response must succeed and be consistent with
// exactly one snapshot: the instruction in the reply and the agent list must
// both belong to the generation whose version the response reports.
func TestRequestsDuringManyReloads(t *testing.T) {
	const writes = 60
	h := newHector(t, generation(0))
	genOfHash := map[string]int{config.Hash([]byte(generation(0))): 0}
	for i := 1; i <= writes; i++ {
		genOfHash[config.Hash([]byte(generation(i)))] = i
	}

	var mu sync.Mutex
	hashOfVersion := map[int64]string{1: config.Hash([]byte(generation(0)))}
	outcomesDone := make(chan struct{})
	stopOutcomes := make(chan struct{})
	go func() {
		defer close(outcomesDone)
		for {
			select {
			case o := <-h.outcomes:
				if o.Result == reload.Rejected {
					t.Errorf("rejected: %+v", o)
				}
				if o.Result == reload.Applied {
					mu.Lock()
					hashOfVersion[o.Version] = o.Hash
					mu.Unlock()
				}
			case <-stopOutcomes:
				return
			}
		}
	}()

	type result struct {
		kind    string // "message" or "agents"
		status  int
		version int64
		text    string // instruction generation or the extra agent's name
		err     error
	}
	results := make(chan result, 100000)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if c%4 == 3 { // some clients list agents instead
					resp, err := client.Get(h.base + "/v1/agents")
					if err != nil {
						results <- result{err: err}
						continue
					}
					var body struct {
						Agents        []server.AgentInfo `json:"agents"`
						ConfigVersion int64              `json:"config_version"`
					}
					_ = json.NewDecoder(resp.Body).Decode(&body)
					resp.Body.Close()
					var names []string
					for _, a := range body.Agents {
						names = append(names, a.Name)
					}
					results <- result{kind: "agents", status: resp.StatusCode, version: body.ConfigVersion, text: strings.Join(names, ",")}
					continue
				}
				resp, err := client.Post(h.base+"/v1/agents/a/messages", "application/json",
					strings.NewReader(fmt.Sprintf(`{"message":"ping","session_id":"c%d-%d"}`, c, n)))
				if err != nil {
					results <- result{err: err}
					continue
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var body server.MessageResponse
				_ = json.Unmarshal(raw, &body)
				results <- result{kind: "message", status: resp.StatusCode, version: body.ConfigVersion, text: body.Reply}
			}
		}(c)
	}
	for i := 1; i <= writes; i++ {
		h.write(generation(i))
		time.Sleep(25 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // let the last write apply under load
	close(stop)
	wg.Wait()
	close(stopOutcomes)
	<-outcomesDone
	close(results)

	n, versions := 0, map[int64]bool{}
	for r := range results {
		n++
		if r.err != nil || r.status != 200 {
			t.Fatalf("failed request: %+v", r)
		}
		mu.Lock()
		hash, ok := hashOfVersion[r.version]
		mu.Unlock()
		if !ok {
			t.Fatalf("response reports unknown version %d", r.version)
		}
		gen := genOfHash[hash]
		versions[r.version] = true
		switch r.kind {
		case "message":
			if want := fmt.Sprintf("[gen-%d] ping", gen); r.text != want {
				t.Fatalf("version %d is generation %d, but the reply is %q", r.version, gen, r.text)
			}
		case "agents":
			if want := fmt.Sprintf("a,extra-%d", gen); r.text != want {
				t.Fatalf("version %d is generation %d, but the agents are %q", r.version, gen, r.text)
			}
		}
	}
	if n < 200 || len(versions) < 10 {
		t.Fatalf("too little overlap: %d requests over %d versions", n, len(versions))
	}
	t.Logf("%d requests, all 2xx and consistent, across %d config versions (%d applied)", n, len(versions), len(hashOfVersion))
}
