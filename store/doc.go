// Package store keeps latch's state in one bbolt file: the append-only,
// hash-chained event log and the projections derived from it.
//
// # The log
//
// Events live in the "events" bucket, keyed by their sequence number as an
// 8-byte big-endian integer, so the bucket's order is the log's order. Each
// value is a record:
//
//	prev_hash [32]byte | hash [32]byte | canonical bytes
//
// The canonical bytes of an event are, in order:
//
//	version    1 byte (currently 1)
//	seq        uint64, big-endian
//	id         16 bytes (UUIDv7)
//	time       int64 Unix nanoseconds, big-endian
//	actor      uvarint length, bytes
//	kind       uvarint length, bytes
//	request_id uvarint length, bytes
//	grant_id   uvarint length, bytes
//	payload    uvarint length, bytes (compact JSON object)
//
// and hash = SHA-256(prev_hash || canonical bytes), with an all-zero
// prev_hash for the first event. Because the sequence number is inside the
// hashed bytes, a changed, removed, reordered or re-hashed event breaks the
// chain at a position that Verify names. A log cut short at its tail still
// verifies; compare the count and head hash that Verify reports with a
// published checkpoint to detect that.
//
// # Writing
//
// Append returns once the events are on disk (bbolt fsyncs every commit).
// All appends go through one writer goroutine that drains the queue into a
// single transaction, so concurrent appenders share one fsync (group
// commit). The head record in the "meta" bucket names the last event and is
// written in the same transaction.
//
// # Projections
//
// Projections registered at Open are updated in the transaction of the
// events they derive from, so after a crash they agree with the log. Each
// records the last event it applied and the version of its code; at Open a
// projection that missed events catches up, and one built by another
// version is rebuilt from the log.
//
// # Failures
//
// If a commit fails (a full disk, a read-only file system), bbolt may
// still have made part of it visible, so the store stops taking writes
// (ErrFailed, which matches workflow.ErrUnrecorded and says what to do)
// until it is reopened, and then continues from what is on disk; reads go
// on working. Options.OnFail is told once; Err reports the state. A file
// whose head record disagrees with the end of its log is not written to
// (ErrInconsistent).
//
// # Concurrency
//
// A Store is safe for concurrent use. Only one process may open a file for
// writing; a second Open fails after Options.LockTimeout with ErrLocked.
package store
