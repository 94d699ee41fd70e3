// Package postgres is the connector that gives access to a PostgreSQL
// server by role membership. An entitlement is the name of a role in the
// server, such as readonly, that holds the privileges to give; the
// connector makes a person a member of it, in one of two modes.
//
// # Role mode
//
// Every person has a login role of their own in the server already; the
// connector's username template derives its name from the person
// ({{.LocalPart}}, the part of their email address before the @, by
// default). A grant runs GRANT <entitlement> TO <login>, a revoke runs
// REVOKE. A person without a login role, or an entitlement that is no
// role, is a permanent failure.
//
// A session that switched to the entitlement with SET ROLE keeps it after
// the revoke; Config.TerminateSessions makes a revoke end the person's
// sessions too, at the cost of their unrelated work.
//
// # Ephemeral mode
//
// A grant creates a login role of its own, named after the person and the
// grant (jane_k3xq7m2a: the template's name, an underscore, and eight
// characters derived from the grant id, so that a retried grant finds the
// same role; the name is cut to stay within PostgreSQL's 63 bytes). The
// role is a member of the entitlement, has a random password of 130 bits,
// and is VALID UNTIL the grant's expiry, so that the server itself refuses
// logins after it even if latch is down. The credentials, with a ready
// connection string, are in the grant's message for the beneficiary; the
// audit facts name the role ("account"), the entitlement ("role") and the
// expiry ("valid_until"), never the password. A retried grant gives the
// role a new password and expiry, makes sure of the membership, and
// returns the new credentials.
//
// A revoke takes the role's login away, ends its sessions on every
// database of the server (waiting up to 5 seconds for them to be gone;
// if some are not, the revoke fails with ErrSessionsRemain and is
// retried), and drops it; what it owns in the connector's database is
// handed to latch's role first. So no session outlives the grant.
//
// The connector marks every role it creates with a comment naming the
// grant and the connector, and acts only on roles so marked: a name taken
// by another role is a permanent failure (ErrForeignRole), and a revoke
// never drops a role the connector did not create for that grant.
//
// # What latch's role needs
//
// The role latch connects as (Config.User) needs CREATEROLE, and
// membership in pg_signal_backend to end sessions. On PostgreSQL 16 and
// later, granting a role also needs the ADMIN OPTION on it
// (GRANT readonly TO latch WITH ADMIN OPTION); on 15, CREATEROLE is
// enough for any role that is not a superuser. PostgreSQL 10 or later is
// required, for SCRAM-SHA-256.
//
// # Safety
//
// Role names are always written into SQL as quoted identifiers. Where
// PostgreSQL takes no bind parameter (a password, VALID UNTIL, a comment)
// values are written as escape string constants with every quote and
// backslash doubled. The template's result must be a plain role name
// (ErrInvalidName), and an entitlement must be at most 63 bytes with no
// NUL byte (ErrInvalidEntitlement), since PostgreSQL would otherwise
// silently shorten or alter it. The connector never grants a superuser
// role, nor the role it connects as (ErrUnsafeRole).
//
// An ephemeral role's password is never sent to the server: the connector
// sends its SCRAM-SHA-256 verifier instead, so the password cannot appear
// in the server's logs or statistics. Nor is it in any error or fact.
//
// # Failures
//
// Grant and Revoke return an *Error. It is marked workflow.Permanent for
// the sentinel errors of this package other than ErrSessionsRemain, and
// for server errors of SQLSTATE classes 0L, 0P, 22, 2B and 42 (among them
// 42704, an unknown role, and 42501, insufficient privilege). Anything
// else is transient: no connection, a timeout, the server shutting down
// (57P01), a serialisation failure or deadlock, latch's own login refused.
package postgres
