package ldap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/latchhq/latch/workflow"
)

// ErrInvalidConfig is wrapped by every error New and NewDirectory return.
var ErrInvalidConfig = errors.New("invalid ldap connector configuration")

// Failures that retrying cannot fix. Grant and Revoke return them inside an
// *Error marked with workflow.Permanent.
var (
	// ErrUnknownPerson means no entry under the user base DN matches the
	// person, or the person has no email address to search by. It wraps
	// workflow.ErrUnknownUser.
	ErrUnknownPerson = fmt.Errorf("%w: no entry in the directory matches the person", workflow.ErrUnknownUser)

	// ErrAmbiguousPerson means more than one entry matches the person: the
	// user filter is too broad, or two entries share an email address.
	ErrAmbiguousPerson = errors.New("more than one entry in the directory matches the person")

	// ErrNoUID means the group attribute is memberUid but the person's
	// entry has no single uid to add.
	ErrNoUID = errors.New("the person's entry has no single uid")

	// ErrBadEntitlement means the entitlement is not a DN, or not one under
	// the configured group base DN.
	ErrBadEntitlement = errors.New("the entitlement is not a group DN this connector manages")

	// ErrNoGroup means the group's entry does not exist, or, for the
	// Directory, that no group has that name. It wraps
	// workflow.ErrUnknownGroup.
	ErrNoGroup = fmt.Errorf("%w: no such group in the directory", workflow.ErrUnknownGroup)

	// ErrLastMember means a revoke would leave a groupOfNames (or
	// groupOfUniqueNames) without members, which the schema forbids. Give
	// such a group a permanent placeholder member, such as the bind DN.
	ErrLastMember = errors.New("the person is the group's last member; the schema requires one, so give the group a permanent placeholder member")
)

// ErrNoUserGroups means a Directory was asked for the members of a Slack
// user group, but its base directory does not read Slack user groups.
var ErrNoUserGroups = errors.New("the base directory does not read Slack user groups")

// permanentErrors are the sentinels of failures that retrying cannot fix.
var permanentErrors = []error{ErrUnknownPerson, ErrAmbiguousPerson, ErrNoUID, ErrBadEntitlement, ErrNoGroup, ErrLastMember}

// Error is the failure of one call to the directory server. Grant, Revoke
// and the Directory's lookups return it, and Grant and Revoke mark it with
// workflow.Permanent when retrying cannot fix it; callers find it with
// errors.As. It never holds the bind password.
type Error struct {
	Connector string // the connector's name
	Op        string // "grant", "revoke", or the Directory lookup: "manager", "groups", "members"
	Group     string // the group's DN, when the call concerns one

	// Code is the LDAP result code the server answered with (32 for
	// noSuchObject, 50 for insufficientAccessRights…), or 0 when there was
	// no answer: the server could not be reached, the connection broke,
	// the call ran out of time, or the access was refused before any
	// request was sent.
	Code uint16

	// TimedOut says the call was abandoned because it ran out of the
	// connector's timeout.
	TimedOut bool

	// Err is the underlying cause: one of this package's sentinel errors,
	// a *github.com/go-ldap/ldap/v3.Error, a network error, or
	// context.Canceled or context.DeadlineExceeded.
	Err error

	timeout time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ldap connector %q: %s", e.Connector, e.Op)
	if e.Group != "" {
		fmt.Fprintf(&b, " %s", e.Group)
	}
	b.WriteString(": ")
	switch {
	case e.TimedOut:
		fmt.Fprintf(&b, "no answer within %s", e.timeout)
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString("failed")
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Permanent reports whether retrying the call cannot fix the failure:
// the person or the group does not exist, the bind DN may not do it, the
// entitlement or the entry is not what the connector needs.
func (e *Error) Permanent() bool {
	for _, s := range permanentErrors {
		if errors.Is(e.Err, s) {
			return true
		}
	}
	return permanentCode(e.Code)
}

// permanentCode reports whether an LDAP result code says that the same
// request will fail again. Anything else, notably busy (51), unavailable
// (52) and every failure to reach the server, is transient.
func permanentCode(code uint16) bool {
	switch code {
	case goldap.LDAPResultAuthMethodNotSupported,
		goldap.LDAPResultStrongAuthRequired,
		goldap.LDAPResultReferral,
		goldap.LDAPResultConfidentialityRequired,
		goldap.LDAPResultUndefinedAttributeType,
		goldap.LDAPResultInappropriateMatching,
		goldap.LDAPResultConstraintViolation,
		goldap.LDAPResultInvalidAttributeSyntax,
		goldap.LDAPResultNoSuchObject,
		goldap.LDAPResultInvalidDNSyntax,
		goldap.LDAPResultInappropriateAuthentication,
		goldap.LDAPResultInvalidCredentials,
		goldap.LDAPResultInsufficientAccessRights,
		goldap.LDAPResultUnwillingToPerform,
		goldap.LDAPResultNamingViolation,
		goldap.LDAPResultObjectClassViolation,
		goldap.LDAPResultObjectClassModsProhibited,
		goldap.ErrorFilterCompile:
		return true
	}
	return false
}

// resultCode returns the LDAP result code err carries, or 0.
func resultCode(err error) uint16 {
	var le *goldap.Error
	if errors.As(err, &le) {
		return le.ResultCode
	}
	return 0
}

// serverCode returns the result code the server answered with, or 0 if err
// carries none (go-ldap's own codes, 200 and up, are not the server's).
func serverCode(err error) uint16 {
	if code := resultCode(err); code < goldap.ErrorNetwork {
		return code
	}
	return 0
}

// connectionLost reports whether err, a failure of a call on a
// connection, means that the connection is unusable: no LDAP answer at
// all, or the server going away.
func connectionLost(err error) bool {
	if err == nil || errors.Is(err, workflow.ErrNameTemplate) {
		return false
	}
	for _, s := range permanentErrors {
		if errors.Is(err, s) {
			return false
		}
	}
	var le *goldap.Error
	if !errors.As(err, &le) {
		return true
	}
	switch le.ResultCode {
	case goldap.ErrorNetwork, goldap.ErrorUnexpectedMessage, goldap.ErrorUnexpectedResponse,
		goldap.ErrorMalformedPacket, goldap.LDAPResultBusy, goldap.LDAPResultUnavailable,
		goldap.LDAPResultProtocolError, goldap.LDAPResultOther:
		return true
	}
	return false
}

// failure builds the *Error for err, a failure of op on group within ctx,
// the context the connector's timeout was applied to; parent is the
// caller's context.
func (c *Connector) failure(parent, ctx context.Context, op, group string, err error) *Error {
	e := &Error{Connector: c.name, Op: op, Group: group, Err: err, timeout: c.timeout}
	switch {
	case parent.Err() != nil:
		e.Err = parent.Err()
	case ctx.Err() != nil:
		e.Err, e.TimedOut = context.DeadlineExceeded, true
	default:
		e.Code = serverCode(err)
	}
	return e
}

// provisionError is failure for Grant and Revoke: an *Error marked with
// workflow.Permanent when retrying cannot fix it.
func (c *Connector) provisionError(parent, ctx context.Context, op, group string, err error) error {
	e := c.failure(parent, ctx, op, group, err)
	if e.Permanent() {
		return workflow.Permanent(e)
	}
	return e
}
