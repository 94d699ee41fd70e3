package workflow

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

var clockStart = time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)

// receivedTicks drains the ticks that are waiting on c.
func receivedTicks(c <-chan time.Time) []time.Time {
	var got []time.Time
	for {
		select {
		case t := <-c:
			got = append(got, t)
		default:
			return got
		}
	}
}

func TestFakeClockTicker(t *testing.T) {
	tests := []struct {
		name  string
		steps []time.Duration // Advance by each, then drain the ticks
		want  []int           // ticks received after each step
	}{
		{"before the period", []time.Duration{999 * time.Millisecond}, []int{0}},
		{"at the period", []time.Duration{time.Second}, []int{1}},
		{"one period in two steps", []time.Duration{600 * time.Millisecond, 400 * time.Millisecond}, []int{0, 1}},
		{"many periods at once deliver one tick", []time.Duration{10 * time.Second, 500 * time.Millisecond, 500 * time.Millisecond}, []int{1, 0, 1}},
		{"backwards fires nothing", []time.Duration{-time.Hour, time.Hour, time.Second}, []int{0, 0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewFakeClock(clockStart)
			tk := c.NewTicker(time.Second)
			defer tk.Stop()
			for i, d := range tt.steps {
				c.Advance(d)
				got := receivedTicks(tk.C())
				if len(got) != tt.want[i] {
					t.Fatalf("step %d (%v): got %d ticks, want %d", i, d, len(got), tt.want[i])
				}
				for _, tick := range got {
					if now := c.Now(); !tick.Equal(now) {
						t.Errorf("step %d: tick carries %v, want the fake time %v", i, tick, now)
					}
				}
			}
		})
	}
}

func TestFakeClockSet(t *testing.T) {
	c := NewFakeClock(clockStart)
	tk := c.NewTicker(time.Minute)
	defer tk.Stop()
	c.Set(clockStart.Add(90 * time.Second))
	if got, want := c.Now(), clockStart.Add(90*time.Second); !got.Equal(want) {
		t.Fatalf("Now after Set: got %v, want %v", got, want)
	}
	if got := len(receivedTicks(tk.C())); got != 1 {
		t.Fatalf("ticks after Set past the first tick: got %d, want 1", got)
	}
	// The next tick stays on the ticker's schedule: at 2 minutes.
	c.Set(clockStart.Add(119 * time.Second))
	if got := len(receivedTicks(tk.C())); got != 0 {
		t.Fatalf("ticks before the second period: got %d, want 0", got)
	}
	c.Set(clockStart.Add(120 * time.Second))
	if got := len(receivedTicks(tk.C())); got != 1 {
		t.Fatalf("ticks at the second period: got %d, want 1", got)
	}
}

func TestFakeClockStop(t *testing.T) {
	c := NewFakeClock(clockStart)
	tk := c.NewTicker(time.Second)
	c.Advance(time.Second) // a tick waits in the channel
	if got := c.Tickers(); got != 1 {
		t.Fatalf("Tickers before Stop: got %d, want 1", got)
	}
	tk.Stop()
	tk.Stop() // a second Stop does nothing
	c.Advance(time.Hour)
	if got := len(receivedTicks(tk.C())); got != 0 {
		t.Errorf("ticks after Stop: got %d, want 0", got)
	}
	if got := c.Tickers(); got != 0 {
		t.Errorf("Tickers after Stop: got %d, want 0", got)
	}
}

func TestFakeClockNewTickerPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewTicker(0) did not panic")
		}
	}()
	NewFakeClock(clockStart).NewTicker(0)
}

func TestFakeClockWaitTickers(t *testing.T) {
	c := NewFakeClock(clockStart)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	errc := make(chan error, 1)
	go func() { errc <- c.WaitTickers(ctx, 2) }()
	a := c.NewTicker(time.Second)
	defer a.Stop()
	b := c.NewTicker(time.Second)
	defer b.Stop()
	if err := <-errc; err != nil {
		t.Fatalf("WaitTickers: %v", err)
	}

	short, cancelShort := context.WithCancel(context.Background())
	cancelShort()
	if err := c.WaitTickers(short, 3); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitTickers with an ended context: got %v, want %v", err, context.Canceled)
	}
}

func TestFakeClockConcurrent(t *testing.T) {
	c := NewFakeClock(clockStart)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			tk := c.NewTicker(time.Millisecond)
			defer tk.Stop()
			for range 100 {
				c.Advance(time.Millisecond)
				_ = c.Now()
				receivedTicks(tk.C())
			}
		})
	}
	wg.Wait()
	if got, want := c.Now(), clockStart.Add(400*time.Millisecond); !got.Equal(want) {
		t.Errorf("Now: got %v, want %v", got, want)
	}
}

func TestRealClock(t *testing.T) {
	var c Clock = RealClock{}
	before := time.Now()
	if got := c.Now(); got.Before(before) {
		t.Errorf("Now: got %v, before %v", got, before)
	}
	tk := c.NewTicker(time.Hour)
	if tk.C() == nil {
		t.Error("ticker channel is nil")
	}
	tk.Stop()
}
