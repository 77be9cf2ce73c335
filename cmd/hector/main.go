// Command hector is the Hector agent server and its tools.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/hector-run/hector/internal/app"
	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/queue"
	"github.com/hector-run/hector/internal/reload"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `Hector is an AI agent server with a live configuration plane.

Usage:
  hector serve [flags]           run the server
  hector validate FILE [--json]  check a configuration file; exit 1 if invalid
  hector schema                  print the configuration's JSON Schema
  hector reload [flags]          reload a running server (or, with --broker, a fleet)
  hector config history|show V|diff A [B]|rollback V [flags]
                                 inspect and roll back a running server's configuration
  hector config get|put [FILE] [flags]
                                 read or write the configuration where it lives (file,
                                 consul, etcd, zookeeper, database), no server needed
  hector config migrate FILE [--write]
                                 print (or write) a document in the current schema
  hector tasks list|show ID|cancel ID|dlq|requeue ID [flags]
                                 inspect and manage a running server's durable tasks
  hector apps list|show|create|put|delete|history|rollback [NAME] [FILE|V] [flags]
                                 list, create, change, roll back and delete a running
                                 server's apps (tenants), each its own configuration
  hector health [flags]          check a running server's /health; exit 0 if ok or degraded
  hector backup --to FILE        copy the SQLite database online (PostgreSQL: print the pg_dump command)
  hector mcp-example             an offline MCP server on stdin/stdout (tools clock, text_stats)
  hector version                 print the version

Run 'hector COMMAND --help' for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "validate":
		return validate(args[1:], stdout, stderr)
	case "reload":
		return reloadCmd(args[1:], stdout, stderr)
	case "config":
		return configCmd(args[1:], stdout, stderr)
	case "tasks":
		return tasksCmd(args[1:], stdout, stderr)
	case "apps":
		return appsCmd(args[1:], os.Stdin, stdout, stderr)
	case "health":
		return healthCmd(args[1:], stdout, stderr)
	case "backup":
		return backupCmd(args[1:], stdout, stderr)
	case "mcp-example":
		return mcpExampleCmd(args[1:], stderr)
	case "schema":
		b, err := config.Schema()
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintln(stdout, string(b))
		return 0
	case "version", "--version":
		fmt.Fprintln(stdout, "hector", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "hector: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// parse parses flags that may come before or after positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := newEnvFlags(fs)
	src := addSourceFlags(fs, env)
	watch := fs.Bool("config-watch", true, "apply changes to the configuration live (SIGHUP always reloads)")
	db := fs.String("database", "", "database URL, sqlite://PATH or postgres://…; overrides database.url (default sqlite://.hector/hector.db)")
	host := fs.String("host", "", "listen on this address; overrides server.host (0.0.0.0 in a container)")
	port := fs.Int("port", 0, "listen on this port (0: any free port); overrides server.port")
	debug := fs.Bool("debug", false, "log at debug level; overrides logger.level")
	cache := fs.String("config-cache", ".hector/config.last-good", "keep the last applied configuration here (mode 0600); empty disables")
	fallback := fs.String("config-fallback", "none", "when the configuration cannot be read at startup: none (refuse to start) or last-good (start from --config-cache)")
	history := fs.Int("config-history", 1000, "applied configuration versions kept in the database's history, newest first (at least 1)")
	broker := fs.String("reload-broker", "", "answer fleet reloads on this NATS URL (subject hector.control.reload); needs --reload-broker-key-file")
	brokerKeyFile := fs.String("reload-broker-key-file", "", "accept fleet reloads signed with a key in this file: one per line, [NAME:]SECRET of at least 32 bytes")
	workers := fs.Int("queue-workers", 0, "tasks run at once by this instance; overrides queue.workers (default 4)")
	retries := fs.Int("queue-max-retries", 0, "retries before a task fails to the dead-letter list; overrides queue.max_retries (default 3)")
	initial := fs.Duration("queue-initial-delay", 0, "wait before the first retry, doubling with jitter; overrides queue.initial_delay (default 1s)")
	maxDelay := fs.Duration("queue-max-delay", 0, "longest wait between retries; overrides queue.max_delay (default 5m)")
	stale := fs.Duration("queue-stale-threshold", 0, "take over running tasks whose worker has not heartbeated for this long; overrides queue.stale_threshold (default 5m)")
	for name, variable := range map[string]string{"config-watch": "HECTOR_CONFIG_WATCH", "database": "HECTOR_DATABASE", "host": "HECTOR_HOST", "port": "HECTOR_LISTEN_PORT", "debug": "HECTOR_DEBUG",
		"config-cache": "HECTOR_CONFIG_CACHE", "config-fallback": "HECTOR_CONFIG_FALLBACK", "reload-broker": "HECTOR_RELOAD_BROKER",
		"reload-broker-key-file": "HECTOR_RELOAD_BROKER_KEY_FILE", "config-history": "HECTOR_CONFIG_HISTORY", "queue-workers": "HECTOR_QUEUE_WORKERS", "queue-max-retries": "HECTOR_QUEUE_MAX_RETRIES",
		"queue-initial-delay": "HECTOR_QUEUE_INITIAL_DELAY", "queue-max-delay": "HECTOR_QUEUE_MAX_DELAY",
		"queue-stale-threshold": "HECTOR_QUEUE_STALE_THRESHOLD"} {
		env.bind(name, variable)
	}
	src.databaseURL = db
	pos, err := parse(fs, args)
	if err != nil {
		return 2
	}
	if err := env.apply(); err != nil {
		fmt.Fprintln(stderr, "hector serve:", err)
		return 2
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "hector serve: unexpected argument %q\n", pos[0])
		return 2
	}
	if *fallback != "none" && *fallback != "last-good" {
		fmt.Fprintf(stderr, "hector serve: %s must be none or last-good, got %q\n", env.name("config-fallback"), *fallback)
		return 2
	}
	brokerKeys, keyWarning, err := readBrokerKeys(env, *broker, *brokerKeyFile)
	if err != nil {
		fmt.Fprintln(stderr, "hector serve:", err)
		return 2
	}
	set := map[string]bool{}
	for name := range env.env {
		set[name] = env.set(name)
	}
	if *history < 1 {
		fmt.Fprintf(stderr, "hector serve: %s must be at least 1, got %d (the default keeps 1000 versions)\n", env.name("config-history"), *history)
		return 2
	}
	// A set flag is a value, never "the default": the queue section's own
	// limits apply to it, zero included.
	for _, c := range []struct {
		name string
		err  error
	}{
		{"queue-workers", config.CheckQueueWorkers(*workers)},
		{"queue-max-retries", config.CheckQueueRetries(*retries)},
		{"queue-stale-threshold", config.CheckStaleThreshold(*stale)},
		{"queue-initial-delay", config.CheckQueueDelay(*initial)},
		{"queue-max-delay", config.CheckQueueDelay(*maxDelay)},
	} {
		if set[c.name] && c.err != nil {
			fmt.Fprintf(stderr, "hector serve: %s %v\n", env.name(c.name), c.err)
			return 2
		}
	}
	override := func(q queue.Settings) queue.Settings {
		if set["queue-workers"] {
			q.Workers = *workers
		}
		if set["queue-max-retries"] {
			q.MaxRetries = *retries
		}
		if set["queue-initial-delay"] {
			q.InitialDelay = *initial
		}
		if set["queue-max-delay"] {
			q.MaxDelay = *maxDelay
		}
		if set["queue-stale-threshold"] {
			q.StaleThreshold = *stale
		}
		return q
	}
	var listenPort *int
	if set["port"] {
		if *port < 0 || *port > 65535 {
			fmt.Fprintf(stderr, "hector serve: %s must be 0 to 65535, got %d\n", env.name("port"), *port)
			return 2
		}
		listenPort = port
	}
	pointer, err := src.followPointer(watch)
	if err != nil {
		fmt.Fprintln(stderr, "hector serve:", err)
		return 2
	}
	source, err := src.open()
	if err != nil {
		fmt.Fprintln(stderr, "hector serve:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reloads := make(chan struct{})
	go func() {
		for range hup {
			select {
			case reloads <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()
	err = app.Run(ctx, app.Options{Source: source, Watch: *watch,
		DatabaseURL: *db, Host: *host, Port: listenPort, Debug: *debug, ConfigCache: *cache, FallbackToCache: *fallback == "last-good", ReloadBroker: *broker,
		Version: version, LogOutput: stderr, Reload: reloads, QueueOverride: override, ConfigHistory: *history,
		ReloadBrokerKeys: brokerKeys, Warnings: append(src.exposedCredentials(), keyWarning...), Notes: notes(pointer)})
	if err != nil {
		fmt.Fprintln(stderr, "hector:", err)
		return 1
	}
	return 0
}

// validPointer reports a valid pointer file: what it names. The document
// there is validated where it is stored (hector config put refuses an
// invalid one).
func validPointer(file string, p *config.Pointer, asJSON bool, stdout io.Writer) int {
	key := pointedKey(p)
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"file": file, "valid": true, "errors": []config.Error{}, "warnings": []config.Error{},
			"pointer": map[string]string{"provider": p.Provider, "key": key, "endpoints": p.Addresses()}})
		return 0
	}
	fmt.Fprintf(stdout, "%s: valid: a pointer to %s %s; hector serve --config %s loads and watches it\n", file, p.Provider, key, file)
	return 0
}

// notes drops an empty note.
func notes(n string) []string {
	if n == "" {
		return nil
	}
	return []string{n}
}

// readBrokerKeys reads the fleet reload keys when --reload-broker is set:
// a broker without keys is refused, as unsigned reloads are never accepted.
func readBrokerKeys(env *envFlags, broker, keyFile string) ([]reload.Key, []string, error) {
	if broker == "" {
		return nil, nil, nil
	}
	if keyFile == "" {
		return nil, nil, fmt.Errorf("%s needs %s: fleet reloads must be signed with a shared key (create one with: openssl rand -hex 32 > FILE; chmod 600 FILE)",
			env.name("reload-broker"), env.name("reload-broker-key-file"))
	}
	keys, warning, err := reload.ReadKeyFile(keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", env.name("reload-broker-key-file"), err)
	}
	if warning != "" {
		return keys, []string{warning}, nil
	}
	return keys, nil, nil
}

func validate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: hector validate FILE [--json]")
		return 2
	}
	file := pos[0]
	data, err := os.ReadFile(file)
	var errs config.Errors
	var doc *config.Document
	var pointer *config.Pointer
	if err != nil {
		errs = config.Errors{{Path: "(file)", Message: err.Error()}}
	} else if pointer, err = readPointer(file, data); err != nil {
		fmt.Fprintln(stdout, err)
		return 1
	} else if pointer == nil {
		doc, errs = config.Parse(data, os.LookupEnv)
	}
	if pointer != nil {
		return validPointer(file, pointer, *asJSON, stdout)
	}
	if *asJSON {
		out := map[string]any{"file": file, "valid": errs == nil, "errors": errs, "warnings": []config.Error{}}
		if errs == nil {
			out["errors"] = []config.Error{}
			out["hash"] = doc.Hash
			if doc.Warnings != nil {
				out["warnings"] = doc.Warnings
			}
			out["migrate"] = doc.Migratable()
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	} else if errs != nil {
		for _, e := range errs {
			fmt.Fprintf(stdout, "%s:%s\n", file, e.Error())
		}
		fmt.Fprintf(stdout, "%d error(s)\n", len(errs))
	} else {
		for _, w := range doc.Warnings {
			fmt.Fprintf(stdout, "%s:%d:%d: warning: %s: %s\n", file, w.Line, w.Column, w.Path, w.Message)
		}
		if doc.Migratable() {
			fmt.Fprintf(stdout, "%s: uses the original Hector's spellings: hector config migrate %s --write rewrites it in the current schema\n", file, file)
		}
		c := doc.Config
		fmt.Fprintf(stdout, "%s: valid (%d agents, %d llms, %d tools)\n", file, len(c.Agents), len(c.LLMs), len(c.Tools))
	}
	if errs != nil {
		return 1
	}
	return 0
}
