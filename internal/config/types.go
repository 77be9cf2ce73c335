// Package config defines Hector's configuration document: its schema types,
// parsing (YAML or JSON, with ${ENV} expansion and source positions),
// defaults, validation and JSON Schema.
//
// Struct tags drive everything: `yaml` names the key, `doc` documents it (and
// feeds the JSON Schema), `enum` lists the allowed values and `secret` marks
// values that must be redacted wherever configuration is shown.
package config

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Config is one parsed configuration document. A *Config held by a runtime
// snapshot is never mutated.
type Config struct {
	Version  string           `yaml:"version" doc:"Schema version of this document. Only \"1\" exists; optional."`
	Name     string           `yaml:"name" doc:"A name for this deployment, shown in /health and logs."`
	LLMs     map[string]LLM   `yaml:"llms" doc:"Language model clients, by name."`
	Agents   map[string]Agent `yaml:"agents" doc:"Agents, by name. The name is the URL path segment in /v1/agents/{name}."`
	Tools    map[string]Tool  `yaml:"tools" doc:"Tools agents may call, by name."`
	Server   Server           `yaml:"server" doc:"HTTP listener settings."`
	Database Database         `yaml:"database" doc:"Where sessions and messages are stored."`
	Logger   Logger           `yaml:"logger" doc:"Log level and format; both apply live."`
	Queue    Queue            `yaml:"queue" doc:"The durable task queue: workers, retries and stale-task recovery. Applies live."`
	A2A      A2A              `yaml:"a2a" doc:"The A2A protocol endpoints: agent card URLs and push notification policy. Applies live."`
	// Observability configures what Hector reports about itself.
	Observability Observability `yaml:"observability" doc:"What Hector reports about itself: metrics and OpenTelemetry traces. Applies live."`
	// Pointer names the backend that holds the configuration (pointer.go).
	Pointer *Pointer `yaml:"config" doc:"Makes this file a pointer: Hector loads and watches the configuration from the backend named here, as if the --config-type, --config and --config-endpoints flags had been given (flags that are set win). Only in a file, and the file holds nothing else but version and name."`

	// The original Hector's v2 sections, read into database.url (sections.go).
	Databases map[string]LegacyDatabase `yaml:"databases" legacy:"database.url" doc:"The original Hector's databases, by name; the one storage (or server.tasks and server.sessions) names becomes database.url."`
	Storage   LegacyStorage             `yaml:"storage" legacy:"database.url" doc:"The original Hector's choice of database for tasks and sessions; read into database.url."`
}

// LegacyDatabase is one database of the original Hector's databases
// section: read as a database.url.
type LegacyDatabase struct {
	Driver   string `yaml:"driver" enum:"postgres,sqlite" doc:"postgres or sqlite."`
	Host     string `yaml:"host" doc:"postgres: the server's host. Default localhost."`
	Port     int    `yaml:"port" doc:"postgres: the server's port. Default 5432."`
	Database string `yaml:"database" doc:"postgres: the database name; sqlite: the file path."`
	User     string `yaml:"user" doc:"postgres: the user."`
	Password string `yaml:"password" secret:"true" doc:"postgres: the password (redacted when shown)."`
	SSLMode  string `yaml:"ssl_mode" doc:"postgres: the sslmode parameter (disable, require, verify-full, …)."`
}

// LegacyStorage is the original Hector's storage section.
type LegacyStorage struct {
	Tasks    LegacyStore `yaml:"tasks" doc:"Where tasks are kept."`
	Sessions LegacyStore `yaml:"sessions" doc:"Where sessions are kept."`
}

// LegacyStore is where the original Hector kept tasks or sessions.
type LegacyStore struct {
	Backend  string `yaml:"backend" enum:"sql,inmemory,memory" doc:"sql: in the database named by database. inmemory: Hector always keeps them in its database, so this is read as the default database."`
	Database string `yaml:"database" doc:"The name of a database in databases."`
}

// set reports whether the store was written.
func (s LegacyStore) set() bool { return s.Backend != "" || s.Database != "" }

// Pointer names the backend that holds the configuration.
type Pointer struct {
	Provider  string   `yaml:"provider" enum:"file,consul,etcd,zookeeper,database" doc:"The backend: as --config-type."`
	Address   string   `yaml:"address" doc:"The backend's address (host:port); as --config-endpoints with one address."`
	Endpoints []string `yaml:"endpoints" doc:"The backend's addresses, for a cluster; as --config-endpoints."`
	Key       string   `yaml:"key" doc:"The key, znode path, file path or document name: as --config."`
	Watch     *bool    `yaml:"watch" doc:"Apply changes live; as --config-watch. Default true."`
}

// Observability configures metrics and tracing.
type Observability struct {
	Metrics ObservabilityMetrics `yaml:"metrics" doc:"The Prometheus metrics."`
	Tracing Tracing              `yaml:"tracing" doc:"OpenTelemetry traces of turns, model calls, tool calls and reloads, exported over OTLP."`
}

// Tracing configures OpenTelemetry tracing. The standard OTEL_EXPORTER_OTLP_*
// environment variables apply to what is not set here.
type Tracing struct {
	Enabled        bool              `yaml:"enabled" doc:"Export traces. Default false."`
	Exporter       string            `yaml:"exporter" enum:"otlp,stdout" doc:"otlp (default) or stdout (spans as JSON on standard output, for trying it out)."`
	Protocol       string            `yaml:"protocol" enum:"grpc,http" doc:"OTLP transport: grpc (default, port 4317) or http (http/protobuf, port 4318)."`
	Endpoint       string            `yaml:"endpoint" secret:"url" doc:"The collector: host:port or a URL (http://collector:4318). Default: OTEL_EXPORTER_OTLP_ENDPOINT, else localhost on the protocol's port."`
	Insecure       bool              `yaml:"insecure" doc:"Send without TLS (an http:// endpoint implies it)."`
	Headers        map[string]string `yaml:"headers" secret:"values" doc:"Headers sent with every export, such as an API key of a hosted collector (values are redacted when shown)."`
	SamplingRate   *float64          `yaml:"sampling_rate" doc:"Fraction of new traces kept, 0 to 1. Default 1. A trace a caller started (traceparent) keeps the caller's decision."`
	ServiceName    string            `yaml:"service_name" doc:"service.name of the spans. Default OTEL_SERVICE_NAME, else hector."`
	CaptureContent bool              `yaml:"capture_content" doc:"Put the messages sent to and received from models, and tool arguments and results, on the spans (at most 8 KiB each). Default false: they may hold personal data."`
}

// Rate is the sampling rate in force: sampling_rate, or 1.
func (t Tracing) Rate() float64 {
	if t.SamplingRate == nil {
		return 1
	}
	return *t.SamplingRate
}

// ObservabilityMetrics switches the metrics on and off.
type ObservabilityMetrics struct {
	Enabled *bool `yaml:"enabled" doc:"Record and serve metrics (GET /metrics). Default true; false answers /metrics with 404 and records nothing."`
	// OTLP exports the OpenTelemetry GenAI client metrics.
	OTLP OTLPMetrics `yaml:"otlp" doc:"Also export the OpenTelemetry GenAI client metrics (gen_ai.client.token.usage, gen_ai.client.operation.duration) over OTLP."`
}

// OTLPMetrics configures the OTLP export of the GenAI metrics.
type OTLPMetrics struct {
	Enabled  bool              `yaml:"enabled" doc:"Export them. Default false."`
	Protocol string            `yaml:"protocol" enum:"grpc,http" doc:"grpc (default, port 4317) or http (http/protobuf, port 4318)."`
	Endpoint string            `yaml:"endpoint" secret:"url" doc:"The collector: host:port or a URL. Default: OTEL_EXPORTER_OTLP_ENDPOINT, else localhost."`
	Insecure bool              `yaml:"insecure" doc:"Send without TLS (an http:// endpoint implies it)."`
	Headers  map[string]string `yaml:"headers" secret:"values" doc:"Headers sent with every export (values are redacted when shown)."`
	Interval Duration          `yaml:"interval" doc:"Time between exports, at least 1s. Default 60s."`
}

// On reports whether metrics are enabled (the default).
func (m ObservabilityMetrics) On() bool { return m.Enabled == nil || *m.Enabled }

// A2A configures how agents are served over the A2A protocol.
type A2A struct {
	PublicURL string  `yaml:"public_url" doc:"Base URL clients reach this server at (behind a proxy), used in agent cards. Default: taken from each request's Host header."`
	Push      A2APush `yaml:"push" doc:"Push notifications to client webhooks."`
}

// A2APush configures push notification delivery.
type A2APush struct {
	AllowPrivateNetworks bool `yaml:"allow_private_networks" doc:"Allow webhooks on loopback, private and link-local addresses. Off by default: such URLs are refused when registered and again when dialled (SSRF protection)."`
}

// Queue configures the durable task queue. The --queue-* flags override
// these keys.
type Queue struct {
	Workers        int      `yaml:"workers" doc:"Tasks run at once by this instance. Default 4."`
	MaxRetries     *int     `yaml:"max_retries" doc:"Attempts after the first before a task fails and goes to the dead-letter list. Default 3."`
	InitialDelay   Duration `yaml:"initial_delay" doc:"Wait before the first retry; it doubles per attempt, with jitter. Default 1s."`
	MaxDelay       Duration `yaml:"max_delay" doc:"Longest wait between retries. Default 5m."`
	StaleThreshold Duration `yaml:"stale_threshold" doc:"A running task whose worker has not heartbeated for this long is taken over by another worker. Default 5m."`
	Retention      Duration `yaml:"retention" doc:"Delete finished tasks (completed, failed, canceled) and their steps this long after they finished. Default 0: keep them."`
}

// LLM configures one model client.
type LLM struct {
	Provider    string   `yaml:"provider" enum:"openai,anthropic,echo" doc:"openai (Chat Completions, any OpenAI-compatible server via base_url), anthropic (Messages API) or echo (offline, for trying things out and for tests)."`
	Type        string   `yaml:"type" legacy:"provider" doc:"The original Hector's spelling of provider."`
	Model       string   `yaml:"model" doc:"Model name sent to the provider. Required for openai and anthropic."`
	APIKey      string   `yaml:"api_key" secret:"true" doc:"API key. Usually ${OPENAI_API_KEY} or ${ANTHROPIC_API_KEY}."`
	BaseURL     string   `yaml:"base_url" secret:"url" doc:"Override the provider's API base URL (Ollama, vLLM, LM Studio, proxies)."`
	Temperature *float64 `yaml:"temperature" doc:"Sampling temperature, 0 to 2."`
	MaxTokens   int      `yaml:"max_tokens" doc:"Maximum tokens in one completion. Default 4096 for anthropic, provider default for openai."`
	Timeout     Duration `yaml:"timeout" doc:"Timeout of one request attempt. Default 120s."`
	MaxRetries  *int     `yaml:"max_retries" doc:"Retries on 408/409/429/5xx and connection errors, with exponential backoff. Default 2."`
}

// Agent configures one agent.
type Agent struct {
	Type          string   `yaml:"type" enum:"local,a2a" doc:"local (default) runs the agent here with its llm and tools; a2a makes the remote A2A agent at url callable like a local one. The original Hector's native and llm are read as local."`
	DisplayName   string   `yaml:"display_name" doc:"A human-readable name, shown as the name of the agent's card and in /v1/agents. Default: the agent's key."`
	Name          string   `yaml:"name" legacy:"display_name" doc:"The original Hector's spelling of display_name."`
	Streaming     *bool    `yaml:"streaming" doc:"Whether the agent's card advertises streaming (capabilities.streaming). Default true. Clients still choose per request: streaming routes work either way."`
	LLM           string   `yaml:"llm" doc:"Name of the LLM in llms that this agent uses. Required for local agents."`
	Instruction   string   `yaml:"instruction" doc:"System prompt."`
	Description   string   `yaml:"description" doc:"Shown in /v1/agents."`
	Tools         []string `yaml:"tools" doc:"Names of tools in tools that this agent may call."`
	MaxIterations int      `yaml:"max_iterations" doc:"Maximum LLM calls in one turn (each tool round is one). Default 10."`
	// Delegation.
	AllowedDelegates []string `yaml:"allowed_delegates" doc:"Agents this agent may call through tools of type agent; a tool of type agent whose target is not listed is a validation error."`
	// Remote (type a2a).
	URL     string            `yaml:"url" secret:"url" doc:"a2a: the remote agent's A2A endpoint, or its agent card URL (ending in /.well-known/agent-card.json). The card is fetched on first use and cached for 5 minutes."`
	Headers map[string]string `yaml:"headers" secret:"values" doc:"a2a: headers sent with every request to the remote agent, such as Authorization (values are redacted when shown)."`
}

// Label is the agent's display name: display_name, else its key.
func (a Agent) Label(key string) string {
	if a.DisplayName != "" {
		return a.DisplayName
	}
	return key
}

// Streams reports whether the agent's card advertises streaming (the
// default).
func (a Agent) Streams() bool { return a.Streaming == nil || *a.Streaming }

// Remote reports whether the agent is a remote A2A agent.
func (a Agent) Remote() bool { return a.Type == "a2a" }

// Tool configures one tool. Fields are grouped by type; a field of the other
// type is a validation error.
type Tool struct {
	Type        string `yaml:"type" enum:"command,http,agent,mcp" doc:"command runs a program; http calls a URL; agent sends a message to another agent (local or a2a) and returns its reply; mcp connects to an MCP server, each of whose tools becomes a tool of the agents that list this one."`
	Description string `yaml:"description" doc:"What the tool does, shown to the LLM (mcp: each tool's description comes from its server)."`

	AllowedCommands  []string          `yaml:"allowed_commands" doc:"command: programs the LLM may run (argv[0], matched exactly). Required."`
	Command          string            `yaml:"command" doc:"command: a fixed program to run, with args: the model supplies no command line, only the values of the {name} placeholders in args. Instead of allowed_commands. mcp: the program of a stdio MCP server (instead of url)."`
	Args             []string          `yaml:"args" doc:"command: the fixed program's arguments. A {name} placeholder becomes a required string parameter of the tool; its value replaces the placeholder within that one argument, never splitting into more. mcp: the stdio server's arguments, as written."`
	WorkingDir       string            `yaml:"working_dir" doc:"command and mcp (stdio): working directory. Default: the server's."`
	WorkingDirectory string            `yaml:"working_directory" legacy:"working_dir" doc:"The original Hector's spelling of working_dir."`
	Shell            bool              `yaml:"shell" doc:"command: run through /bin/sh -c. Off by default; the allowlist then applies to the first word only."`
	Env              map[string]string `yaml:"env" secret:"values" doc:"command and mcp (stdio): environment variables of the program, besides PATH, HOME, LANG and TZ (taken from the server) and, for command, HECTOR_IDEMPOTENCY_KEY; nothing else of the server's environment is passed. Values may use ${VAR} and are redacted when shown."`

	Method          string            `yaml:"method" enum:"GET,POST,PUT,PATCH,DELETE" doc:"http: request method. Default GET."`
	URL             string            `yaml:"url" secret:"url" doc:"http: URL template; {name} placeholders become required string parameters, URL-escaped. mcp: the endpoint of an MCP server over HTTP (instead of command), without placeholders."`
	Headers         map[string]string `yaml:"headers" secret:"values" doc:"http and mcp: request headers (values are redacted when shown). They are sent only to the url's origin, never on a redirect to another."`
	FollowRedirects string            `yaml:"follow_redirects" enum:"same_origin,any,none" doc:"http: which redirects are followed: same_origin (default) only to the url's scheme, host and port; any to anywhere (headers stay behind); none returns the redirect as an error."`

	Transport string   `yaml:"transport" enum:"streamable,sse" doc:"mcp with url: streamable (default) is the streamable HTTP transport; sse is the older HTTP+SSE transport, for servers that have not moved on."`
	Include   []string `yaml:"include" doc:"mcp: only these of the server's tools are offered (its names, before prefix). Default: all."`
	Exclude   []string `yaml:"exclude" doc:"mcp: these of the server's tools are never offered, even when include lists them."`
	Prefix    string   `yaml:"prefix" doc:"mcp: put before each of the server's tool names, so that two servers' tools cannot collide (files_read_file). Default none."`

	Agent string `yaml:"agent" doc:"agent: the agent the tool delegates to. Every agent using the tool must list it in allowed_delegates."`

	Timeout        Duration `yaml:"timeout" doc:"Maximum run time of one call. Default 30s (agent tools: 5m). mcp: also bounds starting the server and listing its tools."`
	MaxOutputBytes int      `yaml:"max_output_bytes" doc:"Output beyond this many bytes is cut. Default 65536."`

	RequireApproval Approval `yaml:"require_approval" doc:"true: a human approves each call before it runs: the turn pauses as a task in input_required until POST /v1/tasks/{id}/approve or /reject. mcp: true for every tool of the server, or a list of its tool names (before prefix)."`
	ApprovalPrompt  string   `yaml:"approval_prompt" doc:"Shown to the approver with the call's arguments. Requires require_approval."`
}

// Approval is require_approval: the calls of a tool a human approves
// before they run. true is ["*"], every call; false or absent is empty; an
// mcp tool may instead list its server's tool names.
type Approval []string

// All reports whether every call needs approval.
func (a Approval) All() bool { return slices.Contains(a, "*") }

// Any reports whether some call needs approval.
func (a Approval) Any() bool { return len(a) > 0 }

// For reports whether a call of the tool named name needs approval.
func (a Approval) For(name string) bool { return a.All() || slices.Contains(a, name) }

// MarshalJSON writes true, false, or the list of names.
func (a Approval) MarshalJSON() ([]byte, error) {
	switch {
	case a.All():
		return []byte("true"), nil
	case len(a) == 0:
		return []byte("false"), nil
	}
	return json.Marshal([]string(a))
}

// Server configures the HTTP listener.
type Server struct {
	Host            string    `yaml:"host" doc:"Listen address. Default 127.0.0.1."`
	Port            *int      `yaml:"port" doc:"Listen port, 0 for any free port. Default 8080."`
	ShutdownTimeout Duration  `yaml:"shutdown_timeout" doc:"How long shutdown waits for in-flight requests. Default 30s."`
	MaxBodyBytes    int64     `yaml:"max_body_bytes" doc:"Largest accepted request body. Default 1048576."`
	RebindGrace     *Duration `yaml:"rebind_grace" doc:"After host or port changes, how long the old listener keeps accepting new connections while clients move to the new address. Default 1s."`
	Auth            Auth      `yaml:"auth" doc:"Who may use the API. Once keys are listed every route but /health and agent cards needs one; without keys the whole API is open (bind to loopback)."`
	AllowedHosts    []string  `yaml:"allowed_hosts" doc:"Host header names (or IP addresses) this server answers to; a request for any other host gets 403, which defeats DNS rebinding. \"*\" allows any. Default: while host is a loopback address, localhost, 127.0.0.1, ::1, host itself and the host of a2a.public_url; otherwise any."`
	CORS            CORS      `yaml:"cors" doc:"Which web origins may call this server from a browser."`
	ReadTimeout     Duration  `yaml:"read_timeout" doc:"Longest time to receive one request's body; a slower client gets 408 and is disconnected. Responses, streams included, are not limited by it. Default 30s."`
	IdleTimeout     Duration  `yaml:"idle_timeout" doc:"A keep-alive connection idle this long is closed. Default 2m."`
	MaxConnsPerIP   int       `yaml:"max_connections_per_client" doc:"Most open connections one client IP address may hold; connections beyond it are closed at once. 0 or absent: no limit."`
	Metrics         Metrics   `yaml:"metrics" doc:"The Prometheus endpoint GET /metrics."`

	// The original Hector's v2 spellings (sections.go).
	Tasks         LegacyStore    `yaml:"tasks" legacy:"database.url" doc:"The original Hector's choice of database for tasks; read into database.url."`
	Sessions      LegacyStore    `yaml:"sessions" legacy:"database.url" doc:"The original Hector's choice of database for sessions; read into database.url."`
	Observability *Observability `yaml:"observability" legacy:"observability" doc:"The original Hector's place for the observability section; read as observability."`
}

// Metrics configures GET /metrics.
type Metrics struct {
	Public bool `yaml:"public" doc:"Serve /metrics without a credential (for a scraper on a private network). Default false: it needs the viewer role once credentials are configured."`
}

// CORS configures cross-origin requests from browsers.
type CORS struct {
	AllowedOrigins []string `yaml:"allowed_origins" doc:"Origins (scheme://host[:port]) whose pages may call the API: they get CORS headers, and their state-changing requests are not refused as cross-site. Default none."`
}

// Auth configures who may use the API: bearer API keys and JWTs from
// identity providers. See docs/security.md for the route policy.
type Auth struct {
	Require *bool `yaml:"require" doc:"Every route but /health, agent cards and (with server.metrics.public) /metrics needs a credential. Default true once any API key or JWT issuer is configured. false admits callers without a credential as the anonymous user (role user); admin, operator and viewer routes still need a credential."`
	Enabled *bool `yaml:"enabled" legacy:"require" doc:"The original Hector's spelling of require; when both are set they must agree."`

	APIKeys []APIKey    `yaml:"api_keys" doc:"Bearer keys. Once any is listed, every route but /health and agent cards needs a credential. A plain string is a key with role admin (a warning recommends names and roles). Keys are configuration: adding, removing or rotating one applies live; a reload or rollback that changes server.auth needs the admin role."`
	JWT     []JWTIssuer `yaml:"jwt" doc:"Identity providers whose JWTs (Authorization: Bearer TOKEN) are accepted: one mapping or a list. Their signing keys are fetched from jwks_url and refreshed in the background."`

	// The original Hector's one-issuer shorthand: server.auth.jwks_url,
	// issuer and audience mean one entry of jwt.
	JWKSURL  string `yaml:"jwks_url" secret:"url" doc:"Shorthand for one jwt issuer: its JWKS URL."`
	Issuer   string `yaml:"issuer" doc:"Shorthand for one jwt issuer: its iss claim."`
	Audience string `yaml:"audience" doc:"Shorthand for one jwt issuer: the aud claim tokens must carry."`
}

// APIKey is one bearer key and the role it grants.
type APIKey struct {
	Name string `yaml:"name" doc:"The key's principal: shown as the actor in reload outcomes and history, and owner of the sessions and tasks it creates. Default key-N (its position, from 1)."`
	Key  string `yaml:"key" secret:"true" doc:"The bearer token, at least 16 characters. Write it as ${VAR}."`
	// App binds the key to one app: its holder is a principal of that
	// tenant, reaching that app's agents, sessions and tasks only.
	App  string `yaml:"app" doc:"Bind the key to one app (tenant, see /admin/apps): its holder reaches that app's agents, sessions and tasks only, and no admin route. Default: the main configuration."`
	Role Role   `yaml:"role" enum:"user,viewer,operator,admin" doc:"user talks to agents and sees only its own sessions and tasks; viewer also reads every session, task, the configuration and metrics; operator also cancels tasks, decides approvals, reloads, validates, rolls back and requeues; admin also writes the configuration and changes server.auth."`

	// Plain is set when the key was written as a plain string (the
	// original Hector's form): role admin, with a warning.
	Plain bool `yaml:"-" json:"-"`
}

func (k *APIKey) scalarKey() string { return "key" }
func (k *APIKey) markScalar()       { k.Plain = true }

// JWTIssuer is one identity provider whose tokens are accepted.
type JWTIssuer struct {
	Name            string   `yaml:"name" doc:"Names the issuer in errors and in its principals, NAME:SUBJECT. Letters, digits, '_', '.', '-'. Default: the host of the issuer URL, or jwt-N."`
	Issuer          string   `yaml:"issuer" doc:"The iss claim tokens must carry. Optional only when a single issuer is configured."`
	Audience        string   `yaml:"audience" doc:"The aud claim tokens must carry. Without it tokens the provider issued to any other service are accepted too (a warning says so)."`
	JWKSURL         string   `yaml:"jwks_url" secret:"url" doc:"Where the provider publishes its signing keys (JWKS). https, or http on a loopback address."`
	RoleClaim       string   `yaml:"role_claim" doc:"Claim naming the caller's role (a string, or a list whose strongest known role wins). Default role."`
	DefaultRole     Role     `yaml:"default_role" enum:"user,viewer,operator,admin" doc:"Role of a token without a known role in role_claim. Default user."`
	TenantClaim     string   `yaml:"tenant_claim" doc:"Claim naming the caller's tenant. Default tenant_id."`
	SubjectClaim    string   `yaml:"subject_claim" doc:"Claim naming the caller (the principal that owns its sessions and tasks). Default sub."`
	Leeway          Duration `yaml:"leeway" doc:"Clock skew allowed on exp, nbf and iat. Default 30s."`
	RefreshInterval Duration `yaml:"refresh_interval" doc:"How often the signing keys are fetched again. Default 15m; a token with an unknown kid also triggers a fetch, at most one per 10s."`
}

// Role is what a credential may do.
type Role string

// The roles a credential grants.
const (
	RoleUser     Role = "user"
	RoleViewer   Role = "viewer"
	RoleOperator Role = "operator"
	RoleAdmin    Role = "admin"
)

// Roles in increasing order of power.
var Roles = []Role{RoleUser, RoleViewer, RoleOperator, RoleAdmin}

// RoleNames is Roles as strings, for messages.
func RoleNames() []string {
	names := make([]string, len(Roles))
	for i, r := range Roles {
		names[i] = string(r)
	}
	return names
}

// Database configures the store.
type Database struct {
	URL string `yaml:"url" secret:"url" doc:"sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=…. Default sqlite://.hector/hector.db; the --database flag overrides it."`
}

// Logger configures logging.
type Logger struct {
	Level  string `yaml:"level" enum:"debug,info,warn,error" doc:"Default info."`
	Format string `yaml:"format" enum:"text,json" doc:"Default text."`
}

// Defaults used when a key is absent.
const (
	DefaultHost            = "127.0.0.1"
	DefaultPort            = 8080
	DefaultShutdownTimeout = 30 * time.Second
	DefaultMaxBodyBytes    = 1 << 20
	DefaultRebindGrace     = time.Second
	DefaultReadTimeout     = 30 * time.Second
	DefaultIdleTimeout     = 2 * time.Minute
	DefaultMaxIterations   = 10
	DefaultToolTimeout     = 30 * time.Second
	DefaultDelegateTimeout = 5 * time.Minute
	DefaultToolOutputBytes = 64 << 10
	DefaultLLMTimeout      = 120 * time.Second
	DefaultLLMRetries      = 2
	DefaultDatabaseURL     = "sqlite://.hector/hector.db"
	DefaultQueueWorkers    = 4
	DefaultQueueRetries    = 3
	DefaultQueueDelay      = time.Second
	DefaultQueueMaxDelay   = 5 * time.Minute
	DefaultStaleThreshold  = 5 * time.Minute
	DefaultJWTLeeway       = 30 * time.Second
	DefaultJWKSRefresh     = 15 * time.Minute
	DefaultRoleClaim       = "role"
	DefaultTenantClaim     = "tenant_id"
	DefaultSubjectClaim    = "sub"
)

// Duration is a time.Duration written as a Go duration string ("30s", "1m30s").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes the duration as a string such as "30s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// ListenPort returns the configured port or the default.
func (s Server) ListenPort() int {
	if s.Port == nil {
		return DefaultPort
	}
	return *s.Port
}

// Addr returns host:port for net.Listen.
func (s Server) Addr() string {
	return fmt.Sprintf("%s:%d", s.Host, s.ListenPort())
}
