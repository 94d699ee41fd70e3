package ldap_test

import (
	"context"
	"errors"
	"testing"

	"github.com/latchhq/latch/connectors/connectortest"
	"github.com/latchhq/latch/connectors/ldap"
	"github.com/latchhq/latch/workflow"
)

// The people the conformance suite grants to, with their DNs and uids as
// the seed has them.
var (
	jane = workflow.User{SlackID: "U0000JANE", Email: "jane@example.com"}
	omar = workflow.User{SlackID: "U0000OMAR", Email: "omar@example.com"}

	dnOf = map[string]string{
		jane.Email: "uid=jane," + peopleDN,
		omar.Email: "uid=omar," + peopleDN,
	}
	uidOf = map[string]string{
		jane.Email: "jane",
		omar.Email: "omar",
	}
)

func TestConformance(t *testing.T) {
	for _, kind := range []groupKind{groupOfNames, groupOfUniqueNames, posixGroup} {
		t.Run(kind.class, func(t *testing.T) {
			s := slapd(t)
			// Every subtest gets this group afresh: Start makes it, and
			// deletes it when the subtest ends.
			cn := "conformance-" + kind.class
			entitlement := "cn=" + cn + "," + scratchDN
			connectortest.Run(t, connectortest.Harness{
				Start: func(t *testing.T) connectortest.Target {
					s.addGroup(t, scratchDN, cn, kind)
					return conformanceTarget(t, s, kind)
				},
				Entitlement:    entitlement,
				People:         []workflow.User{jane, omar},
				BadEntitlement: "cn=missing," + scratchDN,
				Unknown:        workflow.User{SlackID: "U0NOBODY", Email: "nobody@example.com"},
				IsConnectorError: func(err error) bool {
					var e *ldap.Error
					return errors.As(err, &e)
				},
			})
		})
	}
}

// conformanceTarget returns a connector that reaches the server through a
// proxy of its own, so that the subtest can take the server down for it
// alone.
func conformanceTarget(t *testing.T, s *server, kind groupKind) connectortest.Target {
	p := newProxy(t, s.addr)
	c := newConnector(t, "ldap://"+p.addr, kind.attr)
	probe := s.admin(t)
	return connectortest.Target{
		Connector: c,
		Has: func(_ context.Context, a workflow.Access) (bool, error) {
			value := dnOf[a.User.Email]
			if kind == posixGroup {
				value = uidOf[a.User.Email]
			}
			if value == "" {
				return false, nil // not in the directory, so in no group
			}
			return hasMember(probe, a.Entitlement, kind.attr, value)
		},
		Down: func(*testing.T) { p.Down() },
		Up:   func(t *testing.T) { p.Up(t) },
	}
}

// newConnector returns a connector to url that binds as latch and manages
// the attribute attr of groups under scratchDN, closed when the test ends.
func newConnector(t testing.TB, url, attr string) *ldap.Connector {
	t.Helper()
	c, err := ldap.New(ldap.Config{
		Name:           "corp",
		URL:            url,
		BindDN:         latchDN,
		BindPassword:   latchPassword,
		UserBaseDN:     peopleDN,
		GroupAttribute: attr,
		GroupBaseDN:    scratchDN,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
