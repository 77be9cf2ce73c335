package test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const (
	rulesFile     = "../../prometheus/hector-rules.yaml"
	dashboardFile = "../../grafana/hector-dashboard.json"
	readmeFile    = "../../../README.md"
)

var metricName = regexp.MustCompile(`hector_[a-z0-9_]+`)

// documentedMetrics returns the hector_ names of the README's GET /metrics row.
func documentedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "| `GET /metrics`") {
			for _, n := range metricName.FindAllString(sc.Text(), -1) {
				names[n] = true
			}
		}
	}
	if len(names) < 10 {
		t.Fatalf("README.md's GET /metrics row names %d hector_ metrics: %v", len(names), names)
	}
	return names
}

// usedMetrics returns the hector_ metric names of a PromQL expression, the
// _bucket, _sum and _count series of a histogram or summary by the
// family's name. Recorded series (hector:...) are not metrics of Hector.
func usedMetrics(expr string) []string {
	var out []string
	for _, n := range metricName.FindAllString(expr, -1) {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			n = strings.TrimSuffix(n, suffix)
		}
		out = append(out, n)
	}
	return out
}

type ruleFile struct {
	Groups []struct {
		Name     string `json:"name"`
		Interval string `json:"interval,omitempty"`
		Rules    []rule `json:"rules"`
	} `json:"groups"`
}

type rule struct {
	Record      string            `json:"record,omitempty"`
	Alert       string            `json:"alert,omitempty"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.UnmarshalStrict(b, &rf); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	return rf
}

// TestPrometheusRules: every rule is a record or an alert with an
// expression; alerts have a severity and a summary; every hector_ metric is
// one the README documents; the alerts cover what an operator must hear of.
func TestPrometheusRules(t *testing.T) {
	known := documentedMetrics(t)
	rf := readRules(t)
	recorded := map[string]bool{}
	alerted := map[string]bool{}
	names := map[string]bool{}
	for _, g := range rf.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q has no name or no rules", g.Name)
		}
		for _, r := range g.Rules {
			id := r.Record + r.Alert
			if (r.Record == "") == (r.Alert == "") {
				t.Errorf("group %s: rule %q must be a record or an alert, not both or neither", g.Name, id)
			}
			if names[id] && r.Alert == "" {
				t.Errorf("recording rule %s appears twice", id)
			}
			names[id] = true
			if strings.TrimSpace(r.Expr) == "" {
				t.Errorf("rule %s has no expr", id)
			}
			if r.Record != "" && !strings.HasPrefix(r.Record, "hector:") {
				t.Errorf("recording rule %s: name it hector:LEVEL:OPERATION", r.Record)
			}
			if r.Record != "" {
				recorded[r.Record] = true
			}
			if r.Alert != "" {
				if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
					t.Errorf("alert %s: severity %q, want critical, warning or info", id, r.Labels["severity"])
				}
				if r.Annotations["summary"] == "" {
					t.Errorf("alert %s has no summary", id)
				}
			}
			for _, m := range usedMetrics(r.Expr) {
				if !known[m] {
					t.Errorf("rule %s uses %s, which README.md's /metrics row does not list", id, m)
				}
				if r.Alert != "" {
					alerted[m] = true
				}
			}
		}
	}
	// Alerts on recorded series count for the metrics those are made of.
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record == "" {
				continue
			}
			for _, g2 := range rf.Groups {
				for _, a := range g2.Rules {
					if a.Alert != "" && strings.Contains(a.Expr, r.Record) {
						for _, m := range usedMetrics(r.Expr) {
							alerted[m] = true
						}
					}
				}
			}
		}
	}
	for _, m := range []string{
		"hector_config_reloads_total",           // reload rejections
		"hector_app_reloads_total",              // an app's rejections
		"hector_config_backend_errors_total",    // the source cannot be read
		"hector_llm_requests_total",             // the LLM error ratio
		"hector_agent_request_duration_seconds", // p99 turn latency
		"hector_tasks",                          // dead-lettered tasks growing
		"hector_a2a_push_notifications_total",   // push failures
	} {
		if !alerted[m] {
			t.Errorf("no alert uses %s", m)
		}
	}
	// Alerts use only recorded series that exist.
	recordedRef := regexp.MustCompile(`hector:[a-z0-9_:]+`)
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			for _, ref := range recordedRef.FindAllString(r.Expr, -1) {
				if !recorded[ref] {
					t.Errorf("rule %s uses %s, which no rule records", r.Record+r.Alert, ref)
				}
			}
		}
	}
}

// TestPromtoolChecksRules runs promtool check rules on the rules and on
// the dashboard's queries (as recording rules, Grafana's variables
// replaced), when promtool is installed (Debian: prometheus; or PROMTOOL).
func TestPromtoolChecksRules(t *testing.T) {
	promtool := os.Getenv("PROMTOOL")
	if promtool == "" {
		var err error
		if promtool, err = exec.LookPath("promtool"); err != nil {
			t.Skip("promtool is not installed (Debian package prometheus, or PROMTOOL=PATH): the rules' PromQL is not checked by Prometheus' own parser")
		}
	}
	if out, err := exec.Command(promtool, "check", "rules", rulesFile).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules %s: %v\n%s", rulesFile, err, out)
	}

	// The dashboard's queries, as recording rules of a file of their own.
	var rules []rule
	for i, q := range dashboardQueries(t, readDashboard(t)) {
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard:query_%d", i), Expr: grafanaToPromQL(q.expr)})
	}
	b, err := yaml.Marshal(map[string]any{"groups": []map[string]any{{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules on the dashboard's queries: %v\n%s\n%s", err, out, b)
	}
}

// grafanaToPromQL replaces Grafana's variables: intervals by 5m, the
// others (inside label matchers) by .*.
func grafanaToPromQL(expr string) string {
	for _, v := range []string{"$__rate_interval", "$__interval", "$__range"} {
		expr = strings.ReplaceAll(expr, v, "5m")
	}
	return regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`).ReplaceAllString(expr, ".*")
}

type panel struct {
	ID      int     `json:"id"`
	Type    string  `json:"type"`
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

type query struct {
	where, expr string
}

// dashboardQueries returns the PromQL of every panel target, rows'
// collapsed panels included.
func dashboardQueries(t *testing.T, d dashboard) []query {
	t.Helper()
	var out []query
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out = append(out, query{fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, tg.RefID), tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// TestGrafanaDashboard: panels have unique ids and titles and queries;
// every hector_ metric of a query or a variable is one the README
// documents; requests, reloads, models, turns, tools and tasks all have
// panels.
func TestGrafanaDashboard(t *testing.T) {
	known := documentedMetrics(t)
	d := readDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q title %q: want both", d.UID, d.Title)
	}
	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d appears twice", p.ID)
			}
			ids[p.ID] = true
			if p.Title == "" {
				t.Errorf("panel %d has no title", p.ID)
			}
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %d %q has no query", p.ID, p.Title)
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %d %q target %s has no expr", p.ID, p.Title, tg.RefID)
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)

	used := map[string]bool{}
	for _, q := range dashboardQueries(t, d) {
		for _, m := range usedMetrics(q.expr) {
			used[m] = true
			if !known[m] {
				t.Errorf("%s uses %s, which README.md's /metrics row does not list", q.where, m)
			}
		}
	}
	for _, v := range d.Templating.List {
		for _, m := range usedMetrics(string(v.Query)) {
			if !known[m] {
				t.Errorf("variable %s uses %s, which README.md's /metrics row does not list", v.Name, m)
			}
		}
	}
	for _, m := range []string{
		"hector_http_requests_total", "hector_config_reloads_total", "hector_app_reloads_total",
		"hector_llm_requests_total", "hector_llm_tokens_total", "hector_llm_request_duration_seconds",
		"hector_agent_requests_total", "hector_agent_request_duration_seconds",
		"hector_tool_calls_total", "hector_tasks", "hector_task_attempts_total",
	} {
		if !used[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
	var unused []string
	for m := range known {
		if !used[m] {
			unused = append(unused, m)
		}
	}
	sort.Strings(unused)
	if len(unused) > 0 {
		t.Logf("documented metrics without a panel: %v", unused)
	}
}

// TestMetricNamesAreChecked: the extraction the two tests above rely on.
func TestMetricNamesAreChecked(t *testing.T) {
	got := usedMetrics(`histogram_quantile(0.99, sum by (le) (rate(hector_llm_request_duration_seconds_bucket[5m]))) / hector:x:rate5m + hector_tasks{state="failed"} + hector_bogus_total`)
	want := []string{"hector_llm_request_duration_seconds", "hector_tasks", "hector_bogus_total"}
	if !slices.Equal(got, want) {
		t.Errorf("usedMetrics = %v, want %v", got, want)
	}
	if known := documentedMetrics(t); known["hector_bogus_total"] || !known["hector_tasks"] || !known["hector_tool_call_duration_seconds"] {
		t.Errorf("README.md's /metrics row read as %v", known)
	}
}
