#!/bin/sh
# The demo's target system: one file for each person who has an entitlement,
# under $STATE_DIR/<entitlement>/<email>. It follows the exec connector's
# contract: idempotent grant and revoke, exit 65 for what cannot succeed.
set -eu
case "$LATCH_ENTITLEMENT" in
*[!a-z0-9-]* | "") echo "unknown entitlement \"$LATCH_ENTITLEMENT\"" >&2; exit 65 ;;
esac
case "$LATCH_EMAIL" in
?*@?*) ;;
*) echo "no email address for $LATCH_USER" >&2; exit 65 ;;
esac
dir="$STATE_DIR/$LATCH_ENTITLEMENT"
case "$LATCH_ACTION" in
grant)
	mkdir -p "$dir"
	echo "$LATCH_EXPIRES_AT" >"$dir/$LATCH_EMAIL"
	echo "latch-fact account=$LATCH_EMAIL"
	echo "Signed in as $LATCH_EMAIL on $LATCH_ENTITLEMENT until $LATCH_EXPIRES_AT."
	;;
revoke)
	rm -f "$dir/$LATCH_EMAIL"
	;;
*) echo "unknown action \"$LATCH_ACTION\"" >&2; exit 64 ;;
esac
