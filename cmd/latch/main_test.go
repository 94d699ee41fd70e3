package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// result is what one run of the command line produced.
type result struct {
	code           int
	stdout, stderr string
}

// latch runs the command line in-process.
func latch(t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

// newStore creates a closed store holding n events, one a minute from
// 2026-11-01T09:00Z, alternating kinds request.submitted and grant.revoked.
func newStore(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "latch.db")
	now := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	s, err := store.Open(path, store.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < n; i++ {
		e := workflow.Event{
			Kind:      []string{"request.submitted", "grant.revoked"}[i%2],
			Actor:     "U01ALICE",
			RequestID: fmt.Sprint("r", i),
			Payload:   json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)),
		}
		if _, err := s.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Minute)
	}
	return path
}

func TestMain(m *testing.M) {
	// The tests set what they need; nothing from the caller's environment
	// may change what latch does under test.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "LATCH_") || strings.HasPrefix(k, "SLACK_") {
			os.Unsetenv(k)
		}
	}
	os.Exit(m.Run())
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args     []string
		wantHelp string // the command whose help the message points to
	}{
		{[]string{"frobnicate"}, "latch --help"},
		{[]string{"audit", "frobnicate"}, "latch audit --help"},
		{[]string{"version", "--bogus"}, "latch version --help"},
		{[]string{"audit", "verify", "extra"}, "latch audit verify --help"},
	}
	for _, tt := range tests {
		r := latch(t, tt.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tt.wantHelp) {
			t.Errorf("latch %v = %+v, want exit %d pointing to %q", tt.args, r, exitUsage, tt.wantHelp)
		}
	}
}

func TestGroupCommandsShowHelp(t *testing.T) {
	for _, args := range [][]string{nil, {"audit"}} {
		r := latch(t, args...)
		if r.code != exitOK || !strings.Contains(r.stdout, "Available Commands") {
			t.Errorf("latch %v = %+v, want its help", args, r)
		}
		if strings.Contains(r.stdout, "completion") {
			t.Errorf("latch %v offers a completion command", args)
		}
	}
}

// accessScript is an exec connector command that keeps who has what in
// $STATE_DIR/access, one "entitlement email" a line. Revokes of "stuck"
// fail, as if the target were down, until $STATE_DIR/unstuck exists. A
// grant's message is a made-up credential that must never be printed.
const accessScript = `#!/bin/sh
set -eu
state="$STATE_DIR/access"
exec 9>>"$state.lock"
flock 9
touch "$state"
line="$LATCH_ENTITLEMENT $LATCH_EMAIL"
case "$LATCH_ACTION" in
grant)
	grep -qxF -- "$line" "$state" || printf '%s\n' "$line" >>"$state"
	echo "password hunter2"
	;;
revoke)
	if [ "$LATCH_ENTITLEMENT" = stuck ] && [ ! -e "$STATE_DIR/unstuck" ]; then
		echo "target unreachable" >&2
		exit 75
	fi
	grep -vxF -- "$line" "$state" >"$state.new" || [ $? -eq 1 ]
	mv "$state.new" "$state"
	;;
esac
`

// accessConfig is a configuration with the exec connector "files" running
// accessScript, and a postgres connector, "warehouse", which latch cannot
// run yet. Items auto-approve, except "pending", which Sam (or Alice) must approve.
const accessConfig = `store:
  path: %[1]s
channels:
  security: C0SECURITY
admin:
  admins: [U0SAM00003]
directory:
  users:
    - {slack_id: U0ALICE001, email: alice@example.com}
    - {slack_id: U0BOB00002, email: bob@example.com}
    - {slack_id: U0SAM00003, email: sam@example.com}
connectors:
  - name: files
    type: exec
    settings:
      command: %[2]s
      timeout: 10s
      env: ["STATE_DIR=%[3]s"]
  - name: warehouse
    type: postgres
    settings: {host: 127.0.0.1, database: app, user: latch}
catalogue:
  items:
    - {id: readers, name: Readers, owners: [U0SAM00003], policy: auto, targets: [{connector: files, entitlement: readers}]}
    - {id: writers, name: Writers, owners: [U0SAM00003], policy: auto, targets: [{connector: files, entitlement: writers}]}
    - {id: stuck, name: Stuck, owners: [U0SAM00003], policy: auto, targets: [{connector: files, entitlement: stuck}]}
    - {id: warehouse, name: Warehouse, owners: [U0SAM00003], policy: auto, targets: [{connector: warehouse, entitlement: analyst}]}
    - {id: pending, name: Pending, owners: [U0SAM00003], policy: ask, targets: [{connector: files, entitlement: readers}]}
policies:
  auto:
    duration: {max: 8h}
    auto_approve: "true"
    approval:
      stages: [{approvers: ["user:U0SAM00003", "user:U0ALICE001"]}]
  ask:
    duration: {max: 8h}
    approval:
      stages: [{approvers: ["user:U0SAM00003", "user:U0ALICE001"]}]
`

// fixture is a stopped server's files: its configuration, its store, and
// the state of the target its exec connector keeps.
type fixture struct {
	config, db, dir string
	requests        map[string]workflow.Request // by name, as created
}

// fakeWarehouse grants and revokes nothing, successfully.
type fakeWarehouse struct{}

func (fakeWarehouse) Grant(context.Context, workflow.Access) (workflow.Granted, error) {
	return workflow.Granted{}, nil
}
func (fakeWarehouse) Revoke(context.Context, workflow.Access) error { return nil }

// newFixture runs a server's engine with a fake clock three hours ago and
// leaves behind, all granted then:
//
//	overdue    Alice, readers for 1h: still active, its expiry passed
//	active     Bob, writers for 8h: active, 5h left
//	released   Bob, readers for 1h: released
//	stuck      Alice, stuck for 8h: revoked by Sam, the revoke failing
//	warehouse  Alice, warehouse for 8h: active, on the postgres connector
//	pending    Bob, pending: waiting for Sam
func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{config: filepath.Join(dir, "latch.yaml"), db: filepath.Join(dir, "latch.db"),
		dir: filepath.Join(dir, "target"), requests: map[string]workflow.Request{}}
	script := filepath.Join(dir, "access.sh")
	if err := os.WriteFile(script, []byte(accessScript), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(f.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.config, fmt.Appendf(nil, accessConfig, f.db, script, f.dir), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, connectors := f.load(t)
	connectors["warehouse"] = fakeWarehouse{}

	clock := workflow.NewFakeClock(time.Now().Add(-3 * time.Hour).Truncate(time.Second))
	s, err := store.Open(f.db, store.Options{Now: clock.Now, Projections: []store.Projection{store.Requests{}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	eng, err := workflow.NewEngine(workflow.Config{Store: s, Catalogue: cfg.Catalogue, Policies: cfg.Policies,
		Directory: cfg.Directory, Connectors: connectors, Notifier: &printNotifier{w: io.Discard}, Clock: clock,
		Admins: cfg.Admin.Admins})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(); err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ctx := context.Background()
	settle := func(name string, r workflow.Request, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		eng.Wait()
		if f.requests[name], _, err = s.Request(r.ID); err != nil {
			t.Fatal(err)
		}
	}
	for _, sub := range []struct {
		name, item, who string
		d               time.Duration
	}{
		{"overdue", "readers", "U0ALICE001", time.Hour},
		{"active", "writers", "U0BOB00002", 8 * time.Hour},
		{"released", "readers", "U0BOB00002", time.Hour},
		{"stuck", "stuck", "U0ALICE001", 8 * time.Hour},
		{"warehouse", "warehouse", "U0ALICE001", 8 * time.Hour},
		{"pending", "pending", "U0BOB00002", time.Hour},
	} {
		r, err := eng.Submit(ctx, workflow.Submission{Item: sub.item, Requester: sub.who, Duration: sub.d, Justification: "maintenance"})
		settle(sub.name, r, err)
	}
	r, err := eng.Release(ctx, f.requests["released"].ID, "U0BOB00002")
	settle("released", r, err)
	r, err = eng.Revoke(ctx, f.requests["stuck"].ID, "U0SAM00003", "left the team")
	settle("stuck", r, err)

	for name, want := range map[string]workflow.RequestState{
		"overdue": workflow.RequestActive, "active": workflow.RequestActive, "released": workflow.RequestEnded,
		"stuck": workflow.RequestRevoking, "warehouse": workflow.RequestActive, "pending": workflow.RequestPending,
	} {
		if got := f.requests[name].State; got != want {
			t.Fatalf("fixture: %s is %s, want %s", name, got, want)
		}
	}
	return f
}

// load loads the configuration and builds its connectors as latch revoke
// does.
func (f *fixture) load(t *testing.T) (*config.Config, map[string]workflow.Provisioner) {
	t.Helper()
	cfg, err := config.Load(f.config)
	if err != nil {
		t.Fatal(err)
	}
	connectors, err := buildConnectors(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, connectors
}

// grant returns the id of the only grant of the named request.
func (f *fixture) grant(t *testing.T, name string) string {
	t.Helper()
	r := f.requests[name]
	if len(r.Grants) != 1 {
		t.Fatalf("request %s has %d grants", name, len(r.Grants))
	}
	return r.Grants[0].ID
}

// access returns who has what in the target, as "entitlement email" lines.
func (f *fixture) access(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, "access"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(strings.ReplaceAll(string(b), " ", "|"))
	slices.Sort(lines)
	return lines
}

// request reads a request back from the closed store.
func (f *fixture) request(t *testing.T, id string) workflow.Request {
	t.Helper()
	s, err := store.Open(f.db, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, ok, err := s.Request(id)
	if err != nil || !ok {
		t.Fatalf("request %s: %v %v", id, ok, err)
	}
	return r
}
