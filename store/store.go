package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/latchhq/latch/workflow"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var (
	bucketEvents = []byte("events")
	bucketMeta   = []byte("meta")

	keyFormat = []byte("format")
	keyHead   = []byte("head")
)

// Options configure Open. The zero value is usable.
type Options struct {
	// ReadOnly opens an existing file without writing to it. Several
	// read-only opens may share a file, but not with a writer.
	ReadOnly bool

	// LockTimeout bounds the wait for another process to release the file
	// (default 1s); after it Open returns ErrLocked.
	LockTimeout time.Duration

	// Now is the clock that stamps events (default time.Now).
	Now func() time.Time

	// Projections are kept up to date in the transaction of every append.
	Projections []Projection

	// MaxBatch caps how many events one group commit holds (default 8192).
	MaxBatch int

	// OnFail, if set, is called once, from the goroutine whose write
	// failed, when the store stops taking writes (ErrFailed: a full disk,
	// a read-only file system). It must not block for long.
	OnFail func(err error)
}

// Store is an open latch store file.
type Store struct {
	db    *bolt.DB
	path  string
	now   func() time.Time
	projs []Projection
	max   int

	queue   chan *appendReq
	closing chan struct{}
	done    chan struct{}
	closeMu sync.RWMutex // held for reading by calls, for writing by Close
	closed  bool

	headMu  sync.RWMutex
	head    head          // last committed event; written by the writer only
	failed  error         // set when a commit's outcome is unknown; appends stop
	changed chan struct{} // closed and replaced at every commit; guarded by headMu

	failCommit func() error // tests only: makes a commit fail
	onFail     func(error)
}

// head is the tail of the chain, as the head record in the meta bucket
// keeps it.
type head struct {
	seq  uint64
	hash workflow.Hash
	time int64 // Unix nanoseconds
}

func (h head) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, h.seq)
	b = append(b, h.hash[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(h.time))
}

func decodeHead(b []byte) (head, error) {
	var h head
	if b == nil {
		return h, nil
	}
	if len(b) != 8+workflow.HashSize+8 {
		return h, fmt.Errorf("%w: head record has %d bytes", ErrFormat, len(b))
	}
	h.seq = binary.BigEndian.Uint64(b)
	copy(h.hash[:], b[8:])
	h.time = int64(binary.BigEndian.Uint64(b[8+workflow.HashSize:]))
	return h, nil
}

// Open opens the store at path, creating it with mode 0600 unless
// opts.ReadOnly is set. If another process holds the file, Open fails with
// ErrLocked once opts.LockTimeout has passed.
func Open(path string, opts Options) (*Store, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 8192
	}
	if opts.ReadOnly {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open store %s: %w", path, ErrNotFound)
		}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      opts.LockTimeout,
		ReadOnly:     opts.ReadOnly,
		FreelistType: bolt.FreelistMapType,
		// The free list is written with each commit, so that opening a
		// large file does not walk all of it to rebuild the list.
		NoFreelistSync:  false,
		InitialMmapSize: 1 << 30,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: %w (another latch process is using it: stop that process first, or read through its admin API)", path, ErrLocked)
	}
	if errors.Is(err, bolterrors.ErrInvalid) || errors.Is(err, bolterrors.ErrVersionMismatch) || errors.Is(err, bolterrors.ErrChecksum) {
		return nil, fmt.Errorf("open store %s: %w: not a bbolt file, or a damaged one (%v)", path, ErrFormat, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w%s", path, err, openHint(err, opts.ReadOnly))
	}
	s := &Store{
		db:      db,
		path:    path,
		now:     opts.Now,
		projs:   opts.Projections,
		max:     opts.MaxBatch,
		queue:   make(chan *appendReq, opts.MaxBatch),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		onFail:  opts.OnFail,
	}
	if err := s.init(opts.ReadOnly); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if opts.ReadOnly {
		close(s.done)
	} else {
		go s.writer()
	}
	return s, nil
}

// init checks the format and loads the head; for writing, it also keeps the
// file private, creates the buckets of a new file, checks that the head
// record matches the end of the log and brings projections up to date.
func (s *Store) init(readOnly bool) error {
	if readOnly {
		return s.db.View(func(tx *bolt.Tx) error {
			if tx.Bucket(bucketMeta) == nil || tx.Bucket(bucketEvents) == nil {
				return fmt.Errorf("%w: not a latch store", ErrFormat)
			}
			return s.loadHead(tx)
		})
	}
	// The log holds who had access to what: keep it to its owner even if
	// the file was created or copied with looser permissions.
	if err := os.Chmod(s.path, 0o600); err != nil {
		return err
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil && tx.Bucket(bucketEvents) == nil {
			for _, name := range [][]byte{bucketEvents, bucketMeta} {
				if _, err := tx.CreateBucket(name); err != nil {
					return err
				}
			}
			return tx.Bucket(bucketMeta).Put(keyFormat, []byte{formatVersion})
		}
		if tx.Bucket(bucketMeta) == nil || tx.Bucket(bucketEvents) == nil {
			return fmt.Errorf("%w: not a latch store", ErrFormat)
		}
		if err := s.loadHead(tx); err != nil {
			return err
		}
		return checkHead(tx, s.head)
	}); err != nil {
		return err
	}
	return s.syncProjections()
}

// loadHead checks the format version and reads the head record.
func (s *Store) loadHead(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if v := meta.Get(keyFormat); len(v) != 1 || v[0] != formatVersion {
		return fmt.Errorf("%w: format %v, this latch reads %d", ErrFormat, v, formatVersion)
	}
	h, err := decodeHead(meta.Get(keyHead))
	s.head = h
	return err
}

// checkHead refuses to write after a log whose last event is not the one
// its head record names: appending there would hide the difference.
func checkHead(tx *bolt.Tx, h head) error {
	k, rec := tx.Bucket(bucketEvents).Cursor().Last()
	var last uint64
	if k != nil {
		if len(k) != keyLen || len(rec) < recCanonical {
			return fmt.Errorf("%w: the last event is malformed; run `latch audit verify`", ErrInconsistent)
		}
		last = keySeq(k)
	}
	if last != h.seq || (k != nil && !bytes.Equal(rec[recHash:recCanonical], h.hash[:])) {
		return fmt.Errorf("%w: the log ends at event %d but its head record names event %d; run `latch audit verify`", ErrInconsistent, last, h.seq)
	}
	return nil
}

// view runs fn in a read transaction unless the store is closed.
func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.db.View(fn)
}

// Path returns the file the store was opened from.
func (s *Store) Path() string { return s.path }

// Head returns the sequence number and hash of the last committed event
// (zero values for an empty log).
func (s *Store) Head() (uint64, workflow.Hash) {
	s.headMu.RLock()
	defer s.headMu.RUnlock()
	return s.head.seq, s.head.hash
}

// Close waits for queued appends to commit, stops the writer and closes the
// file. Calls after Close return ErrClosed.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.closeMu.Unlock()
	close(s.closing)
	<-s.done
	return s.db.Close()
}
