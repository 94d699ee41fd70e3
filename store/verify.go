package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash"
	"unicode/utf8"

	"github.com/latchhq/latch/workflow"
	bolt "go.etcd.io/bbolt"
)

// Report is the outcome of a successful Verify.
type Report struct {
	Count uint64        // events in the log
	Head  workflow.Hash // hash of the last event (zero for an empty log)
}

// Verify recomputes the hash chain from the first event to the last and
// checks it against every stored hash and link, against the encoding latch
// writes, and against the head record. It returns a *ChainError naming the
// first event that does not match: one whose contents or hash were changed,
// one that is missing, one stored out of place, or the end of a log that
// lost events at its tail while its head record stayed.
//
// A log cut short together with its head record cannot be told from a
// shorter log by the chain alone; compare the returned count and head with
// a checkpoint kept elsewhere.
func (s *Store) Verify(ctx context.Context) (Report, error) {
	var r Report
	var mark head
	if err := s.view(func(tx *bolt.Tx) error {
		var err error
		if mark, err = decodeHead(tx.Bucket(bucketMeta).Get(keyHead)); err != nil {
			return err
		}
		// Keys outside [1, head] would escape the walk below.
		c := tx.Bucket(bucketEvents).Cursor()
		if first, _ := c.First(); first != nil && bytes.Compare(first, seqKey(1)) < 0 {
			return &ChainError{Seq: 1, Reason: fmt.Sprintf("a key of %d bytes stands before event 1", len(first))}
		}
		if last, _ := c.Last(); last != nil && bytes.Compare(last, seqKey(mark.seq)) > 0 {
			return &ChainError{Seq: mark.seq + 1, Reason: fmt.Sprintf("the log holds a key past its head record, which names event %d", mark.seq)}
		}
		return nil
	}); err != nil {
		return r, err
	}

	expect := uint64(1)
	var prev, sum workflow.Hash
	h := sha256.New()
	err := s.chunks(ctx, 1, mark.seq, func(key uint64, rec []byte) (bool, error) {
		if key != expect {
			return false, &ChainError{Seq: expect, Reason: fmt.Sprintf("event %d is missing (the next one stored is %d)", expect, key)}
		}
		if err := checkLink(h, rec, expect, &prev, &sum); err != nil {
			return false, err
		}
		expect++
		return true, nil
	}, nil)
	if err != nil {
		return r, err
	}
	r.Count, r.Head = expect-1, prev
	if r.Count < mark.seq {
		return r, &ChainError{Seq: r.Count + 1, Reason: fmt.Sprintf("the log ends at event %d but its head record names event %d: events were removed from the end", r.Count, mark.seq)}
	}
	if r.Head != mark.hash {
		return r, &ChainError{Seq: mark.seq, Reason: "the head record's hash does not match the last event's"}
	}
	return r, nil
}

// checkLink checks that rec holds event number expect, written as latch
// writes it, linked to prev and hashed right; it then moves prev to rec's
// hash. sum is scratch space.
func checkLink(h hash.Hash, rec []byte, expect uint64, prev, sum *workflow.Hash) error {
	if len(rec) < minRecord {
		return &ChainError{Seq: expect, Reason: "record is truncated"}
	}
	if seq := recordSeq(rec); seq != expect {
		return &ChainError{Seq: expect, Reason: fmt.Sprintf("the event stored here says it is event %d: events were moved", seq)}
	}
	if !bytes.Equal(rec[recPrev:recHash], prev[:]) {
		return &ChainError{Seq: expect, Reason: "its previous-hash link does not match the event before it"}
	}
	h.Reset()
	h.Write(rec[recPrev:recHash])
	h.Write(rec[recCanonical:])
	h.Sum(sum[:0])
	if !bytes.Equal(rec[recHash:recCanonical], sum[:]) {
		return &ChainError{Seq: expect, Reason: "its stored hash does not match its contents"}
	}
	fields, err := splitCanonical(rec[recCanonical:])
	if err != nil {
		return &ChainError{Seq: expect, Reason: fmt.Sprintf("it is not encoded as latch writes events: %v", err)}
	}
	for i, f := range fields[:4] {
		if !utf8.Valid(f) {
			return &ChainError{Seq: expect, Reason: fmt.Sprintf("its %s is not valid UTF-8", fieldNames[i])}
		}
	}
	if p := fields[4]; len(p) == 0 || p[0] != '{' || !json.Valid(p) || !utf8.Valid(p) {
		return &ChainError{Seq: expect, Reason: "its payload is not a JSON object in UTF-8"}
	}
	copy(prev[:], sum[:])
	return nil
}
