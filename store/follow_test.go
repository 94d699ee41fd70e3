package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestWaitAfter(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := t.Context()
	got := make(chan uint64, 1)
	go func() {
		head, err := s.WaitAfter(ctx, 0)
		if err != nil {
			t.Error(err)
		}
		got <- head
	}()
	if _, err := s.Append(ctx, ev("request.submitted", "U1", "r1", `{}`)); err != nil {
		t.Fatal(err)
	}
	if head := <-got; head != 1 {
		t.Errorf("WaitAfter(0) = %d, want 1", head)
	}
	// Past the head already: at once.
	if head, err := s.WaitAfter(ctx, 0); err != nil || head != 1 {
		t.Errorf("WaitAfter(0) again = %d, %v", head, err)
	}
	// Nothing new: until the context ends, or the store closes.
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := s.WaitAfter(short, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitAfter with nothing new = %v, want the deadline", err)
	}
	closed := make(chan error, 1)
	go func() {
		_, err := s.WaitAfter(ctx, 1)
		closed <- err
	}()
	s.Close()
	if err := <-closed; !errors.Is(err, ErrClosed) {
		t.Errorf("WaitAfter across Close = %v, want ErrClosed", err)
	}
}

func TestCursors(t *testing.T) {
	s, path := openTemp(t, Options{})
	if seq, err := s.Cursor("sink:siem"); err != nil || seq != 0 {
		t.Fatalf("unset cursor = %d, %v", seq, err)
	}
	if err := s.SetCursor("sink:siem", 42); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCursor("sink:file", 7); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, want := range map[string]uint64{"sink:siem": 42, "sink:file": 7} {
		if seq, err := s.Cursor(name); err != nil || seq != want {
			t.Errorf("after reopening, %s = %d, %v; want %d", name, seq, err, want)
		}
	}
	// Cursors are outside the chain: the log still verifies.
	if _, err := s.Verify(t.Context()); err != nil {
		t.Errorf("Verify with cursors: %v", err)
	}
}
