// Package ldap is the connector that grants access by group membership in
// an LDAP directory (OpenLDAP, 389 Directory Server, and others that speak
// LDAPv3), and a directory source that reads people's managers and groups
// from it.
//
// # Granting
//
// An entitlement is the DN of a group, such as
// cn=dba,ou=groups,dc=example,dc=com. To grant it, the connector finds the
// beneficiary's entry by searching the user base DN (the whole subtree)
// with the user filter, a template over the person such as the default
// (mail={{.Email}}), and adds the person to the group:
//
//	group attribute   object class         value added
//	member            groupOfNames         the person's DN (the default)
//	uniqueMember      groupOfUniqueNames   the person's DN
//	memberUid         posixGroup           the person's uid
//
// Revoking deletes that value again. Both are idempotent: adding a value
// the group holds (attributeOrValueExists) and deleting one it does not
// (noSuchAttribute) are successes. The person's fields are escaped before
// the user filter sees them, so an email address such as "*)(uid=*" finds
// nobody rather than everybody.
//
// The schema requires a groupOfNames (or groupOfUniqueNames) to have at
// least one member. Give every group latch manages a permanent placeholder
// member that is not a person, such as the bind DN, so that revoking the
// last person leaves a valid group. Without one, that revoke fails with
// ErrLastMember and the person stays in the group until the placeholder is
// added; latch keeps retrying. The connector never deletes a group.
//
// LDAP has no expiry for group membership, so access ends only when latch
// revokes it.
//
// # Failures
//
// Failures are *Error. These are permanent (marked with
// workflow.Permanent; retrying cannot fix them):
//
//   - no entry matches the person, or more than one does
//     (ErrUnknownPerson, ErrAmbiguousPerson), or a memberUid group and an
//     entry without a single uid (ErrNoUID);
//   - the entitlement is not a DN, or not under the group base DN
//     (ErrBadEntitlement);
//   - the group does not exist (ErrNoGroup, noSuchObject 32); on revoke
//     too, since a group that was renamed may still hold the person;
//   - on revoke, too, a person the user filter no longer finds: the
//     connector cannot tell which value to remove, so an operator has to
//     look at the group (latch keeps retrying and announces the failure);
//   - the bind DN may not do it (insufficientAccessRights 50,
//     invalidCredentials 49), and the server refusing the request as
//     malformed for the schema (objectClassViolation 65, for example when
//     the group attribute does not fit the group's object class;
//     ErrLastMember).
//
// Everything else is transient: the server cannot be reached, the
// connection breaks, the call runs out of its timeout, the server is busy
// (51) or unavailable (52).
//
// # Connections
//
// New connects to nothing. Each call takes a connection kept from an
// earlier call, or dials, secures (ldaps://, or StartTLS with ldap://) and
// binds a new one; at most two are kept between calls. A kept connection
// the server has closed is replaced and the call made again, once. The
// connector's timeout bounds a whole call, dialling included. Servers are
// verified against CAFile, or the system's certificates.
//
// The bind DN needs to search people under the user base DN (reading uid,
// mail and manager) and to write the group attribute of the groups latch
// manages; for the directory source, to read the cn, member, uniqueMember
// and memberUid of groups too. Nothing else. Its password never appears in
// an error.
//
// # The directory source
//
// Directory, built with NewDirectory on a connector, is a
// workflow.Directory for the engine: people's managers come from the
// manager attribute of their entry, and their groups from the groups that
// list them; see Directory for the details. Results are cached for a
// minute unless configured otherwise.
package ldap
