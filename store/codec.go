package store

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/latchhq/latch/workflow"
)

const (
	formatVersion = 1

	// offsets inside a record
	recPrev      = 0
	recHash      = workflow.HashSize
	recCanonical = 2 * workflow.HashSize

	// offsets inside the canonical bytes
	canSeq    = 1
	canID     = canSeq + 8
	canTime   = canID + 16
	canVar    = canTime + 8 // first length-prefixed field
	minRecord = recCanonical + canVar + 5
)

var errShortRecord = errors.New("record is truncated")

// seqKey returns the bucket key of a sequence number.
func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

// recordSize is the length of e's record (an upper bound for the varints).
func recordSize(e *workflow.Event) int {
	return recCanonical + canVar + 5*binary.MaxVarintLen64 +
		len(e.Actor) + len(e.Kind) + len(e.RequestID) + len(e.GrantID) + len(e.Payload)
}

// appendRecord appends the record of e (prev hash, hash, canonical bytes) to
// dst, computing e.Hash from e.PrevHash and the canonical bytes.
func appendRecord(dst []byte, e *workflow.Event) []byte {
	start := len(dst)
	dst = append(dst, e.PrevHash[:]...)
	dst = append(dst, make([]byte, workflow.HashSize)...)
	dst = append(dst, formatVersion)
	dst = binary.BigEndian.AppendUint64(dst, e.Seq)
	dst = append(dst, e.ID[:]...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.Time.UnixNano()))
	for _, s := range [...]string{e.Actor, e.Kind, e.RequestID, e.GrantID} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(e.Payload)))
	dst = append(dst, e.Payload...)
	rec := dst[start:]
	e.Hash = chainHash(rec[recPrev:recHash], rec[recCanonical:])
	copy(rec[recHash:recCanonical], e.Hash[:])
	return dst
}

// chainHash is SHA-256 over the previous hash and the canonical bytes.
func chainHash(prev, canonical []byte) workflow.Hash {
	h := sha256.New()
	h.Write(prev)
	h.Write(canonical)
	var out workflow.Hash
	h.Sum(out[:0])
	return out
}

// recordSeq returns the sequence number written inside a record.
func recordSeq(rec []byte) uint64 {
	return binary.BigEndian.Uint64(rec[recCanonical+canSeq:])
}

// unixNano converts Unix nanoseconds to a UTC time.
func unixNano(n int64) time.Time { return time.Unix(0, n).UTC() }

// recordTime returns the commit time written inside a record.
func recordTime(rec []byte) time.Time {
	return unixNano(int64(binary.BigEndian.Uint64(rec[recCanonical+canTime:])))
}

// recordKind returns the kind written inside a record without decoding the
// rest ("" if the record is malformed).
func recordKind(rec []byte) string {
	if len(rec) < minRecord {
		return ""
	}
	c := rec[recCanonical+canVar:]
	n, w := binary.Uvarint(c) // actor
	if w <= 0 || uint64(len(c)-w) < n {
		return ""
	}
	c = c[w+int(n):]
	n, w = binary.Uvarint(c)
	if w <= 0 || uint64(len(c)-w) < n {
		return ""
	}
	return string(c[w : w+int(n)])
}

// decodeRecord decodes a record into e. Strings and the payload are copied,
// so e stays valid after the transaction that produced rec ends.
func decodeRecord(rec []byte, e *workflow.Event) error {
	if len(rec) < minRecord {
		return errShortRecord
	}
	if v := rec[recCanonical]; v != formatVersion {
		return fmt.Errorf("%w: record version %d", ErrFormat, v)
	}
	copy(e.PrevHash[:], rec[recPrev:recHash])
	copy(e.Hash[:], rec[recHash:recCanonical])
	c := rec[recCanonical:]
	e.Seq = binary.BigEndian.Uint64(c[canSeq:])
	e.ID = uuid.UUID(c[canID:canTime])
	e.Time = unixNano(int64(binary.BigEndian.Uint64(c[canTime:])))
	c = c[canVar:]
	var fields [5][]byte
	for i := range fields {
		n, w := binary.Uvarint(c)
		if w <= 0 || uint64(len(c)-w) < n {
			return errShortRecord
		}
		fields[i] = c[w : w+int(n)]
		c = c[w+int(n):]
	}
	if len(c) != 0 {
		return fmt.Errorf("%d unexpected bytes after the payload", len(c))
	}
	e.Actor = string(fields[0])
	e.Kind = string(fields[1])
	e.RequestID = string(fields[2])
	e.GrantID = string(fields[3])
	e.Payload = append([]byte(nil), fields[4]...)
	return nil
}
