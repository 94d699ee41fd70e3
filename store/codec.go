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

// keyLen is the length of an events bucket key.
const keyLen = 8

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

// keySeq reads a bucket key as a sequence number.
func keySeq(k []byte) uint64 { return binary.BigEndian.Uint64(k) }

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

// fieldNames name the length-prefixed fields of the canonical bytes.
var fieldNames = [5]string{"actor", "kind", "request id", "grant id", "payload"}

// splitCanonical checks that c is canonical bytes as latch writes them
// (known version, minimal varints, nothing after the payload) and returns
// its length-prefixed fields, which alias c.
func splitCanonical(c []byte) ([5][]byte, error) {
	var fields [5][]byte
	if len(c) < canVar+len(fields) {
		return fields, errShortRecord
	}
	if v := c[0]; v != formatVersion {
		return fields, fmt.Errorf("%w: record version %d", ErrFormat, v)
	}
	c = c[canVar:]
	for i := range fields {
		n, w := binary.Uvarint(c)
		if w <= 0 || uint64(len(c)-w) < n {
			return fields, errShortRecord
		}
		if w != uvarintLen(n) {
			return fields, fmt.Errorf("the length of the %s is not minimally encoded", fieldNames[i])
		}
		fields[i] = c[w : w+int(n)]
		c = c[w+int(n):]
	}
	if len(c) != 0 {
		return fields, fmt.Errorf("%d unexpected bytes after the payload", len(c))
	}
	return fields, nil
}

// uvarintLen is the length of the minimal uvarint encoding of n.
func uvarintLen(n uint64) int {
	w := 1
	for ; n >= 0x80; n >>= 7 {
		w++
	}
	return w
}

// decodeRecord decodes a record into e. Strings and the payload are copied,
// so e stays valid after the transaction that produced rec ends.
func decodeRecord(rec []byte, e *workflow.Event) error {
	if len(rec) < recCanonical {
		return errShortRecord
	}
	c := rec[recCanonical:]
	fields, err := splitCanonical(c)
	if err != nil {
		return err
	}
	copy(e.PrevHash[:], rec[recPrev:recHash])
	copy(e.Hash[:], rec[recHash:recCanonical])
	e.Seq = binary.BigEndian.Uint64(c[canSeq:])
	e.ID = uuid.UUID(c[canID:canTime])
	e.Time = unixNano(int64(binary.BigEndian.Uint64(c[canTime:])))
	e.Actor = string(fields[0])
	e.Kind = string(fields[1])
	e.RequestID = string(fields[2])
	e.GrantID = string(fields[3])
	e.Payload = append([]byte(nil), fields[4]...)
	return nil
}
