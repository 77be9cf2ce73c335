package config

import (
	"reflect"
	"sort"
)

// Change lists what a new configuration does to one kind of entity. For the
// named collections (llms, agents, tools) the lists hold entity names; for
// the sections (server, database, logger, queue, a2a, observability) Changed holds the keys
// that differ.
type Change struct {
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
	Changed []string `json:"changed,omitempty"`
}

// Empty reports whether c changes nothing.
func (c Change) Empty() bool { return len(c.Added)+len(c.Removed)+len(c.Changed) == 0 }

// Plan is the per-kind difference between two configurations; kinds without
// changes are absent.
type Plan map[string]Change

// Diff plans the move from old (nil at startup: everything is added) to new.
func Diff(old, new *Config) Plan {
	if old == nil {
		old = &Config{}
	}
	p := Plan{}
	add := func(kind string, c Change) {
		if !c.Empty() {
			p[kind] = c
		}
	}
	add("llms", diffMap(old.LLMs, new.LLMs))
	add("agents", diffMap(old.Agents, new.Agents))
	add("tools", diffMap(old.Tools, new.Tools))
	add("server", diffFields(old.Server, new.Server))
	add("database", diffFields(old.Database, new.Database))
	add("logger", diffFields(old.Logger, new.Logger))
	add("queue", diffFields(old.Queue, new.Queue))
	add("a2a", diffFields(old.A2A, new.A2A))
	add("observability", diffFields(old.Observability, new.Observability))
	if old.Name != new.Name {
		add("name", Change{Changed: []string{"name"}})
	}
	return p
}

func diffMap[T interface{ Equal(T) bool }](old, new map[string]T) Change {
	var c Change
	for name, v := range new {
		o, ok := old[name]
		switch {
		case !ok:
			c.Added = append(c.Added, name)
		case !o.Equal(v):
			c.Changed = append(c.Changed, name)
		}
	}
	for name := range old {
		if _, ok := new[name]; !ok {
			c.Removed = append(c.Removed, name)
		}
	}
	sort.Strings(c.Added)
	sort.Strings(c.Removed)
	sort.Strings(c.Changed)
	return c
}

// diffFields lists the yaml keys of a section struct whose values differ.
func diffFields(old, new any) Change {
	var c Change
	ov, nv := reflect.ValueOf(old), reflect.ValueOf(new)
	for i := 0; i < ov.NumField(); i++ {
		if !reflect.DeepEqual(ov.Field(i).Interface(), nv.Field(i).Interface()) {
			c.Changed = append(c.Changed, ov.Type().Field(i).Tag.Get("yaml"))
		}
	}
	return c
}

// PlanFrom plans the move to d from cur, the configuration now applied (nil
// at startup), parsed from the document whose hash is curHash. The plan is
// always Diff(cur, d.Config); when a Parser made d by patching exactly that
// document, it is found by comparing the one entity whose text changed
// (DiffOne), so a one-agent edit of a large document costs one agent.
func (d *Document) PlanFrom(cur *Config, curHash string) Plan {
	if d.patch != nil && cur != nil && d.patch.base == curHash {
		return DiffOne(cur, d.Config, d.patch.section, d.patch.entity)
	}
	return Diff(cur, d.Config)
}

// DiffOne is Diff for two configurations known to differ at most in one
// entity (section "llms", "agents" or "tools", and its name): it compares
// that entity alone. Document.Patched says when that holds, and PlanFrom
// uses it then.
func DiffOne(old, new *Config, section, name string) Plan {
	p := Plan{}
	add := func(c Change) {
		if !c.Empty() {
			p[section] = c
		}
	}
	switch section {
	case "llms":
		add(diffOne(old.LLMs, new.LLMs, name))
	case "agents":
		add(diffOne(old.Agents, new.Agents, name))
	case "tools":
		add(diffOne(old.Tools, new.Tools, name))
	default:
		return Diff(old, new)
	}
	return p
}

func diffOne[T interface{ Equal(T) bool }](old, new map[string]T, name string) Change {
	o, inOld := old[name]
	n, inNew := new[name]
	var c Change
	switch {
	case inNew && !inOld:
		c.Added = []string{name}
	case inOld && !inNew:
		c.Removed = []string{name}
	case inOld && inNew && !o.Equal(n):
		c.Changed = []string{name}
	}
	return c
}
