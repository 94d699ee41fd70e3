// Package exec is the connector that provisions access by running a
// command: a script or program, written by the team that runs latch, for a
// target system latch has no connector of its own for.
//
// # The contract for command authors
//
// latch runs the configured command with the configured arguments once for
// every grant and once for every revoke. It runs it directly, not through a
// shell, so the file needs its executable bit and, for a script, a "#!"
// line. Standard input is /dev/null; the working directory is latch's own.
//
// # Environment
//
// The command gets a clean environment that holds only these variables:
//
//	LATCH_ACTION        grant or revoke
//	LATCH_CONNECTOR     the connector's name in latch's configuration
//	LATCH_GRANT_ID      the grant; the same on every retry, so a good idempotency key
//	LATCH_REQUEST_ID    the request that led to the grant
//	LATCH_USER          the beneficiary's Slack user id, such as U0123ABCD
//	LATCH_EMAIL         the beneficiary's email address, from latch's directory
//	LATCH_ENTITLEMENT   what to grant or revoke, in the target's own terms
//	LATCH_EXPIRES_AT    when the access must end, RFC 3339 in UTC, such as
//	                    2030-01-02T15:04:05Z; empty if the access has no end
//	LATCH_PARAM_<NAME>  one for each input the request carried for this
//	                    connector; the input's name upper-cased, and every
//	                    character other than A-Z, 0-9 and _ replaced by _
//	                    (public-key becomes LATCH_PARAM_PUBLIC_KEY); inputs
//	                    that would share a variable are refused
//	PATH                /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin,
//	                    unless the connector's env sets it
//
// and the variables the connector's env lists: an entry NAME=value sets
// NAME to value, a bare NAME passes on latch's own NAME (and nothing, if
// latch has none). Nothing else of latch's environment, which holds its
// tokens, reaches the command. Names that start with LATCH_ are reserved.
//
// # Exit status
//
//	0                 done
//	65 (EX_DATAERR)   a permanent failure that retrying cannot fix: the
//	                  person has no account, the entitlement does not exist,
//	                  an input is refused; latch does not retry
//	anything else     a transient failure; latch retries, and keeps retrying
//	                  a revoke with backoff until it succeeds
//
// A command killed by a signal is a transient failure too, and so is one
// still running when its timeout (30 seconds unless configured) runs out or
// when latch gives up on the call, for example on shutdown. latch then kills
// the command's whole process group with SIGKILL. When the command exits,
// whatever it left running in its process group is killed as well: start
// nothing that is meant to outlive it.
//
// # Output
//
// Standard error explains failures. Its last 2 KiB go into the error that
// latch records in the audit log and announces to the security team, so
// write there what an operator needs to fix the failure, and never a
// secret.
//
// Standard output of a successful grant is the message for the beneficiary alone:
// credentials, a certificate, how to connect. latch delivers it to them once
// and never logs it. Up to 16 KiB is kept, with surrounding white space
// trimmed. Lines that start with "latch-fact " are not part of the message
// but facts for the audit log, one key=value pair a line (the key is what
// comes before the first "=", both are trimmed; a line without a key is
// dropped):
//
//	latch-fact account=latch_jane_7f3a
//	latch-fact role=readonly
//
// Facts are recorded for everyone to read: they must hold no secret.
// Standard output of a revoke is discarded.
//
// # Idempotency
//
// latch records what it is about to do before it runs the command, and runs
// it again after a crash, a timeout or a transient failure. A grant must
// therefore succeed when the access exists already, and a revoke must
// succeed when the access is gone or never existed. Calls for different
// grants may run at the same time; a command whose target cannot take that
// must serialise itself, for example with flock(1).
//
// Where the target can end access by itself, the command should set that
// expiry from LATCH_EXPIRES_AT too, so that the access ends on time even if
// latch is down.
//
// testdata/example.sh in this package's source is a complete example.
package exec
