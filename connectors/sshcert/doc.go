// Package sshcert is the connector that grants SSH access by acting as an
// OpenSSH user certificate authority: a grant is a certificate for the
// person's own public key, signed by latch, that the servers accept until
// the grant expires.
//
// # Servers
//
// Every server trusts the certificate authority in its sshd_config:
//
//	TrustedUserCAKeys /etc/ssh/latch_ca.pub   # the CA's public key (Connector.PublicKey)
//	RevokedKeys       /etc/ssh/latch_revoked  # the revoked keys file, if configured
//
// sshd then lets a certificate log in as an account whose name is one of
// the certificate's principals; with AuthorizedPrincipalsFile the server
// may map other principals, such as role names, to its accounts instead.
// sshd reads both files at every login, so no reload is needed.
//
// # Grants
//
// Grant signs a user certificate with
//
//   - the person's public key: the request's public_key input (one
//     authorized_keys line, such as the content of ~/.ssh/id_ed25519.pub)
//     or, when the request carries none, the key registered for them as
//     <KeysDir>/<Slack user id>.pub. The Slack user id names the file
//     because it is latch's identity for the person: it never changes,
//     unlike an email address, and is safe as a file name. No key, a key
//     that does not parse, a certificate, a pasted private key, a DSA key
//     and an RSA key shorter than 2048 bits are refused with a permanent
//     error that says what to supply instead;
//   - the principals the principals template yields for the person and
//     the entitlement (see Config.PrincipalsTemplate). Values taken from
//     the person may hold no comma, white space or control character, and
//     every principal must be a plain name, so a person's directory entry
//     can never add a principal: such a grant fails permanently;
//   - the key id set to the grant id, and a serial derived from the grant
//     id alone, so that a retried grant issues an equivalent certificate
//     and sshd logs name the grant;
//   - a validity from one minute ago (ClockSkew) until Access.ExpiresAt,
//     to the second: sshd refuses the certificate afterwards by itself,
//     even if latch is down;
//   - the configured extensions (permit-pty unless configured).
//
// The message for the beneficiary holds the certificate, one line to save
// as ~/.ssh/id_ed25519-cert.pub (for an Ed25519 key) next to the private
// key. The facts for the audit log are key_id, serial, principals,
// fingerprint (the SHA-256 fingerprint of the person's public key),
// valid_after, valid_before and key_source (request or registered); none
// is secret, and no private key ever passes through latch.
//
// An entitlement is one of Config.Entitlements: a name for a set of
// principals, which the template may use as .Entitlement. The simplest
// setup has entitlements named after server accounts (root, deploy) and the
// template {{.Entitlement}}; one that logs people in as themselves has the
// template {{.LocalPart}} and a single entitlement, such as login. Any
// entitlement not listed is refused with a permanent error.
//
// # Revocation
//
// With a revoked keys file configured, Revoke adds the serial of the
// grant's certificates to it, in the section for this certificate
// authority, and sshd refuses them from the next login on. Sessions open at
// that moment are not ended. The file is an OpenSSH key revocation list
// (KRL), which ssh-keygen -Q -l -f <file> lists and ssh-keygen -k -u -f
// <file> adds to; the connector keeps whatever else the file revokes. It is
// replaced atomically (a new file, synced, renamed over the old one, mode
// 0644) under flock(2) on <file>.lock, so that concurrent revokes, from one
// latch or several sharing the file, lose nothing. Latch writes the file
// on its own host: it must then reach every server, through a shared file
// system or a job that copies it. sshd refuses every key while the file it
// is told to read is missing: create it (empty is fine) before pointing
// sshd at it.
//
// Revoking by serial blocks only the grant's certificates: the same key
// keeps working with certificates of other grants, and with the person's
// own authorized_keys. Revoking twice, or revoking a grant never granted,
// changes nothing and succeeds; a revoke after the access has expired
// writes nothing, since the certificate ended by itself (the servers'
// clocks must therefore be right, which certificates need anyway). Granting
// a grant again after it was revoked takes its serial out of the list, as
// the grant asks for the access to be real again. A grant whose key, or
// whose authority's key or key id, an operator revoked in the file fails
// permanently.
//
// Without a revoked keys file, Revoke does nothing and succeeds: the
// certificate lasts until its expiry, so releasing or revoking a grant
// early does not end the access before the time it was granted for.
//
// # Errors
//
// Grant and Revoke return an *Error. Refusals of the access (the sentinel
// errors ErrNoKey, ErrInvalidKey, ErrWeakKey, ErrKeyRevoked,
// ErrUnknownEntitlement, ErrInvalidPrincipal, ErrInvalidAccess) are marked
// workflow.Permanent. File system errors on the revoked keys file or the
// keys directory, and a revoked keys file the connector cannot update
// (ErrRevokedKeysFile: a plain list of keys, a signed or damaged list),
// are transient: the engine retries once they are fixed.
package sshcert
