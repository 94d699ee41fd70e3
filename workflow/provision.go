package workflow

import (
	"context"
	"errors"
	"time"
)

// Access is what a connector is asked to grant or revoke: one target of a
// grant, for one person, until a time.
type Access struct {
	GrantID     string            // the grant this access belongs to (idempotency key)
	RequestID   string            // the request that led to it
	User        User              // the person who gets the access (the beneficiary)
	Entitlement string            // what to grant, in the connector's terms (a role, a group DN…)
	ExpiresAt   time.Time         // when the access must end; connectors that can set it natively do
	Params      map[string]string // inputs the request carried for this connector, e.g. "public_key"
	// Refresh is set when the access was granted before and only its
	// expiry moves (an extension): a connector keeps what it issued, such
	// as a password, and moves the expiry it enforces natively. A connector
	// that must issue new credentials returns them in Granted.Message,
	// which reaches the beneficiary.
	Refresh bool
}

// Granted is what a connector reports after granting access.
type Granted struct {
	// Message is for the beneficiary alone (credentials, a certificate, how
	// to connect). It is delivered to them once and never logged or stored
	// in the audit log.
	Message string

	// Facts are connector-level facts for the audit log ("account":
	// "latch_jane_7f3a", "role": "readonly"). They must hold no secret.
	Facts map[string]string
}

// Provisioner grants and revokes access in one target system. Both calls
// must be idempotent: granting access that exists, or revoking access that
// does not, succeeds. An error is transient (the engine retries) unless it
// is marked permanent with Permanent.
type Provisioner interface {
	Grant(ctx context.Context, a Access) (Granted, error)
	Revoke(ctx context.Context, a Access) error
}

// ErrPermanent marks a connector failure that retrying cannot fix: an
// unknown entitlement, a person with no account, a refused input.
var ErrPermanent = errors.New("permanent failure")

// permanentError wraps an error so that errors.Is(err, ErrPermanent) holds.
type permanentError struct{ err error }

func (e *permanentError) Error() string        { return e.err.Error() }
func (e *permanentError) Unwrap() error        { return e.err }
func (e *permanentError) Is(target error) bool { return target == ErrPermanent }

// Permanent marks err as a failure that retrying cannot fix. Permanent(nil)
// is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err was marked permanent; any other error is
// taken as transient.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// Holding is access that a connector finds in its target: who holds which
// entitlement, and the grant that made it when the connector can tell.
type Holding struct {
	Entitlement string
	// Account is the target's own name for the holder: a role, a DN, a uid.
	Account string
	// Email is the holder's email address, when the target knows it.
	Email string
	// GrantID is the grant that made this access, for access a connector
	// creates and marks as its own (an ephemeral database role); empty for
	// access it cannot attribute (a member of a group).
	GrantID string
}

// Lister is implemented by connectors that can list the access they
// manage, so that it can be compared with the grants latch knows: access
// latch granted that should be gone is revoked, and access latch never
// granted in something it manages is reported.
type Lister interface {
	// List returns who holds each of the entitlements.
	List(ctx context.Context, entitlements []string) ([]Holding, error)
}
