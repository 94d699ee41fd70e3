package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"

	"github.com/latchhq/latch/workflow"
	bolt "go.etcd.io/bbolt"
)

// Report is the outcome of a successful Verify.
type Report struct {
	Count uint64        // events in the log
	Head  workflow.Hash // hash of the last event (zero for an empty log)
}

// Verify recomputes the hash chain from the first event to the last and
// checks it against every stored hash and link. It returns a *ChainError
// naming the first event that does not match: one whose contents or hash
// were changed, one that is missing, or one stored out of place.
//
// A log cut short at its tail cannot be told from a shorter log by the
// chain alone; compare the returned count and head with a checkpoint.
func (s *Store) Verify(ctx context.Context) (Report, error) {
	var r Report
	var expect uint64 = 1
	var prev workflow.Hash
	var sum workflow.Hash
	h := sha256.New()
	var mark head
	if err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		mark, err = decodeHead(tx.Bucket(bucketMeta).Get(keyHead))
		return err
	}); err != nil {
		return r, err
	}
	err := s.chunked(ctx, 1, ^uint64(0), func(key uint64, rec []byte) error {
		if key != expect {
			return &ChainError{Seq: expect, Reason: fmt.Sprintf("event %d is missing (the next one stored is %d)", expect, key)}
		}
		if err := checkLink(h, rec, expect, &prev, &sum); err != nil {
			return err
		}
		r.Count, r.Head = expect, prev
		expect++
		return nil
	})
	if err != nil {
		return r, err
	}
	// The head record is written in the same transaction as the last event:
	// if it is ahead of the log, events were removed from its end.
	if mark.seq > r.Count {
		return r, &ChainError{Seq: r.Count + 1, Reason: fmt.Sprintf("the log ends at event %d but its head record says %d: events were removed from the end", r.Count, mark.seq)}
	}
	return r, nil
}

// checkLink checks that rec holds event number expect and links to prev, and
// moves prev to rec's hash. sum is scratch space.
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
	copy(prev[:], sum[:])
	return nil
}

// keySeq reads a bucket key as a sequence number.
func keySeq(k []byte) uint64 { return binary.BigEndian.Uint64(k) }
