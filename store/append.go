package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"unicode/utf8"

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

// errAbort aborts a group transaction in which one append failed.
var errAbort = errors.New("abort batch")

// Append commits events to the log, in order and without gaps, and returns
// them with Seq, ID, Time, PrevHash and Hash filled in. It returns only when
// the events are durable on disk. On an error none of them were written,
// except with ErrFailed, which means the outcome is unknown. ctx bounds
// only the wait for a place in the queue: once the writer holds the events,
// Append waits for the outcome.
func (s *Store) Append(ctx context.Context, events ...workflow.Event) ([]workflow.Event, error) {
	if len(events) == 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
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
	if err := s.enqueue(ctx, req); err != nil {
		return nil, err
	}
	<-req.done
	if req.err != nil {
		return nil, req.err
	}
	return req.events, nil
}

// enqueue hands req to the writer.
func (s *Store) enqueue(ctx context.Context, req *appendReq) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if err := s.writeErr(); err != nil {
		return err
	}
	select {
	case s.queue <- req:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkEvent reports what is wrong with an event a caller wants to append.
func checkEvent(e *workflow.Event) error {
	if e.Kind == "" || len(e.Kind) > MaxKindLen {
		return fmt.Errorf("%w: kind must be 1 to %d characters", ErrInvalidEvent, MaxKindLen)
	}
	for i, c := range []byte(e.Kind) {
		if !(c >= 'a' && c <= 'z' || i > 0 && (c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-')) {
			return fmt.Errorf("%w: kind must start with a-z and hold only a-z, 0-9, '.', '_' and '-'", ErrInvalidEvent)
		}
	}
	for _, f := range [...]struct{ name, v string }{{"actor", e.Actor}, {"request id", e.RequestID}, {"grant id", e.GrantID}} {
		if len(f.v) > MaxIDLen {
			return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalidEvent, f.name, MaxIDLen)
		}
		if !utf8.ValidString(f.v) {
			return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidEvent, f.name)
		}
	}
	if len(e.Payload) > MaxPayloadLen {
		return fmt.Errorf("%w: payload larger than %d bytes", ErrInvalidEvent, MaxPayloadLen)
	}
	if len(e.Payload) > 0 {
		p := bytes.TrimSpace(e.Payload)
		if len(p) == 0 || p[0] != '{' || !json.Valid(p) || !utf8.Valid(p) {
			return fmt.Errorf("%w: payload must be a JSON object in UTF-8", ErrInvalidEvent)
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
// If one append fails (a projection refuses it), the transaction is
// abandoned, that append is answered with its error, and the appends before
// and after it are committed without it, in order.
func (s *Store) commit(batch []*appendReq) {
	if len(batch) == 0 {
		return
	}
	s.headMu.RLock()
	failed := s.failed
	s.headMu.RUnlock()
	if failed != nil {
		answer(batch, failed)
		return
	}
	bad, badErr, next, err := s.tryCommit(batch)
	switch {
	case bad >= 0:
		answer(batch[bad:bad+1], badErr)
		s.commit(batch[:bad])
		s.commit(batch[bad+1:])
	case err != nil:
		// bbolt may have made part of a failed commit visible (its meta
		// page is written before the final sync), so nothing more may be
		// appended on top of what this process believes is the head.
		answer(batch, s.fail(failure("commit events", err)))
	default:
		s.headMu.Lock()
		s.head = next
		if s.changed != nil {
			close(s.changed)
			s.changed = nil
		}
		s.headMu.Unlock()
		answer(batch, nil)
	}
}

// fail puts the store in its failed state, in which it refuses writes,
// and tells Options.OnFail once. It returns the failure to report.
func (s *Store) fail(err error) error {
	s.headMu.Lock()
	first := s.failed == nil
	if first {
		s.failed = err
	} else {
		err = s.failed
	}
	s.headMu.Unlock()
	if first && s.onFail != nil {
		s.onFail(err)
	}
	return err
}

// Err returns nil while the store takes writes, and otherwise the failure
// that stopped it (an ErrFailed saying what happened and what to do), or
// ErrClosed, or ErrReadOnly.
func (s *Store) Err() error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	return s.writeErr()
}

// writeErr is Err for a caller that holds closeMu.
func (s *Store) writeErr() error {
	switch {
	case s.closed:
		return ErrClosed
	case s.db.IsReadOnly():
		return ErrReadOnly
	}
	s.headMu.RLock()
	defer s.headMu.RUnlock()
	return s.failed
}

// answer completes requests with err (nil for success).
func answer(batch []*appendReq, err error) {
	for _, r := range batch {
		r.err = err
		close(r.done)
	}
}

// tryCommit writes batch after the current head in one transaction. It
// returns the index of an append that failed (or -1) with that append's
// error, the new head, and the transaction's own error.
func (s *Store) tryCommit(batch []*appendReq) (bad int, badErr error, next head, err error) {
	bad = -1
	err = s.db.Update(func(tx *bolt.Tx) error {
		events, meta := tx.Bucket(bucketEvents), tx.Bucket(bucketMeta)
		// Keys only ever grow, so pages can be filled completely.
		events.FillPercent = 1.0
		projs := make([]*bolt.Bucket, len(s.projs))
		for i, p := range s.projs {
			projs[i] = tx.Bucket(projectionBucket(p))
		}
		h := s.head
		for i, r := range batch {
			if badErr = s.write(events, projs, &h, r.events); badErr != nil {
				bad = i
				return errAbort
			}
		}
		next = h
		if err := meta.Put(keyHead, h.encode()); err != nil {
			return err
		}
		for _, p := range s.projs {
			if err := meta.Put(projectionMarkKey(p), projectionMark(p, h.seq)); err != nil {
				return err
			}
		}
		if s.failCommit != nil {
			return s.failCommit()
		}
		return nil
	})
	if bad >= 0 {
		err = nil
	}
	return bad, badErr, next, err
}

// write appends events after h, advancing h, and applies the projections.
func (s *Store) write(bucket *bolt.Bucket, projs []*bolt.Bucket, h *head, events []workflow.Event) error {
	for i := range events {
		e := &events[i]
		now := s.now().UnixNano()
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
		if err := bucket.Put(seqKey(e.Seq), rec); err != nil {
			return err
		}
		for j, p := range s.projs {
			if err := apply(p, projs[j], e); err != nil {
				return err
			}
		}
		*h = head{seq: e.Seq, hash: e.Hash, time: now}
	}
	return nil
}

// apply folds e into a projection, turning a panic into an error so that a
// bug in one projection fails one append, not the process.
func apply(p Projection, b *bolt.Bucket, e *workflow.Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("projection %s panicked on event %d (%s): %v", p.Name(), e.Seq, e.Kind, r)
		}
	}()
	if err := p.Apply(b, e); err != nil {
		return fmt.Errorf("projection %s: %w", p.Name(), err)
	}
	return nil
}
