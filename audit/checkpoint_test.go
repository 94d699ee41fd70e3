package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

func newKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// checkpointOf signs the current head of s.
func checkpointOf(s *store.Store, priv ed25519.PrivateKey) Checkpoint {
	n, head := s.Head()
	return Sign(priv, n, head, time.Date(2026, 3, 1, 12, 0, 0, 5, time.FixedZone("CET", 3600)))
}

func TestCheckpointSignVerify(t *testing.T) {
	pub, priv := newKey(t)
	other, _ := newKey(t)
	cp := Sign(priv, 42, workflow.Hash{1, 2, 3}, time.Date(2026, 3, 1, 12, 0, 0, 5, time.FixedZone("CET", 3600)))

	if got, want := string(cp.SignedBytes()), "latch-checkpoint v1\n42\n0102030000000000000000000000000000000000000000000000000000000000\n2026-03-01T11:00:00.000000005Z\n"; got != want {
		t.Errorf("SignedBytes = %q, want %q", got, want)
	}
	if cp.Key != KeyID(pub) || len(cp.Key) != 16 {
		t.Errorf("Key = %q, want KeyID(pub) = %q", cp.Key, KeyID(pub))
	}
	if err := cp.Verify(pub); err != nil {
		t.Fatalf("Verify = %v", err)
	}

	// Through JSON and back it still verifies.
	b, err := json.Marshal(cp)
	if err != nil {
		t.Fatal(err)
	}
	var back Checkpoint
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Verify(pub); err != nil {
		t.Errorf("Verify after a JSON round trip = %v (%s)", err, b)
	}

	tests := []struct {
		name string
		edit func(c *Checkpoint)
		key  ed25519.PublicKey
	}{
		{"another key", func(c *Checkpoint) {}, other},
		{"another key claimed", func(c *Checkpoint) { c.Key = KeyID(other) }, other},
		{"more events", func(c *Checkpoint) { c.Events++ }, pub},
		{"other head", func(c *Checkpoint) { c.Head = "ff" + c.Head[2:] }, pub},
		{"upper-case head, signed", func(c *Checkpoint) {
			c.Head = "01020300000000000000000000000000000000000000000000000000000000AA"
			c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(priv, c.SignedBytes()))
		}, pub},
		{"short head, signed", func(c *Checkpoint) {
			c.Head = "0102"
			c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(priv, c.SignedBytes()))
		}, pub},
		{"later time", func(c *Checkpoint) { c.Time = c.Time.Add(time.Nanosecond) }, pub},
		{"malformed signature", func(c *Checkpoint) { c.Signature = "not base64!" }, pub},
		{"no signature", func(c *Checkpoint) { c.Signature = "" }, pub},
		{"short key", func(c *Checkpoint) {}, pub[:8]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cp
			tt.edit(&c)
			if err := c.Verify(tt.key); !errors.Is(err, ErrBadSignature) {
				t.Errorf("Verify = %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestCheckGoodLog(t *testing.T) {
	pub, priv := newKey(t)
	s, _ := openStore(t)
	empty := checkpointOf(s, priv)
	if err := Check(context.Background(), s, empty, pub); err != nil {
		t.Errorf("Check of an empty log against its checkpoint = %v", err)
	}
	appendN(t, s, 10)
	cp := checkpointOf(s, priv)
	if err := Check(context.Background(), s, cp, pub); err != nil {
		t.Errorf("Check = %v", err)
	}
	appendN(t, s, 5)
	for _, c := range []Checkpoint{empty, cp} {
		if err := Check(context.Background(), s, c, pub); err != nil {
			t.Errorf("Check of a longer log against the checkpoint of %d events = %v", c.Events, err)
		}
	}
	other, _ := newKey(t)
	if err := Check(context.Background(), s, cp, other); !errors.Is(err, ErrBadSignature) {
		t.Errorf("Check with another key = %v, want ErrBadSignature", err)
	}
}

// copyFile copies a closed store file.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

func openReadOnly(t *testing.T, path string) *store.Store {
	t.Helper()
	s, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestCheckTruncatedLog(t *testing.T) {
	pub, priv := newKey(t)
	path := filepath.Join(t.TempDir(), "latch.db")
	s, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, 6)
	s.Close()
	old := filepath.Join(t.TempDir(), "old.db")
	copyFile(t, path, old) // the log as it was at 6 events

	s, err = store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	appendN(t, s, 4)
	cp := checkpointOf(s, priv)

	// The old copy is a valid chain, cut short.
	err = Check(context.Background(), openReadOnly(t, old), cp, pub)
	var ce *CheckError
	if !errors.Is(err, ErrTruncated) || !errors.As(err, &ce) {
		t.Fatalf("Check of a truncated log = %v, want a CheckError wrapping ErrTruncated", err)
	}
	if ce.Seq != 10 || ce.Have != 6 {
		t.Errorf("CheckError names event %d of %d, want 10 of 6", ce.Seq, ce.Have)
	}
}

func TestCheckTailDeletedWithBolt(t *testing.T) {
	pub, priv := newKey(t)
	s, path := openStore(t)
	appendN(t, s, 8)
	cp := checkpointOf(s, priv)
	s.Close()
	// Remove the last two events and point the head record at event 6,
	// as someone covering their tracks would.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("events"))
		for _, seq := range []uint64{7, 8} {
			if err := b.Delete(seqKey(seq)); err != nil {
				return err
			}
		}
		meta := tx.Bucket([]byte("meta"))
		head := meta.Get([]byte("head"))
		rec := b.Get(seqKey(6))
		h := append([]byte(nil), head...)
		copy(h, seqKey(6))
		copy(h[8:40], rec[32:64]) // the hash of event 6
		return meta.Put([]byte("head"), h)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	ro := openReadOnly(t, path)
	if _, err := ro.Verify(context.Background()); err != nil {
		t.Fatalf("the shortened log no longer verifies by itself (%v): the test edits it wrongly", err)
	}
	if err := Check(context.Background(), ro, cp, pub); !errors.Is(err, ErrTruncated) {
		t.Fatalf("Check = %v, want ErrTruncated", err)
	}
}

func seqKey(seq uint64) []byte {
	return []byte{byte(seq >> 56), byte(seq >> 48), byte(seq >> 40), byte(seq >> 32), byte(seq >> 24), byte(seq >> 16), byte(seq >> 8), byte(seq)}
}

func TestCheckRewrittenLog(t *testing.T) {
	pub, priv := newKey(t)
	s, _ := openStore(t)
	appendN(t, s, 10)
	cp := checkpointOf(s, priv)

	// A log with as many events, hashed consistently, but other events:
	// its chain verifies; only the checkpoint tells it apart.
	forged, _ := openStore(t)
	for range 10 {
		if _, err := forged.Append(context.Background(), workflow.Event{Kind: workflow.KindGrantRevoked, Actor: "latch", RequestID: "r1", Payload: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := forged.Verify(context.Background()); err != nil {
		t.Fatalf("the forged log does not verify by itself: %v", err)
	}
	appendN(t, forged, 3) // even longer
	err := Check(context.Background(), forged, cp, pub)
	var ce *CheckError
	if !errors.Is(err, ErrRewritten) || !errors.As(err, &ce) {
		t.Fatalf("Check of a rewritten log = %v, want a CheckError wrapping ErrRewritten", err)
	}
	if ce.Seq != 10 || ce.Want != cp.Head || ce.Hash == cp.Head {
		t.Errorf("CheckError = %+v, want event 10 with the checkpoint's head %s", ce, cp.Head)
	}
}

func TestCheckBrokenChain(t *testing.T) {
	pub, priv := newKey(t)
	s, path := openStore(t)
	appendN(t, s, 8)
	cp := checkpointOf(s, priv)
	s.Close()
	// Change event 3's payload in place, without re-hashing: the chain
	// breaks there, while event 8 still hashes as the checkpoint says.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("events"))
		rec := append([]byte(nil), b.Get(seqKey(3))...)
		rec[len(rec)-2] ^= 1
		return b.Put(seqKey(3), rec)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	err = Check(context.Background(), openReadOnly(t, path), cp, pub)
	var chain *store.ChainError
	if !errors.As(err, &chain) || chain.Seq != 3 {
		t.Fatalf("Check = %v, want a ChainError at event 3", err)
	}
}

func TestCheckAllCatchesARollback(t *testing.T) {
	s, _ := openStore(t)
	appendN(t, s, 3)
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := priv.Public().(ed25519.PublicKey)
	n, head := s.Head()
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	older := Sign(priv, n, head, t0)
	newer := Sign(priv, n, head, t0.Add(time.Hour))
	if _, err := CheckAll(t.Context(), s, []Checkpoint{older, newer}, pub); err != nil {
		t.Fatalf("in order: %v", err)
	}
	if _, err := CheckAll(t.Context(), s, []Checkpoint{newer, older}, pub); !errors.Is(err, ErrRollback) {
		t.Errorf("an older checkpoint copied to the end: %v, want ErrRollback", err)
	}
	path := filepath.Join(t.TempDir(), "cp.jsonl")
	for _, cp := range []Checkpoint{older, newer} {
		if err := AppendCheckpoint(path, cp); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ReadCheckpoints(path)
	if err != nil || len(got) != 2 || got[1].Signature != newer.Signature {
		t.Errorf("ReadCheckpoints = %d, %v", len(got), err)
	}
}
