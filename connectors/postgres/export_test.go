package postgres

import "github.com/latchhq/latch/workflow"

var (
	EphemeralName     = ephemeralName
	QuoteLiteral      = quoteLiteral
	ScramVerifierWith = scramVerifierWith
	PermanentCause    = permanent
)

// RoleName returns the role name c's template gives for u.
func RoleName(c *Connector, u workflow.User) (string, error) { return c.roleName(u) }
