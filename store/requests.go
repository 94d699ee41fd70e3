package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/latchhq/latch/workflow"
	bolt "go.etcd.io/bbolt"
)

// Requests is the projection of the log onto requests: each request's state
// folded from its events by workflow.ApplyEvent, with indexes of the
// requests still open, of their expiry times and of the people they
// concern. Register it with Options.Projections to use the request reads.
//
// An event that does not fit its request's state is refused, and with it
// the Append that carried it, so the log only holds histories that fold.
type Requests struct{}

// RequestsProjection is the name of the Requests projection.
const RequestsProjection = "requests"

// Buckets inside the projection's bucket.
var (
	reqByID     = []byte("by-id")     // request id → JSON of workflow.Request
	reqOpen     = []byte("open")      // request id → JSON of workflow.Summary, while the request is not over
	reqByExpiry = []byte("by-expiry") // expiry (Unix ns, 8 bytes) | request id → nil, while it holds access
	reqByUser   = []byte("by-user")   // Slack id | 0 | request id → nil, for requester and beneficiary
)

// Name implements Projection.
func (Requests) Name() string { return RequestsProjection }

// Version implements Projection.
func (Requests) Version() uint32 { return 4 }

// Apply implements Projection.
func (Requests) Apply(b *bolt.Bucket, e *workflow.Event) error {
	if e.RequestID == "" {
		return nil
	}
	buckets := make([]*bolt.Bucket, 4)
	for i, name := range [][]byte{reqByID, reqOpen, reqByExpiry, reqByUser} {
		nb, err := b.CreateBucketIfNotExists(name)
		if err != nil {
			return err
		}
		buckets[i] = nb
	}
	byID, open, byExpiry, byUser := buckets[0], buckets[1], buckets[2], buckets[3]
	id := []byte(e.RequestID)

	var r workflow.Request
	if v := byID.Get(id); v != nil {
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("request %s: %w", e.RequestID, err)
		}
	}
	before := r.Clone()
	if err := workflow.ApplyEvent(&r, e); err != nil {
		return err
	}
	v, err := json.Marshal(&r)
	if err != nil {
		return err
	}
	if err := byID.Put(id, v); err != nil {
		return err
	}

	if isOpen(&r) {
		var sum []byte
		if sum, err = json.Marshal(workflow.Summarize(&r)); err != nil {
			return err
		}
		err = open.Put(id, sum)
	} else {
		err = open.Delete(id)
	}
	if err != nil {
		return err
	}
	if k := expiryKey(&before); k != nil {
		if err := byExpiry.Delete(k); err != nil {
			return err
		}
	}
	if k := expiryKey(&r); k != nil {
		if err := byExpiry.Put(k, nil); err != nil {
			return err
		}
	}
	if e.Kind == workflow.KindSubmitted {
		for _, who := range []string{r.Requester, r.Beneficiary} {
			if err := byUser.Put(userKey(who, r.ID), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// isOpen reports whether a request still needs the engine: a decision, a
// connector call, an expiry, a revoke, or the review of a break-glass grant.
func isOpen(r *workflow.Request) bool {
	if r.BreakGlass && !r.Reviewed {
		return true
	}
	switch r.State {
	case workflow.RequestRejected, workflow.RequestCancelled, workflow.RequestTimedOut, workflow.RequestEnded:
		return false
	case workflow.RequestFailed:
		return r.EndedAt.IsZero()
	}
	return true
}

// expiryKey is the by-expiry key of a request that holds access until an
// expiry, or nil.
func expiryKey(r *workflow.Request) []byte {
	if r.ExpiresAt.IsZero() || r.State != workflow.RequestActive {
		return nil
	}
	k := binary.BigEndian.AppendUint64(nil, uint64(r.ExpiresAt.UnixNano()))
	return append(k, r.ID...)
}

func userKey(user, requestID string) []byte {
	k := append([]byte(user), 0)
	return append(k, requestID...)
}

// ErrNoRequests means the store was opened without the Requests projection.
var ErrNoRequests = errors.New("the store keeps no requests projection")

// viewRequests runs fn with the projection's buckets in a read transaction;
// they are nil until the first request is appended.
func (s *Store) viewRequests(fn func(byID, open, byExpiry, byUser *bolt.Bucket) error) error {
	return s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("projection/" + RequestsProjection))
		if b == nil {
			return ErrNoRequests
		}
		return fn(b.Bucket(reqByID), b.Bucket(reqOpen), b.Bucket(reqByExpiry), b.Bucket(reqByUser))
	})
}

// decodeRequest decodes a stored request.
func decodeRequest(id, v []byte) (workflow.Request, error) {
	var r workflow.Request
	if err := json.Unmarshal(v, &r); err != nil {
		return r, fmt.Errorf("request %s: %w", id, err)
	}
	return r, nil
}

// Request returns the current state of a request.
func (s *Store) Request(id string) (workflow.Request, bool, error) {
	var r workflow.Request
	var found bool
	err := s.viewRequests(func(byID, _, _, _ *bolt.Bucket) error {
		if byID == nil {
			return nil
		}
		v := byID.Get([]byte(id))
		if v == nil {
			return nil
		}
		found = true
		var err error
		r, err = decodeRequest([]byte(id), v)
		return err
	})
	return r, found, err
}

// OpenRequests calls fn with every request that is not over: pending,
// being provisioned, active, or being revoked. The engine rebuilds its
// timers and resumes its connector calls from them at start.
func (s *Store) OpenRequests(fn func(workflow.Request) error) error {
	return s.requestsIn(func(_, open, _, _ *bolt.Bucket) (*bolt.Bucket, []byte) { return open, nil },
		func(k []byte) []byte { return k }, fn)
}

// OpenSummaries calls fn with the summary of every request that is not
// over: the engine rebuilds its deadlines from them at start without
// decoding whole requests.
func (s *Store) OpenSummaries(fn func(workflow.Summary) error) error {
	var found []workflow.Summary
	return s.walkRequests(4096,
		func(_, open, _, _ *bolt.Bucket) (*bolt.Bucket, []byte) { return open, nil },
		func(_ *bolt.Bucket, k, v []byte) (bool, error) {
			var sum workflow.Summary
			if err := json.Unmarshal(v, &sum); err != nil {
				return false, fmt.Errorf("summary of request %s: %w", k, err)
			}
			found = append(found, sum)
			return true, nil
		},
		func() error {
			defer func() { found = found[:0] }()
			for _, sum := range found {
				if err := fn(sum); err != nil {
					return err
				}
			}
			return nil
		})
}

// Expiring calls fn with the active requests that expire before t, soonest
// first.
func (s *Store) Expiring(before time.Time, fn func(workflow.Request) error) error {
	limit := binary.BigEndian.AppendUint64(nil, uint64(before.UnixNano()))
	return s.requestsIn(func(_, _, byExpiry, _ *bolt.Bucket) (*bolt.Bucket, []byte) { return byExpiry, nil },
		func(k []byte) []byte {
			if len(k) < 8 || bytes.Compare(k[:8], limit) >= 0 {
				return nil
			}
			return k[8:]
		}, fn)
}

// RequestsOf calls fn with every request that a person made or is the
// beneficiary of, oldest first.
func (s *Store) RequestsOf(user string, fn func(workflow.Request) error) error {
	prefix := append([]byte(user), 0)
	return s.requestsIn(func(_, _, _, byUser *bolt.Bucket) (*bolt.Bucket, []byte) { return byUser, prefix },
		func(k []byte) []byte {
			if !bytes.HasPrefix(k, prefix) {
				return nil
			}
			return k[len(prefix):]
		}, fn)
}

// requestsIn walks an index from a prefix, turning each key into a request
// id until idOf returns nil, and calls fn with each request outside any
// transaction.
func (s *Store) requestsIn(index func(byID, open, byExpiry, byUser *bolt.Bucket) (*bolt.Bucket, []byte),
	idOf func(k []byte) []byte, fn func(workflow.Request) error) error {
	var found []workflow.Request
	return s.walkRequests(256, index,
		func(byID *bolt.Bucket, k, _ []byte) (bool, error) {
			id := idOf(k)
			if id == nil {
				return false, nil
			}
			v := byID.Get(id)
			if v == nil {
				return false, fmt.Errorf("request index names %q, which is missing", id)
			}
			r, err := decodeRequest(id, v)
			if err != nil {
				return false, err
			}
			found = append(found, r)
			return true, nil
		},
		func() error {
			defer func() { found = found[:0] }()
			for _, r := range found {
				if err := fn(r); err != nil {
					return err
				}
			}
			return nil
		})
}

// walkRequests walks one of the projection's buckets from a prefix (or its
// start), at most chunk entries per read transaction, so that memory stays
// flat however many requests there are. visit sees each entry inside the
// transaction and returns false to stop; flush runs outside any
// transaction after each chunk.
func (s *Store) walkRequests(chunk int, pick func(byID, open, byExpiry, byUser *bolt.Bucket) (*bolt.Bucket, []byte),
	visit func(byID *bolt.Bucket, k, v []byte) (bool, error), flush func() error) error {
	var after []byte // the last key visited, nil before the first chunk
	for {
		done := true
		err := s.viewRequests(func(byID, open, byExpiry, byUser *bolt.Bucket) error {
			b, prefix := pick(byID, open, byExpiry, byUser)
			if b == nil || byID == nil {
				return nil
			}
			c := b.Cursor()
			var k, v []byte
			switch {
			case after != nil:
				if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			case prefix != nil:
				k, v = c.Seek(prefix)
			default:
				k, v = c.First()
			}
			for n := 0; k != nil; k, v = c.Next() {
				if n == chunk {
					done = false
					return nil
				}
				more, err := visit(byID, k, v)
				if err != nil || !more {
					return err
				}
				after = append(after[:0], k...)
				n++
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := flush(); err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}
