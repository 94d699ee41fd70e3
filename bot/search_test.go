package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/latchhq/latch/workflow"
)

// bigCatalogue has n items under three policies, one visible only to the
// dba group.
func bigCatalogue(t testing.TB, n int) (*workflow.Catalogue, map[string]*workflow.Policy) {
	t.Helper()
	kinds := []string{"database", "cluster", "bucket", "console", "group"}
	envs := []string{"prod", "staging", "dev"}
	items := make([]workflow.Item, n)
	for i := range items {
		kind, env := kinds[i%len(kinds)], envs[i%len(envs)]
		items[i] = workflow.Item{
			ID:          fmt.Sprintf("%s-%s-%05d", env, kind, i),
			Name:        fmt.Sprintf("%s %s %d %s", strings.ToUpper(env[:1])+env[1:], kind, i, strings.Repeat("x", i%40)),
			Description: fmt.Sprintf("Access to %s %d in %s, owned by team %d", kind, i, env, i%17),
			Labels:      map[string]string{"env": env, "team": fmt.Sprintf("team-%d", i%17)},
			Kind:        workflow.KindEntitlement,
			Policy:      []string{"open", "dba-only", "open2", "open"}[i%4],
			Targets:     []workflow.Target{{Connector: "pg", Entitlement: "role"}},
		}
	}
	cat, err := workflow.NewCatalogue(items)
	if err != nil {
		t.Fatal(err)
	}
	rules := workflow.DurationRules{Default: time.Hour, Min: time.Minute, Max: 8 * time.Hour}
	return cat, map[string]*workflow.Policy{
		"open":     {Name: "open", Duration: rules},
		"open2":    {Name: "open2", Duration: rules},
		"dba-only": {Name: "dba-only", Duration: rules, VisibleTo: []string{"dba"}},
	}
}

func TestSearchRanking(t *testing.T) {
	cat, err := workflow.NewCatalogue([]workflow.Item{
		{ID: "grafana", Name: "Grafana editor", Description: "dashboards", Kind: workflow.KindEntitlement, Policy: "p", Targets: []workflow.Target{{Connector: "c", Entitlement: "e"}}},
		{ID: "prod-db", Name: "Production database", Description: "the main postgres", Labels: map[string]string{"env": "prod"}, Kind: workflow.KindEntitlement, Policy: "p", Targets: []workflow.Target{{Connector: "c", Entitlement: "e"}}},
		{ID: "db", Name: "Staging DB", Kind: workflow.KindEntitlement, Policy: "p", Targets: []workflow.Target{{Connector: "c", Entitlement: "e"}}},
		{ID: "billing", Name: "Billing console read-only", Description: "prod billing data", Kind: workflow.KindEntitlement, Policy: "p", Targets: []workflow.Target{{Connector: "c", Entitlement: "e"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ix := NewIndex(cat)
	ids := func(items []workflow.Item) []string {
		var out []string
		for _, it := range items {
			out = append(out, it.ID)
		}
		return out
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"grafana", "prod-db", "db", "billing"}},
		{"db", []string{"db", "prod-db"}},        // exact id first, then an id containing it
		{"prod", []string{"prod-db", "billing"}}, // name prefix, then description
		{"DATA", []string{"prod-db", "billing"}}, // a word of the name, then description
		{"env=prod", []string{"prod-db"}},        // a label
		{"billing read", []string{"billing"}},    // every word must match
		{"postgres prod", []string{"prod-db"}},   // description and name
		{"nothing-like-it", nil},
	}
	for _, tt := range tests {
		if got := ids(ix.Search(tt.query, 100, nil)); !slices.Equal(got, tt.want) {
			t.Errorf("Search(%q) = %v, want %v", tt.query, got, tt.want)
		}
	}
	if got := ix.Search("", 2, nil); len(got) != 2 {
		t.Errorf("limit 2 gave %d", len(got))
	}
	hideProd := func(it workflow.Item) bool { return it.ID != "prod-db" }
	if got := ids(ix.Search("prod", 100, hideProd)); !slices.Equal(got, []string{"billing"}) {
		t.Errorf("Search with prod-db hidden = %v", got)
	}
}

// testBot is a bot with a static directory and no Slack connection, for
// the handlers that answer in the ack.
func testBot(t testing.TB, cat *workflow.Catalogue, policies map[string]*workflow.Policy) *Bot {
	t.Helper()
	dir, err := workflow.NewStaticDirectory([]workflow.User{
		{SlackID: "UALICE", Email: "alice@example.com"},
		{SlackID: "UDBA", Email: "dba@example.com", Groups: []string{"dba"}},
	}, []workflow.Group{{Name: "dba"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{API: slack.New("xoxb-unused"), Requests: noRequests{}, Catalogue: cat, Policies: policies, Directory: dir,
		Clock: workflow.NewFakeClock(now)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type noRequests struct{}

func (noRequests) Request(string) (workflow.Request, bool, error) {
	return workflow.Request{}, false, nil
}
func (noRequests) RequestsOf(string, func(workflow.Request) error) error { return nil }
func (noRequests) OpenSummaries(func(workflow.Summary) error) error      { return nil }

func TestSuggestHidesWhatOneCannotSee(t *testing.T) {
	cat, policies := bigCatalogue(t, 300)
	b := testBot(t, cat, policies)
	suggest := func(user, typed string) []*slack.OptionBlockObject {
		return b.suggest(context.Background(), slack.InteractionCallback{
			Type: slack.InteractionTypeBlockSuggestion, ActionID: actionItem, Value: typed, User: slack.User{ID: user},
		}).Options
	}
	alice, dba := suggest("UALICE", "prod"), suggest("UDBA", "prod")
	if len(alice) == 0 || len(alice) >= len(dba) {
		t.Fatalf("alice sees %d, the dba %d; want fewer for alice", len(alice), len(dba))
	}
	for _, o := range alice {
		it, _ := cat.Item(o.Value)
		if it.Policy == "dba-only" {
			t.Errorf("alice is offered %s, which only the dba group may see", it.ID)
		}
	}
	if got := len(suggest("UDBA", "")); got != maxOptions {
		t.Errorf("empty query gave %d options, want %d", got, maxOptions)
	}
	if got := suggest("UNKNOWN", "prod"); len(got) != 0 {
		t.Errorf("a stranger is offered %d items", len(got))
	}
}

// BenchmarkSuggest times the type-ahead answer over 10,000 items: ranking,
// visibility and the options, everything the ack waits for.
func BenchmarkSuggest(b *testing.B) {
	cat, policies := bigCatalogue(b, 10000)
	bot := testBot(b, cat, policies)
	queries := []string{"", "p", "prod", "prod data", "team-3", "staging console 12", "bucket 9999", "zzz", "x", "owned team 5"}
	ctx := context.Background()
	durations := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cb := slack.InteractionCallback{Type: slack.InteractionTypeBlockSuggestion, ActionID: actionItem,
			Value: queries[i%len(queries)], User: slack.User{ID: []string{"UALICE", "UDBA"}[i%2]}}
		start := time.Now()
		bot.suggest(ctx, cb)
		durations = append(durations, time.Since(start))
	}
	b.StopTimer()
	reportPercentiles(b, durations, "ms")
}

// reportPercentiles reports the p50 and p99 of durations.
func reportPercentiles(b *testing.B, durations []time.Duration, unit string) {
	if len(durations) == 0 {
		return
	}
	sort.Slice(durations, func(i, j int) bool { return durations[i] < durations[j] })
	scale := float64(time.Millisecond)
	at := func(q float64) float64 { return float64(durations[int(q*float64(len(durations)-1))]) / scale }
	b.ReportMetric(at(0.50), "p50-"+unit)
	b.ReportMetric(at(0.99), "p99-"+unit)
}

func TestPayloadSize(t *testing.T) {
	resp := &slack.OptionsResponse{}
	for i := range 100 {
		it := workflow.Item{ID: fmt.Sprintf("item-%d", i), Name: strings.Repeat(`<&>"\`, 30), Description: strings.Repeat("é\n", 40)}
		resp.Options = append(resp.Options, itemOption(it))
	}
	data, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	if got := payloadSize(resp); got < len(data) {
		t.Errorf("payloadSize = %d, less than the %d bytes JSON takes", got, len(data))
	}
}
