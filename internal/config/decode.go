package config

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Pos is a 1-based line and column in the source document.
type Pos struct {
	Line int `json:"line"`
	Col  int `json:"column"`
}

// Positions maps a field path ("agents.support.llm") to where it was written.
type Positions map[string]Pos

// posLookup finds where a path was written.
type posLookup func(path string) (Pos, bool)

func (p Positions) lookup(path string) (Pos, bool) {
	pos, ok := p[path]
	return pos, ok
}

// LookupEnv resolves ${VAR} references; os.LookupEnv has this signature.
type LookupEnv func(name string) (string, bool)

// decoder fills Go values from a YAML node tree, collecting every error
// instead of stopping at the first.
type decoder struct {
	pos    Positions
	errs   Errors // errors, then (see done) the normalisations' warnings
	warns  Errors // normalisations (normalize.go), as warnings
	env    LookupEnv
	visits int // nodes decoded, aliases counted each time they are followed
	// migrate makes the normalisations also rewrite the nodes into the
	// canonical document (hector config migrate).
	migrate bool
	// keepUnset keeps a value whose variable is unset as written, instead
	// of failing: Migrate and DatabaseOf run where the secrets may not be.
	keepUnset bool
}

// warn records a normalisation, bounded like errors.
func (d *decoder) warn(e Error) {
	e.warn = true
	if len(d.warns) < maxDecodeErrors {
		d.warns = append(d.warns, e)
	}
}

// done returns what the decode found: its errors, then its warnings, which
// travel with the errors through every parse path until finish parts them.
func (d *decoder) done() Errors { return append(d.errs, d.warns...) }

// maxVisits bounds the work of one decode so that YAML aliases cannot expand
// a small document into a huge one.
const maxVisits = 1_000_000

var (
	durationType = reflect.TypeOf(Duration(0))
	approvalType = reflect.TypeOf(Approval(nil))
)

// oldDefault matches the original Hector's ${NAME:default}.
var oldDefault = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*):([^-}][^}]*)?\}`)

// plainKey reports whether a key can stand unquoted in a path: letters,
// digits, '_' and '-'.
func plainKey(key string) bool {
	if key == "" {
		return false
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; !isAlnum(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	e := Error{Path: path, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.add(e)
}

// add records an error, bounded.
func (d *decoder) add(e Error) {
	if len(d.errs) < maxDecodeErrors {
		d.errs = append(d.errs, e)
	} else {
		d.errs[len(d.errs)-1] = Error{Path: "(document)", Message: "over 10000 errors: the rest were not collected"}
	}
}

// childPath joins a map key or struct field onto path. Keys that are not
// plain identifiers are quoted so the path stays unambiguous.
func childPath(path, key string) string {
	if !plainKey(key) {
		key = strconv.Quote(key)
		return path + "[" + key + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.visits++; d.visits == maxVisits {
		d.fail(n, pathOrRoot(path), "the document expands to more than %d values through aliases", maxVisits)
	}
	if d.visits >= maxVisits {
		return
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	if path != "" {
		d.pos[path] = Pos{n.Line, n.Column}
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // absent value: keep the zero value
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
		return
	}
	switch {
	case v.Type() == approvalType && n.Kind == yaml.ScalarNode:
		d.decodeApproval(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	default:
		d.decodeScalar(n, v, path)
	}
}

// fieldsOf lists a struct type's fields by their yaml key.
func fieldsOf(t reflect.Type) (map[string]int, []string) {
	idx := map[string]int{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		name := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		idx[name] = i
		names = append(names, name)
	}
	return idx, names
}

// scalarForm is a struct that may also be written as one plain value,
// which fills the field scalarKey names (an API key written as just its
// key). markScalar records that the short form was used.
type scalarForm interface {
	scalarKey() string
	markScalar()
}

// shortField returns the field a scalar fills when t has a short form.
func shortField(t reflect.Type) (reflect.StructField, bool) {
	sf, ok := reflect.New(t).Interface().(scalarForm)
	if !ok {
		return reflect.StructField{}, false
	}
	idx, _ := fieldsOf(t)
	return t.Field(idx[sf.scalarKey()]), true
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if f, ok := shortField(v.Type()); n.Kind == yaml.ScalarNode && ok {
		d.decode(n, v.FieldByIndex(f.Index), path)
		v.Addr().Interface().(scalarForm).markScalar()
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, pathOrRoot(path), "expected a mapping, got %s", kindName(n))
		return
	}
	idx, names := fieldsOf(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		p := childPath(path, key)
		if seen[key] {
			d.fail(k, p, "duplicate key %q", key)
			continue
		}
		seen[key] = true
		fi, ok := idx[key]
		if !ok {
			msg := fmt.Sprintf("unknown key %q", key)
			if s := suggest(key, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.fail(k, p, "%s", msg)
			continue
		}
		d.pos[p] = Pos{k.Line, k.Column}
		d.decode(val, v.Field(fi), p)
		d.pos[p] = Pos{k.Line, k.Column} // errors about a field point at its key
	}
	if nz, ok := v.Addr().Interface().(normalizer); ok {
		nz.normalize(&norm{d: d, n: n, path: path})
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, pathOrRoot(path), "expected a mapping, got %s", kindName(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k, pathOrRoot(path), "map keys must be strings")
			continue
		}
		p := childPath(path, k.Value)
		key := reflect.ValueOf(k.Value)
		if v.MapIndex(key).IsValid() {
			d.fail(k, p, "duplicate key %q", k.Value)
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, elem, p)
		d.pos[p] = Pos{k.Line, k.Column}
		v.SetMapIndex(key, elem)
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.MappingNode && v.Type().Elem().Kind() == reflect.Struct {
		// One entity written without the list: jwt: {jwks_url: …}.
		s := reflect.MakeSlice(v.Type(), 1, 1)
		d.decode(n, s.Index(0), path)
		v.Set(s)
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n, pathOrRoot(path), "expected a list, got %s", kindName(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(s)
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "expected a single value, got %s", kindName(n))
		return
	}
	if oldDefault.MatchString(n.Value) {
		d.warn(Error{Path: path, Line: n.Line, Column: n.Column, Message: "${NAME:default} is the original Hector's spelling of ${NAME:-default}: read so"})
		if d.migrate {
			n.Value = oldDefault.ReplaceAllString(n.Value, "$${$1:-$2}")
		}
	}
	s, err := expandEnv(n.Value, d.env)
	if err != nil && d.keepUnset {
		s, err = n.Value, nil
	}
	if err != nil {
		d.fail(n, path, "%v", err)
		return
	}
	if v.Type() == durationType {
		dur, err := time.ParseDuration(s)
		if err != nil || dur < 0 {
			d.fail(n, path, "invalid duration %q: use a positive value with a unit, like 30s or 2m", s)
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := parseBool(s)
		if err != nil {
			d.fail(n, path, "expected true or false, got %q", s)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			d.fail(n, path, "expected an integer, got %q", s)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.fail(n, path, "expected a number, got %q", s)
			return
		}
		v.SetFloat(f)
	default:
		d.fail(n, path, "unsupported value") // unreachable for the schema types
	}
}

// decodeApproval reads require_approval written as true or false; the
// list form decodes as a list of strings.
func (d *decoder) decodeApproval(n *yaml.Node, v reflect.Value, path string) {
	var b bool
	d.decodeScalar(n, reflect.ValueOf(&b).Elem(), path)
	if b {
		v.Set(reflect.ValueOf(Approval{"*"}))
	}
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "yes", "on":
		return true, nil
	case "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean")
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "an unsupported node"
}

func pathOrRoot(p string) string {
	if p == "" {
		return "(document)"
	}
	return p
}

// suggest returns the candidate closest to s when it is close enough to be a
// likely typo, or "".
func suggest(s string, candidates []string) string {
	best, bestDist := "", math.MaxInt
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	for _, c := range sorted {
		if dist := levenshtein(strings.ToLower(s), strings.ToLower(c)); dist < bestDist {
			best, bestDist = c, dist
		}
	}
	limit := 2
	if len(s) > 8 {
		limit = 3
	}
	if bestDist <= limit && bestDist < len(s) {
		return best
	}
	return ""
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
