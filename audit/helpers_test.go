package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// openStore opens a new store in a temporary directory.
func openStore(t *testing.T) (*store.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "latch.db")
	s, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// appendN appends n events and returns them as committed.
func appendN(t *testing.T, s *store.Store, n int) []workflow.Event {
	t.Helper()
	head, _ := s.Head()
	events := make([]workflow.Event, n)
	for i := range events {
		events[i] = workflow.Event{
			Kind: workflow.KindGrantActive, Actor: "latch", RequestID: "r1", GrantID: "g1",
			Payload: json.RawMessage(fmt.Sprintf(`{"n":%d}`, int(head)+i+1)),
		}
	}
	got, err := s.Append(context.Background(), events...)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return got
}

// within fails the test if ch does not deliver within a generous bound; it
// guards against a hang, it does not pace the test.
func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// runStream runs st in a goroutine; the returned function cancels it and
// returns Run's error.
func runStream(t *testing.T, st *Stream) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = within(t, done, "Run to return")
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// recorder is a Sink that keeps what it accepts. It fails the first fail
// deliveries, and lets a test wait until it has accepted an event.
type recorder struct {
	name string

	mu       sync.Mutex
	fail     int
	attempts int
	got      []uint64
	batches  [][2]uint64
	waiters  map[uint64]chan struct{}
}

func newRecorder(name string, fail int) *recorder {
	return &recorder{name: name, fail: fail, waiters: map[uint64]chan struct{}{}}
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) Deliver(_ context.Context, events []workflow.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	if r.fail > 0 {
		r.fail--
		return fmt.Errorf("receiver down")
	}
	for _, e := range events {
		r.got = append(r.got, e.Seq)
	}
	r.batches = append(r.batches, [2]uint64{events[0].Seq, events[len(events)-1].Seq})
	last := events[len(events)-1].Seq
	for seq, ch := range r.waiters {
		if seq <= last {
			close(ch)
			delete(r.waiters, seq)
		}
	}
	return nil
}

// accepted returns a channel closed once the sink has accepted seq.
func (r *recorder) accepted(seq uint64) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan struct{})
	if n := len(r.got); n > 0 && r.got[n-1] >= seq {
		close(ch)
		return ch
	}
	r.waiters[seq] = ch
	return ch
}

func (r *recorder) seqs() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint64(nil), r.got...)
}

// span returns from, from+1, ..., to.
func span(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// fastRetry retries at once, nearly.
var fastRetry = Options{BatchSize: 4, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
