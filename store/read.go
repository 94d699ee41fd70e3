package store

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/latchhq/latch/workflow"
	bolt "go.etcd.io/bbolt"
)

// chunkSize is how many events one read transaction visits; long reads
// are split so that they never pin the file for long.
const chunkSize = 1024

// Filter selects events. The zero Filter selects the whole log.
type Filter struct {
	From, To     uint64    // sequence numbers, inclusive; To 0 means the head
	Since, Until time.Time // commit time: Since inclusive, Until exclusive
	Kinds        []string  // if set, only these kinds
}

// Scan calls fn with every event that matches f, in log order, reading in
// bounded chunks so that memory stays flat however long the log is. The
// event passed to fn is fn's to keep. Scan stops at the first error from fn
// or ctx and returns it. Events appended during the scan are not visited.
func (s *Store) Scan(ctx context.Context, f Filter, fn func(*workflow.Event) error) error {
	from, to, err := s.seqRange(f)
	if err != nil || from > to {
		return err
	}
	if len(f.Kinds) == 1 {
		return s.scanKind(ctx, f.Kinds[0], from, to, fn)
	}
	return s.chunked(ctx, from, to, func(_ uint64, rec []byte) error {
		if len(f.Kinds) > 0 && !slices.Contains(f.Kinds, recordKind(rec)) {
			return nil
		}
		var e workflow.Event
		if err := decodeRecord(rec, &e); err != nil {
			return fmt.Errorf("event %d: %w", recordSeq(rec), err)
		}
		return fn(&e)
	})
}

// Get returns the event with sequence number seq.
func (s *Store) Get(seq uint64) (workflow.Event, bool, error) {
	var e workflow.Event
	var found bool
	err := s.db.View(func(tx *bolt.Tx) error {
		rec := tx.Bucket(bucketEvents).Get(seqKey(seq))
		if rec == nil {
			return nil
		}
		found = true
		return decodeRecord(rec, &e)
	})
	return e, found, err
}

// seqRange turns a filter into an inclusive range of sequence numbers.
func (s *Store) seqRange(f Filter) (from, to uint64, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		last, _ := c.Last()
		if last == nil {
			return nil
		}
		from, to = max(f.From, 1), keySeq(last)
		if f.To != 0 {
			to = min(to, f.To)
		}
		if !f.Since.IsZero() {
			from = max(from, firstAtOrAfter(c, from, to, f.Since))
		}
		if !f.Until.IsZero() && from <= to {
			if u := firstAtOrAfter(c, from, to, f.Until); u <= to {
				to = u - 1
			}
		}
		return nil
	})
	return from, to, err
}

// firstAtOrAfter finds the first sequence number in [from, to] whose event
// was committed at or after t (to+1 if none): commit times never decrease
// along the log, so a binary search will do.
func firstAtOrAfter(c *bolt.Cursor, from, to uint64, t time.Time) uint64 {
	n := int(to - from + 1)
	i := sort.Search(n, func(i int) bool {
		k, v := c.Seek(seqKey(from + uint64(i)))
		return k == nil || len(v) < minRecord || !recordTime(v).Before(t)
	})
	return from + uint64(i)
}

// chunked calls fn with the key and record of every event in [from, to],
// a chunk of events per read transaction.
func (s *Store) chunked(ctx context.Context, from, to uint64, fn func(seq uint64, rec []byte) error) error {
	return s.walk(ctx, bucketEvents, from, to, seqKey,
		func(k []byte) (uint64, bool) { return keySeq(k), true },
		func(_ *bolt.Tx, seq uint64, rec []byte) error { return fn(seq, rec) })
}

// scanKind visits the events of one kind through the kind index.
func (s *Store) scanKind(ctx context.Context, kind string, from, to uint64, fn func(*workflow.Event) error) error {
	prefix := append([]byte(kind), 0)
	return s.walk(ctx, bucketKinds, from, to,
		func(next uint64) []byte { return kindKey(kind, next) },
		func(k []byte) (uint64, bool) {
			if !bytes.HasPrefix(k, prefix) || len(k) != len(prefix)+8 {
				return 0, false
			}
			return keySeq(k[len(prefix):]), true
		},
		func(tx *bolt.Tx, seq uint64, _ []byte) error {
			rec := tx.Bucket(bucketEvents).Get(seqKey(seq))
			if rec == nil {
				return fmt.Errorf("kind index names event %d, which is missing", seq)
			}
			var e workflow.Event
			if err := decodeRecord(rec, &e); err != nil {
				return fmt.Errorf("event %d: %w", seq, err)
			}
			return fn(&e)
		})
}

// walk visits the keys of a bucket in order from seek(from), a chunk per
// read transaction, calling fn for each key whose sequence number (from
// seqOf) lies in [from, to]; it stops at the first key that is not in the
// range or that seqOf rejects.
func (s *Store) walk(ctx context.Context, bucket []byte, from, to uint64, seek func(uint64) []byte,
	seqOf func(k []byte) (uint64, bool), fn func(tx *bolt.Tx, seq uint64, v []byte) error) error {
	next, done := from, false
	for !done {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucket).Cursor()
			k, v := c.Seek(seek(next))
			for n := 0; n < chunkSize; n++ {
				var seq uint64
				var ok bool
				if k != nil {
					seq, ok = seqOf(k)
				}
				if !ok || seq > to {
					done = true
					return nil
				}
				if err := fn(tx, seq, v); err != nil {
					return err
				}
				if seq == to {
					done = true
					return nil
				}
				next = seq + 1
				k, v = c.Next()
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
