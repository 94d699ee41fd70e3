package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// bucketCursors holds named positions in the log: how far a reader that
// must see every event (an audit sink) has got.
var bucketCursors = []byte("cursors")

// WaitAfter blocks until the log holds an event after seq, that is until
// its head is past seq, and returns the head. It returns early with
// ctx's error, or with ErrClosed once the store is closed.
func (s *Store) WaitAfter(ctx context.Context, seq uint64) (uint64, error) {
	for {
		s.headMu.Lock()
		head := s.head.seq
		if head > seq {
			s.headMu.Unlock()
			return head, nil
		}
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		changed := s.changed
		s.headMu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return head, ctx.Err()
		case <-s.closing:
			return head, ErrClosed
		}
	}
}

// Cursor returns the position saved under name, 0 if none was.
func (s *Store) Cursor(name string) (uint64, error) {
	var seq uint64
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCursors)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(name))
		switch {
		case v == nil:
		case len(v) != 8:
			return fmt.Errorf("%w: cursor %q has %d bytes", ErrFormat, name, len(v))
		default:
			seq = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return seq, err
}

// SetCursor durably saves seq as the position of name. The cursors are
// not part of the hash chain: they say how far a reader got, not what
// happened.
func (s *Store) SetCursor(name string, seq uint64) error {
	if name == "" {
		return errors.New("store: a cursor needs a name")
	}
	if err := s.saveCursor(name, seq); err != nil {
		if errors.Is(err, ErrClosed) || errors.Is(err, ErrReadOnly) || errors.Is(err, ErrFailed) {
			return err
		}
		// Like a failed append: what bbolt left on disk is not known.
		// (Told outside closeMu, which OnFail may need.)
		return s.fail(failure("save cursor "+name, err))
	}
	return nil
}

// saveCursor writes a cursor, unless the store takes no writes.
func (s *Store) saveCursor(name string, seq uint64) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if err := s.writeErr(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketCursors)
		if err != nil {
			return err
		}
		return b.Put([]byte(name), binary.BigEndian.AppendUint64(nil, seq))
	})
}
