package postgres

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/latchhq/latch/workflow"
)

// ErrInvalidConfig is wrapped by every error New returns.
var ErrInvalidConfig = errors.New("invalid postgres connector configuration")

// Errors an *Error wraps when an access is refused before anything is
// asked of the server; all are permanent.
var (
	// ErrInvalidName means the username template yields, for a person, a
	// name that is not a plain PostgreSQL role name: lower-case letters,
	// digits and underscores, starting with a letter or underscore, at
	// most 63 bytes, not starting with pg_ and not public or none.
	ErrInvalidName = errors.New("not a valid role name")

	// ErrInvalidEntitlement means the entitlement cannot be a role name:
	// it is empty, longer than 63 bytes, or holds a NUL byte.
	ErrInvalidEntitlement = errors.New("entitlement is not a valid role name")

	// ErrInvalidAccess means the access lacks what the connector needs,
	// such as a grant id in ephemeral mode.
	ErrInvalidAccess = errors.New("access cannot be provisioned")
)

// Errors an *Error wraps when the server's catalogue refuses an access;
// all are permanent.
var (
	// ErrUnknownRole means the entitlement names no role in the server.
	ErrUnknownRole = errors.New("role does not exist")

	// ErrUnknownAccount means, in role mode, that the person has no login
	// role in the server under the name the template gives.
	ErrUnknownAccount = errors.New("login role does not exist")

	// ErrUnsafeRole means the entitlement is a superuser role, or the
	// role latch connects as, whose powers (CREATEROLE, ending sessions)
	// a member could take on with SET ROLE. latch never grants either.
	ErrUnsafeRole = errors.New("role is not one latch grants")

	// ErrForeignRole means, in ephemeral mode, that the name chosen for a
	// grant's login role is taken by a role latch did not create for that
	// grant. latch never alters or drops such a role.
	ErrForeignRole = errors.New("role exists and was not created by latch for this grant")

	// ErrSessionsRemain means a revoke could not end every session of the
	// role within its wait; the role is left unable to log in, and the
	// revoke is to be retried.
	ErrSessionsRemain = errors.New("sessions of the role are still open")
)

// Error is the failure of one Grant or Revoke. The connector returns it,
// marked with workflow.Permanent when retrying cannot fix it; callers find
// it with errors.As. It never holds a password.
type Error struct {
	Connector string // the connector's name
	Op        string // "grant" or "revoke"
	Account   string // the login role acted on, if known
	Role      string // the entitlement: the role granted or revoked

	// Err is the cause: one of this package's sentinel errors, a
	// *pgconn.PgError the server reported, a connection failure, or
	// context.Canceled or context.DeadlineExceeded.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "postgres connector %q: %s", e.Connector, e.Op)
	if e.Role != "" {
		fmt.Fprintf(&b, " role %q", e.Role)
	}
	if e.Account != "" {
		if e.Op == "revoke" {
			b.WriteString(" from")
		} else {
			b.WriteString(" to")
		}
		fmt.Fprintf(&b, " %q", e.Account)
	}
	b.WriteString(": ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("failed")
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// SQLState returns the SQLSTATE code the server reported, such as 42704,
// or "" if the failure did not come from the server.
func (e *Error) SQLState() string {
	var pe *pgconn.PgError
	if errors.As(e.Err, &pe) {
		return pe.Code
	}
	return ""
}

// permanent reports whether retrying cannot fix err.
func permanent(err error) bool {
	for _, sentinel := range []error{
		ErrInvalidName, ErrInvalidEntitlement, ErrInvalidAccess,
		ErrUnknownRole, ErrUnknownAccount, ErrUnsafeRole, ErrForeignRole,
	} {
		if errors.Is(err, sentinel) {
			return true
		}
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || len(pe.Code) != 5 {
		// Connection failures, timeouts, cancellation.
		return false
	}
	switch pe.Code {
	case "42710": // duplicate_object: a concurrent call created the role first
		return false
	}
	switch pe.Code[:2] {
	case "0L", // invalid grantor
		"0P", // invalid role specification
		"22", // data exception
		"2B", // dependent objects still exist, in another database
		"42": // syntax error or access rule violation: 42501, 42704, 42939…
		return true
	}
	// 08 connection, 40 serialization and deadlock, 53 resources,
	// 55 lock not available, 57 shutdown and cancel, 58 and XX system
	// errors; and 28 and 3D, latch's own login and database, which an
	// operator fixes without changing the request.
	return false
}

// fail returns the error of op on account and role caused by err, marked
// permanent if retrying cannot fix it.
func (c *Connector) fail(op, account, role string, err error) error {
	e := &Error{Connector: c.name, Op: op, Account: account, Role: role, Err: err}
	if permanent(err) {
		return workflow.Permanent(e)
	}
	return e
}
