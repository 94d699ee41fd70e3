package audit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// Sink receives the audit log, a batch at a time.
type Sink interface {
	// Name names the sink; its delivery position is kept under it, so it
	// must stay the same across restarts and differ between sinks.
	Name() string
	// Deliver hands over events, in log order and without gaps. The batch
	// is taken whole or Deliver fails, and then the same events are
	// offered again. Deliver must not keep events after it returns.
	Deliver(ctx context.Context, events []workflow.Event) error
}

// Defaults of Options.
const (
	DefaultBatchSize  = 500
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = time.Minute
)

// Options tune a Stream. The zero value is usable.
type Options struct {
	// BatchSize caps how many events one Deliver gets (default
	// DefaultBatchSize).
	BatchSize int
	// MinBackoff is the wait after the first failure; it doubles with
	// every further failure up to MaxBackoff, and each wait is picked at
	// random between half of it and all of it (defaults DefaultMinBackoff
	// and DefaultMaxBackoff).
	MinBackoff, MaxBackoff time.Duration
	// Log receives a warning for each failed delivery and a note when the
	// sink recovers. The zero Logger logs nothing.
	Log zerolog.Logger
}

// CursorName is the name of the store cursor that keeps a sink's position:
// the sequence number of the last event the sink accepted.
func CursorName(sink string) string { return "sink:" + sink }

// ErrNoName is returned for a sink without a name.
var ErrNoName = errors.New("audit sink has no name")

// Stream delivers the audit log of a store to one sink. Create it with
// NewStream and call Run; Lag and Cursor may be called at any time, from
// any goroutine, for metrics.
type Stream struct {
	store *store.Store
	sink  Sink
	opts  Options

	cursor   atomic.Uint64 // last event the sink accepted
	started  atomic.Bool   // cursor has been read from the store
	failures atomic.Int64  // consecutive failed deliveries
	ready    chan struct{} // closed once Run has its starting position
}

// NewStream returns a stream of s's events to sink.
func NewStream(s *store.Store, sink Sink, opts Options) *Stream {
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	opts.MaxBackoff = max(opts.MaxBackoff, opts.MinBackoff)
	return &Stream{store: s, sink: sink, opts: opts, ready: make(chan struct{})}
}

// Run delivers s's events to sink until ctx ends; see Stream.Run.
func Run(ctx context.Context, s *store.Store, sink Sink, opts Options) error {
	return NewStream(s, sink, opts).Run(ctx)
}

// Sink returns the stream's sink.
func (st *Stream) Sink() Sink { return st.sink }

// Cursor returns the sequence number of the last event the sink accepted.
// Before Run has read the saved position it returns the saved position,
// or 0 if it cannot be read.
func (st *Stream) Cursor() uint64 {
	if st.started.Load() {
		return st.cursor.Load()
	}
	seq, err := st.store.Cursor(CursorName(st.sink.Name()))
	if err != nil {
		return 0
	}
	return seq
}

// Lag returns how many events of the log the sink has not accepted yet.
func (st *Stream) Lag() uint64 {
	head, _ := st.store.Head()
	if c := st.Cursor(); c < head {
		return head - c
	}
	return 0
}

// Failures returns how many deliveries in a row have failed: 0 while the
// sink keeps up.
func (st *Stream) Failures() int64 { return st.failures.Load() }

// Run delivers the log to the sink until ctx ends, then returns ctx's
// error. It starts after the position saved under CursorName(sink.Name()),
// reads up to BatchSize events at a time, and saves the position after
// each batch the sink accepts. A failed batch is offered again after a
// back-off, as long as it takes: no event is skipped. Once the sink has
// everything, Run waits for the next append. It returns another error only
// when the store cannot be used (it was closed, or the saved position
// cannot be read).
func (st *Stream) Run(ctx context.Context) error {
	name := st.sink.Name()
	if name == "" {
		return ErrNoName
	}
	cursorName := CursorName(name)
	pos, err := st.store.Cursor(cursorName)
	if err != nil {
		return fmt.Errorf("audit sink %s: read position: %w", name, err)
	}
	log := st.opts.Log.With().Str("sink", name).Logger()
	if head, _ := st.store.Head(); pos > head {
		// Only a log that lost events since could be behind its sink;
		// what is appended from now on must not be taken as delivered.
		log.Error().Uint64("position", pos).Uint64("head", head).Msg("audit sink position is past the end of the log; resuming after its last event")
		pos = head
	}
	st.cursor.Store(pos)
	if st.started.CompareAndSwap(false, true) {
		close(st.ready)
	}

	var batch []workflow.Event
	for {
		if len(batch) == 0 {
			head, err := st.store.WaitAfter(ctx, pos)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("audit sink %s: %w", name, err)
			}
			batch, err = st.read(ctx, pos+1, min(head, pos+uint64(st.opts.BatchSize)))
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if errors.Is(err, store.ErrClosed) {
					return fmt.Errorf("audit sink %s: %w", name, err)
				}
				if err := st.fail(ctx, log, pos+1, err); err != nil {
					return err
				}
				continue
			}
		}
		if err := st.sink.Deliver(ctx, batch); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err := st.fail(ctx, log, batch[0].Seq, err); err != nil {
				return err
			}
			continue
		}
		if n := st.failures.Swap(0); n > 0 {
			log.Info().Int64("failures", n).Uint64("seq", batch[0].Seq).Msg("audit sink delivers again")
		}
		pos = batch[len(batch)-1].Seq
		st.cursor.Store(pos)
		batch = nil
		if err := st.store.SetCursor(cursorName, pos); err != nil {
			// The sink has the events; if the position is lost, they are
			// delivered again after a restart, which receivers tolerate.
			if errors.Is(err, store.ErrClosed) || errors.Is(err, store.ErrReadOnly) {
				return fmt.Errorf("audit sink %s: save position: %w", name, err)
			}
			log.Warn().Err(err).Uint64("seq", pos).Msg("audit sink position not saved")
		}
	}
}

// read returns the events from, ..., to, checking that none is missing.
func (st *Stream) read(ctx context.Context, from, to uint64) ([]workflow.Event, error) {
	batch := make([]workflow.Event, 0, to-from+1)
	next := from
	err := st.store.Scan(ctx, store.Filter{From: from, To: to}, func(e *workflow.Event) error {
		if e.Seq != next {
			return &store.ChainError{Seq: next, Reason: fmt.Sprintf("event %d is missing (the next one stored is %d)", next, e.Seq)}
		}
		next++
		batch = append(batch, *e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if next <= to {
		return nil, &store.ChainError{Seq: next, Reason: fmt.Sprintf("event %d is missing from the log", next)}
	}
	return batch, nil
}

// fail records a failed attempt at the events from seq and waits before
// the next one. It returns ctx's error if ctx ends meanwhile.
func (st *Stream) fail(ctx context.Context, log zerolog.Logger, seq uint64, err error) error {
	n := st.failures.Add(1)
	d := backoff(st.opts.MinBackoff, st.opts.MaxBackoff, n)
	log.Warn().Err(err).Uint64("seq", seq).Int64("failures", n).Dur("retry_in", d).Msg("audit sink delivery failed; retrying")
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// backoff returns the wait after the n-th failure in a row: lo doubled
// n-1 times, capped at hi, then picked at random in its upper half.
func backoff(lo, hi time.Duration, n int64) time.Duration {
	d := lo
	for i := int64(1); i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	half := d / 2
	return half + rand.N(d-half+1)
}
