package store

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/latchhq/latch/workflow"
)

var (
	// ErrLocked means another process holds the store file. Stop that
	// process (usually `latch serve`) or go through its admin API.
	ErrLocked = errors.New("store is locked by another process")

	// ErrClosed is returned by calls on a Store after Close.
	ErrClosed = errors.New("store is closed")

	// ErrReadOnly is returned by writes on a Store opened read-only.
	ErrReadOnly = errors.New("store is open read-only")

	// ErrNotFound means the store file does not exist (read-only open).
	ErrNotFound = errors.New("store file does not exist")

	// ErrInvalidEvent means an event given to Append is malformed; nothing
	// of that Append was written.
	ErrInvalidEvent = errors.New("invalid event")

	// ErrInconsistent means the file does not hold together (its head
	// record disagrees with the end of the log); latch will not append to
	// it. `latch audit verify` says where it breaks.
	ErrInconsistent = errors.New("store is inconsistent")

	// ErrFailed means a commit failed in a way that leaves its outcome
	// unknown (its events may or may not be on disk). The store refuses
	// further writes; reopen it to continue from what is on disk. It
	// matches workflow.ErrUnrecorded.
	ErrFailed = fmt.Errorf("store failed (%w)", workflow.ErrUnrecorded)

	// ErrFormat means the file is not a latch store this version can read.
	ErrFormat = errors.New("unsupported store format")
)

// ChainError reports the first event at which the hash chain does not hold.
type ChainError struct {
	Seq    uint64 // sequence number of the first event that does not match
	Reason string // what does not match
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit chain broken at event %d: %s", e.Seq, e.Reason)
}

// failure describes a commit error for the person who must fix it: what
// went wrong with the disk, if the system said, and what to do.
func failure(op string, err error) error {
	// bbolt wraps some errors as text (a failed resize), so the system's
	// message is looked for too.
	is := func(errno syscall.Errno) bool {
		return errors.Is(err, errno) || strings.Contains(err.Error(), errno.Error())
	}
	fix := "restart latch to continue from what is on disk"
	switch {
	case is(syscall.ENOSPC), is(syscall.EDQUOT):
		fix = "the disk holding the store is full: free space on it, then restart latch"
	case is(syscall.EFBIG):
		fix = "the store file reached the size limit set for latch (ulimit -f): raise it or free space, then restart latch"
	case is(syscall.EROFS):
		fix = "the file system holding the store is read-only: make it writable, then restart latch"
	case is(syscall.EIO):
		fix = "the disk reported an I/O error: check it, then restart latch (latch audit verify checks the log)"
	}
	return fmt.Errorf("%w: %s: %w; %s", ErrFailed, op, err, fix)
}

// openHint says what to do about a file latch could not open for writing.
func openHint(err error, readOnly bool) string {
	if readOnly {
		return ""
	}
	switch {
	case errors.Is(err, syscall.EROFS):
		return " (the file system is read-only: latch writes its audit log here, so put the store on a writable volume)"
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return " (latch writes its audit log here: make the file and its directory writable by the user latch runs as, or point store.path elsewhere)"
	case errors.Is(err, syscall.ENOENT):
		return " (the directory does not exist: create it, writable by the user latch runs as, or point store.path elsewhere)"
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return " (the disk is full: free space on it)"
	}
	return ""
}
