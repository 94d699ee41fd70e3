package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"

	"github.com/google/uuid"
	"github.com/latchhq/latch/workflow"
	bolt "go.etcd.io/bbolt"
)

// Limits on the fields of an event.
const (
	MaxKindLen    = 128
	MaxIDLen      = 256 // actor, request id, grant id
	MaxPayloadLen = 1 << 20
)

// appendReq is one Append call waiting for the writer.
type appendReq struct {
	events []workflow.Event
	err    error
	done   chan struct{}
}

// errRetryBatch aborts a group transaction so that it can be retried
// without the append that failed.
var errRetryBatch = errors.New("retry batch")

// Append commits events to the log, in order and without gaps, and returns
// them with Seq, ID, Time, PrevHash and Hash filled in. It returns only when
// the events are durable on disk, or with an error, in which case none of
// them were written. ctx bounds only the wait for a place in the queue: once
// the writer holds the events, Append waits for the outcome.
func (s *Store) Append(ctx context.Context, events ...workflow.Event) ([]workflow.Event, error) {
	if len(events) == 0 {
		return nil, nil
	}
	req := &appendReq{events: make([]workflow.Event, len(events)), done: make(chan struct{})}
	for i := range events {
		if err := checkEvent(&events[i]); err != nil {
			return nil, fmt.Errorf("append event %d (%q): %w", i, events[i].Kind, err)
		}
		req.events[i] = workflow.Event{
			Actor:     events[i].Actor,
			Kind:      events[i].Kind,
			RequestID: events[i].RequestID,
			GrantID:   events[i].GrantID,
			Payload:   compactPayload(events[i].Payload),
		}
	}
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return nil, ErrClosed
	}
	if s.db.IsReadOnly() {
		s.closeMu.RUnlock()
		return nil, ErrReadOnly
	}
	select {
	case s.queue <- req:
		s.closeMu.RUnlock()
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return nil, ctx.Err()
	}
	<-req.done
	if req.err != nil {
		return nil, req.err
	}
	return req.events, nil
}

// checkEvent reports what is wrong with an event a caller wants to append.
func checkEvent(e *workflow.Event) error {
	if e.Kind == "" || len(e.Kind) > MaxKindLen {
		return fmt.Errorf("%w: kind must be 1 to %d characters", ErrInvalidEvent, MaxKindLen)
	}
	for _, c := range []byte(e.Kind) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: kind may hold only a-z, 0-9, '.', '_' and '-'", ErrInvalidEvent)
		}
	}
	for _, f := range [...]struct{ name, v string }{{"actor", e.Actor}, {"request id", e.RequestID}, {"grant id", e.GrantID}} {
		if len(f.v) > MaxIDLen {
			return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalidEvent, f.name, MaxIDLen)
		}
	}
	if len(e.Payload) > MaxPayloadLen {
		return fmt.Errorf("%w: payload larger than %d bytes", ErrInvalidEvent, MaxPayloadLen)
	}
	if len(e.Payload) > 0 {
		p := bytes.TrimSpace(e.Payload)
		if len(p) == 0 || p[0] != '{' || !json.Valid(p) {
			return fmt.Errorf("%w: payload must be a JSON object", ErrInvalidEvent)
		}
	}
	return nil
}

// compactPayload returns the payload in the compact form that is hashed
// and stored; an empty payload becomes {}.
func compactPayload(p json.RawMessage) json.RawMessage {
	if len(p) == 0 {
		return json.RawMessage("{}")
	}
	var b bytes.Buffer
	b.Grow(len(p))
	if err := json.Compact(&b, p); err != nil {
		// checkEvent has validated p; keep it as it is.
		return append(json.RawMessage(nil), p...)
	}
	return b.Bytes()
}

// writer is the single goroutine that commits appends. It takes what is
// queued, up to MaxBatch events, into one transaction.
func (s *Store) writer() {
	defer close(s.done)
	var batch []*appendReq
	last := 0 // requests in the previous commit
	for {
		select {
		case req := <-s.queue:
			batch = s.fill(append(batch[:0], req))
			// The appenders released by the previous commit may still be
			// on their way back; give them the CPU briefly rather than
			// commit a fraction of them alone.
			for n := 0; len(batch) < last && n < 8; n++ {
				runtime.Gosched()
				batch = s.fill(batch)
			}
			last = len(batch)
			s.commit(batch)
		case <-s.closing:
			for {
				batch = s.fill(batch[:0])
				if len(batch) == 0 {
					return
				}
				s.commit(batch)
			}
		}
	}
}

// fill adds queued requests to batch without waiting, until the batch holds
// MaxBatch events or the queue is empty.
func (s *Store) fill(batch []*appendReq) []*appendReq {
	n := 0
	for _, r := range batch {
		n += len(r.events)
	}
	for n < s.max {
		select {
		case r := <-s.queue:
			batch = append(batch, r)
			n += len(r.events)
		default:
			return batch
		}
	}
	return batch
}

// commit writes a batch in one transaction and answers every request in it.
// An append whose projection fails is answered with that error and the
// others are retried without it.
func (s *Store) commit(batch []*appendReq) {
	for len(batch) > 0 {
		var (
			failed  = -1
			failErr error
			next    head
		)
		err := s.db.Update(func(tx *bolt.Tx) error {
			w := s.newLogWriter(tx)
			h := s.head
			for i, r := range batch {
				if failErr = w.write(&h, r.events); failErr != nil {
					failed = i
					return errRetryBatch
				}
			}
			next = h
			return nil
		})
		switch {
		case err == nil:
			s.headMu.Lock()
			s.head = next
			s.headMu.Unlock()
			for _, r := range batch {
				close(r.done)
			}
			return
		case failed >= 0:
			batch[failed].err = failErr
			close(batch[failed].done)
			batch = append(batch[:failed], batch[failed+1:]...)
		default:
			for _, r := range batch {
				r.err = fmt.Errorf("commit events: %w", err)
				close(r.done)
			}
			return
		}
	}
}

// logWriter appends records inside one write transaction.
type logWriter struct {
	s      *Store
	events *bolt.Bucket
	kinds  *bolt.Bucket
	meta   *bolt.Bucket
	projs  []*bolt.Bucket
}

func (s *Store) newLogWriter(tx *bolt.Tx) *logWriter {
	w := &logWriter{
		s:      s,
		events: tx.Bucket(bucketEvents),
		kinds:  tx.Bucket(bucketKinds),
		meta:   tx.Bucket(bucketMeta),
	}
	// Keys only ever grow, so pages can be filled completely.
	w.events.FillPercent = 1.0
	for _, p := range s.projs {
		w.projs = append(w.projs, tx.Bucket(projectionBucket(p)))
	}
	return w
}

// write appends events after h, advancing h, and applies the projections.
func (w *logWriter) write(h *head, events []workflow.Event) error {
	for i := range events {
		e := &events[i]
		now := w.s.now().UnixNano()
		if now < h.time {
			now = h.time // event times never go backwards
		}
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("new event id: %w", err)
		}
		e.Seq = h.seq + 1
		e.ID = id
		e.Time = unixNano(now)
		e.PrevHash = h.hash
		// bbolt keeps the slices given to Put until the commit, so each
		// record gets its own.
		rec := appendRecord(make([]byte, 0, recordSize(e)), e)
		if err := w.events.Put(seqKey(e.Seq), rec); err != nil {
			return err
		}
		if err := w.kinds.Put(kindKey(e.Kind, e.Seq), nil); err != nil {
			return err
		}
		for j, p := range w.s.projs {
			if err := p.Apply(w.projs[j], e); err != nil {
				return fmt.Errorf("projection %s: %w", p.Name(), err)
			}
		}
		*h = head{seq: e.Seq, hash: e.Hash, time: now}
	}
	return w.meta.Put(keyHead, h.encode())
}

// kindKey is the key of the kind index: kind, a zero byte, the sequence.
func kindKey(kind string, seq uint64) []byte {
	k := make([]byte, 0, len(kind)+9)
	k = append(k, kind...)
	k = append(k, 0)
	return append(k, seqKey(seq)...)
}
