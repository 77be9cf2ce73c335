// Command reloadcost measures what one reload costs, stage by stage, for
// configurations of 10, 1,000 and 10,000 agents: a full change (every agent
// and every LLM changed, so everything is rebuilt) against a one-agent
// change, and the heap held per configured agent. See bench/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"

	"github.com/hector-run/hector/internal/config/source"
	"github.com/hector-run/hector/internal/reload"
	"github.com/hector-run/hector/internal/snapshot"
)

// document returns a configuration of n agents sharing n/10 LLMs; gen
// changes every agent and LLM, one changes only agent a0.
func document(n, gen, one int) []byte {
	var b strings.Builder
	b.WriteString("llms:\n")
	for i := 0; i <= n/10; i++ {
		fmt.Fprintf(&b, "  l%d: {provider: openai, model: m-%d, api_key: \"${BENCH_KEY:-k}\", base_url: \"http://127.0.0.1:9/v1\"}\n", i, gen)
	}
	b.WriteString("agents:\n")
	for i := 0; i < n; i++ {
		v := gen
		if i == 0 {
			v = gen*1000 + one
		}
		fmt.Fprintf(&b, "  a%d:\n    llm: l%d\n    description: agent number %d\n    instruction: You are agent %d, revision %d. Be brief.\n", i, i/10, i, i, v)
	}
	b.WriteString("server: {port: 0}\n")
	return []byte(b.String())
}

var stages = []string{"parse", "validate", "plan", "build", "prepare", "commit"}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func main() {
	rounds := flag.Int("rounds", 5, "reloads measured per case (the median is shown)")
	sizes := flag.String("agents", "10,1000,10000", "configuration sizes")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the one-agent reloads to this file")
	flag.Parse()
	fmt.Printf("reload cost, median of %d reloads; stage times in ms\n", *rounds)
	fmt.Printf("%-7s %-10s", "agents", "change")
	for _, s := range stages {
		fmt.Printf(" %9s", s)
	}
	fmt.Printf(" %9s %9s\n", "total", "full/one")
	for _, f := range strings.Split(*sizes, ",") {
		var n int
		fmt.Sscan(f, &n)
		if err := measure(n, *rounds); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

var cpuProfile string

func measure(n, rounds int) error {
	dir, err := os.MkdirTemp("", "reloadcost-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "hector.yaml")
	src := &source.File{Path: path}
	if err := src.Write(document(n, 0, 0)); err != nil {
		return err
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rt := &snapshot.Runtime{}
	rec := &reload.Reconciler{Runtime: rt, Source: src, Env: os.LookupEnv, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		BuildOptions: snapshot.Options{DatabaseURL: "sqlite://" + filepath.Join(dir, "h.db")}}
	if _, err := rec.Start(context.Background()); err != nil {
		return err
	}
	defer rt.Close()
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rec.RunTriggersOnly(ctx)

	gen, one := 0, 0
	run := func(next func() []byte) (map[string]float64, error) {
		per := map[string][]float64{}
		for r := 0; r < rounds; r++ {
			if err := src.Write(next()); err != nil {
				return nil, err
			}
			o, err := rec.Reload(ctx, "bench", "")
			if err != nil || o.Result != reload.Applied {
				return nil, fmt.Errorf("reload: %v %+v", err, o.Errors)
			}
			for _, s := range stages {
				per[s] = append(per[s], o.Stages[s])
			}
			per["total"] = append(per["total"], o.ElapsedMS)
		}
		out := map[string]float64{}
		for k, v := range per {
			out[k] = median(v)
		}
		return out, nil
	}
	full, err := run(func() []byte { gen++; return document(n, gen, one) })
	if err != nil {
		return err
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	single, err := run(func() []byte { one++; return document(n, gen, one) })
	if cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return err
	}
	for _, row := range []struct {
		name string
		m    map[string]float64
	}{{"full", full}, {"one agent", single}} {
		fmt.Printf("%-7d %-10s", n, row.name)
		for _, s := range stages {
			fmt.Printf(" %9.2f", row.m[s])
		}
		fmt.Printf(" %9.2f", row.m["total"])
		if row.name == "one agent" {
			fmt.Printf(" %8.1fx", full["total"]/single["total"])
		}
		fmt.Println()
	}
	fmt.Printf("%-7d heap held by the applied configuration: %.1f KiB per agent\n", n,
		float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(n)/1024)
	return nil
}
