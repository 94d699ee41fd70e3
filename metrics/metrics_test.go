package metrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// scrape is one read of /metrics, parsed.
type scrape map[string]*dto.MetricFamily

// scrapeMetrics reads and parses the metrics a server exposes.
func scrapeMetrics(t *testing.T, url string) scrape {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// metric finds the series of a family with the given label pairs ("name",
// "value", …), or nil.
func (s scrape) metric(name string, labels ...string) *dto.Metric {
	f := s[name]
	if f == nil {
		return nil
	}
	for _, m := range f.GetMetric() {
		if hasLabels(m, labels) {
			return m
		}
	}
	return nil
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
			return l.GetName() == pairs[i] && l.GetValue() == pairs[i+1]
		}) {
			return false
		}
	}
	return true
}

// value returns a counter's or gauge's value; a series not exposed yet
// reads 0, as a counter that never moved.
func (s scrape) value(name string, labels ...string) float64 {
	m := s.metric(name, labels...)
	switch {
	case m == nil:
		return 0
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	}
	return 0
}

// histogram returns a histogram's count and sum (zero if not exposed).
func (s scrape) histogram(name string, labels ...string) (uint64, float64) {
	m := s.metric(name, labels...)
	if m == nil || m.GetHistogram() == nil {
		return 0, 0
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

// fakeConnector is a target system in memory whose calls can fail.
type fakeConnector struct {
	mu            sync.Mutex
	grants        int
	revokes       int
	grantErr      error
	revokeFailing int // revokes that fail (transiently) before one works
}

func (f *fakeConnector) Grant(context.Context, workflow.Access) (workflow.Granted, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.grants++
	if f.grantErr != nil {
		return workflow.Granted{}, f.grantErr
	}
	return workflow.Granted{Facts: map[string]string{"role": "readonly"}}, nil
}

func (f *fakeConnector) Revoke(context.Context, workflow.Access) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revokes++
	if f.revokeFailing > 0 {
		f.revokeFailing--
		return errors.New("connection refused")
	}
	return nil
}

func (f *fakeConnector) failRevokes(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revokeFailing = n
}

// progress is how far Follow has counted.
type progress struct {
	mu   sync.Mutex
	cond *sync.Cond
	seq  uint64
	set  bool
}

func newProgress() *progress {
	p := &progress{}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *progress) applied(seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq, p.set = seq, true
	p.cond.Broadcast()
}

// waitFor blocks until Follow has started and counted the events up to seq.
func (p *progress) waitFor(seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for !p.set || p.seq < seq {
		p.cond.Wait()
	}
}

// world is an engine over a real store with a fake clock, its connectors
// timed by Metrics, and a server exposing the metrics.
type world struct {
	t       *testing.T
	store   *store.Store
	eng     *workflow.Engine
	clock   *workflow.FakeClock
	pg, bad *fakeConnector
	m       *Metrics
	url     string
	follow  *progress
}

// newWorld sets up Alice (on call) and Bob (who approves), the items
// db-ro (Bob approves), shell (break-glass from CINCIDENT) and broken
// (its connector refuses every grant for good).
func newWorld(t *testing.T) *world {
	t.Helper()
	dir, err := workflow.NewStaticDirectory([]workflow.User{
		{SlackID: "UALICE", Email: "alice@example.com", Groups: []string{"oncall"}},
		{SlackID: "UBOB", Email: "bob@example.com"},
	}, []workflow.Group{{Name: "oncall"}})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := workflow.ParseApprover("user:UBOB")
	if err != nil {
		t.Fatal(err)
	}
	rules := workflow.DurationRules{Default: time.Hour, Min: 15 * time.Minute, Max: 8 * time.Hour}
	stages := workflow.Approval{Stages: []workflow.Stage{{Name: "bob", Required: 1, Approvers: []workflow.Approver{bob}}}}
	policies := map[string]*workflow.Policy{
		"standard": {Name: "standard", Duration: rules, Approval: stages, Reminders: workflow.Reminders{PendingTimeout: 24 * time.Hour}},
		"emergency": {Name: "emergency", Duration: rules, Approval: stages,
			BreakGlass: workflow.BreakGlass{Enabled: true, Groups: []string{"oncall"}, Channels: []string{"CINCIDENT"}, MaxDuration: time.Hour,
				RateLimit: workflow.RateLimit{Count: 1, Per: 24 * time.Hour}, ReviewReminder: 4 * time.Hour, Reviewers: []workflow.Approver{bob}}},
	}
	cat, err := workflow.NewCatalogue([]workflow.Item{
		{ID: "db-ro", Name: "Database read-only", Kind: workflow.KindEntitlement, Policy: "standard",
			Targets: []workflow.Target{{Connector: "pg", Entitlement: "readonly"}}},
		{ID: "shell", Name: "Production shell", Kind: workflow.KindEntitlement, Policy: "emergency",
			Targets: []workflow.Target{{Connector: "pg", Entitlement: "superuser"}}},
		{ID: "broken", Name: "Broken", Kind: workflow.KindEntitlement, Policy: "standard",
			Targets: []workflow.Target{{Connector: "bad", Entitlement: "nothing"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	w := &world{t: t, clock: workflow.NewFakeClock(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)),
		pg: &fakeConnector{}, bad: &fakeConnector{grantErr: workflow.Permanent(errors.New("no such role"))}, m: New(reg)}
	srv := httptest.NewServer(Handler(reg))
	t.Cleanup(srv.Close)
	w.url = srv.URL

	w.store, err = store.Open(filepath.Join(t.TempDir(), "latch.db"), store.Options{Now: w.clock.Now, Projections: []store.Projection{store.Requests{}}})
	if err != nil {
		t.Fatal(err)
	}
	w.eng, err = workflow.NewEngine(workflow.Config{Store: w.store, Catalogue: cat, Policies: policies, Directory: dir, Notifier: workflow.NopNotifier{},
		Clock: w.clock, Admins: []string{"UBOB"},
		Connectors: map[string]workflow.Provisioner{"pg": w.m.Provisioner("pg", w.pg), "bad": w.m.Provisioner("bad", w.bad)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.eng.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.eng.Close()
		w.store.Close()
	})
	return w
}

// startFollow runs Follow until the test ends and waits until it has read
// the store's head.
func (w *world) startFollow() {
	w.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w.follow = newProgress()
	done := make(chan error, 1)
	go func() { done <- w.m.follow(ctx, w.store, w.follow.applied) }()
	w.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			w.t.Errorf("Follow: %v", err)
		}
	})
	w.sync()
}

// sync lets the engine finish what the last command or clock move started
// and waits until Follow has counted every event.
func (w *world) sync() {
	w.t.Helper()
	w.eng.Advance()
	w.eng.Wait()
	head, _ := w.store.Head()
	w.follow.waitFor(head)
}

// pass moves the clock and lets the engine act on what came due.
func (w *world) pass(d time.Duration) {
	w.clock.Advance(d)
	w.sync()
}

func (w *world) submit(item string) string {
	w.t.Helper()
	r, err := w.eng.Submit(context.Background(), workflow.Submission{Item: item, Requester: "UALICE", Duration: 2 * time.Hour, Justification: "INC-4211"})
	if err != nil {
		w.t.Fatalf("submit %s: %v", item, err)
	}
	w.sync()
	return r.ID
}

// ok fails the test if a command failed, and lets it take effect.
func (w *world) ok(_ workflow.Request, err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatal(err)
	}
	w.sync()
}

func (w *world) state(id string) workflow.RequestState {
	w.t.Helper()
	r, ok, err := w.store.Request(id)
	if err != nil || !ok {
		w.t.Fatalf("request %s: %v %v", id, ok, err)
	}
	return r.State
}

func TestFollowThroughApprovalAndExpiry(t *testing.T) {
	w := newWorld(t)
	w.startFollow()
	ctx := context.Background()

	id := w.submit("db-ro")
	w.pass(90 * time.Second)
	w.ok(w.eng.Approve(ctx, id, "UBOB"))
	if got := w.state(id); got != workflow.RequestActive {
		t.Fatalf("after approval: %s, want active", got)
	}
	s := scrapeMetrics(t, w.url)
	if got := s.value("latch_active_grants"); got != 1 {
		t.Errorf("active grants after approval: got %v, want 1", got)
	}
	if got := s.value("latch_requests_submitted_total"); got != 1 {
		t.Errorf("submitted: got %v, want 1", got)
	}
	if got := s.value("latch_requests_total", "outcome", "approved"); got != 1 {
		t.Errorf("approved: got %v, want 1", got)
	}
	if n, sum := s.histogram("latch_request_decision_seconds", "decision", "approved", "by", "approvers"); n != 1 || sum != 90 {
		t.Errorf("time to decision: got %d observations summing %vs, want 1 of 90s", n, sum)
	}
	if n, _ := s.histogram("latch_request_activation_seconds"); n != 1 {
		t.Errorf("approval to active: got %d observations, want 1", n)
	}
	if n, _ := s.histogram("latch_connector_call_duration_seconds", "connector", "pg", "op", "grant"); n != 1 {
		t.Errorf("pg grant calls: got %d, want 1", n)
	}

	w.pass(2*time.Hour + 3*time.Second) // three seconds past the expiry
	if got := w.state(id); got != workflow.RequestEnded {
		t.Fatalf("after expiry: %s, want ended", got)
	}
	s = scrapeMetrics(t, w.url)
	if got := s.value("latch_active_grants"); got != 0 {
		t.Errorf("active grants after expiry: got %v, want 0", got)
	}
	if got := s.value("latch_requests_total", "outcome", "expired"); got != 1 {
		t.Errorf("expired: got %v, want 1", got)
	}
	if n, sum := s.histogram("latch_revocation_lateness_seconds"); n != 1 || sum != 3 {
		t.Errorf("revocation lateness: got %d observations summing %vs, want 1 of 3s", n, sum)
	}
	grants, _ := s.histogram("latch_connector_call_duration_seconds", "connector", "pg", "op", "grant")
	revokes, _ := s.histogram("latch_connector_call_duration_seconds", "connector", "pg", "op", "revoke")
	if grants+revokes != 2 || revokes != 1 {
		t.Errorf("pg calls: got %d grants and %d revokes, want 1 and 1", grants, revokes)
	}
	head, _ := w.store.Head()
	if got := s.value("latch_store_events"); got != float64(head) {
		t.Errorf("store events: got %v, want %d", got, head)
	}
	if got := s.value("latch_connector_errors_total", "connector", "pg"); got != 0 {
		t.Errorf("pg errors: got %v, want 0", got)
	}
}

func TestFollowCountsEveryOutcome(t *testing.T) {
	w := newWorld(t)
	w.startFollow()
	ctx := context.Background()

	denied := w.submit("db-ro")
	w.pass(time.Minute)
	w.ok(w.eng.Deny(ctx, denied, "UBOB", "not today"))

	cancelled := w.submit("db-ro")
	w.ok(w.eng.Cancel(ctx, cancelled, "UALICE"))

	timedOut := w.submit("db-ro") // nobody decides; it times out below

	bg, err := w.eng.BreakGlass(ctx, workflow.BreakGlassCommand{Requester: "UALICE", Item: "shell", Reason: "db down", Channel: "CINCIDENT"})
	w.ok(bg, err)
	if got := scrapeMetrics(t, w.url).value("latch_active_grants"); got != 1 {
		t.Errorf("active grants after break-glass: got %v, want 1", got)
	}
	w.ok(w.eng.Release(ctx, bg.ID, "UALICE"))

	revoked := w.submit("db-ro")
	w.ok(w.eng.Approve(ctx, revoked, "UBOB"))
	w.pg.failRevokes(1)
	w.ok(w.eng.Revoke(ctx, revoked, "UBOB", "done early"))
	if got := w.state(revoked); got != workflow.RequestRevoking {
		t.Fatalf("after a failed revoke: %s, want revoking", got)
	}
	w.pass(workflow.RetryBase) // the retry works

	failed := w.submit("broken")
	w.ok(w.eng.Approve(ctx, failed, "UBOB"))

	w.pass(24 * time.Hour)
	for id, want := range map[string]workflow.RequestState{
		denied: workflow.RequestRejected, cancelled: workflow.RequestCancelled, timedOut: workflow.RequestTimedOut,
		bg.ID: workflow.RequestEnded, revoked: workflow.RequestEnded, failed: workflow.RequestFailed,
	} {
		if got := w.state(id); got != want {
			t.Errorf("request %s: %s, want %s", id, got, want)
		}
	}

	s := scrapeMetrics(t, w.url)
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"latch_requests_submitted_total", nil, 6},
		{"latch_requests_total", []string{"outcome", "approved"}, 3},
		{"latch_requests_total", []string{"outcome", "rejected"}, 1},
		{"latch_requests_total", []string{"outcome", "cancelled"}, 1},
		{"latch_requests_total", []string{"outcome", "timed_out"}, 1},
		{"latch_requests_total", []string{"outcome", "breakglass"}, 1},
		{"latch_requests_total", []string{"outcome", "failed"}, 1},
		{"latch_requests_total", []string{"outcome", "released"}, 1},
		{"latch_requests_total", []string{"outcome", "revoked"}, 1},
		{"latch_requests_total", []string{"outcome", "rolled_back"}, 1},
		{"latch_requests_total", []string{"outcome", "expired"}, 0},
		{"latch_revoke_failures_total", nil, 1},
		{"latch_active_grants", nil, 0},
		{"latch_connector_errors_total", []string{"connector", "pg", "op", "revoke", "kind", "transient"}, 1},
		{"latch_connector_errors_total", []string{"connector", "bad", "op", "grant", "kind", "permanent"}, 1},
		{"latch_connector_errors_total", []string{"connector", "pg", "op", "grant"}, 0},
	}
	for _, tt := range tests {
		if got := s.value(tt.name, tt.labels...); got != tt.want {
			t.Errorf("%s%v: got %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	hists := []struct {
		labels []string
		count  uint64
		sum    float64
	}{
		{[]string{"decision", "rejected", "by", "approvers"}, 1, 60},
		{[]string{"decision", "approved", "by", "approvers"}, 2, 0},
		{[]string{"decision", "approved", "by", "policy"}, 1, 0},
	}
	for _, h := range hists {
		if n, sum := s.histogram("latch_request_decision_seconds", h.labels...); n != h.count || sum != h.sum {
			t.Errorf("decision time %v: got %d observations summing %vs, want %d summing %vs", h.labels, n, sum, h.count, h.sum)
		}
	}
	if n, _ := s.histogram("latch_revocation_lateness_seconds"); n != 0 {
		t.Errorf("revocation lateness without expiries: got %d observations, want 0", n)
	}
}

// Follow started on a store with open requests: the active grants come
// from the store, and what it did not see (when a request expires) is
// read from the store.
func TestFollowPicksUpOpenRequests(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	id, err := w.eng.Submit(ctx, workflow.Submission{Item: "db-ro", Requester: "UALICE", Duration: time.Hour, Justification: "INC-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.eng.Approve(ctx, id.ID, "UBOB"); err != nil {
		t.Fatal(err)
	}
	w.eng.Wait()
	if got := w.state(id.ID); got != workflow.RequestActive {
		t.Fatalf("before Follow: %s, want active", got)
	}

	w.startFollow()
	s := scrapeMetrics(t, w.url)
	head, _ := w.store.Head()
	if got := s.value("latch_active_grants"); got != 1 {
		t.Errorf("active grants at start: got %v, want 1", got)
	}
	if got := s.value("latch_store_events"); got != float64(head) {
		t.Errorf("store events at start: got %v, want %d", got, head)
	}
	if got := s.value("latch_requests_submitted_total"); got != 0 {
		t.Errorf("history counted: %v submitted, want 0", got)
	}

	w.pass(time.Hour + 10*time.Second)
	s = scrapeMetrics(t, w.url)
	if got := s.value("latch_active_grants"); got != 0 {
		t.Errorf("active grants after expiry: got %v, want 0", got)
	}
	if got := s.value("latch_requests_total", "outcome", "expired"); got != 1 {
		t.Errorf("expired: got %v, want 1", got)
	}
	if n, sum := s.histogram("latch_revocation_lateness_seconds"); n != 1 || sum != 10 {
		t.Errorf("revocation lateness: got %d observations summing %vs, want 1 of 10s", n, sum)
	}
}

func TestFollowEndsWithTheStore(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	s, err := store.Open(filepath.Join(t.TempDir(), "latch.db"), store.Options{Projections: []store.Projection{store.Requests{}}})
	if err != nil {
		t.Fatal(err)
	}
	p := newProgress()
	done := make(chan error, 1)
	go func() { done <- m.follow(context.Background(), s, p.applied) }()
	p.waitFor(0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("Follow after Close: got %v, want nil", err)
	}
}

func TestFollowNeedsTheRequestsProjection(t *testing.T) {
	m := New(prometheus.NewRegistry())
	s, err := store.Open(filepath.Join(t.TempDir(), "latch.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := m.Follow(context.Background(), s); !errors.Is(err, store.ErrNoRequests) {
		t.Errorf("Follow without the projection: got %v, want ErrNoRequests", err)
	}
}

func TestAckAndSinkLag(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()
	m.ObserveAck("slash_commands", 20*time.Millisecond)
	m.ObserveAck("slash_commands", 30*time.Millisecond)
	m.ObserveAck("interactive", time.Millisecond)
	m.ObserveAck("a type\nwith junk", time.Millisecond)
	m.SetAuditSinkLag("siem", 42)
	m.SetAuditSinkLag("siem", 7)

	s := scrapeMetrics(t, srv.URL)
	tests := []struct {
		labels []string
		count  uint64
		sum    float64
	}{
		{[]string{"type", "slash_commands"}, 2, 0.05},
		{[]string{"type", "interactive"}, 1, 0.001},
		{[]string{"type", "other"}, 1, 0.001},
	}
	for _, tt := range tests {
		n, sum := s.histogram("latch_slack_envelope_ack_seconds", tt.labels...)
		if n != tt.count || fmt.Sprintf("%.3f", sum) != fmt.Sprintf("%.3f", tt.sum) {
			t.Errorf("ack %v: got %d summing %v, want %d summing %v", tt.labels, n, sum, tt.count, tt.sum)
		}
	}
	if got := s.value("latch_audit_sink_lag_events", "sink", "siem"); got != 7 {
		t.Errorf("sink lag: got %v, want 7", got)
	}
}

// Every metric says what it counts, and none is left out of the registry.
func TestHelpStrings(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	// Touch the vectors, which are exposed once they have a series.
	m.ObserveAck("interactive", 0)
	m.SetAuditSinkLag("siem", 0)
	m.observeCall("pg", OpGrant, 0, workflow.Permanent(errors.New("x")))
	m.slackCall("chat.postMessage", ResultError, "ratelimited")
	m.slackRateLimited.WithLabelValues("chat.postMessage").Inc()
	m.requests.WithLabelValues(OutcomeApproved).Inc()
	m.decision.WithLabelValues(OutcomeApproved, "approvers").Observe(1)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(families); got != 15 {
		t.Errorf("got %d metric families, want 15", got)
	}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "latch_") || len(f.GetHelp()) < 20 {
			t.Errorf("%s: help %q", f.GetName(), f.GetHelp())
		}
	}
}
