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
	// error aborts the Append that carried the event.
	Apply(b *bolt.Bucket, e *workflow.Event) error
}

func projectionBucket(p Projection) []byte { return []byte("projection/" + p.Name()) }

func projectionVersionKey(p Projection) []byte { return []byte("projection-version/" + p.Name()) }

// syncProjections rebuilds every projection that is missing or was built
// by another version.
func (s *Store) syncProjections() error {
	for _, p := range s.projs {
		var current bool
		if err := s.db.View(func(tx *bolt.Tx) error {
			v := tx.Bucket(bucketMeta).Get(projectionVersionKey(p))
			current = tx.Bucket(projectionBucket(p)) != nil && len(v) == 4 && binary.BigEndian.Uint32(v) == p.Version()
			return nil
		}); err != nil {
			return err
		}
		if !current {
			if err := s.rebuild(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// Rebuild discards the named projection and derives it again from the
// whole log, in one transaction.
func (s *Store) Rebuild(name string) error {
	for _, p := range s.projs {
		if p.Name() == name {
			return s.rebuild(p)
		}
	}
	return fmt.Errorf("rebuild: no projection named %q", name)
}

func (s *Store) rebuild(p Projection) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		name := projectionBucket(p)
		if tx.Bucket(name) != nil {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		b, err := tx.CreateBucket(name)
		if err != nil {
			return err
		}
		c := tx.Bucket(bucketEvents).Cursor()
		var e workflow.Event
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if err := decodeRecord(v, &e); err != nil {
				return fmt.Errorf("rebuild projection %s: event %d: %w", p.Name(), binary.BigEndian.Uint64(k), err)
			}
			if err := p.Apply(b, &e); err != nil {
				return fmt.Errorf("rebuild projection %s: event %d: %w", p.Name(), e.Seq, err)
			}
		}
		return tx.Bucket(bucketMeta).Put(projectionVersionKey(p), binary.BigEndian.AppendUint32(nil, p.Version()))
	})
}

// View runs fn with the named projection's bucket in a read transaction.
// The bucket and anything read from it are valid only inside fn.
func (s *Store) View(name string, fn func(b *bolt.Bucket) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("projection/" + name))
		if b == nil {
			return fmt.Errorf("view: no projection named %q", name)
		}
		return fn(b)
	})
}
