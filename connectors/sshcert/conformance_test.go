package sshcert_test

import (
	"testing"

	"github.com/latchhq/latch/connectors/connectortest"
	"github.com/latchhq/latch/workflow"
)

// TestConformance runs the conformance suite against a real sshd. The
// probe logs in with the ssh client, the person's private key and the
// certificate the grant's message carried. People are known by the public
// key registered for them in the keys directory; the unknown person has
// none. The entitlement is the account the tests log in as.
func TestConformance(t *testing.T) {
	people := []workflow.User{
		{SlackID: "U0000JANE", Email: "jane@example.com"},
		{SlackID: "U0000OMAR", Email: "omar@example.com"},
	}
	login := sshd(t).login
	connectortest.Run(t, connectortest.Harness{
		Start: func(t *testing.T) connectortest.Target {
			tg := newTarget(t, people...)
			conn := tg.connector(t, tg.config())
			return connectortest.Target{
				Connector: recorder{conn: conn, tg: tg},
				Has:       tg.has,
				Down:      tg.down,
				Up:        tg.up,
			}
		},
		Entitlement:      login,
		People:           people,
		BadEntitlement:   "admins",
		Unknown:          workflow.User{SlackID: "U0000NOKEY", Email: "nokey@example.com"},
		IsConnectorError: isConnectorError,
		NativeExpiry:     true,
	})
}
