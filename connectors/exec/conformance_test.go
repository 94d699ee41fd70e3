package exec_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchhq/latch/connectors/connectortest"
	latchexec "github.com/latchhq/latch/connectors/exec"
	"github.com/latchhq/latch/workflow"
)

// conformanceScript keeps grants in $STATE_DIR/grants, one
// "entitlement email" pair a line. It knows the people listed in
// $STATE_DIR/people and the entitlements readers and writers, and fails
// transiently while $STATE_DIR/down exists.
const conformanceScript = `#!/bin/sh
set -eu
[ ! -e "$STATE_DIR/down" ] || { echo "target is down" >&2; exit 75; }
case "$LATCH_ENTITLEMENT" in
readers | writers) ;;
*) echo "unknown entitlement $LATCH_ENTITLEMENT" >&2; exit 65 ;;
esac
grep -qxF -- "$LATCH_EMAIL" "$STATE_DIR/people" || { echo "unknown person $LATCH_USER" >&2; exit 65; }
exec 9>>"$STATE_DIR/lock"
flock 9
grants="$STATE_DIR/grants"
touch "$grants"
line="$LATCH_ENTITLEMENT $LATCH_EMAIL"
case "$LATCH_ACTION" in
grant)
	grep -qxF -- "$line" "$grants" || printf '%s\n' "$line" >>"$grants"
	echo "latch-fact member=$LATCH_EMAIL"
	;;
revoke)
	grep -vxF -- "$line" "$grants" >"$grants.new" || [ $? -eq 1 ]
	mv "$grants.new" "$grants"
	;;
*) echo "unknown action $LATCH_ACTION" >&2; exit 64 ;;
esac
`

func TestConformance(t *testing.T) {
	people := []workflow.User{
		{SlackID: "U0000JANE", Email: "jane@example.com"},
		{SlackID: "U0000OMAR", Email: "omar@example.com"},
	}
	connectortest.Run(t, connectortest.Harness{
		Start: func(t *testing.T) connectortest.Target {
			dir := t.TempDir()
			script := filepath.Join(dir, "target.sh")
			if err := os.WriteFile(script, []byte(conformanceScript), 0o755); err != nil {
				t.Fatal(err)
			}
			state := filepath.Join(dir, "state")
			if err := os.Mkdir(state, 0o755); err != nil {
				t.Fatal(err)
			}
			var known strings.Builder
			for _, p := range people {
				known.WriteString(p.Email + "\n")
			}
			if err := os.WriteFile(filepath.Join(state, "people"), []byte(known.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			conn, err := latchexec.New("conformance", latchexec.Config{
				Command: script,
				Env:     []string{"STATE_DIR=" + state},
			})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			return connectortest.Target{
				Connector: conn,
				Has: func(_ context.Context, a workflow.Access) (bool, error) {
					return hasGrantLine(filepath.Join(state, "grants"), a.Entitlement+" "+a.User.Email)
				},
				Down: func(t *testing.T) {
					if err := os.WriteFile(filepath.Join(state, "down"), nil, 0o644); err != nil {
						t.Fatal(err)
					}
				},
				Up: func(t *testing.T) {
					if err := os.Remove(filepath.Join(state, "down")); err != nil {
						t.Fatal(err)
					}
				},
			}
		},
		Entitlement:    "readers",
		People:         people,
		BadEntitlement: "admins",
		Unknown:        workflow.User{SlackID: "U0000NOBODY", Email: "nobody@example.com"},
		IsConnectorError: func(err error) bool {
			var e *latchexec.Error
			return errors.As(err, &e)
		},
	})
}

// hasGrantLine reports whether the file at path holds line; a missing file
// holds nothing.
func hasGrantLine(path, line string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if sc.Text() == line {
			return true, nil
		}
	}
	return false, sc.Err()
}
