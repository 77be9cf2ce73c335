package observe

import (
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// Every hector_ metric the README's /metrics row names exists, and every
// hector_ metric is named there: once each kind of event is recorded, the
// scrape holds exactly the documented families.
func TestDocumentedMetricsExist(t *testing.T) {
	m := NewMetrics()
	m.Reload(Reload{Result: "applied", Source: "file:x", Version: 1, AppliedAt: time.Now(), ValidationErrors: 1})
	m.SourceError("file:x")
	m.AppReload("applied")
	m.BrokerRefused("unsigned")
	m.TaskAttempt("completed")
	m.PushResult(true)
	m.TaskStates([]string{"pending"}, func(string) (int, error) { return 0, nil })
	m.LLMCall(LLMCall{LLM: "l", Provider: "openai", Model: "m", Outcome: "ok", Elapsed: time.Millisecond, FirstText: time.Microsecond, InputTokens: 1, OutputTokens: 1})
	m.AgentTurn("", "a", "completed", time.Millisecond)
	m.ToolCall("", "t", "http", "ok", time.Millisecond)
	m.MCPServers(func() []MCPStatus { return []MCPStatus{{Tool: "files", Up: true}} })
	mux := http.NewServeMux()
	mux.HandleFunc("GET /x", func(http.ResponseWriter, *http.Request) {})
	m.Instrument(mux).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))

	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var exported []string
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "hector_") {
			exported = append(exported, f.GetName())
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `GET /metrics` \\|.*$").Find(readme)
	var documented []string
	for _, name := range regexp.MustCompile(`hector_[a-z0-9_]+`).FindAllString(string(row), -1) {
		if !slices.Contains(documented, name) {
			documented = append(documented, name)
		}
	}
	slices.Sort(exported)
	slices.Sort(documented)
	for _, name := range documented {
		if !slices.Contains(exported, name) {
			t.Errorf("the README documents %s, which is not exported", name)
		}
	}
	for _, name := range exported {
		if !slices.Contains(documented, name) {
			t.Errorf("%s is exported but not in the README's /metrics row", name)
		}
	}
}
