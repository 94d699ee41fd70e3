package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/latchhq/latch/workflow"
)

// newFakeClock returns a clock the test moves by hand.
func newFakeClock() *workflow.FakeClock {
	return workflow.NewFakeClock(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC))
}

// openTemp opens a new store in a temporary directory.
func openTemp(t testing.TB, opts Options) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "latch.db")
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func ev(kind, actor, req string, payload string) workflow.Event {
	return workflow.Event{Kind: kind, Actor: actor, RequestID: req, Payload: json.RawMessage(payload)}
}

// collect scans the store with f and returns what it saw.
func collect(t *testing.T, s *Store, f Filter) []workflow.Event {
	t.Helper()
	var got []workflow.Event
	if err := s.Scan(context.Background(), f, func(e *workflow.Event) error {
		got = append(got, *e)
		return nil
	}); err != nil {
		t.Fatalf("Scan(%+v): %v", f, err)
	}
	return got
}

func seqs(events []workflow.Event) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = e.Seq
	}
	return out
}

func TestAppendReadRoundTrip(t *testing.T) {
	clock := newFakeClock()
	s, _ := openTemp(t, Options{Now: clock.Now})
	ctx := context.Background()

	in := []workflow.Event{
		{Kind: "request.submitted", Actor: "U1", RequestID: "r1", Payload: json.RawMessage(`{ "item": "prod-db",  "duration": "1h" }`)},
		{Kind: "request.approved", Actor: "U2", RequestID: "r1", GrantID: "g1"},
	}
	got, err := s.Append(ctx, in...)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 2 {
		t.Fatalf("Append returned seqs %v, want [1 2]", seqs(got))
	}
	if got[0].PrevHash != (workflow.Hash{}) || got[1].PrevHash != got[0].Hash {
		t.Errorf("events are not chained: %x -> %x", got[0].Hash, got[1].PrevHash)
	}
	if got[0].ID.Version() != 7 || got[0].ID == got[1].ID {
		t.Errorf("ids %v %v, want distinct UUIDv7", got[0].ID, got[1].ID)
	}
	if !got[0].Time.Equal(clock.Now()) {
		t.Errorf("time %v, want the clock's %v", got[0].Time, clock.Now())
	}
	if string(got[0].Payload) != `{"item":"prod-db","duration":"1h"}` || string(got[1].Payload) != `{}` {
		t.Errorf("payloads %s %s, want compact JSON and {}", got[0].Payload, got[1].Payload)
	}

	read := collect(t, s, Filter{})
	if len(read) != 2 {
		t.Fatalf("read %d events, want 2", len(read))
	}
	for i := range read {
		if fmt.Sprint(read[i]) != fmt.Sprint(got[i]) {
			t.Errorf("event %d read back as\n%+v\nwant\n%+v", i+1, read[i], got[i])
		}
	}
	one, ok, err := s.Get(2)
	if err != nil || !ok || one.GrantID != "g1" || one.Hash != got[1].Hash {
		t.Errorf("Get(2) = %+v, %v, %v", one, ok, err)
	}
	if _, ok, _ := s.Get(3); ok {
		t.Errorf("Get(3) found an event that was never appended")
	}
	seq, head := s.Head()
	if seq != 2 || head != got[1].Hash {
		t.Errorf("Head() = %d %x, want 2 %x", seq, head, got[1].Hash)
	}
}

func TestScanFilters(t *testing.T) {
	clock := newFakeClock()
	s, _ := openTemp(t, Options{Now: clock.Now})
	ctx := context.Background()
	start := clock.Now()
	kinds := []string{"request.submitted", "request.approved", "grant.active"}
	for i := 0; i < 30; i++ {
		if _, err := s.Append(ctx, ev(kinds[i%3], "U1", fmt.Sprint("r", i), "")); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
	}
	at := func(min int) time.Time { return start.Add(time.Duration(min) * time.Minute) }
	tests := []struct {
		name string
		f    Filter
		want []uint64
	}{
		{"seq range", Filter{From: 5, To: 8}, []uint64{5, 6, 7, 8}},
		{"from past head", Filter{From: 31}, nil},
		{"to past head", Filter{From: 29, To: 100}, []uint64{29, 30}},
		{"since", Filter{Since: at(27)}, []uint64{28, 29, 30}},
		{"until", Filter{Until: at(2)}, []uint64{1, 2}},
		{"since and until", Filter{Since: at(10), Until: at(13)}, []uint64{11, 12, 13}},
		{"empty time window", Filter{Since: at(13), Until: at(13)}, nil},
		{"before the log", Filter{Until: start}, nil},
		{"one kind", Filter{Kinds: []string{"grant.active"}, To: 12}, []uint64{3, 6, 9, 12}},
		{"one kind in a window", Filter{Kinds: []string{"request.submitted"}, Since: at(9), Until: at(19)}, []uint64{10, 13, 16, 19}},
		{"two kinds", Filter{Kinds: []string{"grant.active", "request.approved"}, From: 20, To: 26}, []uint64{20, 21, 23, 24, 26}},
		{"unknown kind", Filter{Kinds: []string{"nope"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := seqs(collect(t, s, tt.f))
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestScanStopsOnError(t *testing.T) {
	s, _ := openTemp(t, Options{})
	for i := 0; i < 3000; i++ {
		if _, err := s.Append(context.Background(), ev("x.y", "", "", "")); err != nil {
			t.Fatal(err)
		}
	}
	stop := errors.New("stop")
	n := 0
	err := s.Scan(context.Background(), Filter{}, func(e *workflow.Event) error {
		n++
		if e.Seq == 2500 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2500 {
		t.Errorf("Scan returned %v after %d events, want stop after 2500", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Scan(ctx, Filter{}, func(*workflow.Event) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Scan with a cancelled context returned %v", err)
	}
}

func TestTimeNeverGoesBackwards(t *testing.T) {
	clock := newFakeClock()
	s, _ := openTemp(t, Options{Now: clock.Now})
	first, err := s.Append(context.Background(), ev("a.b", "", "", ""))
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(-time.Hour) // the wall clock steps back
	second, err := s.Append(context.Background(), ev("a.b", "", "", ""))
	if err != nil {
		t.Fatal(err)
	}
	if second[0].Time.Before(first[0].Time) {
		t.Errorf("second event at %v, before the first at %v", second[0].Time, first[0].Time)
	}
}

func TestAppendRejectsInvalidEvents(t *testing.T) {
	s, _ := openTemp(t, Options{})
	long := make([]byte, MaxIDLen+1)
	for i := range long {
		long[i] = 'a'
	}
	tests := []struct {
		name string
		e    workflow.Event
	}{
		{"no kind", workflow.Event{}},
		{"kind with spaces", workflow.Event{Kind: "request submitted"}},
		{"kind with a zero byte", workflow.Event{Kind: "a\x00b"}},
		{"kind starting with a dash", workflow.Event{Kind: "-a.b"}},
		{"kind starting with a digit", workflow.Event{Kind: "1a"}},
		{"request id not UTF-8", workflow.Event{Kind: "a.b", RequestID: "r\xff"}},
		{"payload not JSON", workflow.Event{Kind: "a.b", Payload: json.RawMessage(`{"a":`)}},
		{"payload not an object", workflow.Event{Kind: "a.b", Payload: json.RawMessage(`[1,2]`)}},
		{"actor too long", workflow.Event{Kind: "a.b", Actor: string(long)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Append(context.Background(), ev("ok.event", "", "", ""), tt.e)
			if !errors.Is(err, ErrInvalidEvent) {
				t.Errorf("Append = %v, want ErrInvalidEvent", err)
			}
		})
	}
	if seq, _ := s.Head(); seq != 0 {
		t.Errorf("head is %d after only invalid appends, want 0", seq)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	clock := newFakeClock()
	s, path := openTemp(t, Options{Now: clock.Now})
	ctx := context.Background()
	var want []workflow.Event
	for i := 0; i < 100; i++ {
		got, err := s.Append(ctx, ev("grant.active", "U1", fmt.Sprint("r", i), fmt.Sprintf(`{"n":%d}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, got...)
		clock.Advance(time.Second)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Append(ctx, ev("a.b", "", "", "")); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}

	s2, err := Open(path, Options{Now: clock.Now})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	got := collect(t, s2, Filter{})
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after reopen the log differs")
	}
	if seq, h := s2.Head(); seq != 100 || h != want[99].Hash {
		t.Errorf("head after reopen = %d %x, want 100 %x", seq, h, want[99].Hash)
	}
	more, err := s2.Append(ctx, ev("grant.expired", "latch", "r1", ""))
	if err != nil {
		t.Fatal(err)
	}
	if more[0].Seq != 101 || more[0].PrevHash != want[99].Hash {
		t.Errorf("append after reopen got seq %d prev %x, want 101 continuing the chain", more[0].Seq, more[0].PrevHash)
	}
	r, err := s2.Verify(ctx)
	if err != nil || r.Count != 101 || r.Head != more[0].Hash {
		t.Errorf("Verify = %+v, %v", r, err)
	}
}

func TestFileMode(t *testing.T) {
	s, path := openTemp(t, Options{})
	mode := func() os.FileMode {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	if got := mode(); got != 0o600 {
		t.Errorf("new store file mode %o, want 600", got)
	}
	s.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if got := mode(); got != 0o600 {
		t.Errorf("store file mode %o after reopening a 644 file, want 600", got)
	}
}

func TestLockedStoreFailsFast(t *testing.T) {
	s, path := openTemp(t, Options{})
	defer s.Close()
	for _, readOnly := range []bool{false, true} {
		_, err := Open(path, Options{ReadOnly: readOnly, LockTimeout: 50 * time.Millisecond})
		if !errors.Is(err, ErrLocked) {
			t.Errorf("second Open (read-only %v) = %v, want ErrLocked", readOnly, err)
		}
	}
}

func TestReadOnly(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "missing.db"), Options{ReadOnly: true}); !errors.Is(err, ErrNotFound) {
		t.Errorf("read-only Open of a missing file = %v, want ErrNotFound", err)
	}
	s, path := openTemp(t, Options{})
	if _, err := s.Append(context.Background(), ev("a.b", "", "", "")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.Append(context.Background(), ev("a.b", "", "", "")); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Append on a read-only store = %v, want ErrReadOnly", err)
	}
	if seq, _ := ro.Head(); seq != 1 {
		t.Errorf("read-only head = %d, want 1", seq)
	}
	// Several readers may share the file.
	ro2, err := Open(path, Options{ReadOnly: true, LockTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("second read-only Open: %v", err)
	}
	ro2.Close()
}

func TestNotAStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "junk.db")
	if err := os.WriteFile(path, []byte("this is not a bbolt file, not at all, not even close"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, readOnly := range []bool{false, true} {
		if _, err := Open(path, Options{ReadOnly: readOnly}); !errors.Is(err, ErrFormat) {
			t.Errorf("Open of a junk file (read-only %v) = %v, want ErrFormat", readOnly, err)
		}
	}
}

func TestConcurrentAppenders(t *testing.T) {
	const writers, each = 64, 1000
	s, _ := openTemp(t, Options{})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			actor := fmt.Sprint("writer-", w)
			for i := 0; i < each; i++ {
				if _, err := s.Append(ctx, ev("load.event", actor, "", fmt.Sprintf(`{"i":%d}`, i))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Append: %v", err)
	}
	r, err := s.Verify(ctx)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if r.Count != writers*each {
		t.Fatalf("Verify counted %d events, want %d", r.Count, writers*each)
	}
	// Each writer's events appear in the order it appended them.
	next := map[string]int{}
	for _, e := range collect(t, s, Filter{}) {
		var p struct{ I int }
		if err := json.Unmarshal(e.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if p.I != next[e.Actor] {
			t.Fatalf("event %d: %s's event %d, want %d", e.Seq, e.Actor, p.I, next[e.Actor])
		}
		next[e.Actor]++
	}
}

func TestCloseWithAppendsInFlight(t *testing.T) {
	for round := 0; round < 5; round++ {
		s, path := openTemp(t, Options{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var acked []uint64
		enough := make(chan struct{}) // closed at the 50th acknowledged event
		var once sync.Once
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					got, err := s.Append(context.Background(), ev("a.b", "", "", ""))
					if errors.Is(err, ErrClosed) {
						return
					}
					if err != nil {
						t.Errorf("Append: %v", err)
						return
					}
					mu.Lock()
					acked = append(acked, got[0].Seq)
					if len(acked) == 50 {
						once.Do(func() { close(enough) })
					}
					mu.Unlock()
				}
			}()
		}
		stopped := make(chan struct{})
		go func() { wg.Wait(); close(stopped) }()
		select {
		case <-enough:
		case <-stopped:
			t.Fatalf("every appender stopped before 50 events were acknowledged")
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		<-stopped
		s2, err := Open(path, Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		r, err := s2.Verify(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, seq := range acked {
			if seq > r.Count {
				t.Fatalf("acknowledged event %d is not in the log of %d", seq, r.Count)
			}
		}
		if _, _, err := s.Get(1); !errors.Is(err, ErrClosed) {
			t.Errorf("Get after Close = %v, want ErrClosed", err)
		}
		s2.Close()
	}
}

func TestFailedCommitStopsAppends(t *testing.T) {
	s, path := openTemp(t, Options{})
	ctx := context.Background()
	if _, err := s.Append(ctx, ev("a.b", "", "", "")); err != nil {
		t.Fatal(err)
	}
	s.failCommit = func() error { return errors.New("disk on fire") }
	if _, err := s.Append(ctx, ev("a.b", "", "", "")); !errors.Is(err, ErrFailed) {
		t.Fatalf("Append with a failing commit = %v, want ErrFailed", err)
	}
	s.failCommit = nil
	if _, err := s.Append(ctx, ev("a.b", "", "", "")); !errors.Is(err, ErrFailed) {
		t.Errorf("Append after a failed commit = %v, want ErrFailed until reopened", err)
	}
	s.Close()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.Append(ctx, ev("a.b", "", "", "")); err != nil || got[0].Seq != 2 {
		t.Errorf("Append after reopening = %v, %v; want event 2", got, err)
	}
}

func TestCommitsAreSynced(t *testing.T) {
	s, _ := openTemp(t, Options{})
	if s.db.NoSync {
		t.Errorf("bbolt NoSync is on: appends would return before their events are on disk")
	}
}
