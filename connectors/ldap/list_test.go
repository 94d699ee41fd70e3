package ldap_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/latchhq/latch/connectors/ldap"
	"github.com/latchhq/latch/reconcile"
	"github.com/latchhq/latch/reconcile/reconciletest"
	"github.com/latchhq/latch/workflow"
)

var (
	lee     = workflow.User{SlackID: "U0000LEE", Email: "lee@example.com"}
	leeDN   = "uid=lee," + peopleDN
	goneDN  = "uid=gone," + peopleDN // no such entry
	leeUID  = "lee"
	goneUID = "gone"
)

func TestList(t *testing.T) {
	s := slapd(t)
	for _, tt := range []struct {
		kind groupKind
		// byHand are the values added without latch; want the holdings
		// (besides jane's, granted through the connector).
		byHand []string
		want   []workflow.Holding
	}{
		{groupOfNames, []string{latchDN, leeDN, goneDN}, []workflow.Holding{
			{Account: leeDN, Email: lee.Email}, {Account: goneDN}, {Account: dnOf[jane.Email], Email: jane.Email}}},
		{groupOfUniqueNames, []string{latchDN, leeDN}, []workflow.Holding{
			{Account: leeDN, Email: lee.Email}, {Account: dnOf[jane.Email], Email: jane.Email}}},
		{posixGroup, []string{leeUID, goneUID}, []workflow.Holding{
			{Account: leeUID, Email: lee.Email}, {Account: goneUID}, {Account: "jane", Email: jane.Email}}},
	} {
		t.Run(tt.kind.class, func(t *testing.T) {
			group := s.newGroup(t, scratchDN, tt.kind, tt.byHand...)
			empty := s.newGroup(t, scratchDN, tt.kind)
			c := newConnector(t, "ldap://"+s.addr, tt.kind.attr)
			if _, err := c.Grant(t.Context(), access(jane, group)); err != nil {
				t.Fatalf("Grant: %v", err)
			}
			missing := "cn=missing," + scratchDN
			got, err := c.List(t.Context(), []string{group, empty, missing})
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			for i := range tt.want {
				tt.want[i].Entitlement = group
			}
			if tt.kind != posixGroup {
				// The placeholder of an empty groupOfNames is the admin's DN,
				// which is not the bind DN.
				tt.want = append(tt.want, workflow.Holding{Entitlement: empty, Account: adminDN})
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("List\n got %+v\nwant %+v", got, tt.want)
			}

			// Remove takes a value away as it is.
			if err := c.Remove(t.Context(), tt.want[0]); err != nil {
				t.Fatalf("Remove: %v", err)
			}
			if err := c.Remove(t.Context(), tt.want[0]); err != nil {
				t.Errorf("Remove again: %v", err)
			}
			if members := s.members(t, group, tt.kind); slices.Contains(members, tt.want[0].Account) {
				t.Errorf("members after Remove = %v, still holding %s", members, tt.want[0].Account)
			}
		})
	}
}

func TestListErrors(t *testing.T) {
	s := slapd(t)
	c := newConnector(t, "ldap://"+s.addr, "member")
	_, err := c.List(t.Context(), []string{"cn=elsewhere,ou=groups," + suffix})
	var le *ldap.Error
	if !errors.As(err, &le) || !errors.Is(err, ldap.ErrBadEntitlement) {
		t.Errorf("List outside the group base = %v, want an *ldap.Error matching ErrBadEntitlement", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	down := newConnector(t, "ldap://"+closed, "member")
	if _, err := down.List(t.Context(), []string{"cn=x," + scratchDN}); !errors.As(err, &le) || le.Code != 0 {
		t.Errorf("List of a server that is not there = %v, want an *ldap.Error without a result code", err)
	}
	if err := c.Remove(t.Context(), workflow.Holding{Entitlement: "cn=missing," + scratchDN, Account: leeDN}); !errors.Is(err, ldap.ErrNoGroup) || !workflow.IsPermanent(err) {
		t.Errorf("Remove from a missing group = %v, want a permanent ErrNoGroup", err)
	}
}

// TestReconcile runs the reconciler on a group latch manages that someone
// added a member to by hand.
func TestReconcile(t *testing.T) {
	s := slapd(t)
	for _, tt := range []struct {
		name   string
		remove bool
		// omarProvisioning makes a grant of omar's that the log has as
		// being provisioned while the group holds him already.
		omarProvisioning bool
		want             []reconcile.Finding // besides the group
		leeStays         bool
	}{
		{name: "reported", want: []reconcile.Finding{{Kind: reconcile.Unmanaged, Account: leeDN, Email: lee.Email, Action: reconcile.ActionReport}}, leeStays: true},
		{name: "removed", remove: true, want: []reconcile.Finding{{Kind: reconcile.Unmanaged, Account: leeDN, Email: lee.Email, Action: reconcile.ActionRemoved}}},
		{name: "while a grant is provisioned", remove: true, omarProvisioning: true, leeStays: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			group := s.newGroup(t, scratchDN, groupOfNames, latchDN)
			c := newConnector(t, "ldap://"+s.addr, "member")
			st := reconciletest.Open(t)
			tg := workflow.Target{Connector: c.Name(), Entitlement: group}

			a := access(jane, group)
			g, err := c.Grant(t.Context(), a)
			if err != nil {
				t.Fatalf("Grant: %v", err)
			}
			reconciletest.Active(t, st, reconciletest.Grant{Request: a.RequestID, ID: a.GrantID, Target: tg, User: jane, Facts: g.Facts})
			if tt.omarProvisioning {
				a := access(omar, group)
				if _, err := c.Grant(t.Context(), a); err != nil {
					t.Fatalf("Grant: %v", err)
				}
				reconciletest.Provisioning(t, st, reconciletest.Grant{Request: a.RequestID, ID: a.GrantID, Target: tg, User: omar})
			}
			addMember(t, s, group, leeDN)

			cat, err := workflow.NewCatalogue([]workflow.Item{{ID: "group", Kind: workflow.KindEntitlement, Policy: "default", Targets: []workflow.Target{tg}}})
			if err != nil {
				t.Fatal(err)
			}
			var reported []reconcile.Finding
			r, err := reconcile.New(reconcile.Config{
				Store:           st,
				Catalogue:       cat,
				Connectors:      map[string]workflow.Provisioner{c.Name(): c},
				Record:          reconciletest.Record(st),
				Report:          func(_ context.Context, f reconcile.Finding) { reported = append(reported, f) },
				RemoveUnmanaged: map[string]bool{c.Name() + "/" + group: tt.remove},
			})
			if err != nil {
				t.Fatalf("reconcile.New: %v", err)
			}
			got, err := r.Once(t.Context())
			if err != nil {
				t.Fatalf("Once: %v", err)
			}
			for i := range tt.want {
				tt.want[i].Connector, tt.want[i].Entitlement = c.Name(), group
			}
			if !slices.Equal(got, tt.want) || !slices.Equal(reported, tt.want) {
				t.Errorf("findings\n got %+v\nreported %+v\nwant %+v", got, reported, tt.want)
			}

			members := s.members(t, group, groupOfNames)
			if got := slices.Contains(members, leeDN); got != tt.leeStays {
				t.Errorf("lee in the group after the pass: %t, want %t (members %v)", got, tt.leeStays, members)
			}
			for _, dn := range []string{latchDN, dnOf[jane.Email]} {
				if !slices.Contains(members, dn) {
					t.Errorf("%s was taken out of the group (members %v)", dn, members)
				}
			}
			if tt.omarProvisioning && !slices.Contains(members, dnOf[omar.Email]) {
				t.Errorf("omar, whose grant is being provisioned, was taken out (members %v)", members)
			}

			var kinds []string
			for _, e := range reconciletest.Events(t, st, reconcile.KindLeftover, reconcile.KindUnmanaged, reconcile.KindRemoved, reconcile.KindRemoveFailed) {
				kinds = append(kinds, e.Kind)
			}
			var want []string
			for _, f := range tt.want {
				want = append(want, reconcile.KindUnmanaged)
				if f.Action == reconcile.ActionRemoved {
					want = append(want, reconcile.KindRemoved)
				}
			}
			if !slices.Equal(kinds, want) {
				t.Errorf("recorded %v, want %v", kinds, want)
			}
		})
	}
}

// addMember adds dn to group's member attribute as the directory's admin.
func addMember(t *testing.T, s *server, group, dn string) {
	t.Helper()
	req := goldap.NewModifyRequest(group, nil)
	req.Add("member", []string{dn})
	if err := s.admin(t).Modify(req); err != nil {
		t.Fatalf("add %s to %s: %v", dn, group, err)
	}
}
