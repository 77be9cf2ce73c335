package config

import (
	"fmt"
	"time"
)

// Limit-like keys whose default applies when they are absent. Written as
// 0, they used to mean that default too, silently: max_body_bytes: 0 read
// as 1 MiB, timeout: 0s as 120s. A written 0 is now an error that names the
// key and its default. Keys where 0 means something of its own keep it,
// and docs/configuration.md says what: server.port (any free port),
// server.rebind_grace (stop at once), server.max_connections_per_client
// (no limit), queue.retention (keep finished tasks), queue.max_retries and
// llms.<name>.max_retries (no retries), llms.<name>.temperature.

// zeroLimit is one such key as written in a document.
type zeroLimit struct {
	path string
	zero bool
	def  string // the default, for the message
}

// zeroLimits fails every limit-like key written as 0. With section empty
// it checks the whole document; otherwise only the named entity, for
// validateOne. Paths are built only for zero values.
func (v *validator) zeroLimits(c *Config, section, name string) {
	check := func(l zeroLimit) {
		if !l.zero {
			return
		}
		if _, written := v.pos(l.path); written {
			v.fail(l.path, "must be > 0; omit it for the default %s", l.def)
		}
	}
	dur := func(d time.Duration) string { return d.String() }
	if section == "" {
		s, q := c.Server, c.Queue
		for _, l := range []zeroLimit{
			{"server.shutdown_timeout", s.ShutdownTimeout == 0, dur(DefaultShutdownTimeout)},
			{"server.max_body_bytes", s.MaxBodyBytes == 0, fmt.Sprint(DefaultMaxBodyBytes)},
			{"server.read_timeout", s.ReadTimeout == 0, dur(DefaultReadTimeout)},
			{"server.idle_timeout", s.IdleTimeout == 0, dur(DefaultIdleTimeout)},
			{"queue.workers", q.Workers == 0, fmt.Sprint(DefaultQueueWorkers)},
			{"queue.initial_delay", q.InitialDelay == 0, dur(DefaultQueueDelay)},
			{"queue.max_delay", q.MaxDelay == 0, dur(DefaultQueueMaxDelay)},
			{"queue.stale_threshold", q.StaleThreshold == 0, dur(DefaultStaleThreshold)},
		} {
			check(l)
		}
	}
	llm := func(n string, l LLM) {
		if l.Timeout == 0 {
			check(zeroLimit{childPath("llms", n) + ".timeout", true, dur(DefaultLLMTimeout)})
		}
		if l.MaxTokens == 0 {
			check(zeroLimit{childPath("llms", n) + ".max_tokens", true, "(4096 for anthropic, the provider's own for openai)"})
		}
	}
	agent := func(n string, a Agent) {
		if a.MaxIterations == 0 {
			check(zeroLimit{childPath("agents", n) + ".max_iterations", true, fmt.Sprint(DefaultMaxIterations)})
		}
	}
	tool := func(n string, t Tool) {
		if t.Timeout == 0 {
			def := dur(DefaultToolTimeout)
			if t.Type == "agent" {
				def = dur(DefaultDelegateTimeout)
			}
			check(zeroLimit{childPath("tools", n) + ".timeout", true, def})
		}
		if t.MaxOutputBytes == 0 {
			check(zeroLimit{childPath("tools", n) + ".max_output_bytes", true, fmt.Sprint(DefaultToolOutputBytes)})
		}
	}
	switch section {
	case "":
		for n, l := range c.LLMs {
			llm(n, l)
		}
		for n, a := range c.Agents {
			agent(n, a)
		}
		for n, t := range c.Tools {
			tool(n, t)
		}
	case "llms":
		if l, ok := c.LLMs[name]; ok {
			llm(name, l)
		}
	case "agents":
		if a, ok := c.Agents[name]; ok {
			agent(name, a)
		}
	case "tools":
		if t, ok := c.Tools[name]; ok {
			tool(name, t)
		}
	}
}
