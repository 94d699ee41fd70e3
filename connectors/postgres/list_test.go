package postgres_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/latchhq/latch/connectors/postgres"
	"github.com/latchhq/latch/reconcile"
	"github.com/latchhq/latch/reconcile/reconciletest"
	"github.com/latchhq/latch/workflow"
)

// list returns what the connector lists for readonly, failing the test on
// an error.
func (e *env) list(t testing.TB) []workflow.Holding {
	t.Helper()
	got, err := e.conn.List(t.Context(), []string{entitlement})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return got
}

func TestListEphemeral(t *testing.T) {
	e := newEnv(t, postgres.ModeEphemeral)
	other := newEnv(t, postgres.ModeEphemeral) // another connector on the same server
	aj, ao := e.access(jane, "list"), e.access(omar, "list")
	janeUser, _ := credentials(t, e.grant(t, aj))
	omarUser, _ := credentials(t, e.grant(t, ao))
	other.grant(t, other.access(jane, "other"))

	want := []workflow.Holding{
		{Entitlement: entitlement, Account: janeUser, GrantID: aj.GrantID},
		{Entitlement: entitlement, Account: omarUser, GrantID: ao.GrantID},
	}
	slices.SortFunc(want, func(a, b workflow.Holding) int { return strings.Compare(a.Account, b.Account) })
	if got := e.list(t); !slices.Equal(got, want) {
		t.Errorf("List\n got %+v\nwant %+v", got, want)
	}

	// A role that lost its membership by hand is still latch's.
	e.srv.super(t, "postgres", "REVOKE "+entitlement+" FROM "+omarUser)
	want = slices.DeleteFunc(want, func(h workflow.Holding) bool { return h.Account == omarUser })
	want = append(want, workflow.Holding{Account: omarUser, GrantID: ao.GrantID})
	slices.SortFunc(want, func(a, b workflow.Holding) int { return strings.Compare(a.Account, b.Account) })
	if got := e.list(t); !slices.Equal(got, want) {
		t.Errorf("List after the membership was revoked\n got %+v\nwant %+v", got, want)
	}

	e.revoke(t, aj)
	e.revoke(t, ao)
	if got := e.list(t); len(got) != 0 {
		t.Errorf("List after the revokes = %+v, want nothing", got)
	}
}

// privateRole makes a role without login for one test to grant, dropped
// when the test ends, so that no other test's members of readonly count.
func (e *env) privateRole(t testing.TB) string {
	t.Helper()
	role := e.sl.prefix + "ro"
	e.srv.super(t, "postgres", "CREATE ROLE "+role+" NOLOGIN")
	t.Cleanup(func() { e.srv.super(t, "postgres", "DROP ROLE "+role) })
	return role
}

func TestListRole(t *testing.T) {
	e := newEnv(t, postgres.ModeRole)
	role := e.privateRole(t)
	a := e.access(jane, "list")
	a.Entitlement = role
	e.grant(t, a)
	// omar is made a member by hand; a role without login, and latch's
	// own role, are members too but hold nothing a person logs in with.
	nologin := e.sl.prefix + "group"
	e.srv.super(t, "postgres",
		"GRANT "+role+" TO "+e.sl.prefix+"omar",
		"CREATE ROLE "+nologin+" NOLOGIN",
		"GRANT "+role+" TO "+nologin,
		"GRANT "+role+" TO "+adminUser,
	)
	t.Cleanup(func() { e.srv.super(t, "postgres", "DROP ROLE "+nologin) })
	want := []workflow.Holding{
		{Entitlement: role, Account: e.sl.prefix + "jane"},
		{Entitlement: role, Account: e.sl.prefix + "omar"},
	}
	list := func() []workflow.Holding {
		t.Helper()
		got, err := e.conn.List(t.Context(), []string{role, "no_such_role"})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		return got
	}
	if got := list(); !slices.Equal(got, want) {
		t.Errorf("List\n got %+v\nwant %+v", got, want)
	}
	if got, err := e.conn.List(t.Context(), nil); err != nil || len(got) != 0 {
		t.Errorf("List of no entitlement = %v, %v; want nothing", got, err)
	}

	// Remove takes the member away by its role name.
	if err := e.conn.Remove(t.Context(), want[1]); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if e.srv.isMember(t, e.sl.prefix+"omar", role) {
		t.Errorf("%somar is still a member of %s", e.sl.prefix, role)
	}
	if err := e.conn.Remove(t.Context(), want[1]); err != nil {
		t.Errorf("Remove again: %v", err)
	}
	if got := list(); !slices.Equal(got, want[:1]) {
		t.Errorf("List after Remove\n got %+v\nwant %+v", got, want[:1])
	}
}

func TestListFailure(t *testing.T) {
	e := newEnv(t, postgres.ModeRole)
	e.proxy.down()
	_, err := e.conn.List(t.Context(), []string{entitlement})
	var pe *postgres.Error
	if !errors.As(err, &pe) || workflow.IsPermanent(err) {
		t.Errorf("List with the server down = %v, want a transient *postgres.Error", err)
	}
}

// reconciler returns a reconciler of e's connector alone, over role,
// recording into st.
func (e *env) reconciler(t *testing.T, st reconcile.Store, record func(context.Context, []workflow.Event) error, role string, remove bool) *reconcile.Reconciler {
	t.Helper()
	cat, err := workflow.NewCatalogue([]workflow.Item{{
		ID: "readonly", Kind: workflow.KindEntitlement, Policy: "default",
		Targets: []workflow.Target{{Connector: e.conn.Name(), Entitlement: role}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := reconcile.New(reconcile.Config{
		Store:           st,
		Catalogue:       cat,
		Connectors:      map[string]workflow.Provisioner{e.conn.Name(): e.conn},
		Record:          record,
		RemoveUnmanaged: map[string]bool{e.conn.Name(): remove},
	})
	if err != nil {
		t.Fatalf("reconcile.New: %v", err)
	}
	return r
}

// history is the reconciletest.Grant of an access e granted.
func (e *env) history(a workflow.Access, g workflow.Granted) reconciletest.Grant {
	return reconciletest.Grant{
		Request: a.RequestID, ID: a.GrantID, User: a.User, Facts: g.Facts, ExpiresAt: a.ExpiresAt,
		Target: workflow.Target{Connector: e.conn.Name(), Entitlement: a.Entitlement},
	}
}

// canLogIn reports whether user may log in with password and read the
// table only readonly may read.
func (s *server) canLogIn(t testing.TB, user, password string) bool {
	t.Helper()
	conn, err := s.connect(t.Context(), user, password, database)
	if loginRefused(err) {
		return false
	}
	if err != nil {
		t.Fatalf("log in as %s: %v", user, err)
	}
	defer conn.Close(context.Background())
	ok, err := canRead(t.Context(), conn)
	if err != nil {
		t.Fatalf("read as %s: %v", user, err)
	}
	return ok
}

func TestReconcileEphemeral(t *testing.T) {
	e := newEnv(t, postgres.ModeEphemeral)
	st := reconciletest.Open(t)

	// Left behind: the log says revoked, the role is still there.
	left := e.access(jane, "left")
	g := e.grant(t, left)
	leftUser, leftPassword := credentials(t, g)
	reconciletest.Active(t, st, e.history(left, g))
	reconciletest.Revoked(t, st, e.history(left, g))

	// Being provisioned: the connector answered, the log does not say so
	// yet.
	prov := e.access(omar, "provisioning")
	g = e.grant(t, prov)
	provUser, provPassword := credentials(t, g)
	reconciletest.Provisioning(t, st, e.history(prov, g))

	// Active and in order.
	active := e.access(jane, "active")
	g = e.grant(t, active)
	activeUser, activePassword := credentials(t, g)
	reconciletest.Active(t, st, e.history(active, g))

	// Made for a grant the log does not know.
	unknown := e.access(omar, "unknown")
	unknownUser, unknownPassword := credentials(t, e.grant(t, unknown))

	if !e.srv.canLogIn(t, leftUser, leftPassword) {
		t.Fatal("the leftover login does not work before the pass")
	}
	got, err := e.reconciler(t, st, reconciletest.Record(st), entitlement, false).Once(t.Context())
	if err != nil {
		t.Fatalf("Once: %v", err)
	}
	want := []reconcile.Finding{
		{Kind: reconcile.Leftover, Connector: e.conn.Name(), Entitlement: entitlement, Account: leftUser, Email: jane.Email,
			GrantID: left.GrantID, RequestID: left.RequestID, Action: reconcile.ActionRemoved},
		{Kind: reconcile.UnknownGrant, Connector: e.conn.Name(), Entitlement: entitlement, Account: unknownUser,
			GrantID: unknown.GrantID, Action: reconcile.ActionReport},
	}
	sortFindings(got)
	sortFindings(want)
	if !slices.Equal(got, want) {
		t.Errorf("findings\n got %+v\nwant %+v", got, want)
	}

	if e.srv.canLogIn(t, leftUser, leftPassword) {
		t.Error("the leftover login still works after the pass")
	}
	if e.srv.roleExists(t, leftUser) {
		t.Errorf("the leftover role %s still exists", leftUser)
	}
	for _, u := range [][2]string{{provUser, provPassword}, {activeUser, activePassword}, {unknownUser, unknownPassword}} {
		if !e.srv.canLogIn(t, u[0], u[1]) {
			t.Errorf("%s can no longer log in; the pass should have left it alone", u[0])
		}
	}

	var kinds []string
	for _, ev := range reconciletest.Events(t, st, reconcile.KindLeftover, reconcile.KindUnmanaged, reconcile.KindRemoved, reconcile.KindRemoveFailed) {
		kinds = append(kinds, ev.Kind)
		if ev.Kind == reconcile.KindRemoved && ev.GrantID != left.GrantID {
			t.Errorf("%s event has grant %q, want %q", ev.Kind, ev.GrantID, left.GrantID)
		}
	}
	slices.Sort(kinds)
	if want := []string{reconcile.KindLeftover, reconcile.KindRemoved, reconcile.KindUnmanaged}; !slices.Equal(kinds, want) {
		t.Errorf("recorded %v, want %v", kinds, want)
	}
}

func TestReconcileRoleUnmanaged(t *testing.T) {
	e := newEnv(t, postgres.ModeRole)
	role := e.privateRole(t)
	st := reconciletest.Open(t)
	a := e.access(jane, "active")
	a.Entitlement = role
	reconciletest.Active(t, st, e.history(a, e.grant(t, a)))
	omarRole := e.sl.prefix + "omar"
	e.srv.super(t, "postgres", "GRANT "+role+" TO "+omarRole) // by hand, not through latch

	got, err := e.reconciler(t, st, reconciletest.Record(st), role, true).Once(t.Context())
	if err != nil {
		t.Fatalf("Once: %v", err)
	}
	want := []reconcile.Finding{{Kind: reconcile.Unmanaged, Connector: e.conn.Name(), Entitlement: role,
		Account: omarRole, Action: reconcile.ActionRemoved}}
	if !slices.Equal(got, want) {
		t.Errorf("findings\n got %+v\nwant %+v", got, want)
	}
	if e.srv.isMember(t, omarRole, role) {
		t.Errorf("%s is still a member of %s", omarRole, role)
	}
	if !e.srv.isMember(t, e.sl.prefix+"jane", role) {
		t.Errorf("jane's granted membership was taken away")
	}
	var kinds []string
	for _, ev := range reconciletest.Events(t, st, reconcile.KindUnmanaged, reconcile.KindRemoved) {
		kinds = append(kinds, ev.Kind)
	}
	if want := []string{reconcile.KindUnmanaged, reconcile.KindRemoved}; !slices.Equal(kinds, want) {
		t.Errorf("recorded %v, want %v", kinds, want)
	}
}

func sortFindings(fs []reconcile.Finding) {
	slices.SortFunc(fs, func(a, b reconcile.Finding) int { return strings.Compare(a.Kind+a.Account, b.Kind+b.Account) })
}
