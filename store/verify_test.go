package store

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/latchhq/latch/workflow"
	bolt "go.etcd.io/bbolt"
)

// tamper edits the closed store file at path directly, as an attacker with
// write access to the file would.
func tamper(t *testing.T, path string, edit func(b *bolt.Bucket) error) {
	t.Helper()
	tamperTx(t, path, func(tx *bolt.Tx) error { return edit(tx.Bucket(bucketEvents)) })
}

func tamperTx(t *testing.T, path string, edit func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(edit); err != nil {
		t.Fatal(err)
	}
}

// setHead rewrites the head record to name event seq.
func setHead(t *testing.T, path string, seq uint64) {
	t.Helper()
	tamperTx(t, path, func(tx *bolt.Tx) error {
		var h head
		if seq > 0 {
			var e workflow.Event
			if err := decodeRecord(tx.Bucket(bucketEvents).Get(seqKey(seq)), &e); err != nil {
				return err
			}
			h = head{seq: seq, hash: e.Hash, time: e.Time.UnixNano()}
		}
		return tx.Bucket(bucketMeta).Put(keyHead, h.encode())
	})
}

// record returns a copy of the stored record of seq.
func record(b *bolt.Bucket, seq uint64) []byte {
	return append([]byte(nil), b.Get(seqKey(seq))...)
}

func TestVerifyDetectsTampering(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(b *bolt.Bucket) error
		wantSeq uint64
	}{
		{"changed payload", func(b *bolt.Bucket) error {
			r := record(b, 5)
			r[len(r)-2] ^= 1 // inside {"n":5}
			return b.Put(seqKey(5), r)
		}, 5},
		{"deleted event", func(b *bolt.Bucket) error {
			return b.Delete(seqKey(7))
		}, 7},
		{"reordered pair", func(b *bolt.Bucket) error {
			r3, r4 := record(b, 3), record(b, 4)
			if err := b.Put(seqKey(3), r4); err != nil {
				return err
			}
			return b.Put(seqKey(4), r3)
		}, 3},
		{"changed hash field", func(b *bolt.Bucket) error {
			r := record(b, 9)
			r[recHash] ^= 0xff
			return b.Put(seqKey(9), r)
		}, 9},
		{"changed previous-hash field", func(b *bolt.Bucket) error {
			r := record(b, 2)
			r[recPrev] ^= 0xff
			return b.Put(seqKey(2), r)
		}, 2},
		{"changed actor with its hash recomputed", func(b *bolt.Bucket) error {
			var e workflow.Event
			if err := decodeRecord(record(b, 6), &e); err != nil {
				return err
			}
			e.Actor = "U-someone-else"
			return b.Put(seqKey(6), appendRecord(nil, &e))
		}, 7},
		{"removed tail", func(b *bolt.Bucket) error {
			return b.Delete(seqKey(10))
		}, 10},
		{"truncated record", func(b *bolt.Bucket) error {
			return b.Put(seqKey(4), record(b, 4)[:40])
		}, 4},
		{"key that is not a sequence number", func(b *bolt.Bucket) error {
			return b.Put([]byte{0}, record(b, 1))
		}, 1},
		{"last event re-encoded with a longer length, hashes recomputed", func(b *bolt.Bucket) error {
			var e workflow.Event
			if err := decodeRecord(record(b, 10), &e); err != nil {
				return err
			}
			rec := appendRecord(nil, &e)
			// The actor's length (1 byte, 2) becomes the two-byte 0x82 0x00.
			i := recCanonical + canVar
			rec = append(rec[:i:i], append([]byte{rec[i] | 0x80, 0}, rec[i+1:]...)...)
			sum := chainHash(rec[recPrev:recHash], rec[recCanonical:])
			copy(rec[recHash:], sum[:])
			return b.Put(seqKey(10), rec)
		}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, path := openTemp(t, Options{})
			for i := 1; i <= 10; i++ {
				if _, err := s.Append(context.Background(), ev("grant.active", "U1", "r", fmt.Sprintf(`{"n":%d}`, i))); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.Verify(context.Background()); err != nil {
				t.Fatalf("Verify before tampering: %v", err)
			}
			s.Close()
			tamper(t, path, tt.edit)

			ro, err := Open(path, Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close()
			_, err = ro.Verify(context.Background())
			var ce *ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("Verify = %v, want a ChainError", err)
			}
			if ce.Seq != tt.wantSeq {
				t.Errorf("Verify names event %d (%s), want %d", ce.Seq, ce.Reason, tt.wantSeq)
			}
		})
	}
}

func TestVerifyChecksTheHeadRecord(t *testing.T) {
	s, path := openTemp(t, Options{})
	for i := 0; i < 5; i++ {
		if _, err := s.Append(context.Background(), ev("a.b", "U1", "", "")); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	// The head record falls behind the log: events 4 and 5 are not
	// accounted for. A writer refuses the file; Verify names event 4.
	setHead(t, path, 3)
	if _, err := Open(path, Options{}); !errors.Is(err, ErrInconsistent) {
		t.Errorf("Open for writing = %v, want ErrInconsistent", err)
	}
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	var ce *ChainError
	if _, err := ro.Verify(context.Background()); !errors.As(err, &ce) || ce.Seq != 4 {
		t.Errorf("Verify = %v, want a ChainError at event 4", err)
	}
}

func TestVerifyEmptyLog(t *testing.T) {
	s, _ := openTemp(t, Options{})
	r, err := s.Verify(context.Background())
	if err != nil || r.Count != 0 || r.Head != (workflow.Hash{}) {
		t.Errorf("Verify of an empty log = %+v, %v", r, err)
	}
}
