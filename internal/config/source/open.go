package source

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/hector-run/hector/internal/config"
)

// Types are the backends Open knows.
var Types = []string{"file", "consul", "etcd", "zookeeper", "database"}

// Spec says where the configuration lives; the CLI fills it from flags and
// environment variables.
type Spec struct {
	Type      string   // file (default), consul, etcd, zookeeper, database
	Key       string   // file path, key, znode path or document name
	Endpoints []string // host:port list; a database URL for database
	// Username and Password authenticate to etcd, or are the ZooKeeper
	// digest credentials.
	Username, Password string
	Token              string // Consul ACL token
	// CAFile, CertFile and KeyFile configure TLS for etcd and Consul.
	CAFile, CertFile, KeyFile string
	Debounce                  time.Duration // file events
	PollInterval              time.Duration // SQLite documents
	// MaxBytes is the largest document read (DefaultMaxBytes when 0).
	MaxBytes int64
	// DatabaseURL is used by the database type when Endpoints is empty.
	DatabaseURL string
}

// DefaultKey is the key used for a type when Spec.Key is empty.
func DefaultKey(typ string) string {
	switch typ {
	case "consul":
		return "hector/config"
	case "etcd", "zookeeper":
		return "/hector/config"
	case "database":
		return "default"
	}
	return "hector.yaml"
}

// Open returns the source the spec describes. It does not connect: the
// first Load or Watch does, so a backend that is down at startup is
// reported as a read error (and the last-known-good policy applies).
// Sources that hold connections implement io.Closer.
func Open(s Spec) (Source, error) {
	if s.Type == "" {
		s.Type = "file"
	}
	if s.Key == "" {
		s.Key = DefaultKey(s.Type)
	}
	tlsSet := s.CAFile != "" || s.CertFile != "" || s.KeyFile != ""
	switch s.Type {
	case "file":
		if len(s.Endpoints) > 0 || tlsSet || s.Username != "" || s.Token != "" {
			return nil, fmt.Errorf("--config-type file takes no endpoints, credentials or TLS files")
		}
		return &File{Path: s.Key, Debounce: s.Debounce, MaxBytes: s.MaxBytes}, nil
	case "etcd":
		eps := withDefault(s.Endpoints, "127.0.0.1:2379")
		cfg := NewEtcdConfig(eps)
		cfg.Username, cfg.Password = s.Username, s.Password
		if tlsSet {
			tc, err := tlsConfig(s)
			if err != nil {
				return nil, err
			}
			cfg.TLS = tc
			for i, e := range eps {
				if !strings.Contains(e, "://") {
					eps[i] = "https://" + e
				}
			}
			cfg.Endpoints = eps
		}
		if s.Token != "" {
			return nil, fmt.Errorf("--config-token is for consul; etcd takes --config-username and --config-password")
		}
		return &Etcd{Key: s.Key, Config: cfg, MaxBytes: s.MaxBytes}, nil
	case "consul":
		if s.Username != "" || s.Password != "" {
			return nil, fmt.Errorf("consul takes an ACL token (--config-token), not a username and password")
		}
		base := api.DefaultConfig()
		if s.Token != "" {
			base.Token = s.Token
		}
		if tlsSet {
			base.Scheme = "https"
			base.TLSConfig = api.TLSConfig{CAFile: s.CAFile, CertFile: s.CertFile, KeyFile: s.KeyFile}
		}
		return &Consul{Key: strings.TrimPrefix(s.Key, "/"), Addresses: withDefault(s.Endpoints, "127.0.0.1:8500"), Base: base, MaxBytes: s.MaxBytes}, nil
	case "zookeeper":
		if tlsSet || s.Token != "" {
			return nil, fmt.Errorf("zookeeper supports digest authentication (--config-username, --config-password), not TLS files or tokens")
		}
		z := &ZooKeeper{Path: "/" + strings.TrimPrefix(s.Key, "/"), Servers: withDefault(s.Endpoints, "127.0.0.1:2181"), MaxBytes: s.MaxBytes}
		if s.Username != "" {
			z.Digest = s.Username + ":" + s.Password
		}
		return z, nil
	case "database":
		u := s.DatabaseURL
		if len(s.Endpoints) > 1 {
			return nil, fmt.Errorf("--config-type database takes one database URL as its endpoint")
		}
		if len(s.Endpoints) == 1 {
			u = s.Endpoints[0]
		}
		if u == "" {
			u = "sqlite://.hector/hector.db"
		}
		if tlsSet || s.Token != "" || s.Username != "" {
			return nil, fmt.Errorf("--config-type database takes its credentials and TLS settings in the database URL")
		}
		return &Database{URL: u, Document: s.Key, PollInterval: s.PollInterval, MaxBytes: s.MaxBytes}, nil
	}
	return nil, fmt.Errorf("--config-type %q: want one of %s", s.Type, strings.Join(Types, ", "))
}

func withDefault(eps []string, def string) []string {
	if len(eps) == 0 {
		return []string{def}
	}
	return append([]string(nil), eps...)
}

func tlsConfig(s Spec) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--config-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--config-ca %s: no PEM certificates", s.CAFile)
		}
		tc.RootCAs = pool
	}
	if (s.CertFile == "") != (s.KeyFile == "") {
		return nil, fmt.Errorf("--config-cert and --config-key go together")
	}
	if s.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("--config-cert/--config-key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// RedactEndpoint hides the password of an endpoint's user:password@, with
// or without a scheme, for errors and logs.
func RedactEndpoint(e string) string {
	if strings.Contains(e, "://") {
		return config.RedactURL(e)
	}
	if at := strings.LastIndex(e, "@"); at >= 0 {
		if user, _, ok := strings.Cut(e[:at], ":"); ok {
			return user + ":REDACTED" + e[at:]
		}
	}
	return e
}

// redactEndpoints is RedactEndpoint for a list, as errors print it.
func redactEndpoints(eps []string) string {
	out := make([]string, len(eps))
	for i, e := range eps {
		out[i] = RedactEndpoint(e)
	}
	return "[" + strings.Join(out, " ") + "]"
}

// SplitEndpoints parses a comma-separated endpoint list.
func SplitEndpoints(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}
