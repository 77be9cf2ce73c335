package config

import (
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// A pointer is a configuration file that names the backend holding the
// configuration instead of holding it (the original Hector's
// "config: {provider: consul, address: …, key: …}"). hector serve reads it
// at startup and then loads and watches that backend, as if its flags had
// been given.

// pointerKeys are the top-level keys a pointer document may hold.
var pointerKeys = []string{"config", "version", "name"}

// ReadPointer returns the pointer data holds, or nil when data is not a
// pointer (it has no top-level config key). A pointer that holds anything
// else, or names no backend, is an error naming the key: its other sections
// would otherwise be silently ignored.
func ReadPointer(data []byte, env LookupEnv) (*Pointer, Errors) {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil, nil // not a pointer: Parse reports what it is
	}
	m := root.Content[0]
	if keyIndex(m, "config") < 0 {
		return nil, nil
	}
	d := &decoder{pos: Positions{}, env: env}
	cfg := &Config{}
	d.decode(&root, reflectValue(cfg), "")
	errs, _ := partWarnings(d.done())
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; !slices.Contains(pointerKeys, k.Value) && hasKey(configFields, k.Value) { // an unknown key has its error
			errs = append(errs, Error{Path: childPath("", k.Value), Line: k.Line, Column: k.Column,
				Message: "a file with config: is a pointer to the backend holding the configuration, and holds nothing else: put " + k.Value + " in the document at that backend"})
		}
	}
	p := cfg.Pointer
	v := &validator{pos: d.pos.lookup}
	if p != nil {
		v.oneOf("config.provider", p.Provider, "file", "consul", "etcd", "zookeeper", "database")
		if p.Provider == "" {
			v.fail("config.provider", "required: file, consul, etcd, zookeeper or database")
		}
		if p.Address != "" && len(p.Endpoints) > 0 {
			v.fail("config.endpoints", "set address (one) or endpoints (several), not both")
		}
	} else {
		v.fail("config", "expected a mapping with provider, key and address or endpoints")
	}
	if errs = append(errs, v.errs...); errs != nil {
		return nil, errs.sorted()
	}
	return p, nil
}

// Addresses is the pointer's backend addresses, comma-separated as
// --config-endpoints takes them ("" when it names none).
func (p *Pointer) Addresses() string {
	if p.Address != "" {
		return p.Address
	}
	return strings.Join(p.Endpoints, ",")
}
