package store

import (
	"encoding/binary"
	"fmt"

	"github.com/latchhq/latch/workflow"
	bolt "go.etcd.io/bbolt"
)

// A Projection is state derived from the log, kept in a bucket of its own
// and updated in the same transaction as the events it is derived from, so
// that it never disagrees with the log after a crash.
type Projection interface {
	// Name identifies the projection; its bucket is "projection/<name>".
	Name() string

	// Version changes whenever Apply changes meaning; a store whose
	// projection was built by another version rebuilds it at Open.
	Version() uint32

	// Apply folds one committed event into the projection's bucket. An
	// error aborts the Append that carried the event, and nothing of that
	// Append is written.
	Apply(b *bolt.Bucket, e *workflow.Event) error
}

func projectionBucket(p Projection) []byte { return []byte("projection/" + p.Name()) }

// A projection's mark in the meta bucket records the version that built it
// and the last event it has applied.
func projectionMarkKey(p Projection) []byte { return []byte("projection-mark/" + p.Name()) }

func projectionMark(p Projection, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(nil, p.Version()), seq)
}

// syncProjections brings every projection up to the head at Open: a new
// projection, or one built by another version, is rebuilt from the whole
// log; one that missed events (the store was opened without it) catches up.
func (s *Store) syncProjections() error {
	head, _ := s.Head()
	for _, p := range s.projs {
		from := uint64(0) // 0: rebuild
		if err := s.db.View(func(tx *bolt.Tx) error {
			m := tx.Bucket(bucketMeta).Get(projectionMarkKey(p))
			if tx.Bucket(projectionBucket(p)) != nil && len(m) == 12 &&
				binary.BigEndian.Uint32(m) == p.Version() && binary.BigEndian.Uint64(m[4:]) <= head {
				from = binary.BigEndian.Uint64(m[4:]) + 1
			}
			return nil
		}); err != nil {
			return err
		}
		if err := s.replay(p, from); err != nil {
			return err
		}
	}
	return nil
}

// Rebuild discards the named projection and derives it again from the
// whole log, in one transaction (appends wait for it).
func (s *Store) Rebuild(name string) error {
	for _, p := range s.projs {
		if p.Name() == name {
			return s.replay(p, 0)
		}
	}
	return fmt.Errorf("rebuild: no projection named %q", name)
}

// replay applies the events from seq from on to a projection; from 0
// starts it afresh.
func (s *Store) replay(p Projection, from uint64) error {
	if seq, _ := s.Head(); from > seq {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		name := projectionBucket(p)
		if from == 0 && tx.Bucket(name) != nil {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		b, err := tx.CreateBucketIfNotExists(name)
		if err != nil {
			return err
		}
		c := tx.Bucket(bucketEvents).Cursor()
		var e workflow.Event
		last := uint64(0)
		for k, v := c.Seek(seqKey(max(from, 1))); k != nil; k, v = c.Next() {
			if err := decodeRecord(v, &e); err != nil {
				return fmt.Errorf("replay projection %s: event %d: %w", p.Name(), keySeq(k), err)
			}
			if err := apply(p, b, &e); err != nil {
				return fmt.Errorf("replay: %w", err)
			}
			last = e.Seq
		}
		if last == 0 {
			last = from - min(from, 1)
		}
		return tx.Bucket(bucketMeta).Put(projectionMarkKey(p), projectionMark(p, last))
	})
}

// View runs fn with the named projection's bucket in a read transaction.
// The bucket and anything read from it are valid only inside fn.
func (s *Store) View(name string, fn func(b *bolt.Bucket) error) error {
	return s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("projection/" + name))
		if b == nil {
			return fmt.Errorf("view: no projection named %q", name)
		}
		return fn(b)
	})
}
