package sshcert

import (
	"errors"
	"fmt"
)

// ErrInvalidConfig is wrapped by every error New returns.
var ErrInvalidConfig = errors.New("invalid sshcert connector configuration")

// These errors say why a grant was refused. Each comes wrapped in an
// *Error marked with workflow.Permanent: retrying the same request cannot
// fix it, and the message says what to supply instead.
var (
	// ErrNoKey means the request carried no public key and none is
	// registered for the person.
	ErrNoKey = errors.New("no ssh public key")

	// ErrInvalidKey means the public key offered is not one OpenSSH
	// public key: it does not parse, it is a certificate or a private
	// key, or it carries options or a second key.
	ErrInvalidKey = errors.New("invalid ssh public key")

	// ErrWeakKey means the public key is of a kind too weak to certify:
	// DSA, or RSA shorter than MinRSABits.
	ErrWeakKey = errors.New("weak ssh public key")

	// ErrKeyRevoked means the revoked keys file refuses the certificate
	// before it is even issued: it revokes the person's key itself, the
	// certificate authority's key, or the certificate's key id.
	ErrKeyRevoked = errors.New("ssh key revoked")

	// ErrUnknownEntitlement means the entitlement is not one of
	// Config.Entitlements.
	ErrUnknownEntitlement = errors.New("unknown entitlement")

	// ErrInvalidPrincipal means the principals template yielded no
	// principal, or one that is not a plain name, for the person.
	ErrInvalidPrincipal = errors.New("invalid certificate principal")

	// ErrInvalidAccess means the access itself cannot become a
	// certificate: it has no grant id, or no expiry in the future.
	ErrInvalidAccess = errors.New("access cannot be certified")
)

// ErrRevokedKeysFile means the revoked keys file holds something this
// connector cannot update safely: a plain list of keys, a signed or
// damaged key revocation list. Such an error is transient: the engine
// retries once an operator has fixed the file.
var ErrRevokedKeysFile = errors.New("revoked keys file cannot be updated")

// Error is the failure of one grant or revoke. Grant and Revoke return it,
// marked with workflow.Permanent when retrying cannot fix it; callers find
// it with errors.As. File system errors on the revoked keys file or the
// keys directory are transient.
type Error struct {
	Connector string // the connector's name
	Op        string // "grant" or "revoke"

	// Err is the cause: one of the sentinel errors of this package, or a
	// file system error (*fs.PathError and the like), or the context's
	// error.
	Err error
}

func (e *Error) Error() string {
	return fmt.Sprintf("sshcert connector %q: %s: %v", e.Connector, e.Op, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }
