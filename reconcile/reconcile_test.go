package reconcile_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchhq/latch/reconcile"
	"github.com/latchhq/latch/reconcile/reconciletest"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

var (
	jane = workflow.User{SlackID: "U0JANE", Email: "jane@example.com"}
	omar = workflow.User{SlackID: "U0OMAR", Email: "omar@example.com"}
	lee  = workflow.User{SlackID: "U0LEE", Email: "lee@example.com"}

	readonly = workflow.Target{Connector: "db", Entitlement: "readonly"}
	admins   = workflow.Target{Connector: "dir", Entitlement: "cn=admins"}
)

// target is a fake connector that lists the holdings it is given and
// takes them away on Revoke (by grant id, or by email) and Remove.
type target struct {
	mu       sync.Mutex
	holdings []workflow.Holding
	revoked  []workflow.Access
	removed  []workflow.Holding
	listed   [][]string
	listErr  error
	failWith error  // returned by Revoke and Remove while set
	during   func() // called while listing, after the holdings are read
}

func (c *target) Grant(context.Context, workflow.Access) (workflow.Granted, error) {
	return workflow.Granted{}, nil
}

func (c *target) Revoke(_ context.Context, a workflow.Access) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failWith != nil {
		return c.failWith
	}
	c.revoked = append(c.revoked, a)
	c.holdings = slices.DeleteFunc(c.holdings, func(h workflow.Holding) bool {
		return h.Entitlement == a.Entitlement && (a.GrantID != "" && h.GrantID == a.GrantID || h.Email == a.User.Email)
	})
	return nil
}

func (c *target) List(_ context.Context, entitlements []string) ([]workflow.Holding, error) {
	c.mu.Lock()
	holdings, err := slices.Clone(c.holdings), c.listErr
	c.listed = append(c.listed, entitlements)
	during := c.during
	c.mu.Unlock()
	if during != nil {
		during()
	}
	return holdings, err
}

func (c *target) add(h ...workflow.Holding) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holdings = append(c.holdings, h...)
}

func (c *target) state() (holdings []workflow.Holding, revoked []workflow.Access, removed []workflow.Holding) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.holdings), slices.Clone(c.revoked), slices.Clone(c.removed)
}

func (c *target) setFail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failWith = err
}

// removing is a target that also offers Remove.
type removing struct{ *target }

func (c removing) Remove(_ context.Context, h workflow.Holding) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failWith != nil {
		return c.failWith
	}
	c.removed = append(c.removed, h)
	c.holdings = slices.DeleteFunc(c.holdings, func(x workflow.Holding) bool { return x == h })
	return nil
}

// notLister is a connector that cannot list.
type notLister struct{}

func (notLister) Grant(context.Context, workflow.Access) (workflow.Granted, error) {
	return workflow.Granted{}, nil
}
func (notLister) Revoke(context.Context, workflow.Access) error { return nil }

// fixture is a store, a catalogue with readonly on db and cn=admins on
// dir, and the two fake connectors.
type fixture struct {
	st  *store.Store
	db  *target
	dir *target
	cfg reconcile.Config
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	cat, err := workflow.NewCatalogue([]workflow.Item{
		{ID: "ro", Kind: workflow.KindEntitlement, Targets: []workflow.Target{readonly}, Policy: "default"},
		{ID: "both", Kind: workflow.KindBundle, Targets: []workflow.Target{readonly, admins}, Policy: "default"},
		{ID: "hooks", Kind: workflow.KindEntitlement, Targets: []workflow.Target{{Connector: "hook", Entitlement: "x"}}, Policy: "default"},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: reconciletest.Open(t), db: &target{}, dir: &target{}}
	f.cfg = reconcile.Config{
		Store:      f.st,
		Catalogue:  cat,
		Connectors: map[string]workflow.Provisioner{"db": f.db, "dir": removing{f.dir}, "hook": notLister{}},
		Record:     reconciletest.Record(f.st),
	}
	return f
}

func (f *fixture) reconciler(t *testing.T) *reconcile.Reconciler {
	t.Helper()
	r, err := reconcile.New(f.cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

func (f *fixture) once(t *testing.T, r *reconcile.Reconciler) []reconcile.Finding {
	t.Helper()
	got, err := r.Once(t.Context())
	if err != nil {
		t.Fatalf("Once: %v", err)
	}
	return got
}

// payloads returns the kinds of the drift events in the log, and their
// findings.
func (f *fixture) drift(t *testing.T) ([]string, []reconcile.Finding) {
	t.Helper()
	var kinds []string
	var findings []reconcile.Finding
	for _, e := range reconciletest.Events(t, f.st, reconcile.KindLeftover, reconcile.KindUnmanaged, reconcile.KindRemoved, reconcile.KindRemoveFailed) {
		var fd reconcile.Finding
		if err := json.Unmarshal(e.Payload, &fd); err != nil {
			t.Fatalf("event %d: %v", e.Seq, err)
		}
		if e.RequestID != "" {
			t.Errorf("event %d (%s) has request id %q, want none", e.Seq, e.Kind, e.RequestID)
		}
		kinds = append(kinds, e.Kind)
		findings = append(findings, fd)
	}
	return kinds, findings
}

func grant(id string, tg workflow.Target, u workflow.User, facts map[string]string) reconciletest.Grant {
	return reconciletest.Grant{Request: "req-" + id, ID: id, Target: tg, User: u, Facts: facts}
}

func TestNew(t *testing.T) {
	f := newFixture(t)
	r := f.reconciler(t)
	if got, want := r.Connectors(), []string{"db", "dir"}; !slices.Equal(got, want) {
		t.Errorf("Connectors() = %v, want %v", got, want)
	}
	for _, tt := range []struct {
		name string
		edit func(*reconcile.Config)
	}{
		{"no store", func(c *reconcile.Config) { c.Store = nil }},
		{"no catalogue", func(c *reconcile.Config) { c.Catalogue = nil }},
		{"negative period", func(c *reconcile.Config) { c.Every = -time.Second }},
	} {
		cfg := f.cfg
		tt.edit(&cfg)
		if _, err := reconcile.New(cfg); !errors.Is(err, reconcile.ErrInvalidConfig) {
			t.Errorf("%s: New = %v, want ErrInvalidConfig", tt.name, err)
		}
	}
}

func TestListsTheCatalogueEntitlements(t *testing.T) {
	f := newFixture(t)
	f.once(t, f.reconciler(t))
	for _, tt := range []struct {
		c    *target
		want []string
	}{{f.db, []string{"readonly"}}, {f.dir, []string{"cn=admins"}}} {
		if len(tt.c.listed) != 1 || !slices.Equal(tt.c.listed[0], tt.want) {
			t.Errorf("listed %v, want [%v]", tt.c.listed, tt.want)
		}
	}
}

func TestClassification(t *testing.T) {
	ro := func(account, email, grantID string) workflow.Holding {
		return workflow.Holding{Entitlement: "readonly", Account: account, Email: email, GrantID: grantID}
	}
	tests := []struct {
		name    string
		history func(t *testing.T, st *store.Store)
		holding workflow.Holding
		remove  map[string]bool
		want    []reconcile.Finding // nil: in order
		revoked []workflow.Access
	}{
		{
			name:    "active grant by id",
			history: func(t *testing.T, st *store.Store) { reconciletest.Active(t, st, grant("g1", readonly, jane, nil)) },
			holding: ro("jane_1", "", "g1"),
		},
		{
			name: "grant being provisioned, by id",
			history: func(t *testing.T, st *store.Store) {
				reconciletest.Provisioning(t, st, grant("g1", readonly, jane, nil))
			},
			holding: ro("jane_1", "", "g1"),
		},
		{
			name: "member matching an active grant's account",
			history: func(t *testing.T, st *store.Store) {
				reconciletest.Active(t, st, grant("g1", readonly, jane, map[string]string{"account": "jane"}))
			},
			holding: ro("JANE", "", ""),
		},
		{
			name:    "member matching an active grant's email",
			history: func(t *testing.T, st *store.Store) { reconciletest.Active(t, st, grant("g1", readonly, jane, nil)) },
			holding: ro("uid=jane", "Jane@Example.com", ""),
		},
		{
			name: "member while a grant of the target is provisioned",
			history: func(t *testing.T, st *store.Store) {
				reconciletest.Provisioning(t, st, grant("g1", readonly, omar, nil))
			},
			holding: ro("lee", "lee@example.com", ""),
		},
		{
			name: "ended grant by id",
			history: func(t *testing.T, st *store.Store) {
				g := grant("g1", readonly, jane, nil)
				reconciletest.Active(t, st, g)
				reconciletest.Revoked(t, st, g)
			},
			holding: ro("jane_1", "", "g1"),
			want: []reconcile.Finding{{Kind: reconcile.Leftover, Connector: "db", Entitlement: "readonly", Account: "jane_1",
				Email: jane.Email, GrantID: "g1", RequestID: "req-g1", Action: reconcile.ActionRemoved}},
			revoked: []workflow.Access{{GrantID: "g1", RequestID: "req-g1", User: jane, Entitlement: "readonly"}},
		},
		{
			name: "member matching an ended grant only",
			history: func(t *testing.T, st *store.Store) {
				g := grant("g1", readonly, jane, map[string]string{"account": "jane"})
				reconciletest.Active(t, st, g)
				reconciletest.Revoked(t, st, g)
				reconciletest.Active(t, st, grant("g2", readonly, omar, map[string]string{"account": "omar"}))
			},
			holding: ro("jane", "", ""),
			want: []reconcile.Finding{{Kind: reconcile.Leftover, Connector: "db", Entitlement: "readonly", Account: "jane",
				Email: jane.Email, GrantID: "g1", RequestID: "req-g1", Action: reconcile.ActionRemoved}},
			revoked: []workflow.Access{{GrantID: "g1", RequestID: "req-g1", User: jane, Entitlement: "readonly"}},
		},
		{
			name: "member covered by a live grant besides an ended one",
			history: func(t *testing.T, st *store.Store) {
				g := grant("g1", readonly, jane, map[string]string{"account": "jane"})
				reconciletest.Active(t, st, g)
				reconciletest.Revoked(t, st, g)
				reconciletest.Active(t, st, grant("g2", readonly, jane, map[string]string{"account": "jane"}))
			},
			holding: ro("jane", "", ""),
		},
		{
			name:    "unknown grant id",
			holding: ro("x_1", "", "g-nobody-knows"),
			want: []reconcile.Finding{{Kind: reconcile.UnknownGrant, Connector: "db", Entitlement: "readonly", Account: "x_1",
				GrantID: "g-nobody-knows", Action: reconcile.ActionReport}},
		},
		{
			name:    "unknown grant id, removed",
			holding: ro("x_1", "x@example.com", "g-nobody-knows"),
			remove:  map[string]bool{"db": true},
			want: []reconcile.Finding{{Kind: reconcile.UnknownGrant, Connector: "db", Entitlement: "readonly", Account: "x_1",
				Email: "x@example.com", GrantID: "g-nobody-knows", Action: reconcile.ActionRemoved}},
			revoked: []workflow.Access{{GrantID: "g-nobody-knows", User: workflow.User{Email: "x@example.com"}, Entitlement: "readonly"}},
		},
		{
			name: "unmanaged member",
			history: func(t *testing.T, st *store.Store) {
				reconciletest.Active(t, st, grant("g1", readonly, jane, map[string]string{"account": "jane"}))
			},
			holding: ro("lee", "lee@example.com", ""),
			want: []reconcile.Finding{{Kind: reconcile.Unmanaged, Connector: "db", Entitlement: "readonly", Account: "lee",
				Email: "lee@example.com", Action: reconcile.ActionReport}},
		},
		{
			name:    "unmanaged member without email, to be removed by a connector that removes by person",
			holding: ro("lee", "", ""),
			remove:  map[string]bool{"db/readonly": true},
			want: []reconcile.Finding{{Kind: reconcile.Unmanaged, Connector: "db", Entitlement: "readonly", Account: "lee",
				Action: reconcile.ActionRemoveFailed, Error: reconcile.ErrCannotRemove.Error()}},
		},
		{
			name:    "unmanaged member, removal refused by the more specific key",
			holding: ro("lee", "lee@example.com", ""),
			remove:  map[string]bool{"db": true, "db/readonly": false},
			want: []reconcile.Finding{{Kind: reconcile.Unmanaged, Connector: "db", Entitlement: "readonly", Account: "lee",
				Email: "lee@example.com", Action: reconcile.ActionReport}},
		},
		{
			name:    "entitlement latch does not manage",
			holding: workflow.Holding{Entitlement: "other", Account: "lee"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.history != nil {
				tt.history(t, f.st)
			}
			f.cfg.RemoveUnmanaged = tt.remove
			f.db.add(tt.holding)
			got := f.once(t, f.reconciler(t))
			if !slices.Equal(got, tt.want) {
				t.Errorf("findings\n got %+v\nwant %+v", got, tt.want)
			}
			_, revoked, _ := f.db.state()
			for i := range revoked {
				revoked[i].ExpiresAt, revoked[i].Params = time.Time{}, nil
			}
			if !slices.EqualFunc(revoked, tt.revoked, func(a, b workflow.Access) bool {
				return a.GrantID == b.GrantID && a.RequestID == b.RequestID && a.User.SlackID == b.User.SlackID &&
					a.User.Email == b.User.Email && a.Entitlement == b.Entitlement
			}) {
				t.Errorf("revoked\n got %+v\nwant %+v", revoked, tt.revoked)
			}
			kinds, recorded := f.drift(t)
			var wantKinds []string
			for _, w := range tt.want {
				switch w.Kind {
				case reconcile.Leftover:
					wantKinds = append(wantKinds, reconcile.KindLeftover)
				default:
					wantKinds = append(wantKinds, reconcile.KindUnmanaged)
				}
				switch w.Action {
				case reconcile.ActionRemoved:
					wantKinds = append(wantKinds, reconcile.KindRemoved)
				case reconcile.ActionRemoveFailed:
					wantKinds = append(wantKinds, reconcile.KindRemoveFailed)
				}
			}
			if !slices.Equal(kinds, wantKinds) {
				t.Errorf("recorded %v, want %v", kinds, wantKinds)
			}
			if len(recorded) > 0 && recorded[len(recorded)-1] != tt.want[len(tt.want)-1] {
				t.Errorf("last recorded finding %+v, want %+v", recorded[len(recorded)-1], tt.want[len(tt.want)-1])
			}
		})
	}
}

func TestUnmanagedRemovedByAccount(t *testing.T) {
	f := newFixture(t)
	f.cfg.RemoveUnmanaged = map[string]bool{"dir": true}
	lee := workflow.Holding{Entitlement: "cn=admins", Account: "uid=lee"}
	f.dir.add(lee)
	got := f.once(t, f.reconciler(t))
	want := []reconcile.Finding{{Kind: reconcile.Unmanaged, Connector: "dir", Entitlement: "cn=admins", Account: "uid=lee", Action: reconcile.ActionRemoved}}
	if !slices.Equal(got, want) {
		t.Errorf("findings\n got %+v\nwant %+v", got, want)
	}
	holdings, revoked, removed := f.dir.state()
	if len(holdings) != 0 || len(revoked) != 0 || !slices.Equal(removed, []workflow.Holding{lee}) {
		t.Errorf("holdings %v, revoked %v, removed %v; want only %v removed", holdings, revoked, removed, lee)
	}
	kinds, _ := f.drift(t)
	if want := []string{reconcile.KindUnmanaged, reconcile.KindRemoved}; !slices.Equal(kinds, want) {
		t.Errorf("recorded %v, want %v", kinds, want)
	}
}

// TestRacesWithTheEngine changes the store while the connector lists, as
// the engine does when it grants or revokes at the same time.
func TestRacesWithTheEngine(t *testing.T) {
	tests := []struct {
		name    string
		before  func(t *testing.T, st *store.Store)
		during  func(t *testing.T, st *store.Store)
		holding workflow.Holding
	}{
		{
			name: "granted while listing",
			during: func(t *testing.T, st *store.Store) {
				reconciletest.Provisioning(t, st, grant("g1", readonly, jane, nil))
			},
			holding: workflow.Holding{Entitlement: "readonly", Account: "jane_1", GrantID: "g1"},
		},
		{
			name: "granted and failed while listing",
			during: func(t *testing.T, st *store.Store) {
				g := grant("g1", readonly, jane, nil)
				reconciletest.Provisioning(t, st, g)
				reconciletest.Append(t, st, g.Request,
					reconciletest.Event(t, workflow.KindGrantFailed, g.ID, workflow.GrantError{Error: "refused", Permanent: true}),
					reconciletest.Event(t, workflow.KindFailed, "", workflow.Note{Reason: "refused"}),
					reconciletest.Event(t, workflow.KindEnded, "", workflow.Note{}))
			},
			holding: workflow.Holding{Entitlement: "readonly", Account: "jane_1", GrantID: "g1"},
		},
		{
			name:   "revoked while listing, by id",
			before: func(t *testing.T, st *store.Store) { reconciletest.Active(t, st, grant("g1", readonly, jane, nil)) },
			during: func(t *testing.T, st *store.Store) {
				reconciletest.Revoked(t, st, grant("g1", readonly, jane, nil))
			},
			holding: workflow.Holding{Entitlement: "readonly", Account: "jane_1", GrantID: "g1"},
		},
		{
			name: "revoked while listing, by account",
			before: func(t *testing.T, st *store.Store) {
				reconciletest.Active(t, st, grant("g1", readonly, jane, map[string]string{"account": "jane"}))
			},
			during: func(t *testing.T, st *store.Store) {
				reconciletest.Revoked(t, st, grant("g1", readonly, jane, nil))
			},
			holding: workflow.Holding{Entitlement: "readonly", Account: "jane"},
		},
		{
			name: "granted by account while listing",
			during: func(t *testing.T, st *store.Store) {
				reconciletest.Active(t, st, grant("g1", readonly, jane, map[string]string{"account": "jane"}))
			},
			holding: workflow.Holding{Entitlement: "readonly", Account: "jane"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.before != nil {
				tt.before(t, f.st)
			}
			f.db.add(tt.holding)
			f.db.during = func() { tt.during(t, f.st) }
			if got := f.once(t, f.reconciler(t)); len(got) != 0 {
				t.Errorf("findings %+v, want none", got)
			}
			if kinds, _ := f.drift(t); len(kinds) != 0 {
				t.Errorf("recorded %v, want nothing", kinds)
			}
		})
	}
}

func TestFindingsAreRecordedOnce(t *testing.T) {
	f := newFixture(t)
	var reports []reconcile.Finding
	f.cfg.Report = func(_ context.Context, fd reconcile.Finding) { reports = append(reports, fd) }
	g := grant("g1", readonly, jane, nil)
	reconciletest.Active(t, f.st, g)
	reconciletest.Revoked(t, f.st, g)
	leftover := workflow.Holding{Entitlement: "readonly", Account: "jane_1", GrantID: "g1"}
	unmanaged := workflow.Holding{Entitlement: "readonly", Account: "lee", Email: lee.Email}
	f.db.add(leftover, unmanaged)
	f.db.setFail(errors.New("server unavailable"))
	r := f.reconciler(t)

	pass := func(wantActions ...string) {
		t.Helper()
		got := f.once(t, r)
		var actions []string
		for _, fd := range got {
			actions = append(actions, fd.Kind+":"+fd.Action)
		}
		if !slices.Equal(actions, wantActions) {
			t.Errorf("findings %v, want %v", actions, wantActions)
		}
	}
	pass("leftover:remove_failed", "unmanaged:report")
	pass("leftover:remove_failed", "unmanaged:report")
	f.db.setFail(nil)
	pass("leftover:removed", "unmanaged:report")
	pass("unmanaged:report")

	kinds, _ := f.drift(t)
	want := []string{reconcile.KindLeftover, reconcile.KindUnmanaged, reconcile.KindRemoveFailed, reconcile.KindRemoved}
	if !slices.Equal(kinds, want) {
		t.Errorf("recorded %v, want %v", kinds, want)
	}
	var told []string
	for _, fd := range reports {
		told = append(told, fd.Kind+":"+fd.Action)
	}
	if want := []string{"leftover:remove_failed", "unmanaged:report", "leftover:removed"}; !slices.Equal(told, want) {
		t.Errorf("reported %v, want %v", told, want)
	}

	// Gone, then back: found again.
	holdings, _, _ := f.db.state()
	f.db.mu.Lock()
	f.db.holdings = nil
	f.db.mu.Unlock()
	pass()
	f.db.add(holdings...)
	pass("unmanaged:report")
	if kinds, _ := f.drift(t); len(kinds) != len(want)+1 {
		t.Errorf("recorded %v, want the unmanaged member again", kinds)
	}
}

func TestNothingRemovedUnrecorded(t *testing.T) {
	f := newFixture(t)
	refused := errors.New("log is full")
	f.cfg.Record = func(context.Context, []workflow.Event) error { return refused }
	g := grant("g1", readonly, jane, nil)
	reconciletest.Active(t, f.st, g)
	reconciletest.Revoked(t, f.st, g)
	f.db.add(workflow.Holding{Entitlement: "readonly", Account: "jane_1", GrantID: "g1"})
	if _, err := f.reconciler(t).Once(t.Context()); !errors.Is(err, refused) {
		t.Fatalf("Once = %v, want %v", err, refused)
	}
	if holdings, revoked, _ := f.db.state(); len(holdings) != 1 || len(revoked) != 0 {
		t.Errorf("holdings %v, revoked %v; want the leftover left in place", holdings, revoked)
	}
}

func TestListFailure(t *testing.T) {
	f := newFixture(t)
	down := errors.New("connection refused")
	f.db.listErr = down
	f.db.add(workflow.Holding{Entitlement: "readonly", Account: "lee"})
	f.dir.add(workflow.Holding{Entitlement: "cn=admins", Account: "uid=lee"})
	got, err := f.reconciler(t).Once(t.Context())
	if !errors.Is(err, down) {
		t.Errorf("Once error = %v, want %v", err, down)
	}
	if len(got) != 1 || got[0].Connector != "dir" {
		t.Errorf("findings %+v, want the one of dir", got)
	}
}

func TestRun(t *testing.T) {
	f := newFixture(t)
	clock := workflow.NewFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	reports := make(chan reconcile.Finding, 4)
	f.cfg.Clock, f.cfg.Every = clock, time.Hour
	f.cfg.Report = func(_ context.Context, fd reconcile.Finding) { reports <- fd }
	f.db.add(workflow.Holding{Entitlement: "readonly", Account: "lee"})
	r := f.reconciler(t)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	if fd := <-reports; fd.Account != "lee" {
		t.Errorf("first pass reported %+v, want lee", fd)
	}
	if err := clock.WaitTickers(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	f.dir.add(workflow.Holding{Entitlement: "cn=admins", Account: "uid=omar"})
	clock.Advance(time.Hour)
	if fd := <-reports; fd.Account != "uid=omar" {
		t.Errorf("second pass reported %+v, want uid=omar", fd)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if n := clock.Tickers(); n != 0 {
		t.Errorf("%d tickers left running", n)
	}
}

// A connector whose removal does not take: the access is still listed at
// the next pass, which records the removal as failed instead of staying
// silent.
type stubborn struct {
	listed []workflow.Holding
}

func (s *stubborn) Grant(context.Context, workflow.Access) (workflow.Granted, error) {
	return workflow.Granted{}, nil
}
func (s *stubborn) Revoke(context.Context, workflow.Access) error { return nil }
func (s *stubborn) List(context.Context, []string) ([]workflow.Holding, error) {
	return s.listed, nil
}
func (s *stubborn) Remove(context.Context, workflow.Holding) error { return nil }

func TestRemovalThatDoesNotTakeIsRecordedAsFailed(t *testing.T) {
	f := newFixture(t)
	conn := &stubborn{listed: []workflow.Holding{{Entitlement: readonly.Entitlement, Account: "mallory"}}}
	f.cfg.Connectors = map[string]workflow.Provisioner{"db": conn}
	f.cfg.RemoveUnmanaged = map[string]bool{"db": true}
	r := f.reconciler(t)
	first, err := r.Once(t.Context())
	if err != nil || len(first) != 1 || first[0].Action != reconcile.ActionRemoved {
		t.Fatalf("first pass: %+v, %v; want one removed", first, err)
	}
	second, err := r.Once(t.Context())
	if err != nil || len(second) != 1 || second[0].Action != reconcile.ActionRemoveFailed {
		t.Fatalf("second pass, the access still there: %+v, %v; want remove_failed", second, err)
	}
}
