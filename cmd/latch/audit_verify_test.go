package main

import (
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchhq/latch/store"
	bolt "go.etcd.io/bbolt"
)

func TestAuditVerify(t *testing.T) {
	path := newStore(t, 20)
	s, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	_, head := s.Head()
	s.Close()

	r := latch(t, "audit", "verify", "--db", path)
	want := fmt.Sprintf("ok: 20 events, head %s\n", hex.EncodeToString(head[:]))
	if r.code != exitOK || r.stdout != want {
		t.Errorf("verify = %+v, want exit 0 and %q", r, want)
	}

	// Change one byte of event 13's payload behind latch's back.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("events"))
		k := []byte{0, 0, 0, 0, 0, 0, 0, 13}
		v := append([]byte(nil), b.Get(k)...)
		v[len(v)-3] ^= 1
		return b.Put(k, v)
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	r = latch(t, "audit", "verify", "--db", path)
	if r.code != exitFailure || !strings.Contains(r.stdout, "event 13") {
		t.Errorf("verify of a tampered log = %+v, want exit 1 naming event 13", r)
	}
}

func TestAuditVerifyErrors(t *testing.T) {
	held := filepath.Join(t.TempDir(), "held.db")
	s, err := store.Open(held, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no --db", []string{"audit", "verify"}, exitUsage, "--db"},
		{"missing file", []string{"audit", "verify", "--db", filepath.Join(t.TempDir(), "nope.db")}, exitFailure, "does not exist"},
		{"held by a server", []string{"audit", "verify", "--db", held}, exitFailure, inUseHint},
		{"not a store", []string{"audit", "verify", "--db", "../../config.example.yaml"}, exitFailure, "check --db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := latch(t, tt.args...)
			if r.code != tt.wantCode || !strings.Contains(r.stderr, tt.wantErr) {
				t.Errorf("got %+v, want exit %d and %q on stderr", r, tt.wantCode, tt.wantErr)
			}
		})
	}
}

func TestAuditVerifyStorePathFromEnvironment(t *testing.T) {
	t.Setenv("LATCH_STORE_PATH", newStore(t, 3))
	if r := latch(t, "audit", "verify"); r.code != exitOK || !strings.HasPrefix(r.stdout, "ok: 3 events") {
		t.Errorf("verify with LATCH_STORE_PATH = %+v", r)
	}
}
