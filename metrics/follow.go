package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// maxTracked bounds the requests whose times Follow keeps in memory; past
// it, the times of further requests are read from the store when needed.
const maxTracked = 65536

// Follow updates the request metrics from the audit log until ctx ends or
// the store closes, when it returns nil; it returns an error if the log
// cannot be read. It counts the events appended from the head at the time
// of the call onwards (counters start at zero with the process, as
// Prometheus expects), and sets latch_active_grants from the store's open
// requests first, then keeps it up to date. The store must keep the
// requests projection (store.Requests). Run one Follow per Metrics.
func (m *Metrics) Follow(ctx context.Context, s *store.Store) error {
	return m.follow(ctx, s, nil)
}

// follow is Follow; applied, if set, is called with the head after each
// batch of events is counted.
func (m *Metrics) follow(ctx context.Context, s *store.Store, applied func(seq uint64)) error {
	seq, _ := s.Head()
	f := &follower{m: m, lookup: s.Request, tracked: make(map[string]*tracked), active: make(map[string]struct{})}
	// Open requests are read after the head: events between the two are
	// counted again below, which the active set absorbs.
	if err := s.OpenSummaries(func(sum workflow.Summary) error {
		if sum.State == workflow.RequestActive {
			f.active[sum.ID] = struct{}{}
		}
		return nil
	}); err != nil {
		if errors.Is(err, store.ErrClosed) {
			return nil
		}
		return fmt.Errorf("metrics: read open requests: %w", err)
	}
	m.active.Set(float64(len(f.active)))
	m.storeEvents.Set(float64(seq))
	if applied != nil {
		applied(seq)
	}
	for {
		head, err := s.WaitAfter(ctx, seq)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
				return nil
			}
			return fmt.Errorf("metrics: wait for events: %w", err)
		}
		err = s.Scan(ctx, store.Filter{From: seq + 1, To: head}, func(e *workflow.Event) error {
			f.observe(e)
			seq = e.Seq
			return nil
		})
		m.storeEvents.Set(float64(seq))
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
				return nil
			}
			return fmt.Errorf("metrics: read events after %d: %w", seq, err)
		}
		seq = max(seq, head)
		m.storeEvents.Set(float64(seq))
		if applied != nil {
			applied(seq)
		}
	}
}

// tracked is what Follow remembers of a request it saw submitted.
type tracked struct {
	submitted time.Time
	decided   time.Time
	expires   time.Time
	outcome   string
}

// follower turns events into metrics.
type follower struct {
	m       *Metrics
	lookup  func(id string) (workflow.Request, bool, error)
	tracked map[string]*tracked // by request id, at most maxTracked
	active  map[string]struct{} // requests whose access is active
}

// request returns what is known of a request: from memory if Follow saw
// its submission, else from the store, whose values for the fields kept
// here no longer change once the event that sets them is in the log.
func (f *follower) request(id string) (*tracked, bool) {
	if t, ok := f.tracked[id]; ok {
		return t, true
	}
	r, ok, err := f.lookup(id)
	if err != nil || !ok {
		return nil, false
	}
	return &tracked{submitted: r.SubmittedAt, decided: r.DecidedAt, expires: r.ExpiresAt, outcome: r.Outcome}, true
}

// observe counts one event.
func (f *follower) observe(e *workflow.Event) {
	m := f.m
	switch e.Kind {
	case workflow.KindSubmitted:
		m.submitted.Inc()
		var p struct {
			BreakGlass bool `json:"breakglass"`
		}
		if json.Unmarshal(e.Payload, &p) == nil && p.BreakGlass {
			m.requests.WithLabelValues(OutcomeBreakGlass).Inc()
		}
		if len(f.tracked) < maxTracked {
			f.tracked[e.RequestID] = &tracked{submitted: e.Time}
		}
	case workflow.KindApproved:
		m.requests.WithLabelValues(OutcomeApproved).Inc()
		var p workflow.Approved
		_ = json.Unmarshal(e.Payload, &p)
		f.decided(e, OutcomeApproved, p.Condition != "")
	case workflow.KindDenied:
		m.requests.WithLabelValues(OutcomeRejected).Inc()
		var p workflow.Denied
		_ = json.Unmarshal(e.Payload, &p)
		f.decided(e, OutcomeRejected, p.Condition != "")
		delete(f.tracked, e.RequestID)
	case workflow.KindCancelled:
		m.requests.WithLabelValues(OutcomeCancelled).Inc()
		delete(f.tracked, e.RequestID)
	case workflow.KindTimedOut:
		m.requests.WithLabelValues(OutcomeTimedOut).Inc()
		delete(f.tracked, e.RequestID)
	case workflow.KindActivated:
		var p workflow.Activated
		_ = json.Unmarshal(e.Payload, &p)
		if t, ok := f.request(e.RequestID); ok && !t.decided.IsZero() {
			m.activation.Observe(nonNegative(e.Time.Sub(t.decided)))
		}
		if t, ok := f.tracked[e.RequestID]; ok {
			t.expires = p.ExpiresAt
		}
		f.setActive(e.RequestID, true)
	case workflow.KindExtended:
		var p workflow.Extended
		if t, ok := f.tracked[e.RequestID]; ok && json.Unmarshal(e.Payload, &p) == nil {
			t.expires = p.ExpiresAt
		}
	case workflow.KindFailed:
		m.requests.WithLabelValues(OutcomeFailed).Inc()
		if t, ok := f.tracked[e.RequestID]; ok {
			t.outcome = workflow.OutcomeRollback
		}
	case workflow.KindEnding:
		var p workflow.Ending
		if t, ok := f.tracked[e.RequestID]; ok && json.Unmarshal(e.Payload, &p) == nil {
			t.outcome = p.Outcome
		}
		f.setActive(e.RequestID, false)
	case workflow.KindEnded:
		if t, ok := f.request(e.RequestID); ok && t.outcome != "" {
			m.requests.WithLabelValues(labelValue(t.outcome)).Inc()
		}
		delete(f.tracked, e.RequestID)
	case workflow.KindGrantRevoked:
		if t, ok := f.request(e.RequestID); ok && t.outcome == workflow.OutcomeExpired && !t.expires.IsZero() {
			m.lateness.Observe(nonNegative(e.Time.Sub(t.expires)))
		}
	case workflow.KindGrantRevokeFailed:
		m.revokeFails.Inc()
	}
}

// decided records the decision of a request: by approvers, or by policy
// (a condition, or break-glass).
func (f *follower) decided(e *workflow.Event, decision string, byPolicy bool) {
	by := "approvers"
	if byPolicy {
		by = "policy"
	}
	if t, ok := f.request(e.RequestID); ok && !t.submitted.IsZero() {
		f.m.decision.WithLabelValues(decision, by).Observe(nonNegative(e.Time.Sub(t.submitted)))
	}
	if t, ok := f.tracked[e.RequestID]; ok {
		t.decided = e.Time
	}
}

// setActive adds a request to the active ones or takes it out, and sets
// the gauge.
func (f *follower) setActive(id string, active bool) {
	if active {
		f.active[id] = struct{}{}
	} else {
		delete(f.active, id)
	}
	f.m.active.Set(float64(len(f.active)))
}

// nonNegative returns d in seconds, or 0 if d is negative.
func nonNegative(d time.Duration) float64 { return max(d, 0).Seconds() }
