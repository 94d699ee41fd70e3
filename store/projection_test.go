package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/latchhq/latch/workflow"
	bolt "go.etcd.io/bbolt"
)

// countByKind counts events per kind; it refuses kinds starting with "bad".
type countByKind struct{ version uint32 }

var errBadKind = errors.New("bad kind")

func (countByKind) Name() string      { return "count-by-kind" }
func (p countByKind) Version() uint32 { return p.version }
func (countByKind) Apply(b *bolt.Bucket, e *workflow.Event) error {
	if len(e.Kind) >= 3 && e.Kind[:3] == "bad" {
		return errBadKind
	}
	var n uint64
	if v := b.Get([]byte(e.Kind)); v != nil {
		n = binary.BigEndian.Uint64(v)
	}
	return b.Put([]byte(e.Kind), binary.BigEndian.AppendUint64(nil, n+1))
}

// counts reads the projection into a map.
func counts(t *testing.T, s *Store) map[string]uint64 {
	t.Helper()
	got := map[string]uint64{}
	if err := s.View("count-by-kind", func(b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			got[string(k)] = binary.BigEndian.Uint64(v)
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestProjectionUpdatedWithTheLog(t *testing.T) {
	s, path := openTemp(t, Options{Projections: []Projection{countByKind{1}}})
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		if _, err := s.Append(ctx, ev([]string{"a.one", "b.two"}[i%2], "", "", "")); err != nil {
			t.Fatal(err)
		}
	}
	if got := fmt.Sprint(counts(t, s)); got != "map[a.one:5 b.two:5]" {
		t.Errorf("projection = %s", got)
	}

	// An append the projection refuses leaves no trace, in the log or the
	// projection, and appends committed beside it in the same batch stand.
	var wg sync.WaitGroup
	results := make([]error, 40)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kind := "a.one"
			if i%4 == 0 {
				kind = "bad.kind"
			}
			_, results[i] = s.Append(ctx, ev(kind, "", "", ""), ev("b.two", "", "", ""))
		}()
	}
	wg.Wait()
	for i, err := range results {
		if wantErr := i%4 == 0; wantErr != errors.Is(err, errBadKind) {
			t.Errorf("append %d: %v", i, err)
		}
	}
	if got := fmt.Sprint(counts(t, s)); got != "map[a.one:35 b.two:35]" {
		t.Errorf("projection after refused appends = %s", got)
	}
	if r, err := s.Verify(ctx); err != nil || r.Count != 70 {
		t.Errorf("Verify = %+v, %v; want 70 events", r, err)
	}

	// A rebuild from the log gives the same state.
	before := fmt.Sprint(counts(t, s))
	if err := s.Rebuild("count-by-kind"); err != nil {
		t.Fatal(err)
	}
	if after := fmt.Sprint(counts(t, s)); after != before {
		t.Errorf("rebuilt projection %s, want %s", after, before)
	}
	if err := s.Rebuild("nope"); err == nil {
		t.Errorf("Rebuild of an unknown projection succeeded")
	}
	s.Close()

	// A new version of the projection is rebuilt at Open; the same version
	// is not.
	for _, tt := range []struct {
		version uint32
		want    string
	}{
		{2, "map[a.one:35 b.two:35 version:2]"},
		{2, "map[a.one:35 b.two:35 version:2]"},
		{3, "map[a.one:35 b.two:35 version:3]"},
	} {
		s2, err := Open(path, Options{Projections: []Projection{versioned{tt.version}}})
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(counts(t, s2)); got != tt.want {
			t.Errorf("projection after reopen with version %d = %s, want %s", tt.version, got, tt.want)
		}
		s2.Close()
	}
}

// versioned is countByKind that also records the version that built it.
type versioned struct{ version uint32 }

func (versioned) Name() string      { return "count-by-kind" }
func (p versioned) Version() uint32 { return p.version }
func (p versioned) Apply(b *bolt.Bucket, e *workflow.Event) error {
	if err := b.Put([]byte("version"), binary.BigEndian.AppendUint64(nil, uint64(p.version))); err != nil {
		return err
	}
	return countByKind{}.Apply(b, e)
}

func TestProjectionCatchesUp(t *testing.T) {
	s, path := openTemp(t, Options{Projections: []Projection{countByKind{1}}})
	ctx := context.Background()
	if _, err := s.Append(ctx, ev("a.one", "", "", "")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Opened without the projection, the store appends events it misses.
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, ev("a.one", "", "", ""), ev("a.one", "", "", "")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(path, Options{Projections: []Projection{countByKind{1}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := fmt.Sprint(counts(t, s)); got != "map[a.one:3]" {
		t.Errorf("projection after catching up = %s, want map[a.one:3]", got)
	}
}

// panicky panics on one kind of event.
type panicky struct{}

func (panicky) Name() string    { return "panicky" }
func (panicky) Version() uint32 { return 1 }
func (panicky) Apply(b *bolt.Bucket, e *workflow.Event) error {
	if e.Kind == "boom" {
		panic("boom")
	}
	return nil
}

func TestProjectionPanicFailsOneAppend(t *testing.T) {
	s, _ := openTemp(t, Options{Projections: []Projection{panicky{}}})
	ctx := context.Background()
	if _, err := s.Append(ctx, ev("boom", "", "", "")); err == nil {
		t.Errorf("an append whose projection panicked succeeded")
	}
	if got, err := s.Append(ctx, ev("fine", "", "", "")); err != nil || got[0].Seq != 1 {
		t.Errorf("the next append = %v, %v; want event 1", got, err)
	}
}

func TestProjectionAddedLater(t *testing.T) {
	s, path := openTemp(t, Options{})
	for i := 0; i < 5; i++ {
		if _, err := s.Append(context.Background(), ev("a.one", "", "", "")); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s2, err := Open(path, Options{Projections: []Projection{countByKind{1}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got := fmt.Sprint(counts(t, s2)); got != "map[a.one:5]" {
		t.Errorf("projection built at Open = %s", got)
	}
}
