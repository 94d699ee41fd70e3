package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/connectors/exec"
	"github.com/latchhq/latch/connectors/postgres"
	"github.com/latchhq/latch/connectors/webhook"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// head returns the number of events in the store at path.
func head(t *testing.T, path string) uint64 {
	t.Helper()
	s, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	seq, _ := s.Head()
	return seq
}

// endings returns the request.ending events of a request.
func endings(t *testing.T, path, requestID string) []workflow.Event {
	t.Helper()
	s, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out []workflow.Event
	if err := s.Scan(context.Background(), store.Filter{Kinds: []string{workflow.KindEnding}}, func(e *workflow.Event) error {
		if e.RequestID == requestID {
			out = append(out, *e)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRevoke(t *testing.T) {
	tests := []struct {
		name string
		id   func(f *fixture) string
		db   bool // pass --db rather than take the configuration's store.path
	}{
		{"a grant", func(f *fixture) string { return f.requests["active"].Grants[0].ID }, false},
		{"a request", func(f *fixture) string { return f.requests["active"].ID }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("USER", "ops")
			f := newFixture(t)
			args := []string{"revoke", "--config", f.config, tt.id(f), "--reason", "laptop stolen"}
			if tt.db {
				args = append(args, "--db", f.db)
			}
			r := latch(t, args...)
			if r.code != exitOK {
				t.Fatalf("revoke = %+v", r)
			}
			// Bob's writers access is gone; so is Alice's overdue readers
			// access, which the start of the engine caught up with. The
			// stuck revoke still fails.
			if got, want := f.access(t), []string{"stuck|alice@example.com"}; !slices.Equal(got, want) {
				t.Errorf("access after revoke = %v, want %v", got, want)
			}
			active := f.request(t, f.requests["active"].ID)
			if active.State != workflow.RequestEnded || active.Outcome != workflow.OutcomeRevoked || active.Reason != "laptop stolen" {
				t.Errorf("revoked request: %s, outcome %s, reason %q", active.State, active.Outcome, active.Reason)
			}
			if e := endings(t, f.db, active.ID); len(e) != 1 || e[0].Actor != "cli:ops" {
				t.Errorf("ending events %+v, want one by cli:ops", e)
			}
			overdue := f.request(t, f.requests["overdue"].ID)
			if overdue.State != workflow.RequestEnded || overdue.Outcome != workflow.OutcomeExpired {
				t.Errorf("overdue request: %s, outcome %s; want ended, expired", overdue.State, overdue.Outcome)
			}
			if !strings.Contains(r.stdout, "also: request "+overdue.ID) {
				t.Errorf("no line about the overdue request in\n%s", r.stdout)
			}
			if strings.Contains(r.stdout+r.stderr, "hunter2") {
				t.Errorf("a connector's message for a beneficiary was printed:\n%s%s", r.stdout, r.stderr)
			}
		})
	}
}

func TestRevokeFailingConnector(t *testing.T) {
	f := newFixture(t)
	id := f.requests["stuck"].ID
	r := latch(t, "revoke", "--config", f.config, f.grant(t, "stuck"), "--reason", "left the team")
	if r.code != exitFailure {
		t.Fatalf("revoke against a failing target = %+v, want exit 1", r)
	}
	if got := f.request(t, id); got.State != workflow.RequestRevoking || got.Grants[0].LastError == "" {
		t.Errorf("request %s with last error %q, want revoking with the connector's error", got.State, got.Grants[0].LastError)
	}
	if !slices.Contains(f.access(t), "stuck|alice@example.com") {
		t.Errorf("access %v: the stuck grant is gone, though its revoke failed", f.access(t))
	}

	// The target is back: a second run finishes the revoke.
	if err := os.WriteFile(filepath.Join(f.dir, "unstuck"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r = latch(t, "revoke", "--config", f.config, id, "--reason", "left the team")
	if r.code != exitOK {
		t.Fatalf("second revoke = %+v", r)
	}
	if got := f.request(t, id); got.State != workflow.RequestEnded || got.Outcome != workflow.OutcomeRevoked {
		t.Errorf("request %s, outcome %s; want ended, revoked", got.State, got.Outcome)
	}
	if slices.Contains(f.access(t), "stuck|alice@example.com") {
		t.Errorf("access %v still holds the stuck grant", f.access(t))
	}
}

func TestRevokeNothingDone(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name    string
		id      string
		wantErr string
	}{
		{"unknown id", "0195f3c4-7a1e-7c2b-9d1e-5a6b7c8d9e0f", errUnknownGrant.Error()},
		{"released grant", f.grant(t, "released"), errNotRevocable.Error()},
		{"pending request", f.requests["pending"].ID, errNotRevocable.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := head(t, f.db)
			r := latch(t, "revoke", "--config", f.config, tt.id, "--reason", "audit finding")
			if r.code != exitFailure || !strings.Contains(r.stderr, tt.id) || !strings.Contains(r.stderr, tt.wantErr) {
				t.Errorf("got %+v, want exit 1 naming %s and saying %q", r, tt.id, tt.wantErr)
			}
			if after := head(t, f.db); after != before {
				t.Errorf("the log grew from %d to %d events", before, after)
			}
		})
	}
	if got := f.request(t, f.requests["warehouse"].ID); got.State != workflow.RequestActive {
		t.Errorf("warehouse request is %s, want still active", got.State)
	}
}

func TestRevokeUsage(t *testing.T) {
	f := newFixture(t)
	id := f.grant(t, "active")
	tests := []struct {
		name     string
		args     []string
		wantFlag string
	}{
		{"no reason", []string{"--config", f.config, id}, "--reason"},
		{"blank reason", []string{"--config", f.config, id, "--reason", "  "}, "--reason"},
		{"no grant", []string{"--config", f.config, "--reason", "r"}, "grant"},
		{"two grants", []string{"--config", f.config, id, id, "--reason", "r"}, id},
		{"no configuration", []string{id, "--reason", "r"}, "--config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := latch(t, append([]string{"revoke"}, tt.args...)...)
			if r.code != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, tt.wantFlag) {
				t.Errorf("got %+v, want a usage error about %s", r, tt.wantFlag)
			}
		})
	}
	if got := f.request(t, f.requests["active"].ID); got.State != workflow.RequestActive {
		t.Errorf("request is %s after usage errors, want active", got.State)
	}
}

func TestRevokeStoreErrors(t *testing.T) {
	f := newFixture(t)
	id := f.grant(t, "active")

	s, err := store.Open(f.db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := latch(t, "revoke", "--config", f.config, id, "--reason", "r")
	s.Close()
	if r.code != exitFailure || !strings.Contains(r.stderr, store.ErrLocked.Error()) {
		t.Errorf("revoke while the server holds the store = %+v, want exit 1 and %q", r, store.ErrLocked)
	}

	missing := filepath.Join(t.TempDir(), "nope.db")
	r = latch(t, "revoke", "--config", f.config, "--db", missing, id, "--reason", "r")
	if r.code != exitFailure || !strings.Contains(r.stderr, store.ErrNotFound.Error()) {
		t.Errorf("revoke on a missing store = %+v, want exit 1 and %q", r, store.ErrNotFound)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("revoke created %s (%v)", missing, err)
	}
}

func TestBuildConnectors(t *testing.T) {
	f := newFixture(t)
	_, got := f.load(t)
	if _, ok := got["files"].(*exec.Connector); !ok {
		t.Errorf("files is a %T, want an exec connector", got["files"])
	}
	if _, ok := got["warehouse"].(*postgres.Connector); !ok {
		t.Errorf("warehouse is a %T, want a postgres connector", got["warehouse"])
	}
	active := f.requests["active"]
	if err := checkConnectors(&active, got); err != nil {
		t.Errorf("checkConnectors(files) = %v", err)
	}
}

func TestPrintNotifierHidesMessages(t *testing.T) {
	var buf bytes.Buffer
	n := &printNotifier{w: &buf}
	r := workflow.Request{ID: "r1", Submitted: workflow.Submitted{Item: "db", Requester: "U1", Beneficiary: "U1"}}
	n.Granted(context.Background(), r, map[string]string{"g1": "password hunter2"})
	if buf.Len() == 0 || strings.Contains(buf.String(), "hunter2") {
		t.Errorf("Granted printed %q: want a line, without the message", buf.String())
	}
}

func TestCLIActor(t *testing.T) {
	t.Setenv("USER", "ops")
	if got := cliActor(); got != "cli:ops" {
		t.Errorf("cliActor() = %q, want cli:ops", got)
	}
	t.Setenv("USER", "")
	if got, want := cliActor(), "cli:"+strconv.Itoa(os.Getuid()); got != want {
		t.Errorf("cliActor() without $USER = %q, want %q", got, want)
	}
}

func TestBuildConnectorsWebhook(t *testing.T) {
	cfg := &config.Config{Connectors: []config.Connector{{Name: "billing", Type: "webhook", Settings: &config.WebhookSettings{
		URL: "https://billing.example.com/latch", Secret: config.SecretRef{Env: "LATCH_TEST_WEBHOOK_SECRET"},
	}}}}
	if _, err := buildConnectors(cfg); err == nil {
		t.Errorf("a webhook connector without its secret was built")
	}
	t.Setenv("LATCH_TEST_WEBHOOK_SECRET", "0123456789abcdef0123456789abcdef")
	got, err := buildConnectors(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got["billing"].(*webhook.Connector); !ok {
		t.Errorf("billing is a %T, want a webhook connector", got["billing"])
	}
}
