package store

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/latchhq/latch/workflow"
	bolt "go.etcd.io/bbolt"
)

// A long read is split into chunks, each in a read transaction of its own,
// so that no reader pins the file for long or holds up a commit that must
// grow it.
const (
	chunkEvents = 1024
	chunkBytes  = 4 << 20
)

// Filter selects events. The zero Filter selects the whole log.
type Filter struct {
	From, To     uint64    // sequence numbers, inclusive; To 0 means the head
	Since, Until time.Time // commit time: Since inclusive, Until exclusive
	Kinds        []string  // if set, only these kinds
}

// Scan calls fn with every event that matches f, in log order. It reads a
// bounded chunk of events at a time and calls fn outside any transaction,
// so memory stays flat however long the log is and a slow fn holds up
// nobody. The event passed to fn is fn's to keep. Scan stops at the first
// error from fn or ctx and returns it. Events appended during the scan are
// not visited.
func (s *Store) Scan(ctx context.Context, f Filter, fn func(*workflow.Event) error) error {
	from, to, err := s.seqRange(f)
	if err != nil || from > to {
		return err
	}
	var pending []workflow.Event
	size := 0
	return s.chunks(ctx, from, to,
		func(seq uint64, rec []byte) (bool, error) {
			var e workflow.Event
			if err := decodeRecord(rec, &e); err != nil {
				return false, fmt.Errorf("event %d: %w", seq, err)
			}
			if len(f.Kinds) == 0 || slices.Contains(f.Kinds, e.Kind) {
				pending = append(pending, e)
				size += len(rec)
			}
			return size < chunkBytes, nil
		},
		func() error {
			for i := range pending {
				if err := fn(&pending[i]); err != nil {
					return err
				}
			}
			clear(pending)
			pending, size = pending[:0], 0
			return nil
		})
}

// Get returns the event with sequence number seq.
func (s *Store) Get(seq uint64) (workflow.Event, bool, error) {
	var e workflow.Event
	var found bool
	err := s.view(func(tx *bolt.Tx) error {
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
	err = s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		last, _ := c.Last()
		if len(last) != keyLen {
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

// chunks walks the events of [from, to] in order, a chunk per read
// transaction of at most chunkEvents events. visit sees each key's sequence
// number and record inside the transaction and says whether the chunk may
// go on; after runs outside any
// transaction once each chunk is done. A key that is not a sequence number
// stops the walk with a *ChainError.
func (s *Store) chunks(ctx context.Context, from, to uint64, visit func(seq uint64, rec []byte) (bool, error), after func() error) error {
	next, done := from, false
	for !done {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := s.view(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketEvents).Cursor()
			k, v := c.Seek(seqKey(next))
			for n := 0; n < chunkEvents; n++ {
				if k == nil {
					done = true
					return nil
				}
				if len(k) != keyLen {
					return &ChainError{Seq: next, Reason: fmt.Sprintf("a key of %d bytes stands where event %d should be", len(k), next)}
				}
				seq := keySeq(k)
				if seq > to {
					done = true
					return nil
				}
				more, err := visit(seq, v)
				if err != nil {
					return err
				}
				if seq == to {
					done = true
					return nil
				}
				next = seq + 1
				if !more {
					return nil
				}
				k, v = c.Next()
			}
			return nil
		})
		if err != nil {
			return err
		}
		if after != nil {
			if err := after(); err != nil {
				return err
			}
		}
	}
	return nil
}
