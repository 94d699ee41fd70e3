package workflow_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// fakeTarget is a target system in memory: who has which entitlement.
// Failures can be injected.
type fakeTarget struct {
	mu            sync.Mutex
	access        map[string]bool      // entitlement|email
	until         map[string]time.Time // entitlement|email → the expiry last given
	grants        int
	refreshes     int  // grants that only moved the expiry
	perGrant      bool // each grant is an account of its own, as ephemeral roles are
	revokes       int
	failGrant     map[string]error // by entitlement
	revokeFailing int              // how many revokes fail before one works
	hang          bool             // calls wait for their context to end, as with a target that never answers
	hanging       chan struct{}    // receives when a call starts to hang
	unhang        chan struct{}    // closed to let the hanging calls answer
}

// wait blocks a call while the target hangs. The caller holds f.mu.
func (f *fakeTarget) wait(ctx context.Context) error {
	if !f.hang {
		return nil
	}
	f.mu.Unlock()
	f.hanging <- struct{}{}
	select {
	case <-ctx.Done():
		f.mu.Lock()
		return ctx.Err()
	case <-f.unhang:
		f.mu.Lock()
		return nil
	}
}

// release lets the calls hanging now answer.
func (f *fakeTarget) release() { close(f.unhang) }

func newFakeTarget() *fakeTarget {
	return &fakeTarget{access: map[string]bool{}, until: map[string]time.Time{}, failGrant: map[string]error{}, hanging: make(chan struct{}, 1), unhang: make(chan struct{})}
}

func (f *fakeTarget) Grant(ctx context.Context, a workflow.Access) (workflow.Granted, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.grants++
	if err := f.wait(ctx); err != nil {
		return workflow.Granted{}, err
	}
	if err := f.failGrant[a.Entitlement]; err != nil {
		return workflow.Granted{}, err
	}
	f.access[a.Entitlement+"|"+a.User.Email] = true
	f.until[a.Entitlement+"|"+a.User.Email] = a.ExpiresAt
	facts := map[string]string{"role": a.Entitlement}
	if f.perGrant {
		facts["account"] = "acct_" + a.GrantID
	}
	if a.Refresh {
		// Like a real connector: an extension keeps the credentials.
		f.refreshes++
		return workflow.Granted{Facts: facts}, nil
	}
	return workflow.Granted{Message: "password for " + a.Entitlement, Facts: facts}, nil
}

func (f *fakeTarget) Revoke(ctx context.Context, a workflow.Access) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revokes++
	if err := f.wait(ctx); err != nil {
		return err
	}
	if f.revokeFailing > 0 {
		f.revokeFailing--
		return errors.New("connection refused")
	}
	delete(f.access, a.Entitlement+"|"+a.User.Email)
	return nil
}

func (f *fakeTarget) has(entitlement, email string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.access[entitlement+"|"+email]
}

// notes records what the engine told people.
type notes struct {
	mu   sync.Mutex
	list []string
	msgs map[string]string
}

func (n *notes) add(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.list = append(n.list, fmt.Sprintf(format, args...))
}

func (n *notes) ApprovalNeeded(_ context.Context, r workflow.Request, stage int) {
	n.add("approval-needed %s %v", r.Stages[stage].Name, r.Stages[stage].Approvers)
}
func (n *notes) Submitted(_ context.Context, r workflow.Request) {
	n.add("submitted %s for %s", r.Requester, r.Beneficiary)
}
func (n *notes) Decided(_ context.Context, r workflow.Request) { n.add("decided %s", r.State) }
func (n *notes) Granted(_ context.Context, r workflow.Request, m map[string]string) {
	n.mu.Lock()
	n.msgs = m
	n.mu.Unlock()
	n.add("granted")
}
func (n *notes) ExpiringSoon(_ context.Context, r workflow.Request) { n.add("expiring") }
func (n *notes) Ended(_ context.Context, r workflow.Request)        { n.add("ended %s", r.Outcome) }
func (n *notes) RevokeFailed(_ context.Context, r workflow.Request, g workflow.Grant) {
	n.add("revoke-failed %s", g.State)
}
func (n *notes) TakenBackUnrecorded(_ context.Context, r workflow.Request, g workflow.Grant) {
	n.add("taken-back-unrecorded %s", g.ID)
}
func (n *notes) Reminder(_ context.Context, r workflow.Request, stage int) {
	n.add("reminder %s %v", r.Stages[stage].Name, r.Stages[stage].Approvers)
}
func (n *notes) BreakGlass(_ context.Context, r workflow.Request)   { n.add("breakglass %s", r.Channel) }
func (n *notes) ReviewNeeded(_ context.Context, r workflow.Request) { n.add("review-needed") }

// count returns how many notes were exactly s.
func (n *notes) count(s string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, x := range n.list {
		if x == s {
			c++
		}
	}
	return c
}

func (n *notes) seen() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.list)
}

// world is an engine over a real store with a fake clock.
type world struct {
	t      *testing.T
	path   string
	store  *store.Store
	eng    *workflow.Engine
	clock  *workflow.FakeClock
	target *fakeTarget
	notes  *notes
	cfg    workflow.Config
}

func approvers(t testing.TB, texts ...string) []workflow.Approver {
	t.Helper()
	var out []workflow.Approver
	for _, s := range texts {
		a, err := workflow.ParseApprover(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

func condition(t *testing.T, text string) *workflow.Condition {
	t.Helper()
	c, err := workflow.CompileCondition(text)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newWorld sets up Alice and Bob (engineers, Alice on call) reporting to
// Dana, Carol and Eve (DBAs, owners of the databases) and Sam (admin), with
// items under a sequential, a parallel and an auto-approving policy.
func newWorld(t *testing.T) *world {
	t.Helper()
	dir, err := workflow.NewStaticDirectory([]workflow.User{
		{SlackID: "UALICE", Email: "alice@example.com", Manager: "UDANA", Groups: []string{"eng", "oncall"}},
		{SlackID: "UBOB", Email: "bob@example.com", Manager: "UDANA", Groups: []string{"eng"}},
		{SlackID: "UCAROL", Email: "carol@example.com", Manager: "UDANA", Groups: []string{"eng", "dba"}},
		{SlackID: "UDANA", Email: "dana@example.com", Groups: []string{"eng"}},
		{SlackID: "UEVE", Email: "eve@example.com", Groups: []string{"dba"}},
		{SlackID: "USAM", Email: "sam@example.com"},
	}, []workflow.Group{{Name: "eng"}, {Name: "oncall"}, {Name: "dba"}})
	if err != nil {
		t.Fatal(err)
	}
	rules := workflow.DurationRules{Default: time.Hour, Min: 15 * time.Minute, Max: 8 * time.Hour}
	policies := map[string]*workflow.Policy{
		"admin": {Name: "admin", Duration: rules, JustificationMinLength: 5, WarnBefore: 10 * time.Minute,
			Extension: workflow.ExtensionRules{MaxTotal: 8 * time.Hour, RequiresApproval: true},
			Reminders: workflow.Reminders{PendingTimeout: 24 * time.Hour, RemindAfter: time.Hour, EscalateAfter: 3 * time.Hour,
				FallbackApprovers: approvers(t, "user:USAM")},
			Approval: workflow.Approval{Mode: workflow.Sequential, Stages: []workflow.Stage{
				{Name: "manager", Required: 1, Approvers: approvers(t, "manager")},
				{Name: "owners", Required: 1, Approvers: approvers(t, "owners")},
			}}},
		"two-of-three": {Name: "two-of-three", Duration: rules, Approval: workflow.Approval{Mode: workflow.Parallel, Stages: []workflow.Stage{
			{Name: "peers", Required: 2, Approvers: approvers(t, "user:UCAROL", "user:UEVE", "user:UDANA")},
			{Name: "owners", Required: 1, Approvers: approvers(t, "owners")},
		}}},
		"readonly": {Name: "readonly", Duration: rules, Extension: workflow.ExtensionRules{MaxTotal: 4 * time.Hour},
			OnBehalf:    workflow.OnBehalfRules{Allowed: true, Manager: true},
			AutoReject:  condition(t, `request.justification.contains("test")`),
			AutoApprove: condition(t, `"oncall" in requester.groups && request.duration <= duration("6h")`),
			Approval:    workflow.Approval{Stages: []workflow.Stage{{Name: "owners", Required: 1, Approvers: approvers(t, "owners")}}}},
	}
	policies["emergency"] = &workflow.Policy{Name: "emergency", Duration: rules,
		Approval: workflow.Approval{Stages: []workflow.Stage{{Name: "owners", Required: 1, Approvers: approvers(t, "owners")}}},
		BreakGlass: workflow.BreakGlass{Enabled: true, Groups: []string{"oncall"}, Channels: []string{"CINCIDENT"}, MaxDuration: time.Hour,
			RateLimit: workflow.RateLimit{Count: 1, Per: 24 * time.Hour}, ReviewReminder: 4 * time.Hour, Reviewers: approvers(t, "user:USAM")}}
	cat, err := workflow.NewCatalogue([]workflow.Item{
		{ID: "prod-shell", Name: "Production shell", Owners: []string{"UEVE"}, Kind: workflow.KindEntitlement, Policy: "emergency",
			Targets: []workflow.Target{{Connector: "pg", Entitlement: "superuser"}}},
		{ID: "db-admin", Name: "Database admin", Owners: []string{"UCAROL", "UEVE"}, Kind: workflow.KindBundle, Policy: "admin",
			Targets: []workflow.Target{{Connector: "pg", Entitlement: "admin"}, {Connector: "ldap", Entitlement: "cn=dba"}}},
		{ID: "db-ro", Name: "Database read-only", Owners: []string{"UCAROL", "UEVE"}, Kind: workflow.KindEntitlement, Policy: "readonly",
			Targets: []workflow.Target{{Connector: "pg", Entitlement: "readonly"}}},
		{ID: "payments", Name: "Payments console", Owners: []string{"UEVE"}, Kind: workflow.KindEntitlement, Policy: "two-of-three",
			Targets: []workflow.Target{{Connector: "pg", Entitlement: "payments"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, path: filepath.Join(t.TempDir(), "latch.db"), target: newFakeTarget(), notes: &notes{},
		clock: workflow.NewFakeClock(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))}
	w.cfg = workflow.Config{Catalogue: cat, Policies: policies, Directory: dir, Notifier: w.notes, Clock: w.clock,
		Connectors: map[string]workflow.Provisioner{"pg": w.target, "ldap": w.target}, Admins: []string{"USAM"},
		// A stop cuts calls in flight at once: the tests that stop in the
		// middle of one want that, as a crash would.
		ShutdownGrace: time.Millisecond}
	w.start()
	t.Cleanup(w.stop)
	return w
}

// start opens the store and starts an engine on it.
func (w *world) start() {
	w.t.Helper()
	s, err := store.Open(w.path, store.Options{Now: w.clock.Now, Projections: []store.Projection{store.Requests{}}})
	if err != nil {
		w.t.Fatal(err)
	}
	w.store = s
	w.cfg.Store = s
	if w.eng, err = workflow.NewEngine(w.cfg); err != nil {
		w.t.Fatal(err)
	}
	if err := w.eng.Start(); err != nil {
		w.t.Fatal(err)
	}
}

// stop closes the engine and the store, as a shutdown or crash would.
func (w *world) stop() {
	if w.eng != nil {
		w.eng.Close()
		w.eng = nil
	}
	if w.store != nil {
		w.store.Close()
		w.store = nil
	}
}

// settle lets the engine finish what the last command or clock move started.
func (w *world) settle() {
	w.eng.Advance()
	w.eng.Wait()
}

// pass moves the clock and lets the engine act on what came due.
func (w *world) pass(d time.Duration) {
	w.clock.Advance(d)
	w.settle()
}

func (w *world) request(id string) workflow.Request {
	w.t.Helper()
	r, ok, err := w.store.Request(id)
	if err != nil || !ok {
		w.t.Fatalf("request %s: %v %v", id, ok, err)
	}
	return r
}

func (w *world) submit(s workflow.Submission) workflow.Request {
	w.t.Helper()
	r, err := w.eng.Submit(context.Background(), s)
	if err != nil {
		w.t.Fatalf("submit: %v", err)
	}
	w.settle()
	return w.request(r.ID)
}

func (w *world) approve(id, by string) {
	w.t.Helper()
	if _, err := w.eng.Approve(context.Background(), id, by); err != nil {
		w.t.Fatalf("approve by %s: %v", by, err)
	}
	w.settle()
}

// kinds lists the kinds of a request's events in the log.
func (w *world) kinds(id string) []string {
	w.t.Helper()
	var out []string
	if err := w.store.Scan(context.Background(), store.Filter{}, func(e *workflow.Event) error {
		if e.RequestID == id {
			out = append(out, e.Kind)
		}
		return nil
	}); err != nil {
		w.t.Fatal(err)
	}
	return out
}

func TestSequentialApprovalThroughExpiry(t *testing.T) {
	w := newWorld(t)
	r := w.submit(workflow.Submission{Item: "db-admin", Requester: "UALICE", Duration: 2 * time.Hour, Justification: "INC-4211"})
	if r.State != workflow.RequestPending || r.Stage != 0 {
		t.Fatalf("after submit: %s stage %d", r.State, r.Stage)
	}
	// The owners are not asked before the manager approves.
	if _, err := w.eng.Approve(context.Background(), r.ID, "UCAROL"); workflow.RefusalOf(err) != workflow.RefusedNotApprover {
		t.Errorf("owner approving before the manager: %v, want not_approver", err)
	}
	w.approve(r.ID, "UDANA")
	if got := w.request(r.ID); got.State != workflow.RequestPending || got.Stage != 1 {
		t.Fatalf("after the manager: %s stage %d", got.State, got.Stage)
	}
	w.approve(r.ID, "UEVE")
	r = w.request(r.ID)
	if r.State != workflow.RequestActive || !w.target.has("admin", "alice@example.com") || !w.target.has("cn=dba", "alice@example.com") {
		t.Fatalf("after approval: %s, access %v", r.State, w.target.access)
	}
	if want := w.clock.Now().Add(2 * time.Hour); !r.ExpiresAt.Equal(want) {
		t.Errorf("expires at %v, want %v", r.ExpiresAt, want)
	}
	if len(w.notes.msgs) != 2 {
		t.Errorf("connector messages for the beneficiary: %v", w.notes.msgs)
	}

	w.pass(110 * time.Minute) // ten minutes left: the warning
	if got := w.notes.seen(); !slices.Contains(got, "expiring") {
		t.Errorf("no expiry warning in %v", got)
	}
	w.pass(10*time.Minute + time.Second)
	r = w.request(r.ID)
	if r.State != workflow.RequestEnded || r.Outcome != workflow.OutcomeExpired || w.target.has("admin", "alice@example.com") {
		t.Fatalf("after expiry: %s %s, access %v", r.State, r.Outcome, w.target.access)
	}
	if got := w.notes.seen(); !slices.Contains(got, "ended expired") {
		t.Errorf("notes %v", got)
	}
	if _, err := w.store.Verify(context.Background()); err != nil {
		t.Errorf("chain: %v", err)
	}
}

func TestRefusedDecisions(t *testing.T) {
	w := newWorld(t)
	r := w.submit(workflow.Submission{Item: "db-admin", Requester: "UCAROL", Justification: "migration 81"})
	ctx := context.Background()
	tests := []struct {
		name     string
		by       string
		want     workflow.RefusalReason
		recorded bool
	}{
		{"someone outside the stage", "UBOB", workflow.RefusedNotApprover, true},
		{"the requester", "UCAROL", workflow.RefusedSelfApproval, true},
	}
	for _, tt := range tests {
		before := len(w.kinds(r.ID))
		_, err := w.eng.Approve(ctx, r.ID, tt.by)
		if workflow.RefusalOf(err) != tt.want || !errors.Is(err, workflow.ErrRefused) {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.want)
		}
		k := w.kinds(r.ID)
		if recorded := len(k) > before && k[len(k)-1] == workflow.KindRefused; recorded != tt.recorded {
			t.Errorf("%s: refusal recorded %v, want %v", tt.name, recorded, tt.recorded)
		}
	}
	// Carol's own request goes to Eve alone in the owners stage.
	w.approve(r.ID, "UDANA")
	if got := w.request(r.ID).Stages[1].Approvers; !slices.Equal(got, []string{"UEVE"}) {
		t.Errorf("owners stage approvers %v, want [UEVE]", got)
	}
	if _, err := w.eng.Deny(ctx, r.ID, "UEVE", "not during the freeze"); err != nil {
		t.Fatal(err)
	}
	w.settle()
	got := w.request(r.ID)
	if got.State != workflow.RequestRejected || got.Reason != "not during the freeze" {
		t.Errorf("after deny: %s %q", got.State, got.Reason)
	}
	if _, err := w.eng.Approve(ctx, r.ID, "UEVE"); workflow.RefusalOf(err) != workflow.RefusedClosed {
		t.Errorf("approve after deny: %v, want closed", err)
	}
}

func TestParallelTwoOfThree(t *testing.T) {
	w := newWorld(t)
	r := w.submit(workflow.Submission{Item: "payments", Requester: "UBOB", Justification: "refund batch"})
	if got := w.notes.seen(); !slices.Contains(got, "approval-needed peers [UCAROL UEVE UDANA]") || !slices.Contains(got, "approval-needed owners [UEVE]") {
		t.Errorf("both stages are asked at once: %v", got)
	}
	w.approve(r.ID, "UEVE") // counts for peers, the first open stage Eve is in
	if _, err := w.eng.Deny(context.Background(), r.ID, "UEVE", "changed my mind"); workflow.RefusalOf(err) != workflow.RefusedAlreadyVoted {
		t.Errorf("deny after approving: %v, want already_voted", err)
	}
	if _, err := w.eng.Approve(context.Background(), r.ID, "UEVE"); workflow.RefusalOf(err) != workflow.RefusedAlreadyVoted {
		t.Errorf("double click: %v, want already_voted", err)
	}
	w.settle()
	w.approve(r.ID, "UCAROL")
	if got := w.request(r.ID); got.State != workflow.RequestPending || !got.Stages[0].Done {
		t.Fatalf("after two peers: %s, stages %+v", got.State, got.Stages)
	}
	if got := w.request(r.ID); got.Stages[1].Done {
		t.Fatalf("owners stage approved without its owner")
	}
}

func TestAutoDecisions(t *testing.T) {
	w := newWorld(t)
	r := w.submit(workflow.Submission{Item: "db-ro", Requester: "UALICE", Duration: 4 * time.Hour, Justification: "on call"})
	if r.State != workflow.RequestActive || !w.target.has("readonly", "alice@example.com") {
		t.Errorf("on-call request: %s", r.State)
	}
	r = w.submit(workflow.Submission{Item: "db-ro", Requester: "UALICE", Justification: "a test"})
	if r.State != workflow.RequestRejected {
		t.Errorf("auto_reject: %s", r.State)
	}
	r = w.submit(workflow.Submission{Item: "db-ro", Requester: "UBOB", Justification: "report"})
	if r.State != workflow.RequestPending {
		t.Errorf("not on call: %s", r.State)
	}
	if _, err := w.eng.Submit(context.Background(), workflow.Submission{Item: "db-ro", Requester: "UBOB", Duration: 9 * time.Hour, Justification: "report"}); workflow.RefusalOf(err) != workflow.RefusedDuration {
		t.Errorf("9h: %v, want a duration refusal", err)
	}
}

func TestPendingTimeout(t *testing.T) {
	w := newWorld(t)
	r := w.submit(workflow.Submission{Item: "db-admin", Requester: "UBOB", Justification: "debugging"})
	w.pass(24*time.Hour + time.Second)
	if got := w.request(r.ID); got.State != workflow.RequestTimedOut {
		t.Errorf("after the pending timeout: %s", got.State)
	}
}

func TestReleaseAndRevoke(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	r := w.submit(workflow.Submission{Item: "db-ro", Requester: "UALICE", Justification: "on call"})
	if _, err := w.eng.Release(ctx, r.ID, "UBOB"); workflow.RefusalOf(err) != workflow.RefusedNotYours {
		t.Errorf("release by someone else: %v", err)
	}
	if _, err := w.eng.Release(ctx, r.ID, "UALICE"); err != nil {
		t.Fatal(err)
	}
	w.settle()
	if got := w.request(r.ID); got.State != workflow.RequestEnded || got.Outcome != workflow.OutcomeReleased || w.target.has("readonly", "alice@example.com") {
		t.Errorf("after release: %s %s", got.State, got.Outcome)
	}

	r = w.submit(workflow.Submission{Item: "db-ro", Requester: "UALICE", Justification: "on call"})
	if _, err := w.eng.Revoke(ctx, r.ID, "UBOB", "why not"); workflow.RefusalOf(err) != workflow.RefusedNotApprover {
		t.Errorf("revoke by a bystander: %v", err)
	}
	if k := w.kinds(r.ID); k[len(k)-1] != workflow.KindRefused {
		t.Errorf("the bystander's revoke was not recorded: %v", k)
	}
	if _, err := w.eng.Revoke(ctx, r.ID, "USAM", "leaver"); err != nil {
		t.Fatal(err)
	}
	w.settle()
	if got := w.request(r.ID); got.State != workflow.RequestEnded || got.Outcome != workflow.OutcomeRevoked {
		t.Errorf("after revoke: %s %s", got.State, got.Outcome)
	}
}

func TestRevokeRetriesUntilItWorks(t *testing.T) {
	w := newWorld(t)
	r := w.submit(workflow.Submission{Item: "db-ro", Requester: "UALICE", Justification: "on call"})
	w.target.revokeFailing = workflow.MaxRevokeAttempts
	w.pass(time.Hour + time.Second)
	if got := w.request(r.ID); got.State != workflow.RequestRevoking || got.Grants[0].RevokeAttempts != 1 {
		t.Fatalf("after a failed revoke: %s, attempts %d", got.State, got.Grants[0].RevokeAttempts)
	}
	for i := 0; i < workflow.MaxRevokeAttempts; i++ {
		w.pass(workflow.RetryMax)
	}
	got := w.request(r.ID)
	if got.Grants[0].State != workflow.GrantRevokeFailed || !slices.Contains(w.notes.seen(), "revoke-failed revoke_failed") {
		t.Fatalf("after %d failures: %s, notes %v", got.Grants[0].RevokeAttempts, got.Grants[0].State, w.notes.seen())
	}
	if !w.target.has("readonly", "alice@example.com") {
		t.Fatalf("the fake target lost the access it failed to revoke")
	}
	if _, err := w.eng.Resolve(context.Background(), r.ID, got.Grants[0].ID, "UBOB", "fixed it"); workflow.RefusalOf(err) != workflow.RefusedNotApprover {
		t.Errorf("resolve by a non-admin: %v", err)
	}
	w.pass(workflow.RetryFailedEvery)
	if got := w.request(r.ID); got.State != workflow.RequestEnded || w.target.has("readonly", "alice@example.com") {
		t.Errorf("once the target works again: %s", got.State)
	}
}

func TestBundleRollsBackOnPermanentFailure(t *testing.T) {
	w := newWorld(t)
	w.target.failGrant["cn=dba"] = workflow.Permanent(errors.New("no such group"))
	r := w.submit(workflow.Submission{Item: "db-admin", Requester: "UALICE", Justification: "INC-1"})
	w.approve(r.ID, "UDANA")
	w.approve(r.ID, "UEVE")
	got := w.request(r.ID)
	if got.State != workflow.RequestFailed || got.EndedAt.IsZero() || w.target.has("admin", "alice@example.com") {
		t.Errorf("after a failed bundle: %s ended %v, access %v", got.State, got.EndedAt, w.target.access)
	}
}

func TestOverlappingGrantsKeepTheTarget(t *testing.T) {
	w := newWorld(t)
	first := w.submit(workflow.Submission{Item: "db-ro", Requester: "UALICE", Duration: time.Hour, Justification: "on call"})
	w.pass(30 * time.Minute)
	second := w.submit(workflow.Submission{Item: "db-ro", Requester: "UALICE", Duration: time.Hour, Justification: "on call"})
	revokes := w.target.revokes
	w.pass(31 * time.Minute) // the first expires
	if got := w.request(first.ID); got.State != workflow.RequestEnded {
		t.Fatalf("first: %s", got.State)
	}
	if !w.target.has("readonly", "alice@example.com") || w.target.revokes != revokes {
		t.Fatalf("the first grant's end took the access the second still gives")
	}
	w.pass(30 * time.Minute)
	if got := w.request(second.ID); got.State != workflow.RequestEnded || w.target.has("readonly", "alice@example.com") {
		t.Errorf("second: %s", got.State)
	}
}

func TestRestartRevokesWhatExpiredWhileDown(t *testing.T) {
	w := newWorld(t)
	r := w.submit(workflow.Submission{Item: "db-ro", Requester: "UALICE", Justification: "on call"})
	w.stop()
	w.clock.Advance(3 * time.Hour)
	w.start()
	w.settle()
	if got := w.request(r.ID); got.State != workflow.RequestEnded || w.target.has("readonly", "alice@example.com") {
		t.Errorf("after restart: %s", got.State)
	}
}

func TestRestartResumesApprovedRequest(t *testing.T) {
	w := newWorld(t)
	r := w.submit(workflow.Submission{Item: "db-admin", Requester: "UBOB", Justification: "INC-7"})
	w.approve(r.ID, "UDANA")
	w.stop()
	w.start()
	w.approve(r.ID, "UCAROL") // the approver clicks after the restart
	if got := w.request(r.ID); got.State != workflow.RequestActive {
		t.Errorf("after restart and approval: %s", got.State)
	}
}

func TestRemindersAndEscalation(t *testing.T) {
	w := newWorld(t)
	r := w.submit(workflow.Submission{Item: "db-admin", Requester: "UBOB", Justification: "INC-9"})
	w.pass(time.Hour + time.Second)
	if got := w.notes.count("reminder manager [UDANA]"); got != 1 {
		t.Fatalf("reminders after 1h: %d, notes %v", got, w.notes.seen())
	}
	w.pass(time.Hour) // the next reminder waits twice as long: at 3h
	if got := w.notes.count("reminder manager [UDANA]"); got != 1 {
		t.Errorf("reminders after 2h: %d, want still 1 (backing off)", got)
	}
	w.pass(time.Hour)
	got := w.request(r.ID)
	if !got.Stages[0].Escalated || !slices.Contains(got.Stages[0].Approvers, "USAM") {
		t.Fatalf("after 3h the fallback approver was not asked: %+v", got.Stages[0])
	}
	w.approve(r.ID, "USAM") // the fallback approver decides the manager stage
	got = w.request(r.ID)
	if got.Stage != 1 {
		t.Fatalf("after the fallback approved: stage %d", got.Stage)
	}
	// The owners stage counts its own time: no escalation the moment it opens.
	w.pass(time.Minute)
	if got := w.request(r.ID); got.Stages[1].Escalated {
		t.Errorf("the owners stage was escalated as soon as it opened")
	}
	w.pass(3 * time.Hour)
	if got := w.request(r.ID); !got.Stages[1].Escalated {
		t.Errorf("the owners stage was not escalated 3h after it opened")
	}
}

func TestExtend(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	r := w.submit(workflow.Submission{Item: "db-ro", Requester: "UALICE", Duration: time.Hour, Justification: "on call"})
	if _, err := w.eng.Extend(ctx, r.ID, "UBOB", time.Hour, ""); workflow.RefusalOf(err) != workflow.RefusedNotYours {
		t.Errorf("extension by someone else: %v", err)
	}
	if _, err := w.eng.Extend(ctx, r.ID, "UALICE", 4*time.Hour, "longer"); workflow.RefusalOf(err) != workflow.RefusedExtension {
		t.Errorf("beyond the 4h cap: %v", err)
	}
	got, err := w.eng.Extend(ctx, r.ID, "UALICE", 2*time.Hour, "longer")
	if err != nil || !got.ExpiresAt.Equal(r.ExpiresAt.Add(2*time.Hour)) {
		t.Fatalf("extend by 2h: %v, expires %v", err, got.ExpiresAt)
	}
	w.settle()
	w.target.mu.Lock()
	told, refreshes := w.target.until["readonly|alice@example.com"], w.target.refreshes
	w.target.mu.Unlock()
	if !told.Equal(got.ExpiresAt) {
		t.Errorf("the target was told the access ends at %v, want the extended %v", told, got.ExpiresAt)
	}
	if refreshes != 1 {
		t.Errorf("the connector was asked %d times to refresh (Access.Refresh), want 1", refreshes)
	}
	w.pass(90 * time.Minute) // past the old expiry, before the new one
	if got := w.request(r.ID); got.State != workflow.RequestActive || !w.target.has("readonly", "alice@example.com") {
		t.Errorf("after the old expiry: %s", got.State)
	}
	w.pass(2 * time.Hour)
	if got := w.request(r.ID); got.State != workflow.RequestEnded {
		t.Errorf("after the new expiry: %s", got.State)
	}

	// Where extensions need approval, they go through the stages again.
	a := w.submit(workflow.Submission{Item: "db-admin", Requester: "UALICE", Justification: "INC-11"})
	w.approve(a.ID, "UDANA")
	w.approve(a.ID, "UEVE")
	ext, err := w.eng.Extend(ctx, a.ID, "UALICE", time.Hour, "still on it")
	if err != nil || ext.ID == a.ID || ext.State != workflow.RequestPending {
		t.Errorf("extension needing approval: %v, %s %s", err, ext.ID, ext.State)
	}
}

func TestBreakGlass(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	tests := []struct {
		name string
		cmd  workflow.BreakGlassCommand
		want workflow.RefusalReason
	}{
		{"wrong channel", workflow.BreakGlassCommand{Requester: "UALICE", Item: "prod-shell", Reason: "db down", Channel: "CRANDOM"}, workflow.RefusedBreakGlass},
		{"not on call", workflow.BreakGlassCommand{Requester: "UBOB", Item: "prod-shell", Reason: "db down", Channel: "CINCIDENT"}, workflow.RefusedBreakGlass},
		{"no reason", workflow.BreakGlassCommand{Requester: "UALICE", Item: "prod-shell", Channel: "CINCIDENT"}, workflow.RefusedJustification},
		{"item without break-glass", workflow.BreakGlassCommand{Requester: "UALICE", Item: "db-admin", Reason: "db down", Channel: "CINCIDENT"}, workflow.RefusedBreakGlass},
	}
	for _, tt := range tests {
		if _, err := w.eng.BreakGlass(ctx, tt.cmd); workflow.RefusalOf(err) != tt.want {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.want)
		}
	}
	r, err := w.eng.BreakGlass(ctx, workflow.BreakGlassCommand{Requester: "UALICE", Item: "prod-shell", Reason: "db down", Channel: "CINCIDENT"})
	if err != nil {
		t.Fatal(err)
	}
	w.settle()
	got := w.request(r.ID)
	if got.State != workflow.RequestActive || !w.target.has("superuser", "alice@example.com") || got.ExpiresAt.Sub(got.DecidedAt) != time.Hour {
		t.Fatalf("break-glass grant: %s, expires after %v", got.State, got.ExpiresAt.Sub(got.DecidedAt))
	}
	if w.notes.count("breakglass CINCIDENT") != 1 {
		t.Errorf("no announcement: %v", w.notes.seen())
	}
	if _, err := w.eng.BreakGlass(ctx, workflow.BreakGlassCommand{Requester: "UALICE", Item: "prod-shell", Reason: "again", Channel: "CINCIDENT"}); workflow.RefusalOf(err) != workflow.RefusedBreakGlass {
		t.Errorf("over the rate limit: %v", err)
	}

	// The grant expires after an hour; the review is asked for every 4h
	// until someone other than the requester gives it, across a restart.
	w.pass(4*time.Hour + time.Second)
	w.stop()
	w.start()
	w.pass(4 * time.Hour)
	if n := w.notes.count("review-needed"); n < 2 {
		t.Errorf("review reminders: %d", n)
	}
	if _, err := w.eng.Review(ctx, r.ID, "UALICE", "fine"); workflow.RefusalOf(err) != workflow.RefusedNotApprover {
		t.Errorf("review by the requester: %v", err)
	}
	if _, err := w.eng.Review(ctx, r.ID, "USAM", "restarted the primary"); err != nil {
		t.Fatal(err)
	}
	n := w.notes.count("review-needed")
	w.pass(8 * time.Hour)
	if w.notes.count("review-needed") != n {
		t.Errorf("reminded after the review")
	}
	if got := w.request(r.ID); !got.Reviewed || got.State != workflow.RequestEnded {
		t.Errorf("after review: reviewed %v, %s", got.Reviewed, got.State)
	}
}

// stopMidCall stops the engine while a connector call for request id hangs,
// as a crash or shutdown during the call would, and returns the kind of the
// request's last event at that moment: the intent is recorded, its outcome
// not.
func (w *world) stopMidCall(id string) string {
	w.t.Helper()
	<-w.target.hanging
	k := w.kinds(id)
	w.stop()
	w.target.mu.Lock()
	w.target.hang = false
	w.target.mu.Unlock()
	return k[len(k)-1]
}

func TestRestartResumesUnfinishedConnectorCalls(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.target.hang = true
	r, err := w.eng.Submit(ctx, workflow.Submission{Item: "db-ro", Requester: "UALICE", Justification: "on call"})
	if err != nil {
		t.Fatal(err)
	}
	if last := w.stopMidCall(r.ID); last != workflow.KindGrantProvisioning {
		t.Fatalf("the last event before the stop is %s, want the provisioning intent", last)
	}
	w.start()
	w.settle()
	if got := w.request(r.ID); got.State != workflow.RequestActive || w.target.grants != 2 {
		t.Fatalf("after restart during provisioning: %s, %d grant calls", got.State, w.target.grants)
	}

	w.target.mu.Lock()
	w.target.hang = true
	w.target.mu.Unlock()
	if _, err := w.eng.Release(ctx, r.ID, "UALICE"); err != nil {
		t.Fatal(err)
	}
	if last := w.stopMidCall(r.ID); last != workflow.KindGrantRevoking {
		t.Fatalf("the last event before the stop is %s, want the revoking intent", last)
	}
	w.start()
	w.settle()
	if got := w.request(r.ID); got.State != workflow.RequestEnded || w.target.has("readonly", "alice@example.com") {
		t.Errorf("after restart during revocation: %s", got.State)
	}
}

func TestOnBehalf(t *testing.T) {
	w := newWorld(t)
	r := w.submit(workflow.Submission{Item: "db-ro", Requester: "UDANA", Beneficiary: "UBOB", Justification: "Bob starts on the reports"})
	if r.Beneficiary != "UBOB" || r.State != workflow.RequestPending {
		t.Fatalf("request for a report: %+v", r)
	}
	if w.notes.count("submitted UDANA for UBOB") != 1 {
		t.Errorf("the beneficiary was not told: %v", w.notes.seen())
	}
	if _, err := w.eng.Submit(context.Background(), workflow.Submission{Item: "db-ro", Requester: "UALICE", Beneficiary: "UBOB", Justification: "for Bob"}); workflow.RefusalOf(err) != workflow.RefusedOnBehalf {
		t.Errorf("a peer requesting for Bob: %v", err)
	}
	w.approve(r.ID, "UCAROL")
	if !w.target.has("readonly", "bob@example.com") || w.target.has("readonly", "dana@example.com") {
		t.Errorf("access went to the wrong person: %v", w.target.access)
	}
}

func TestAdminResolvesFailedRevoke(t *testing.T) {
	w := newWorld(t)
	r := w.submit(workflow.Submission{Item: "db-ro", Requester: "UALICE", Justification: "on call"})
	w.target.revokeFailing = 100
	w.pass(time.Hour + time.Second)
	for i := 0; i < workflow.MaxRevokeAttempts; i++ {
		w.pass(workflow.RetryMax)
	}
	g := w.request(r.ID).Grants[0]
	if g.State != workflow.GrantRevokeFailed {
		t.Fatalf("grant %s", g.State)
	}
	if _, err := w.eng.Resolve(context.Background(), r.ID, g.ID, "USAM", "dropped the role by hand"); err != nil {
		t.Fatal(err)
	}
	w.settle()
	revokes := w.target.revokes
	w.pass(2 * workflow.RetryFailedEvery)
	if got := w.request(r.ID); got.State != workflow.RequestEnded || w.target.revokes != revokes {
		t.Errorf("after an admin resolved it: %s, %d more revoke attempts", got.State, w.target.revokes-revokes)
	}
}

func TestProvisioningThatNeverSucceedsEndsAtExpiry(t *testing.T) {
	w := newWorld(t)
	w.target.failGrant["cn=dba"] = errors.New("ldap: timeout")
	r := w.submit(workflow.Submission{Item: "db-admin", Requester: "UALICE", Justification: "INC-12"})
	w.approve(r.ID, "UDANA")
	w.approve(r.ID, "UEVE")
	if got := w.request(r.ID); got.State != workflow.RequestProvisioning || !w.target.has("admin", "alice@example.com") {
		t.Fatalf("one target granted, the other retrying: %s", got.State)
	}
	for i := 0; i < 20; i++ {
		w.pass(5 * time.Minute)
	}
	got := w.request(r.ID)
	if got.State != workflow.RequestEnded || w.target.has("admin", "alice@example.com") {
		t.Errorf("an hour and more after approval: %s, access %v", got.State, w.target.access)
	}
	// Backing off (5 s doubling to 5 min, each jittered down to half),
	// about a dozen attempts fit before the expiry; without it there
	// would be one every tick.
	if n := got.Grants[1].GrantAttempts; n > 16 {
		t.Errorf("%d grant attempts in 100 minutes: the retries do not back off", n)
	}
}

func TestExtensionLimits(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	r := w.submit(workflow.Submission{Item: "db-ro", Requester: "UALICE", Duration: time.Hour, Justification: "on call"})
	if _, err := w.eng.Extend(ctx, r.ID, "UALICE", time.Duration(1<<63-1), "forever"); workflow.RefusalOf(err) != workflow.RefusedExtension {
		t.Errorf("an extension that would overflow: %v", err)
	}
	bg, err := w.eng.BreakGlass(ctx, workflow.BreakGlassCommand{Requester: "UALICE", Item: "prod-shell", Reason: "db down", Channel: "CINCIDENT"})
	if err != nil {
		t.Fatal(err)
	}
	w.settle()
	if _, err := w.eng.Extend(ctx, bg.ID, "UALICE", time.Hour, "still down"); workflow.RefusalOf(err) != workflow.RefusedExtension {
		t.Errorf("extending break-glass access: %v", err)
	}
	w.stop()
	w.clock.Advance(2 * time.Hour)
	w.start()
	if _, err := w.eng.Extend(ctx, r.ID, "UALICE", time.Hour, "late"); workflow.RefusalOf(err) != workflow.RefusedClosed {
		t.Errorf("extending access that expired while latch was down: %v", err)
	}
}

func TestRevokeReachesTheAccountThatWasGranted(t *testing.T) {
	w := newWorld(t)
	r := w.submit(workflow.Submission{Item: "db-ro", Requester: "UALICE", Justification: "on call"})
	// Alice leaves the directory while she holds the grant.
	dir, err := workflow.NewStaticDirectory([]workflow.User{
		{SlackID: "UCAROL", Email: "carol@example.com", Groups: []string{"dba"}},
	}, []workflow.Group{{Name: "dba"}})
	if err != nil {
		t.Fatal(err)
	}
	w.stop()
	w.cfg.Directory = dir
	w.start()
	w.pass(2 * time.Hour)
	if got := w.request(r.ID); got.State != workflow.RequestEnded || w.target.has("readonly", "alice@example.com") {
		t.Errorf("after the holder left the directory: %s, access %v", got.State, w.target.access)
	}
}

func TestBreakGlassRateLimitHoldsUnderConcurrency(t *testing.T) {
	w := newWorld(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := w.eng.BreakGlass(context.Background(), workflow.BreakGlassCommand{Requester: "UALICE", Item: "prod-shell", Reason: "fire", Channel: "CINCIDENT"}); err == nil {
				mu.Lock()
				granted++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	w.settle()
	if granted != 1 {
		t.Errorf("%d break-glass grants at once, the limit is 1", granted)
	}
}

func TestOnlyActiveGrantsKeepATarget(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	a := w.submit(workflow.Submission{Item: "db-ro", Requester: "UALICE", Justification: "on call"})
	// A second grant of the same target is stuck retrying...
	w.target.failGrant["readonly"] = errors.New("timeout")
	b := w.submit(workflow.Submission{Item: "db-ro", Requester: "UALICE", Justification: "on call"})
	if got := w.request(b.ID); got.State != workflow.RequestProvisioning {
		t.Fatalf("second request: %s", got.State)
	}
	// ...so releasing the first must take the access away.
	if _, err := w.eng.Release(ctx, a.ID, "UALICE"); err != nil {
		t.Fatal(err)
	}
	w.settle()
	if w.target.has("readonly", "alice@example.com") {
		t.Errorf("a grant that never took effect kept the target after the first was released")
	}
}

func TestPerGrantAccessIsRevokedEvenWhenAnotherGrantIsActive(t *testing.T) {
	for _, perGrant := range []bool{false, true} {
		t.Run(fmt.Sprintf("perGrant=%t", perGrant), func(t *testing.T) {
			w := newWorld(t)
			w.target.perGrant = perGrant
			a := w.submit(workflow.Submission{Item: "db-ro", Requester: "UALICE", Justification: "on call"})
			w.submit(workflow.Submission{Item: "db-ro", Requester: "UALICE", Justification: "on call"})
			before := w.target.revokes
			if _, err := w.eng.Release(context.Background(), a.ID, "UALICE"); err != nil {
				t.Fatal(err)
			}
			w.settle()
			// The same role for the same person is kept for the other
			// grant; an account of the first grant's own is taken back.
			if got, want := w.target.revokes-before, map[bool]int{false: 0, true: 1}[perGrant]; got != want {
				t.Errorf("%d revokes on release, want %d", got, want)
			}
			if got := w.request(a.ID); got.State != workflow.RequestEnded {
				t.Errorf("released request: %s", got.State)
			}
		})
	}
}

func TestCloseLetsCallsInFlightFinish(t *testing.T) {
	w := newWorld(t)
	w.stop()
	w.cfg.ShutdownGrace = time.Minute
	w.start()
	w.target.mu.Lock()
	w.target.hang = true
	w.target.mu.Unlock()
	r, err := w.eng.Submit(context.Background(), workflow.Submission{Item: "db-ro", Requester: "UALICE", Justification: "on call"})
	if err != nil {
		t.Fatal(err)
	}
	<-w.target.hanging // the grant call is in flight
	closed := make(chan struct{})
	go func() {
		w.eng.Close()
		close(closed)
	}()
	for w.eng.Running() { // until Close has begun
		runtime.Gosched()
	}
	w.target.release()
	<-closed
	w.eng = nil
	if got := w.request(r.ID); got.State != workflow.RequestActive {
		t.Errorf("the grant in flight at Close ended %s, want it finished: active", got.State)
	}
}

func TestRecordPost(t *testing.T) {
	w := newWorld(t)
	r := w.submit(workflow.Submission{Item: "db-admin", Requester: "UALICE", Duration: 2 * time.Hour, Justification: "INC-4211"})
	card := workflow.Posted{Audience: workflow.AudienceApprover, User: "UDANA", Channel: "DDANA", Ref: "1700000000.000100"}
	for range 2 { // recording the same message twice keeps one
		if _, err := w.eng.RecordPost(context.Background(), r.ID, card); err != nil {
			t.Fatalf("RecordPost: %v", err)
		}
	}
	w.approve(r.ID, "UDANA")
	got := w.request(r.ID)
	if len(got.Posts) != 1 || got.Posts[0] != card {
		t.Fatalf("posts = %+v, want [%+v]", got.Posts, card)
	}
	if p, ok := got.Post(workflow.AudienceApprover, "UDANA"); !ok || p != card {
		t.Errorf("Post(approver, UDANA) = %+v, %t", p, ok)
	}
	if got.Stage != 1 {
		t.Errorf("a recorded post changed the request: stage %d", got.Stage)
	}
	// It survives a restart, and a post without a place is refused.
	w.stop()
	w.start()
	if got := w.request(r.ID); len(got.Posts) != 1 {
		t.Errorf("after a restart: posts = %+v", got.Posts)
	}
	if _, err := w.eng.RecordPost(context.Background(), r.ID, workflow.Posted{Audience: workflow.AudienceApprover, User: "UDANA"}); !errors.Is(err, workflow.ErrTransition) {
		t.Errorf("RecordPost without channel: %v, want ErrTransition", err)
	}
	if kinds := w.kinds(r.ID); !slices.Contains(kinds, workflow.KindPosted) {
		t.Errorf("log has no %s: %v", workflow.KindPosted, kinds)
	}
}

// slowNotes holds each notice until released, and records whether its
// context was still live when it was delivered.
type slowNotes struct {
	notes
	release chan struct{}
	live    []bool
}

func (n *slowNotes) Submitted(ctx context.Context, r workflow.Request) {
	<-n.release
	n.mu.Lock()
	n.live = append(n.live, ctx.Err() == nil)
	n.mu.Unlock()
}

func TestCloseDeliversQueuedNotices(t *testing.T) {
	w := newWorld(t)
	slow := &slowNotes{release: make(chan struct{})}
	w.stop()
	w.cfg.Notifier = slow
	w.start()
	for range 3 {
		if _, err := w.eng.Submit(context.Background(), workflow.Submission{Item: "db-admin", Requester: "UALICE", Justification: "INC-4211"}); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan struct{})
	go func() {
		w.stop() // a shutdown with three notices queued
		close(closed)
	}()
	close(slow.release)
	<-closed
	slow.mu.Lock()
	defer slow.mu.Unlock()
	if len(slow.live) != 3 || slices.Contains(slow.live, false) {
		t.Errorf("notices delivered with a live context: %v, want three, all live", slow.live)
	}
}
