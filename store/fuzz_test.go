package store

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchhq/latch/workflow"
)

// FuzzDecodeRecord decodes arbitrary bytes as a stored event record, as a
// damaged or tampered file would hold. decodeRecord must not panic; a
// record it accepts encodes back to the same bytes (a record has one
// encoding, so the hash covers the event and nothing else); its decoded
// event does not alias the record; and checkLink accepts it exactly when
// its stored hash is right and its fields are what latch writes.
func FuzzDecodeRecord(f *testing.F) {
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	events := []workflow.Event{
		{Seq: 1, ID: uuid.Must(uuid.NewV7()), Time: t0, Actor: "U1", Kind: workflow.KindSubmitted, RequestID: "r1", Payload: []byte(`{"item":"db"}`)},
		{Seq: 2, Time: t0.Add(time.Second), Actor: "latch", Kind: workflow.KindGrantActive, RequestID: "r1", GrantID: "g1", Payload: []byte(`{}`)},
		{Seq: 1 << 40, Time: time.Unix(0, -1), Actor: "admin:é", Kind: "k", Payload: bytes.Repeat([]byte("x"), 300)},
		{Seq: 3},
	}
	var prev workflow.Hash
	for i := range events {
		e := &events[i]
		e.PrevHash = prev
		rec := appendRecord(nil, e)
		prev = e.Hash
		f.Add(rec)
		f.Add(rec[:len(rec)-1])
		tampered := bytes.Clone(rec)
		tampered[len(tampered)-1] ^= 1
		f.Add(tampered)
	}
	f.Add([]byte{})
	f.Add(make([]byte, minRecord))
	f.Fuzz(func(t *testing.T, rec []byte) {
		orig := bytes.Clone(rec)
		var e workflow.Event
		err := decodeRecord(rec, &e)
		if err != nil {
			if len(rec) >= recCanonical {
				if _, serr := splitCanonical(rec[recCanonical:]); serr == nil {
					t.Fatalf("decodeRecord failed (%v) on a record whose canonical bytes split", err)
				}
			}
			var prev, sum workflow.Hash
			if len(rec) >= recHash {
				copy(prev[:], rec[recPrev:recHash])
			}
			if len(rec) >= minRecord && checkLink(sha256.New(), rec, recordSeq(rec), &prev, &sum) == nil {
				t.Fatalf("checkLink accepts a record decodeRecord refuses (%v)", err)
			}
			return
		}
		again := e
		got := appendRecord(nil, &again)
		if !bytes.Equal(got[recPrev:recHash], rec[recPrev:recHash]) || !bytes.Equal(got[recCanonical:], rec[recCanonical:]) {
			t.Fatalf("record does not encode back to itself:\n got %x\nwant %x", got, rec)
		}
		hashRight := again.Hash == e.Hash
		// The decoded event owns its bytes.
		for i := range rec {
			rec[i] ^= 0xff
		}
		if len(e.Payload) > 0 && bytes.Equal(e.Payload, rec[len(rec)-len(e.Payload):]) {
			t.Fatal("the decoded payload aliases the record")
		}
		copy(rec, orig)
		var prev, sum workflow.Hash
		copy(prev[:], rec[recPrev:recHash])
		linkErr := checkLink(sha256.New(), rec, e.Seq, &prev, &sum)
		if linkErr == nil && !hashRight {
			t.Fatal("checkLink accepts a record whose stored hash is wrong")
		}
		if linkErr == nil && prev != e.Hash {
			t.Fatal("checkLink accepted a record but did not move prev to its hash")
		}
	})
}
