package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch/admin"
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
		{"unknown id", "0195f3c4-7a1e-7c2b-9d1e-5a6b7c8d9e0f", admin.ErrUnknownGrant.Error()},
		{"released grant", f.grant(t, "released"), admin.ErrNotRevocable.Error()},
		{"pending request", f.requests["pending"].ID, admin.ErrNotRevocable.Error()},
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

// serveEngine runs a server on the fixture's store: its engine (with the
// configured connectors, counting admins among its admins) and its admin
// API. It returns the API's URL, the store and the engine.
func serveEngine(t *testing.T, f *fixture, admins ...string) (string, *store.Store, *workflow.Engine) {
	t.Helper()
	cfg, connectors := f.load(t)
	connectors["warehouse"] = fakeWarehouse{}
	s, err := store.Open(f.db, store.Options{Projections: []store.Projection{store.Requests{}}})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := workflow.NewEngine(workflow.Config{Store: s, Catalogue: cfg.Catalogue, Policies: cfg.Policies,
		Directory: cfg.Directory, Connectors: connectors, Notifier: &printNotifier{w: io.Discard}, Clock: workflow.RealClock{},
		Admins: admins})
	if err != nil {
		t.Fatal(err)
	}
	url := serveStore(t, s, eng)
	if err := eng.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Close) // before the store closes
	return url, s, eng
}

// revokedLines is what a revoke prints once a one-grant request is gone.
func revokedLines(r workflow.Request) string {
	return fmt.Sprintf("grant %s (%s/%s): revoked\nrevoked: request %s (%s for %s), outcome revoked\n",
		r.Grants[0].ID, r.Grants[0].Target.Connector, r.Grants[0].Target.Entitlement, r.ID, r.Item, r.Beneficiary)
}

func TestRevokeServer(t *testing.T) {
	f := newFixture(t)
	url, s, eng := serveEngine(t, f, "U0SAM00003", admin.Actor, admin.Actor+":")
	active := f.requests["active"]
	r := latch(t, "revoke", "--server", url, f.grant(t, "active"), "--reason", "laptop stolen", "--operator", "jane@example.com")
	if want := revokedLines(active); r.code != exitOK || r.stdout != want || r.stderr != "" {
		t.Errorf("revoke through the server = %+v, want exit 0 and\n%s", r, want)
	}
	eng.Wait()
	// Bob's writers access is gone; so is Alice's overdue readers access,
	// which the server caught up with as it started.
	if got, want := f.access(t), []string{"stuck|alice@example.com"}; !slices.Equal(got, want) {
		t.Errorf("access after revoke = %v, want %v", got, want)
	}
	got, _, err := s.Request(active.ID)
	if err != nil || got.State != workflow.RequestEnded || got.Reason != "laptop stolen" {
		t.Errorf("revoked request: %+v, %v", got, err)
	}
	var by []string
	if err := s.Scan(context.Background(), store.Filter{Kinds: []string{workflow.KindEnding}}, func(e *workflow.Event) error {
		if e.RequestID == active.ID {
			by = append(by, e.Actor)
		}
		return nil
	}); err != nil || !slices.Equal(by, []string{"api:jane@example.com"}) {
		t.Errorf("ending events by %v (%v), want one by api:jane@example.com", by, err)
	}
	if r := latch(t, "revoke", "--server", url, f.grant(t, "active"), "--reason", "x", "--operator", "jane doe"); r.code != exitUsage || !strings.Contains(r.stderr, "--operator") {
		t.Errorf("revoke with an unusable --operator = %+v, want a usage error naming --operator", r)
	}

	// A local revoke prints the same outcome.
	g := newFixture(t)
	local := latch(t, "revoke", "--config", g.config, g.grant(t, "active"), "--reason", "laptop stolen")
	if local.code != exitOK || !strings.HasSuffix(local.stdout, revokedLines(g.requests["active"])) {
		t.Errorf("local revoke = %+v, want it to end with\n%s", local, revokedLines(g.requests["active"]))
	}
}

func TestRevokeServerFailingConnector(t *testing.T) {
	f := newFixture(t)
	url, s, eng := serveEngine(t, f, "U0SAM00003", admin.Actor)
	sub, err := eng.Submit(context.Background(), workflow.Submission{Item: "stuck", Requester: "U0BOB00002", Duration: time.Hour, Justification: "maintenance"})
	if err != nil {
		t.Fatal(err)
	}
	eng.Wait()
	sub, _, _ = s.Request(sub.ID)
	if sub.State != workflow.RequestActive {
		t.Fatalf("Bob's stuck request is %s, want active", sub.State)
	}
	r := latch(t, "revoke", "--server", url, sub.Grants[0].ID, "--reason", "left the team")
	now, _, err := s.Request(sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	g := now.Grants[0]
	want := fmt.Sprintf("grant %s (files/stuck): revoking: %s\nrevoke failed: request %s (stuck for U0BOB00002) is revoking; the server keeps retrying it\n", g.ID, g.LastError, sub.ID)
	if r.code != exitFailure || r.stdout != want || g.LastError == "" {
		t.Errorf("revoke against a failing target = %+v, want exit 1 and\n%s", r, want)
	}
	if !slices.Contains(f.access(t), "stuck|bob@example.com") {
		t.Errorf("access %v: Bob's stuck grant is gone, though its revoke failed", f.access(t))
	}
}

// TestRevokeServerRefused checks that what a local revoke refuses, the
// server refuses with the same words and exit code.
func TestRevokeServerRefused(t *testing.T) {
	f := newFixture(t)
	ids := []string{"0195f3c4-7a1e-7c2b-9d1e-5a6b7c8d9e0f", f.grant(t, "released"), f.requests["pending"].ID}
	local := make([]result, len(ids))
	for i, id := range ids {
		local[i] = latch(t, "revoke", "--config", f.config, id, "--reason", "audit finding")
	}
	url, s, _ := serveEngine(t, f, "U0SAM00003", admin.Actor)
	before, _ := s.Head()
	for i, id := range ids {
		got := latch(t, "revoke", "--server", url, id, "--reason", "audit finding")
		if got != local[i] || got.code != exitFailure || !strings.Contains(got.stderr, id) {
			t.Errorf("revoke %s through the server = %+v, want %+v as locally", id, got, local[i])
		}
	}
	// The server is already revoking the stuck grant: it says so.
	r := latch(t, "revoke", "--server", url, f.grant(t, "stuck"), "--reason", "audit finding")
	if r.code != exitFailure || r.stdout != "" || !strings.Contains(r.stderr, "revoking") {
		t.Errorf("revoke of a grant being revoked = %+v, want exit 1 saying it is revoking", r)
	}
	if after, _ := s.Head(); after != before {
		// The engine's own catch-up appends, but nothing of ours.
		var ours int
		s.Scan(context.Background(), store.Filter{From: before + 1}, func(e *workflow.Event) error {
			if e.Actor == admin.Actor {
				ours++
			}
			return nil
		})
		if ours != 0 {
			t.Errorf("%d events by %s after refused revokes", ours, admin.Actor)
		}
	}
}

// TestRevokeServerRefusedByEngine runs a server whose engine does not let
// the API revoke: the engine's reason is printed and the exit code is 1.
func TestRevokeServerRefusedByEngine(t *testing.T) {
	f := newFixture(t)
	url, s, _ := serveEngine(t, f, "U0SAM00003")
	r := latch(t, "revoke", "--server", url, f.grant(t, "active"), "--reason", "audit finding")
	if want := "latch: only an admin or an approver of this request may revoke it\n"; r.code != exitFailure || r.stdout != "" || r.stderr != want {
		t.Errorf("refused revoke = %+v, want exit 1 and %q", r, want)
	}
	if got, _, _ := s.Request(f.requests["active"].ID); got.State != workflow.RequestActive {
		t.Errorf("request is %s after a refused revoke, want active", got.State)
	}
}

func TestRevokeServerUsage(t *testing.T) {
	f := newFixture(t)
	id := f.grant(t, "active")
	url, _, _ := serveEngine(t, f, admin.Actor)
	tests := []struct {
		name     string
		args     []string
		wantFlag string
	}{
		{"with --config", []string{"--server", url, "--config", f.config, id, "--reason", "r"}, "--config"},
		{"with --db", []string{"--server", url, "--db", f.db, id, "--reason", "r"}, "--db"},
		{"no reason", []string{"--server", url, id}, "--reason"},
		{"no wait", []string{"--server", url, id, "--reason", "r", "--wait", "0s"}, "--wait"},
		{"a long wait", []string{"--server", url, id, "--reason", "r", "--wait", "1h"}, "--wait"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := latch(t, append([]string{"revoke"}, tt.args...)...)
			if r.code != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, tt.wantFlag) {
				t.Errorf("got %+v, want a usage error about %s", r, tt.wantFlag)
			}
		})
	}
}
