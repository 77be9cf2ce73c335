package config

import (
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// entityNamePattern is the rule for names of llms, agents and tools, as the
// JSON Schema states it; validEntityName checks it without a regexp, since it
// runs for every entity of every reload.
const entityNamePattern = `^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`

func validEntityName(s string) bool {
	if len(s) == 0 || len(s) > 64 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// httpURL parses s as an absolute http or https URL with a host. ok is
// false for anything else, and u is then nil.
func httpURL(s string) (u *url.URL, ok bool) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, false
	}
	return u, true
}

func reflectValue(c *Config) reflect.Value { return reflect.ValueOf(c).Elem() }

type validator struct {
	pos    posLookup
	errs   Errors
	agents map[string]Agent // for references to agents; nil: not checked
}

// flag is a field that is set where it must not be.
type flag struct {
	field string
	set   bool
}

// at returns the position of path, or of its nearest written ancestor.
func (v *validator) at(path string) Pos {
	for p := path; p != ""; p = parentPath(p) {
		if pos, ok := v.pos(p); ok {
			return pos
		}
	}
	// Nothing on the path is written (a required section is missing): the
	// error is about the document, which starts at 1:1.
	return Pos{Line: 1, Col: 1}
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func (v *validator) fail(path, format string, args ...any) {
	pos := v.at(path)
	v.errs = append(v.errs, Error{Path: path, Line: pos.Line, Column: pos.Col, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) oneOf(path, val string, allowed ...string) {
	if val == "" {
		return
	}
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	msg := fmt.Sprintf("must be one of %s, got %q", strings.Join(allowed, ", "), val)
	if s := suggest(val, allowed); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	v.fail(path, "%s", msg)
}

// ref checks that name is in set, whose sorted keys are known, suggesting
// the closest key.
func (v *validator) ref(path, kind, name string, set map[string]bool, known []string) {
	if set[name] {
		return
	}
	msg := fmt.Sprintf("unknown %s %q", kind, name)
	if s := suggest(name, known); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	} else if len(known) > 0 {
		msg += fmt.Sprintf(" (defined: %s)", strings.Join(known, ", "))
	} else {
		msg += fmt.Sprintf(" (no %ss are defined)", kind)
	}
	v.fail(path, "%s", msg)
}

func keySet[T any](m map[string]T) map[string]bool {
	set := make(map[string]bool, len(m))
	for k := range m {
		set[k] = true
	}
	return set
}

func mapKeys[T any](m map[string]T) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

func sortedKeys[T any](m map[string]T) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// validate checks semantic rules on a decoded (not yet defaulted) config.
// A valid config is checked in map order, which is cheapest; when there are
// errors the check is repeated in name order, so their order is stable.
func validate(c *Config, pos posLookup) Errors {
	if errs := validateIn(c, pos, false); errs == nil {
		return nil
	}
	return validateIn(c, pos, true)
}

func validateIn(c *Config, pos posLookup, sorted bool) Errors {
	keys := func(m []string) []string {
		if sorted {
			sort.Strings(m)
		}
		return m
	}
	v := &validator{pos: pos, agents: c.Agents}
	if c.Version != "" && c.Version != "1" {
		v.fail("version", "unsupported version %q: 1 is the current schema; the original Hector's \"1.0\" and \"2\" are read as 1", c.Version)
	}
	if c.Pointer != nil {
		v.fail("config", "names the backend that holds the configuration: only a file given to hector serve --config may say that, and it then holds nothing but config, version and name")
	}
	if len(c.Agents) == 0 {
		v.fail("agents", "at least one agent is required")
	}
	llmNames, toolNames := sortedKeys(c.LLMs), sortedKeys(c.Tools) // for messages; few
	llmSet, toolSet := keySet(c.LLMs), keySet(c.Tools)
	for _, name := range keys(mapKeys(c.LLMs)) {
		v.llm(childPath("llms", name), name, c.LLMs[name])
	}
	for _, name := range keys(mapKeys(c.Tools)) {
		v.tool(childPath("tools", name), name, c.Tools[name])
	}
	refs := agentRefs{llmSet: llmSet, toolSet: toolSet, llmNames: llmNames, toolNames: toolNames, tools: c.Tools, agents: c.Agents}
	agent := func(name string, a Agent) { v.agent(name, a, refs) }
	if sorted {
		for _, name := range keys(mapKeys(c.Agents)) {
			agent(name, c.Agents[name])
		}
	} else {
		for name, a := range c.Agents {
			agent(name, a)
		}
	}
	v.server(c.Server)
	if u := c.Database.URL; u != "" && !strings.HasPrefix(u, "sqlite://") && !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		v.fail("database.url", "unsupported database URL %q: use sqlite://PATH or postgres://USER@HOST:PORT/DB", RedactURL(u))
	} else if u == "sqlite://" {
		v.fail("database.url", "sqlite:// needs a path, like sqlite://.hector/hector.db")
	}
	v.queue(c.Queue)
	if u := c.A2A.PublicURL; u != "" {
		if pu, ok := httpURL(u); !ok || pu.RawQuery != "" || pu.Fragment != "" {
			v.fail("a2a.public_url", "must be an http or https base URL without query, like https://agents.example.com, got %q", RedactURL(u))
		}
	}
	v.tracing(c.Observability.Tracing)
	v.otlpMetrics(c.Observability.Metrics.OTLP)
	v.oneOf("logger.level", c.Logger.Level, "debug", "info", "warn", "error")
	v.oneOf("logger.format", c.Logger.Format, "text", "json")
	v.zeroLimits(c, "", "") // zerolimits.go
	return v.errs
}

// queue checks the queue section; a zero is the default, not a value
// (queuelimits.go holds the limits the serve command's flags share).
func (v *validator) queue(q Queue) {
	check := func(path string, err error) {
		if err != nil {
			v.fail(path, "%v", err)
		}
	}
	if q.Workers != 0 {
		check("queue.workers", CheckQueueWorkers(q.Workers))
	}
	if r := q.MaxRetries; r != nil {
		check("queue.max_retries", CheckQueueRetries(*r))
	}
	check("queue.initial_delay", CheckQueueDelay(q.InitialDelay.D()))
	check("queue.max_delay", CheckQueueDelay(q.MaxDelay.D()))
	check("queue.stale_threshold", CheckQueueDelay(q.StaleThreshold.D()))
	if r := q.Retention; r != 0 && time.Duration(r) < time.Second {
		v.fail("queue.retention", "must be 0 (keep finished tasks) or at least 1s, got %s", time.Duration(r))
	}
	if st := q.StaleThreshold; st != 0 {
		check("queue.stale_threshold", CheckStaleThreshold(st.D()))
	}
}

// otlpMetrics checks observability.metrics.otlp.
func (v *validator) otlpMetrics(m OTLPMetrics) {
	if m.Protocol != "" {
		v.oneOf("observability.metrics.otlp.protocol", m.Protocol, "grpc", "http")
	}
	if i := m.Interval.D(); i != 0 && i < time.Second {
		v.fail("observability.metrics.otlp.interval", "must be at least 1s, got %s", i)
	}
	if u := m.Endpoint; strings.Contains(u, "://") {
		if _, ok := httpURL(u); !ok {
			v.fail("observability.metrics.otlp.endpoint", "must be host:port or an http or https URL, got %q", RedactURL(u))
		}
	}
}

// tracing checks observability.tracing.
func (v *validator) tracing(t Tracing) {
	if t.Exporter != "" {
		v.oneOf("observability.tracing.exporter", t.Exporter, "otlp", "stdout")
	}
	if t.Protocol != "" {
		v.oneOf("observability.tracing.protocol", t.Protocol, "grpc", "http")
	}
	if r := t.SamplingRate; r != nil && (*r < 0 || *r > 1) {
		v.fail("observability.tracing.sampling_rate", "must be from 0 to 1, got %v", *r)
	}
	if u := t.Endpoint; strings.Contains(u, "://") {
		if _, ok := httpURL(u); !ok {
			v.fail("observability.tracing.endpoint", "must be host:port or an http or https URL, got %q", RedactURL(u))
		}
	}
}

func (v *validator) name(path, name string) {
	if !validEntityName(name) {
		v.fail(path, "invalid name %q: use letters, digits, '_', '-' or '.', starting with a letter or digit, at most 64 characters", name)
	}
}

// agentRefs are what an agent's references are checked against.
type agentRefs struct {
	llmSet, toolSet     map[string]bool
	llmNames, toolNames []string // for messages
	tools               map[string]Tool
	agents              map[string]Agent
}

// agent checks one agent. Agents are most of a large document: the common
// case, a valid agent, allocates nothing; paths are built only for errors.
func (v *validator) agent(name string, a Agent, refs agentRefs) {
	p := func() string { return childPath("agents", name) }
	if !validEntityName(name) {
		v.name(p(), name)
	}
	switch a.Type {
	case "", "local":
		if a.LLM == "" {
			v.fail(p()+".llm", "required: the name of an LLM in llms")
		} else if !refs.llmSet[a.LLM] {
			v.ref(p()+".llm", "llm", a.LLM, refs.llmSet, refs.llmNames)
		}
		if a.URL != "" {
			v.fail(p()+".url", "only valid for agents of type a2a")
		}
		if len(a.Headers) > 0 {
			v.fail(p()+".headers", "only valid for agents of type a2a")
		}
	case "a2a":
		if a.URL == "" {
			v.fail(p()+".url", "required for agents of type a2a: the remote agent's A2A endpoint or agent card URL")
		} else if _, ok := httpURL(a.URL); !ok {
			v.fail(p()+".url", "must be an http or https URL, got %q", RedactURL(a.URL))
		}
		for _, f := range []flag{{"llm", a.LLM != ""}, {"instruction", a.Instruction != ""}, {"tools", len(a.Tools) > 0}} {
			if f.set {
				v.fail(p()+"."+f.field, "not valid for agents of type a2a: the remote agent has its own")
			}
		}
	default:
		v.oneOf(p()+".type", a.Type, "local", "a2a")
	}
	for i, t := range a.Tools {
		if slices.Contains(a.Tools[:i], t) {
			v.fail(fmt.Sprintf("%s.tools[%d]", p(), i), "tool %q is listed twice", t)
		}
		if !refs.toolSet[t] {
			v.ref(fmt.Sprintf("%s.tools[%d]", p(), i), "tool", t, refs.toolSet, refs.toolNames)
		} else if tc := refs.tools[t]; tc.Type == "agent" && tc.Agent != "" && !slices.Contains(a.AllowedDelegates, tc.Agent) {
			v.fail(fmt.Sprintf("%s.tools[%d]", p(), i), "tool %q delegates to agent %q, which is not in this agent's allowed_delegates", t, tc.Agent)
		}
	}
	for i, d := range a.AllowedDelegates {
		if _, ok := refs.agents[d]; !ok {
			v.fail(fmt.Sprintf("%s.allowed_delegates[%d]", p(), i), "unknown agent %q", d)
		} else if d == name {
			v.fail(fmt.Sprintf("%s.allowed_delegates[%d]", p(), i), "an agent cannot delegate to itself")
		}
	}
	if a.MaxIterations < 0 || a.MaxIterations > 1000 {
		v.fail(p()+".max_iterations", "must be between 1 and 1000, got %d", a.MaxIterations)
	}
}

// validateOne checks the one entity that differs from a valid document:
// every other rule held for that document and still does, since nothing
// else changed and the entity kept its name (so references to it hold).
// It reports whether the entity passed; on false the caller validates the
// whole document, for Parse's exact errors.
func validateOne(c *Config, pos posLookup, section, name string) bool {
	v := &validator{pos: pos}
	switch section {
	case "agents":
		a, ok := c.Agents[name]
		if !ok {
			return false
		}
		v.agent(name, a, agentRefs{llmSet: keySet(c.LLMs), toolSet: keySet(c.Tools), tools: c.Tools, agents: c.Agents})
	case "llms":
		l, ok := c.LLMs[name]
		if !ok {
			return false
		}
		v.llm(childPath("llms", name), name, l)
	case "tools":
		t, ok := c.Tools[name]
		if !ok || t.Type == "agent" { // its agents' allowed_delegates are checked by the full pass
			return false
		}
		v.tool(childPath("tools", name), name, t)
	default:
		return false
	}
	v.zeroLimits(c, section, name) // zerolimits.go
	return v.errs == nil
}

func (v *validator) llm(p, name string, l LLM) {
	v.name(p, name)
	switch l.Provider {
	case "":
		v.fail(p+".provider", "required: one of openai, anthropic, echo")
	case "openai", "anthropic":
		if l.Model == "" {
			v.fail(p+".model", "required for provider %s", l.Provider)
		}
		if l.APIKey == "" && l.BaseURL == "" {
			v.fail(p+".api_key", "required for provider %s unless base_url points at a server that needs none", l.Provider)
		}
	default:
		v.oneOf(p+".provider", l.Provider, "openai", "anthropic", "echo")
	}
	if l.BaseURL != "" {
		if _, ok := httpURL(l.BaseURL); !ok {
			v.fail(p+".base_url", "must be an http or https URL, got %q", RedactURL(l.BaseURL))
		}
	}
	if t := l.Temperature; t != nil && (*t < 0 || *t > 2) {
		v.fail(p+".temperature", "must be between 0 and 2, got %g", *t)
	}
	if l.MaxTokens < 0 {
		v.fail(p+".max_tokens", "must not be negative")
	}
	if r := l.MaxRetries; r != nil && (*r < 0 || *r > 10) {
		v.fail(p+".max_retries", "must be between 0 and 10, got %d", *r)
	}
}

func (v *validator) tool(p, name string, t Tool) {
	v.name(p, name)
	if t.ApprovalPrompt != "" && !t.RequireApproval.Any() {
		v.fail(p+".approval_prompt", "only valid with require_approval")
	}
	switch t.Type {
	case "command":
		v.commandTool(p, t)
		for i, c := range t.AllowedCommands {
			if strings.TrimSpace(c) == "" || strings.ContainsAny(c, " \t") {
				v.fail(fmt.Sprintf("%s.allowed_commands[%d]", p, i), "must be a program name or path without spaces, got %q", c)
			}
		}
		v.toolEnv(p, t)
	case "http":
		if t.URL == "" {
			v.fail(p+".url", "required for tools of type http")
		} else {
			probe := urlParam.ReplaceAllString(t.URL, "x")
			if _, ok := httpURL(probe); !ok {
				v.fail(p+".url", "must be an http or https URL template, got %q", RedactURL(t.URL))
			} else if ph := urlParam.FindString(URLOrigin(t.URL)); ph != "" {
				v.fail(p+".url", "placeholder %s is in the scheme, host or port: write them out, so that the model cannot choose where the request goes", ph)
			}
		}
		v.oneOf(p+".method", t.Method, "GET", "POST", "PUT", "PATCH", "DELETE")
		v.oneOf(p+".follow_redirects", t.FollowRedirects, "same_origin", "any", "none")
	case "agent":
		if t.Agent == "" {
			v.fail(p+".agent", "required for tools of type agent: the agent to delegate to")
		} else if v.agents != nil {
			if _, ok := v.agents[t.Agent]; !ok {
				v.fail(p+".agent", "unknown agent %q", t.Agent)
			}
		}
	case "mcp":
		v.mcpTool(p, t)
	case "":
		v.fail(p+".type", "required: command, http, agent or mcp")
		return
	default:
		v.oneOf(p+".type", t.Type, "command", "http", "agent", "mcp")
		return
	}
	for _, f := range toolFields(t) {
		if f.set && !strings.Contains(f.types, t.Type) {
			v.fail(p+"."+f.field, "not valid for tools of type %s (only valid for tools of type %s)", t.Type, strings.ReplaceAll(f.types, " ", " or "))
		}
	}
	if len(t.RequireApproval) > 0 && !t.RequireApproval.All() && t.Type != "mcp" {
		v.fail(p+".require_approval", "a list of tool names is only valid for tools of type mcp; write true or false")
	}
	if t.MaxOutputBytes < 0 {
		v.fail(p+".max_output_bytes", "must not be negative")
	}
}

// toolField is a type-specific key of a tool: whether it is set, and the
// tool types it is valid for.
type toolField struct {
	field string
	set   bool
	types string
}

func toolFields(t Tool) []toolField {
	return []toolField{
		{"allowed_commands", len(t.AllowedCommands) > 0, "command"},
		{"shell", t.Shell, "command"},
		{"command", t.Command != "", "command mcp"},
		{"args", len(t.Args) > 0, "command mcp"},
		{"working_dir", t.WorkingDir != "", "command mcp"},
		{"env", len(t.Env) > 0, "command mcp"},
		{"method", t.Method != "", "http"},
		{"follow_redirects", t.FollowRedirects != "", "http"},
		{"url", t.URL != "", "http mcp"},
		{"headers", len(t.Headers) > 0, "http mcp"},
		{"agent", t.Agent != "", "agent"},
		{"transport", t.Transport != "", "mcp"},
		{"include", len(t.Include) > 0, "mcp"},
		{"exclude", len(t.Exclude) > 0, "mcp"},
		{"prefix", t.Prefix != "", "mcp"},
	}
}

// toolEnv checks a program's environment variables.
func (v *validator) toolEnv(p string, t Tool) {
	for _, k := range sortedKeys(t.Env) {
		switch {
		case !validEnvName(k):
			v.fail(childPath(p+".env", k), "invalid variable name %q: use letters, digits and '_', not starting with a digit", k)
		case k == "HECTOR_IDEMPOTENCY_KEY" || k == "HECTOR_TOOL_RUN":
			v.fail(childPath(p+".env", k), "%s is set by Hector", k)
		}
	}
}

// mcpToolName is what a model provider accepts as a tool name; a prefix
// must keep names within it.
var mcpToolName = regexp.MustCompile(`^[A-Za-z0-9_-]{0,40}$`)

// mcpTool checks an MCP server: a program (stdio) or a URL (HTTP), never
// both, and its tool filters.
func (v *validator) mcpTool(p string, t Tool) {
	switch {
	case t.Command != "" && t.URL != "":
		v.fail(p+".url", "set command (a stdio server) or url (an HTTP server), not both")
	case t.Command != "":
		if strings.TrimSpace(t.Command) == "" {
			v.fail(p+".command", "must be a program name or path, got %q", t.Command)
		}
		if t.Transport != "" {
			v.fail(p+".transport", "only valid with url: a server started with command speaks over its stdin and stdout")
		}
		if len(t.Headers) > 0 {
			v.fail(p+".headers", "only valid with url")
		}
		v.toolEnv(p, t)
	case t.URL != "":
		if _, ok := httpURL(t.URL); !ok || urlParam.MatchString(t.URL) {
			v.fail(p+".url", "must be an http or https URL without placeholders, got %q", RedactURL(t.URL))
		}
		v.oneOf(p+".transport", t.Transport, "streamable", "sse")
		for _, f := range []flag{{"args", len(t.Args) > 0}, {"env", len(t.Env) > 0}, {"working_dir", t.WorkingDir != ""}} {
			if f.set {
				v.fail(p+"."+f.field, "only valid with command (a stdio server)")
			}
		}
	default:
		v.fail(p+".command", "required for tools of type mcp: the command of a stdio server, or url for an HTTP one")
	}
	if !mcpToolName.MatchString(t.Prefix) {
		v.fail(p+".prefix", "must be at most 40 letters, digits, '_' or '-', got %q", t.Prefix)
	}
	for _, l := range []struct {
		key   string
		names []string
	}{{"include", t.Include}, {"exclude", t.Exclude}, {"require_approval", t.RequireApproval}} {
		for i, n := range l.names {
			if strings.TrimSpace(n) == "" {
				v.fail(fmt.Sprintf("%s.%s[%d]", p, l.key, i), "must be a tool name")
			}
		}
	}
	if t.Description != "" {
		v.fail(p+".description", "not valid for tools of type mcp: each tool's description comes from its server")
	}
}

// commandTool checks what runs: the model's command line among
// allowed_commands, or a fixed command with args.
func (v *validator) commandTool(p string, t Tool) {
	switch {
	case t.Command != "" && len(t.AllowedCommands) > 0:
		v.fail(p+".command", "set command (a fixed program) or allowed_commands (programs the model may choose), not both")
	case t.Command != "":
		if strings.TrimSpace(t.Command) == "" || urlParam.MatchString(t.Command) {
			v.fail(p+".command", "must be a program name or path (the program is fixed; placeholders go in args), got %q", t.Command)
		}
		if t.Shell {
			v.fail(p+".shell", "not valid with command: write command: sh and args: [-c, SCRIPT] to run a fixed script")
		}
	case len(t.Args) > 0:
		v.fail(p+".args", "only valid with command, the fixed program they are passed to")
	case len(t.AllowedCommands) > 0:
	default:
		v.fail(p+".allowed_commands", "required: list the programs this tool may run, or set command to run one fixed program")
	}
}

func (v *validator) server(s Server) {
	if s.Port != nil && (*s.Port < 0 || *s.Port > 65535) {
		v.fail("server.port", "must be between 0 and 65535, got %d", *s.Port)
	}
	if s.MaxBodyBytes < 0 {
		v.fail("server.max_body_bytes", "must not be negative")
	}
	if strings.ContainsAny(s.Host, " /:") && !strings.HasPrefix(s.Host, "[") {
		v.fail("server.host", "must be a host name or IP address, got %q", s.Host)
	}
	v.httpPolicy(s)
	v.auth(s.Auth)
}

// httpPolicy checks the allowed hosts, CORS origins and connection limits.
func (v *validator) httpPolicy(s Server) {
	for i, h := range s.AllowedHosts {
		if h == "" || strings.ContainsAny(h, " /@") || strings.Contains(h, "://") {
			v.fail(fmt.Sprintf("server.allowed_hosts[%d]", i), "must be a host name or IP address without scheme, port or path (or \"*\"), got %q", h)
		}
	}
	for i, o := range s.CORS.AllowedOrigins {
		u, ok := httpURL(o)
		if o != "*" && (!ok || u.User != nil || strings.TrimSuffix(u.Path, "/") != "" || u.RawQuery != "") {
			v.fail(fmt.Sprintf("server.cors.allowed_origins[%d]", i), "must be an origin such as https://app.example.com (scheme, host and optional port), got %q", o)
		}
	}
	if s.ReadTimeout < 0 {
		v.fail("server.read_timeout", "must not be negative")
	}
	if s.IdleTimeout < 0 {
		v.fail("server.idle_timeout", "must not be negative")
	}
	if s.MaxConnsPerIP < 0 {
		v.fail("server.max_connections_per_client", "must not be negative")
	}
}

// appName is what an app may be called: it is a path segment in URLs
// (/apps/{app}/...), a file name and a key segment.
var appName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// CheckAppName returns an error naming the rule when name cannot be an
// app's (tenant's) name.
func CheckAppName(name string) error {
	if !appName.MatchString(name) {
		return fmt.Errorf("app name %q: use 1 to 63 lowercase letters, digits, '-' and '_', starting with a letter or digit", name)
	}
	return nil
}
