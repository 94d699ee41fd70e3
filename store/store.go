package store

import (
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
	bucketKinds  = []byte("kinds")
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
	closeMu sync.RWMutex // held for reading while enqueueing, for writing by Close
	closed  bool

	headMu sync.RWMutex
	head   head // last committed event; owned by the writer, read by Head
}

// head is the tail of the chain.
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
		Timeout:         opts.LockTimeout,
		ReadOnly:        opts.ReadOnly,
		FreelistType:    bolt.FreelistMapType,
		NoFreelistSync:  true,
		InitialMmapSize: 1 << 30,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: %w (another latch process is using it: stop that process first, or read through its admin API)", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if !opts.ReadOnly {
		// The log holds who had access to what: keep it to its owner even
		// if the file was created or copied with looser permissions.
		if err := os.Chmod(path, 0o600); err != nil {
			db.Close()
			return nil, fmt.Errorf("open store %s: %w", path, err)
		}
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

// init checks the format, creates the buckets of a new file, brings
// projections up to date and loads the head.
func (s *Store) init(readOnly bool) error {
	check := func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			if readOnly {
				return fmt.Errorf("%w: not a latch store (no meta bucket)", ErrFormat)
			}
			return nil
		}
		if v := meta.Get(keyFormat); len(v) != 1 || v[0] != formatVersion {
			return fmt.Errorf("%w: format %v, this latch reads %d", ErrFormat, v, formatVersion)
		}
		h, err := decodeHead(meta.Get(keyHead))
		s.head = h
		return err
	}
	if readOnly {
		return s.db.View(check)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if err := check(tx); err != nil {
			return err
		}
		for _, name := range [][]byte{bucketEvents, bucketKinds, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keyFormat, []byte{formatVersion})
	}); err != nil {
		return err
	}
	return s.syncProjections()
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
