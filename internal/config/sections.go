package config

import (
	"cmp"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The original Hector's v2 schema spreads settings over sections that
// Hector keeps in one place: databases with storage (or server.tasks and
// server.sessions) name what database.url says, and server.observability is
// observability. Those rules read more than one section, so they run on the
// assembled configuration (sections), not in the decoder, and cost the same
// whatever the number of agents.

// sectionNorm is the result of the cross-section normalisations: errors,
// warnings, and the positions of the canonical paths they filled.
type sectionNorm struct {
	errs, notes Errors
	pos         Positions
	moved       map[string]string // canonical path prefix -> where it was written
	lookup      posLookup
	chosen      string // the databases entry read into database.url
}

func (s *sectionNorm) at(path string) Pos {
	p, _ := s.lookup(path)
	return p
}

func (s *sectionNorm) fail(path, format string, args ...any) {
	p := s.at(path)
	s.errs = append(s.errs, Error{Path: path, Line: p.Line, Column: p.Col, Message: fmt.Sprintf(format, args...)})
}

func (s *sectionNorm) warn(path, format string, args ...any) {
	p := s.at(path)
	s.notes = append(s.notes, Error{Path: path, Line: p.Line, Column: p.Col, Message: fmt.Sprintf(format, args...)})
}

// normalizeSections applies the cross-section normalisations to cfg, which
// must not share the sections it changes with a cache (assemble copies
// them). The result's lookup also knows the canonical paths.
func normalizeSections(cfg *Config, pos posLookup) *sectionNorm {
	s := &sectionNorm{pos: Positions{}, moved: map[string]string{}, lookup: pos}
	s.observability(cfg)
	s.databases(cfg)
	s.builtins(cfg)
	if len(s.pos) > 0 || len(s.moved) > 0 {
		s.lookup = s.positions(pos)
	}
	return s
}

// originalBuiltins are the original Hector's built-in tools, which an
// agent could list without defining them.
var originalBuiltins = map[string]bool{"search": true, "write_file": true, "read_file": true, "execute_command": true,
	"search_replace": true, "todo_write": true, "apply_patch": true, "grep_search": true}

// builtins drops an agent's reference to one of the original Hector's
// built-in tools that the document does not define: Hector has no
// built-in tools, so the agent runs without it, and a warning says so.
func (s *sectionNorm) builtins(cfg *Config) {
	for name, a := range cfg.Agents {
		if !slices.ContainsFunc(a.Tools, func(t string) bool { return originalBuiltins[t] && !hasKey(cfg.Tools, t) }) {
			continue
		}
		kept := make([]string, 0, len(a.Tools)) // [] as a migrated tools: [] decodes
		for i, t := range a.Tools {
			if originalBuiltins[t] && !hasKey(cfg.Tools, t) {
				s.warn(fmt.Sprintf("%s.tools[%d]", childPath("agents", name), i),
					"%s is a built-in tool of the original Hector, which Hector does not have: the agent runs without it (define tools.%s to give it one)", t, t)
				continue
			}
			kept = append(kept, t)
		}
		a.Tools = kept // a new slice: the parsed one may be a cache's
		cfg.Agents[name] = a
	}
}

// positions answers for the canonical paths: those set here, then those
// under a moved section at their old place.
func (s *sectionNorm) positions(pos posLookup) posLookup {
	return func(path string) (Pos, bool) {
		if p, ok := pos(path); ok {
			return p, true
		}
		if p, ok := s.pos[path]; ok {
			return p, true
		}
		for now, was := range s.moved {
			if path == now || strings.HasPrefix(path, now+".") {
				return pos(was + strings.TrimPrefix(path, now))
			}
		}
		return Pos{}, false
	}
}

func (s *sectionNorm) observability(cfg *Config) {
	old := cfg.Server.Observability
	if old == nil {
		return
	}
	cfg.Server.Observability = nil
	if !reflect.ValueOf(cfg.Observability).IsZero() {
		s.fail("server.observability", "observability is also set: server.observability is the original Hector's place for it; write observability only")
		return
	}
	cfg.Observability = *old
	s.moved["observability"] = "server.observability"
	s.warn("server.observability", "the original Hector's place for observability: read as observability")
}

// stores lists where tasks and sessions were said to be kept, by path.
func stores(cfg *Config) (paths []string, list []LegacyStore) {
	for _, st := range []struct {
		path string
		s    LegacyStore
	}{{"storage.tasks", cfg.Storage.Tasks}, {"storage.sessions", cfg.Storage.Sessions},
		{"server.tasks", cfg.Server.Tasks}, {"server.sessions", cfg.Server.Sessions}} {
		if st.s.set() {
			paths, list = append(paths, st.path), append(list, st.s)
		}
	}
	return paths, list
}

// databases reads databases and the stores that name one into database.url.
func (s *sectionNorm) databases(cfg *Config) {
	paths, list := stores(cfg)
	if len(cfg.Databases) == 0 && len(list) == 0 {
		return
	}
	dbs := cfg.Databases
	cfg.Databases, cfg.Storage, cfg.Server.Tasks, cfg.Server.Sessions = nil, LegacyStorage{}, LegacyStore{}, LegacyStore{}
	chosen, from := "", ""
	for i, st := range list {
		switch st.Backend {
		case "", "sql":
		case "inmemory", "memory":
			s.warn(paths[i]+".backend", "%q: Hector keeps tasks and sessions in its database (database.url), so they outlive a restart", st.Backend)
			continue
		default:
			s.fail(paths[i]+".backend", "unknown backend %q: want sql", st.Backend)
			continue
		}
		switch {
		case st.Database == "":
			s.fail(paths[i]+".database", "required with backend sql: the name of a database in databases")
		case !hasKey(dbs, st.Database):
			s.fail(paths[i]+".database", "unknown database %q%s", st.Database, known(dbs))
		case chosen == st.Database:
		case chosen != "":
			s.fail(paths[i]+".database", "names database %q but %s names %q: Hector keeps tasks and sessions in one database", st.Database, from, chosen)
		default:
			chosen, from = st.Database, paths[i]+".database"
		}
	}
	if chosen == "" && len(list) == 0 && len(dbs) == 1 {
		for name := range dbs {
			chosen, from = name, childPath("databases", name)
		}
	}
	if chosen == "" {
		if len(dbs) > 1 && len(list) == 0 {
			s.fail("databases", "%d databases but nothing names one for tasks and sessions: set storage.tasks.database and storage.sessions.database", len(dbs))
		}
		return
	}
	s.database(cfg, chosen, from, dbs[chosen])
}

func hasKey[T any](m map[string]T, k string) bool { _, ok := m[k]; return ok }

func known(dbs map[string]LegacyDatabase) string {
	if len(dbs) == 0 {
		return ": databases is empty"
	}
	return " (databases has " + strings.Join(sortedKeys(dbs), ", ") + ")"
}

// database sets database.url from the chosen database.
func (s *sectionNorm) database(cfg *Config, name, from string, db LegacyDatabase) {
	p := childPath("databases", name)
	if cfg.Database.URL != "" {
		s.fail(p, "database.url is also set: databases is the original Hector's way to say it; write database.url only")
		return
	}
	u, err := legacyURL(db)
	if err != nil {
		s.fail(p+".driver", "%v", err)
		return
	}
	cfg.Database.URL, s.chosen = u, name
	at := s.at(p)
	s.pos["database"], s.pos["database.url"] = at, at
	s.warn(p, "read as database.url %s (named by %s)", RedactURL(u), from)
}

// legacyURL builds the database URL of a databases entry.
func legacyURL(db LegacyDatabase) (string, error) {
	port := ""
	if db.Port != 0 {
		port = strconv.Itoa(db.Port)
	}
	return databaseURL(map[string]string{"driver": db.Driver, "host": db.Host, "port": port, "database": db.Database,
		"user": db.User, "password": db.Password, "ssl_mode": db.SSLMode}, false)
}

// databaseURL builds a database URL from a databases entry's fields,
// escaping each part. With refs, a ${VAR} reference is kept as written (a
// migration's output; its value then goes into the URL as it is, so it
// must be percent-encoded where it holds @, :, / or ?).
func databaseURL(f map[string]string, refs bool) (string, error) {
	esc := func(s string, escape func(string) string) string {
		var b strings.Builder
		for s != "" {
			i := strings.Index(s, "${")
			end := strings.IndexByte(s[max(i, 0):], '}')
			if !refs || i < 0 || end < 0 {
				b.WriteString(escape(s))
				break
			}
			b.WriteString(escape(s[:i]) + s[i:i+end+1])
			s = s[i+end+1:]
		}
		return b.String()
	}
	switch f["driver"] {
	case "sqlite", "sqlite3":
		if f["database"] == "" {
			return "", fmt.Errorf("sqlite needs database: the file path")
		}
		return "sqlite://" + f["database"], nil
	case "postgres", "postgresql":
	case "":
		return "", fmt.Errorf("required: postgres or sqlite")
	default:
		return "", fmt.Errorf("unsupported driver %q: Hector stores in postgres or sqlite", f["driver"])
	}
	user := func(s string) string { return url.User(s).String() }
	password := func(s string) string { return strings.TrimPrefix(url.UserPassword("", s).String(), ":") }
	u := "postgres://"
	switch {
	case f["password"] != "":
		u += esc(f["user"], user) + ":" + esc(f["password"], password) + "@"
	case f["user"] != "":
		u += esc(f["user"], user) + "@"
	}
	u += net.JoinHostPort(cmp.Or(f["host"], "localhost"), cmp.Or(f["port"], "5432")) + "/" + esc(f["database"], url.PathEscape)
	if f["ssl_mode"] != "" {
		u += "?sslmode=" + esc(f["ssl_mode"], url.QueryEscape)
	}
	return u, nil
}

// DatabaseOf returns the database URL a document names: database.url, or
// the original Hector's databases as Parse reads them; "" when it names
// none. Only what that needs is read, so variables the rest of the
// document uses (an LLM's key) may be unset where it runs (hector backup).
func DatabaseOf(data []byte, env LookupEnv) (string, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return "", syntaxError(err)
	}
	if len(root.Content) == 0 {
		return "", nil
	}
	d := &decoder{pos: Positions{}, env: env, keepUnset: true}
	cfg := &Config{}
	d.decode(&root, reflectValue(cfg), "")
	if cfg.Pointer != nil {
		return "", Errors{{Path: "config", Message: "the file is a pointer to the backend holding the configuration: name the database with --database"}}
	}
	if sn := normalizeSections(cfg, d.pos.lookup); sn.errs != nil {
		return "", sn.errs.sorted()
	}
	if m := envRef.FindStringSubmatch(cfg.Database.URL); m != nil {
		return "", Errors{{Path: "database.url", Message: "environment variable " + m[1] + " is not set"}}
	}
	return cfg.Database.URL, nil
}
