#!/bin/sh
# An example command for latch's exec connector. It keeps the members of two
# groups, "readers" and "writers", in flat files under $STATE_DIR, one email
# address a line. Configure it as:
#
#   connectors:
#     files:
#       type: exec
#       command: /path/to/example.sh
#       timeout: 10s
#       env: ["STATE_DIR=/var/lib/example"]
#
# It shows the whole contract: the LATCH_ variables, exit status 65 for what
# retrying cannot fix, a message and facts on standard output, explanations
# on standard error, and a grant and a revoke that may each run any number
# of times. Two calls for the same group at once are serialised with
# flock(1).
set -eu

fail() { # fail STATUS MESSAGE: explain on standard error and exit
	printf '%s\n' "$2" >&2
	exit "$1"
}

[ -n "${STATE_DIR:-}" ] || fail 78 "STATE_DIR is not set: add STATE_DIR=<directory> to the connector's env"

case "$LATCH_ENTITLEMENT" in
readers | writers) ;;
*) fail 65 "unknown group \"$LATCH_ENTITLEMENT\": use readers or writers" ;;
esac

# The address goes into a file and a grep pattern: refuse anything unusual.
case "$LATCH_EMAIL" in
?*@?*) ;;
*) fail 65 "no email address for $LATCH_USER in latch's directory" ;;
esac
case "$LATCH_EMAIL" in
*[!A-Za-z0-9@._+-]*) fail 65 "the email address of $LATCH_USER has characters this target does not take" ;;
esac

members="$STATE_DIR/$LATCH_ENTITLEMENT"
exec 9>>"$members.lock"
flock 9
touch "$members"

case "$LATCH_ACTION" in
grant)
	# Granting access that exists already succeeds.
	grep -qxF -- "$LATCH_EMAIL" "$members" || printf '%s\n' "$LATCH_EMAIL" >>"$members"
	echo "latch-fact member=$LATCH_EMAIL"
	echo "latch-fact group=$LATCH_ENTITLEMENT"
	echo "You are in $LATCH_ENTITLEMENT until $LATCH_EXPIRES_AT."
	;;
revoke)
	# Revoking access that is gone, or never existed, succeeds. grep exits
	# with 1 when it selects no line, which is not a failure here.
	grep -vxF -- "$LATCH_EMAIL" "$members" >"$members.new" || [ $? -eq 1 ]
	mv "$members.new" "$members"
	;;
*) fail 64 "unknown action \"$LATCH_ACTION\"" ;;
esac
