package audit

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

func TestStreamRecoversAndResumesWithoutGaps(t *testing.T) {
	s, _ := openStore(t)
	appendN(t, s, 25)

	sink := newRecorder("siem", 3)
	st := NewStream(s, sink, fastRetry)
	if got, want := st.Lag(), uint64(25); got != want {
		t.Errorf("Lag before Run = %d, want %d", got, want)
	}
	stop := runStream(t, st)
	within(t, sink.accepted(25), "event 25")
	appendN(t, s, 15) // delivered after Run has caught up and waits
	within(t, sink.accepted(40), "event 40")
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}

	if got, want := sink.seqs(), span(1, 40); !slices.Equal(got, want) {
		t.Fatalf("sink got %v, want %v", got, want)
	}
	if sink.attempts != len(sink.batches)+3 {
		t.Errorf("%d attempts for %d batches and 3 failures", sink.attempts, len(sink.batches))
	}
	for _, b := range sink.batches {
		if n := b[1] - b[0] + 1; n > 4 {
			t.Errorf("batch %v has %d events, more than BatchSize 4", b, n)
		}
	}
	if got := st.Lag(); got != 0 {
		t.Errorf("Lag = %d, want 0", got)
	}
	if got := st.Failures(); got != 0 {
		t.Errorf("Failures = %d after recovering, want 0", got)
	}
	saved, err := s.Cursor(CursorName("siem"))
	if err != nil || saved != 40 {
		t.Errorf("saved cursor = %d, %v; want 40", saved, err)
	}

	// A new Run on the same store starts after the saved position.
	appendN(t, s, 10)
	again := newRecorder("siem", 0)
	st2 := NewStream(s, again, fastRetry)
	if got, want := st2.Lag(), uint64(10); got != want {
		t.Errorf("Lag of the new stream = %d, want %d", got, want)
	}
	stop2 := runStream(t, st2)
	within(t, again.accepted(50), "event 50")
	stop2()
	if got, want := again.seqs(), span(41, 50); !slices.Equal(got, want) {
		t.Fatalf("after restart the sink got %v, want %v", got, want)
	}
}

// blocker accepts nothing: it holds each delivery until ctx ends.
type blocker struct {
	name    string
	started chan []uint64
}

func (b *blocker) Name() string { return b.name }

func (b *blocker) Deliver(ctx context.Context, events []workflow.Event) error {
	var seqs []uint64
	for _, e := range events {
		seqs = append(seqs, e.Seq)
	}
	b.started <- seqs
	<-ctx.Done()
	return ctx.Err()
}

func TestStreamRedeliversABatchCutShort(t *testing.T) {
	s, _ := openStore(t)
	appendN(t, s, 6)

	b := &blocker{name: "siem", started: make(chan []uint64, 1)}
	stop := runStream(t, NewStream(s, b, fastRetry))
	first := within(t, b.started, "a delivery")
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}

	sink := newRecorder("siem", 0)
	stop = runStream(t, NewStream(s, sink, fastRetry))
	within(t, sink.accepted(6), "event 6")
	stop()
	got := sink.seqs()
	if !slices.Equal(got[:len(first)], first) {
		t.Errorf("after restart the sink got %v first, want the batch cut short %v again", got, first)
	}
	if want := span(1, 6); !slices.Equal(got, want) {
		t.Errorf("sink got %v, want %v", got, want)
	}
}

// logLines is a log writer that passes on each line it gets.
type logLines chan string

func (l logLines) Write(p []byte) (int, error) {
	select {
	case l <- string(p):
	default:
	}
	return len(p), nil
}

func TestStreamStopsWhileBackingOff(t *testing.T) {
	s, _ := openStore(t)
	appendN(t, s, 3)
	sink := newRecorder("siem", 1<<30)
	lines := make(logLines, 16)
	st := NewStream(s, sink, Options{MinBackoff: time.Hour, Log: zerolog.New(lines)})
	stop := runStream(t, st)
	line := within(t, (<-chan string)(lines), "the failure to be logged")
	if !strings.Contains(line, `"sink":"siem"`) || !strings.Contains(line, `"failures":1`) {
		t.Errorf("logged %s, want the sink's first failure", line)
	}
	// The stream now waits an hour before it tries again.
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if got := st.Failures(); got != 1 {
		t.Errorf("Failures = %d, want 1", got)
	}
	if got := st.Lag(); got != 3 {
		t.Errorf("Lag = %d, want 3: nothing was delivered", got)
	}
	if saved, err := s.Cursor(CursorName("siem")); err != nil || saved != 0 {
		t.Errorf("saved cursor = %d, %v; want 0", saved, err)
	}
}

func TestStreamEndsWhenTheStoreCloses(t *testing.T) {
	s, _ := openStore(t)
	sink := newRecorder("siem", 0)
	done := make(chan error, 1)
	go func() { done <- Run(context.Background(), s, sink, fastRetry) }()
	s.Close()
	if err := within(t, done, "Run to return"); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Run = %v, want store.ErrClosed", err)
	}
}

func TestStreamPositionPastTheLog(t *testing.T) {
	s, _ := openStore(t)
	appendN(t, s, 3)
	if err := s.SetCursor(CursorName("siem"), 100); err != nil {
		t.Fatal(err)
	}
	sink := newRecorder("siem", 0)
	st := NewStream(s, sink, fastRetry)
	stop := runStream(t, st)
	within(t, st.ready, "Run to start")
	if got := st.Cursor(); got != 3 {
		t.Errorf("Cursor = %d, want 3, the end of the log", got)
	}
	appendN(t, s, 2)
	within(t, sink.accepted(5), "event 5")
	stop()
	if got, want := sink.seqs(), span(4, 5); !slices.Equal(got, want) {
		t.Errorf("sink got %v, want %v: events after the end of the log are new", got, want)
	}
}

func TestStreamNeedsAName(t *testing.T) {
	s, _ := openStore(t)
	if err := Run(context.Background(), s, newRecorder("", 0), Options{}); !errors.Is(err, ErrNoName) {
		t.Fatalf("Run = %v, want ErrNoName", err)
	}
}

func TestBackoff(t *testing.T) {
	lo, hi := 100*time.Millisecond, time.Second
	tests := []struct {
		n        int64
		min, max time.Duration
	}{
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{4, 400 * time.Millisecond, 800 * time.Millisecond},
		{5, 500 * time.Millisecond, time.Second},
		{1000, 500 * time.Millisecond, time.Second},
	}
	for _, tt := range tests {
		for range 100 {
			if got := backoff(lo, hi, tt.n); got < tt.min || got > tt.max {
				t.Fatalf("backoff after %d failures = %s, want within [%s, %s]", tt.n, got, tt.min, tt.max)
			}
		}
	}
}
