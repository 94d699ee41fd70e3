package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// checkpointMagic opens the signed bytes of a checkpoint.
const checkpointMagic = "latch-checkpoint v1"

// Checkpoint vouches that the audit log held Events events, the last of
// which hashed to Head, at Time. Its JSON form is what AppendCheckpoint
// writes and ReadCheckpoint reads.
type Checkpoint struct {
	Events    uint64    `json:"events"`
	Head      string    `json:"head"` // hex of the hash of event number Events; zeros for an empty log
	Time      time.Time `json:"time"`
	Key       string    `json:"key"`       // KeyID of the signing key
	Signature string    `json:"signature"` // base64 (standard, padded) ed25519 signature of SignedBytes
}

var (
	// ErrBadSignature means a checkpoint's signature does not verify
	// under the key it was checked with, or was made by another key.
	ErrBadSignature = errors.New("checkpoint signature does not verify")

	// ErrTruncated means the log holds fewer events than a checkpoint
	// vouches for: events were removed from its end.
	ErrTruncated = errors.New("audit log is shorter than the checkpoint")

	// ErrRewritten means the log's event at a checkpoint's position does
	// not hash as the checkpoint says: the log was rewritten, even if its
	// chain was recomputed to hold together.
	ErrRewritten = errors.New("audit log differs from the checkpoint")
)

// CheckError is the error of Check for a log that does not match a
// checkpoint. It wraps ErrTruncated or ErrRewritten.
type CheckError struct {
	Err  error  // ErrTruncated or ErrRewritten
	Seq  uint64 // the checkpoint's event count: the event that is missing or differs
	Have uint64 // events in the log (ErrTruncated)
	Hash string // hex hash of event Seq in the log (ErrRewritten)
	Want string // hex hash the checkpoint says it has (ErrRewritten)
}

func (e *CheckError) Error() string {
	if errors.Is(e.Err, ErrTruncated) {
		return fmt.Sprintf("%v: it has %d events, the checkpoint vouches for %d (event %d is missing)", e.Err, e.Have, e.Seq, e.Have+1)
	}
	return fmt.Sprintf("%v: event %d hashes to %s, the checkpoint says %s", e.Err, e.Seq, e.Hash, e.Want)
}

func (e *CheckError) Unwrap() error { return e.Err }

// KeyID returns the id of a public key: the hex of the first 8 bytes of
// the SHA-256 of its 32 raw bytes.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// SignedBytes returns the bytes a checkpoint's signature covers:
//
//	latch-checkpoint v1\n<events>\n<head>\n<time>\n
//
// with events in decimal, head as stored in Head and time as RFC 3339 with
// nanoseconds in UTC.
func (c Checkpoint) SignedBytes() []byte {
	b := make([]byte, 0, len(checkpointMagic)+100)
	b = append(b, checkpointMagic...)
	b = append(b, '\n')
	b = strconv.AppendUint(b, c.Events, 10)
	b = append(b, '\n')
	b = append(b, c.Head...)
	b = append(b, '\n')
	b = c.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '\n')
}

// Sign returns the checkpoint of a log of events events whose last event
// hashed to head, at t, signed with priv.
func Sign(priv ed25519.PrivateKey, events uint64, head workflow.Hash, t time.Time) Checkpoint {
	c := Checkpoint{
		Events: events,
		Head:   hex.EncodeToString(head[:]),
		Time:   t.UTC().Round(0),
		Key:    KeyID(priv.Public().(ed25519.PublicKey)),
	}
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(priv, c.SignedBytes()))
	return c
}

// Verify checks that c was signed by the key pub, and is well formed. An
// error wraps ErrBadSignature.
func (c Checkpoint) Verify(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: not an ed25519 public key", ErrBadSignature)
	}
	if id := KeyID(pub); c.Key != id {
		return fmt.Errorf("%w: the checkpoint was signed by key %s, not by key %s", ErrBadSignature, c.Key, id)
	}
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: malformed signature", ErrBadSignature)
	}
	if !ed25519.Verify(pub, c.SignedBytes(), sig) {
		return ErrBadSignature
	}
	if _, err := c.head(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return nil
}

// head decodes Head.
func (c Checkpoint) head() (workflow.Hash, error) {
	var h workflow.Hash
	b, err := hex.DecodeString(c.Head)
	if err != nil || len(b) != len(h) || hex.EncodeToString(b) != c.Head {
		return h, fmt.Errorf("head %q is not %d lowercase hex digits", c.Head, 2*len(h))
	}
	copy(h[:], b)
	return h, nil
}

// Check verifies cp with pub and then compares the log of s with it: the
// log must hold at least cp.Events events, event number cp.Events must
// hash to cp.Head, and the whole chain must verify. It returns an error
// wrapping ErrBadSignature, a *CheckError (ErrTruncated, ErrRewritten), a
// *store.ChainError, or the store's error.
func Check(ctx context.Context, s *store.Store, cp Checkpoint, pub ed25519.PublicKey) error {
	if err := cp.Verify(pub); err != nil {
		return err
	}
	want, _ := cp.head()
	if cp.Events == 0 {
		if want != (workflow.Hash{}) {
			return &CheckError{Err: ErrRewritten, Hash: hex.EncodeToString(make([]byte, workflow.HashSize)), Want: cp.Head}
		}
	} else {
		e, found, err := s.Get(cp.Events)
		if err != nil {
			return fmt.Errorf("check checkpoint: %w", err)
		}
		if !found {
			have, _ := s.Head()
			if have < cp.Events {
				return &CheckError{Err: ErrTruncated, Seq: cp.Events, Have: have}
			}
			// The head record says the event should be there: the chain
			// check below names what is wrong.
		} else if e.Hash != want {
			return &CheckError{Err: ErrRewritten, Seq: cp.Events, Hash: hex.EncodeToString(e.Hash[:]), Want: cp.Head}
		}
	}
	r, err := s.Verify(ctx)
	if err != nil {
		return fmt.Errorf("check checkpoint: %w", err)
	}
	if r.Count < cp.Events {
		return &CheckError{Err: ErrTruncated, Seq: cp.Events, Have: r.Count}
	}
	return nil
}
