package main

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchhq/latch/admin"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
	bolt "go.etcd.io/bbolt"
)

// cliToken is the admin token of the test servers.
const cliToken = "0123456789abcdef0123456789abcdef-cli"

// noEngine is the engine of a server whose tests revoke nothing.
type noEngine struct{ t *testing.T }

func (e noEngine) Revoke(context.Context, string, string, string) (workflow.Request, error) {
	e.t.Error("the engine was asked to revoke")
	return workflow.Request{}, nil
}

// serveAPI holds the store at path as a running server does, serves its
// admin API on loopback, puts the token in $LATCH_ADMIN_TOKEN and returns
// the server's URL. projections are those the store is opened with.
func serveAPI(t *testing.T, path string, eng func(*store.Store) admin.Engine, projections ...store.Projection) string {
	t.Helper()
	s, err := store.Open(path, store.Options{Projections: projections})
	if err != nil {
		t.Fatal(err)
	}
	return serveStore(t, s, eng(s))
}

// serveStore serves the admin API on an open store until the test ends,
// then closes the store.
func serveStore(t *testing.T, s *store.Store, eng admin.Engine) string {
	t.Helper()
	srv := httptest.NewServer(admin.New(admin.Config{Store: s, Engine: eng, Token: []byte(cliToken)}))
	t.Cleanup(func() {
		srv.Close()
		s.Close()
	})
	t.Setenv("LATCH_ADMIN_TOKEN", cliToken)
	return srv.URL
}

func without(t *testing.T) func(*store.Store) admin.Engine {
	return func(*store.Store) admin.Engine { return noEngine{t} }
}

// tamper changes one byte of an event's payload behind latch's back.
func tamper(t *testing.T, path string, seq byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("events"))
		k := []byte{0, 0, 0, 0, 0, 0, 0, seq}
		v := append([]byte(nil), b.Get(k)...)
		v[len(v)-3] ^= 1
		return b.Put(k, v)
	}); err != nil {
		t.Fatal(err)
	}
}

// TestAuditVerifyServer verifies through the server: the output and exit
// code are those of a local verify, for a sound log and a tampered one.
func TestAuditVerifyServer(t *testing.T) {
	for _, tampered := range []bool{false, true} {
		path := newStore(t, 20)
		if tampered {
			tamper(t, path, 13)
		}
		local := latch(t, "audit", "verify", "--db", path)
		url := serveAPI(t, path, without(t))
		remote := latch(t, "audit", "verify", "--server", url)
		if remote != local {
			t.Errorf("tampered %v: verify through the server = %+v, want %+v as locally", tampered, remote, local)
		}
		wantCode := exitOK
		if tampered {
			wantCode = exitFailure
		}
		if remote.code != wantCode || remote.stderr != "" || (tampered && !strings.Contains(remote.stdout, "FAILED: 12 events verified; audit chain broken at event 13")) {
			t.Errorf("tampered %v: verify = %+v", tampered, remote)
		}

		// The server may come from the environment.
		t.Setenv("LATCH_SERVER", url)
		if got := latch(t, "audit", "verify"); got != local {
			t.Errorf("verify with LATCH_SERVER = %+v, want %+v", got, local)
		}
		t.Setenv("LATCH_SERVER", "")
	}
}

// TestAuditExportServer exports through the server: the output is that
// of a local export, byte for byte.
func TestAuditExportServer(t *testing.T) {
	path := newStore(t, 10)
	cases := [][]string{
		nil,
		{"--since", "2026-11-01T09:07:00Z"},
		{"--until", "2026-11-01T09:02:00Z"},
		{"--since", "2026-11-02"},
		{"--since", "3650d"},
		{"--kind", "grant.revoked"},
		{"--kind", "grant.revoked,request.submitted", "--since", "2026-11-01T09:03:00Z", "--until", "2026-11-01T09:05:00Z"},
		{"--kind", "grant.revoked", "--kind", "request.submitted", "--format", "csv"},
		{"--format", "csv"},
		{"--since", "yesterday"},
		{"--format", "xml"},
		{"--since", "2026-11-02", "--until", "2026-11-01"},
	}
	local := make([]result, len(cases))
	for i, args := range cases {
		local[i] = latch(t, append([]string{"audit", "export", "--db", path}, args...)...)
	}
	url := serveAPI(t, path, without(t))
	for i, args := range cases {
		got := latch(t, append([]string{"audit", "export", "--server", url}, args...)...)
		if got != local[i] {
			t.Errorf("export %v through the server = %+v\nwant %+v", args, got, local[i])
		}
	}
	if local[0].code != exitOK || strings.Count(local[0].stdout, "\n") != 10 {
		t.Errorf("local export = %+v, want 10 events", local[0])
	}
}

func TestServerFlags(t *testing.T) {
	path := newStore(t, 3)
	local := latch(t, "audit", "verify", "--db", path)
	url := serveAPI(t, path, without(t))
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(cliToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrongFile := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(wrongFile, []byte("not-the-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := latch(t, "audit", "verify", "--server", url, "--token-file", tokenFile); got != local {
		t.Errorf("verify with --token-file = %+v, want %+v", got, local)
	}
	// A stopped server's store named with --db comes first.
	t.Setenv("LATCH_SERVER", url)
	held := latch(t, "audit", "verify", "--db", path)
	if held.code != exitFailure || !strings.Contains(held.stderr, inUseHint) {
		t.Errorf("verify --db with LATCH_SERVER set = %+v, want the store, held by the server", held)
	}
	t.Setenv("LATCH_SERVER", "")

	tests := []struct {
		name     string
		args     []string
		env      string // $LATCH_ADMIN_TOKEN
		wantCode int
		wantErr  string
	}{
		{"--server and --db", []string{"--server", url, "--db", path}, cliToken, exitUsage, "--db"},
		{"no token", []string{"--server", url}, "", exitUsage, "LATCH_ADMIN_TOKEN"},
		{"--token-file without --server", []string{"--db", path, "--token-file", tokenFile}, cliToken, exitUsage, "--token-file"},
		{"not a URL", []string{"--server", "127.0.0.1:8089"}, cliToken, exitUsage, "--server"},
		{"wrong token", []string{"--server", url}, "not-the-token", exitFailure, "refused the admin token"},
		{"wrong token file", []string{"--server", url, "--token-file", wrongFile}, cliToken, exitFailure, "refused the admin token"},
		{"missing token file", []string{"--server", url, "--token-file", tokenFile + ".nope"}, cliToken, exitFailure, "--token-file"},
		{"no server there", []string{"--server", "http://127.0.0.1:1"}, cliToken, exitFailure, "127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("LATCH_ADMIN_TOKEN", tt.env)
			for _, cmd := range [][]string{{"audit", "verify"}, {"audit", "export"}, {"grants"}} {
				r := latch(t, append(cmd, tt.args...)...)
				if r.code != tt.wantCode || r.stdout != "" || !strings.Contains(r.stderr, tt.wantErr) {
					t.Errorf("%v: got %+v, want exit %d and %q on stderr", cmd, r, tt.wantCode, tt.wantErr)
				}
				for _, secret := range []string{cliToken, "not-the-token"} {
					if strings.Contains(r.stderr, secret) {
						t.Errorf("%v: stderr holds a token: %s", cmd, r.stderr)
					}
				}
			}
		})
	}
}

// TestStoreInUse checks that every command that opens the store says to
// ask the server while one holds it.
func TestStoreInUse(t *testing.T) {
	f := newFixture(t)
	serveAPI(t, f.db, without(t), store.Requests{})
	for _, args := range [][]string{
		{"audit", "verify", "--db", f.db},
		{"audit", "export", "--db", f.db},
		{"grants", "--db", f.db},
		{"revoke", "--config", f.config, f.grant(t, "active"), "--reason", "r"},
	} {
		r := latch(t, args...)
		if r.code != exitFailure || !strings.Contains(r.stderr, inUseHint) || !strings.Contains(r.stderr, store.ErrLocked.Error()) {
			t.Errorf("%v on a held store = %+v, want exit 1 and %q", args, r, inUseHint)
		}
	}
}
