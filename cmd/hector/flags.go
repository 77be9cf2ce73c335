package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hector-run/hector/internal/config"
	"github.com/hector-run/hector/internal/config/source"
)

// envFlags gives flags environment variables: a variable applies when its
// flag is not on the command line, and is parsed as the flag would be.
type envFlags struct {
	fs      *flag.FlagSet
	env     map[string]string // flag name -> variable
	fromEnv map[string]bool   // flags whose value came from their variable
}

func newEnvFlags(fs *flag.FlagSet) *envFlags {
	return &envFlags{fs: fs, env: map[string]string{}, fromEnv: map[string]bool{}}
}

// name is how messages refer to a flag: by its variable when the value
// came from the environment (that is where the user must fix it), else
// as --flag.
func (e *envFlags) name(f string) string {
	if e.fromEnv[f] {
		return e.env[f]
	}
	return "--" + f
}

// set reports whether the flag was given, on the command line or through
// its variable.
func (e *envFlags) set(name string) bool {
	given := e.fromEnv[name]
	e.fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// bind attaches variable to flag name and mentions it in the usage.
func (e *envFlags) bind(name, variable string) {
	f := e.fs.Lookup(name)
	f.Usage += " (env " + variable + ")"
	e.env[name] = variable
}

// apply sets unset flags from their variables; call it after parsing.
func (e *envFlags) apply() error {
	set := map[string]bool{}
	e.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, variable := range e.env {
		v, ok := os.LookupEnv(variable)
		if !ok || set[name] {
			continue
		}
		if err := e.fs.Set(name, v); err != nil {
			return fmt.Errorf("%s=%q: %v; want %s", variable, v, err, want(e.fs.Lookup(name)))
		}
		e.fromEnv[name] = true
	}
	return nil
}

// want describes the values a flag takes, for messages.
func want(f *flag.Flag) string {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return "a value like --" + f.Name + " takes"
	}
	switch g.Get().(type) {
	case time.Duration:
		return "a duration such as 500ms, 2s or 1m"
	case bool:
		return "true or false"
	case int, int64, uint, uint64:
		return "a whole number"
	}
	return "a value like --" + f.Name + " takes"
}

// sourceFlags are the flags that say where the configuration lives, shared
// by serve and config get/put.
type sourceFlags struct {
	typ, key, endpoints       string
	username, password, token string
	ca, cert, tlsKey          string
	debounce, pollInterval    time.Duration
	maxBytes                  int64
	layers                    listFlag // --config-source TYPE:KEY, repeated: an overlay
	env                       *envFlags
	databaseURL               *string // serve's --database, for the database type
}

// listFlag collects a repeated flag; a comma also separates values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func addSourceFlags(fs *flag.FlagSet, env *envFlags) *sourceFlags {
	s := &sourceFlags{env: env}
	fs.StringVar(&s.typ, "config-type", "file", "where the configuration lives: file, consul, etcd, zookeeper or database")
	fs.StringVar(&s.key, "config", "", "the configuration's file path, key, znode path or document name "+
		"(default hector.yaml; hector/config for consul, /hector/config for etcd and zookeeper, default for database)")
	fs.StringVar(&s.endpoints, "config-endpoints", "", "comma-separated backend addresses (default 127.0.0.1:8500 consul, "+
		"127.0.0.1:2379 etcd, 127.0.0.1:2181 zookeeper); for database, its URL (default: --database)")
	fs.StringVar(&s.username, "config-username", "", "etcd user, or ZooKeeper digest user")
	fs.StringVar(&s.password, "config-password", "", "etcd password, or ZooKeeper digest password")
	fs.StringVar(&s.token, "config-token", "", "Consul ACL token")
	fs.StringVar(&s.ca, "config-ca", "", "CA certificate file for TLS to etcd or Consul")
	fs.StringVar(&s.cert, "config-cert", "", "client certificate file for TLS to etcd or Consul")
	fs.StringVar(&s.tlsKey, "config-key", "", "client key file for TLS to etcd or Consul")
	fs.DurationVar(&s.debounce, "config-debounce", source.DefaultDebounce, "wait this long after the last file event before reading")
	fs.DurationVar(&s.pollInterval, "config-poll-interval", time.Second, "how often a SQLite-held configuration is checked (PostgreSQL pushes changes)")
	fs.Int64Var(&s.maxBytes, "config-max-bytes", source.DefaultMaxBytes, "largest configuration document read from any source or stored by config put, in bytes")
	fs.Var(&s.layers, "config-source", "TYPE:KEY, repeated: overlay these sources in order (later over earlier; maps merge, lists replace) "+
		"instead of --config-type/--config; the connection flags apply to every non-file layer")
	for name, variable := range map[string]string{"config-type": "HECTOR_CONFIG_TYPE", "config": "HECTOR_CONFIG",
		"config-endpoints": "HECTOR_CONFIG_ENDPOINTS", "config-username": "HECTOR_CONFIG_USERNAME",
		"config-password": "HECTOR_CONFIG_PASSWORD", "config-token": "HECTOR_CONFIG_TOKEN", "config-ca": "HECTOR_CONFIG_CA",
		"config-cert": "HECTOR_CONFIG_CERT", "config-key": "HECTOR_CONFIG_KEY", "config-debounce": "HECTOR_CONFIG_DEBOUNCE",
		"config-poll-interval": "HECTOR_CONFIG_POLL_INTERVAL", "config-source": "HECTOR_CONFIG_SOURCES",
		"config-max-bytes": "HECTOR_CONFIG_MAX_BYTES"} {
		env.bind(name, variable)
	}
	return s
}

// check validates the flags' values; call after env.apply. Errors name
// the flag, or its variable when the value came from the environment.
func (s *sourceFlags) check() error {
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"config-debounce", s.debounce}, {"config-poll-interval", s.pollInterval}} {
		if d.v <= 0 {
			return fmt.Errorf("%s must be > 0, got %v", s.env.name(d.flag), d.v)
		}
	}
	if s.maxBytes <= 0 {
		return fmt.Errorf("%s must be > 0, got %d (the default is %d, 4 MiB)", s.env.name("config-max-bytes"), s.maxBytes, source.DefaultMaxBytes)
	}
	types := []string{s.typ}
	for _, l := range s.layers {
		typ, _, _ := strings.Cut(l, ":")
		types = append(types, typ)
	}
	for i, typ := range types {
		if !slices.Contains(source.Types, typ) {
			what := s.env.name("config-type")
			if i > 0 {
				what = s.env.name("config-source")
			}
			return fmt.Errorf("%s %q: want one of %s", what, typ, strings.Join(source.Types, ", "))
		}
	}
	return nil
}

// spec returns the source specification; call after env.apply.
func (s *sourceFlags) spec() source.Spec {
	sp := source.Spec{Type: s.typ, Key: s.key, Endpoints: source.SplitEndpoints(s.endpoints),
		Username: s.username, Password: s.password, Token: s.token,
		CAFile: s.ca, CertFile: s.cert, KeyFile: s.tlsKey, Debounce: s.debounce, PollInterval: s.pollInterval,
		MaxBytes: s.maxBytes}
	if s.databaseURL != nil {
		sp.DatabaseURL = *s.databaseURL
	}
	return sp
}

// open opens the source the flags describe: one, or an overlay of the
// --config-source layers.
func (s *sourceFlags) open() (source.Source, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if len(s.layers) == 0 {
		return source.Open(s.spec())
	}
	ov := &source.Overlay{MaxBytes: s.maxBytes}
	for _, l := range s.layers {
		typ, key, ok := strings.Cut(l, ":")
		if !ok || key == "" {
			return nil, fmt.Errorf("--config-source %q: want TYPE:KEY, for example file:base.yaml or etcd:/hector/production", l)
		}
		sp := s.spec()
		sp.Type, sp.Key = typ, key
		if typ == "file" { // the connection flags are for the backends
			sp = source.Spec{Type: "file", Key: key, Debounce: s.debounce, MaxBytes: s.maxBytes}
		}
		src, err := source.Open(sp)
		if err != nil {
			ov.Close()
			return nil, fmt.Errorf("--config-source %q: %w", l, err)
		}
		ov.Sources = append(ov.Sources, src)
	}
	return ov, nil
}

// followPointer reads the configuration file when it is a pointer (it
// holds config: naming a backend) and takes that backend, as if its flags
// had been given: the provider and key, and the addresses and watch unless
// --config-endpoints or --config-watch were set. It returns a line for the
// log, or "" when the file is no pointer (or cannot be read: the source
// then reports that). Call after env.apply.
func (s *sourceFlags) followPointer(watch *bool) (string, error) {
	if s.typ != "file" || len(s.layers) > 0 {
		return "", nil
	}
	path := s.key
	if path == "" {
		path = source.DefaultKey("file")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", nil
	}
	p, err := readPointer(path, data)
	if p == nil || err != nil {
		return "", err
	}
	s.typ, s.key = p.Provider, p.Key
	if !s.env.set("config-endpoints") && p.Addresses() != "" {
		s.endpoints = p.Addresses()
	}
	if p.Watch != nil && !s.env.set("config-watch") {
		*watch = *p.Watch
	}
	return fmt.Sprintf("%s is a pointer (config:): the configuration is %s %s", path, s.typ, pointedKey(p)), nil
}

// readPointer reads the pointer data (the file at path) holds, nil when it
// is none. A pointer to a file that is itself a pointer (or to itself) is
// an error: the chain would end at no document.
func readPointer(path string, data []byte) (*config.Pointer, error) {
	p, errs := config.ReadPointer(data, os.LookupEnv)
	if errs != nil {
		lines := make([]string, len(errs))
		for i, e := range errs {
			lines[i] = path + ":" + e.Error()
		}
		return nil, errors.New(strings.Join(lines, "\n"))
	}
	if p != nil && p.Provider == "file" {
		if next, err := os.ReadFile(pointedKey(p)); err == nil {
			if q, _ := config.ReadPointer(next, os.LookupEnv); q != nil {
				return nil, fmt.Errorf("%s points to the file %s, which is a pointer too: point it at the configuration itself", path, pointedKey(p))
			}
		}
	}
	return p, nil
}

// pointedKey is the key a pointer names, or its backend's default.
func pointedKey(p *config.Pointer) string {
	if p.Key == "" {
		return source.DefaultKey(p.Provider)
	}
	return p.Key
}

// exposedCredentials warns about credentials given on the command line,
// where other local users can read them (ps, /proc/PID/cmdline): each
// message names the flag and the variable that keeps the secret out of
// sight. Messages never include the values.
func (s *sourceFlags) exposedCredentials() []string {
	onCommandLine := func(name string) bool {
		_, bound := s.env.env[name]
		return bound && s.env.set(name) && !s.env.fromEnv[name]
	}
	var out []string
	warn := func(name, what string) {
		out = append(out, fmt.Sprintf("--%s %s on the command line, where other local users can read it; set %s instead", name, what, s.env.env[name]))
	}
	if onCommandLine("config-password") && s.password != "" {
		warn("config-password", "is")
	}
	if onCommandLine("config-token") && s.token != "" {
		warn("config-token", "is")
	}
	if onCommandLine("config-endpoints") && slices.ContainsFunc(source.SplitEndpoints(s.endpoints), hasPassword) {
		warn("config-endpoints", "carries credentials")
	}
	if s.databaseURL != nil && onCommandLine("database") && hasPassword(*s.databaseURL) {
		warn("database", "carries credentials")
	}
	return out
}

// hasPassword reports whether an endpoint or URL carries credentials
// (user:password@) that logs would have to redact.
func hasPassword(endpoint string) bool {
	return source.RedactEndpoint(endpoint) != endpoint
}
