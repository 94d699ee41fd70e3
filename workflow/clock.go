package workflow

import (
	"context"
	"sync"
	"time"
)

// Clock is the engine's source of time. Production code uses RealClock;
// tests use a FakeClock so that deadlines can be reached without waiting.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTicker returns a ticker that delivers the clock's time on its
	// channel every period d. It panics if d is not positive.
	NewTicker(d time.Duration) Ticker
}

// Ticker delivers ticks of a Clock. Like time.Ticker, it keeps at most one
// undelivered tick and drops the rest for a slow receiver.
type Ticker interface {
	// C returns the channel on which the ticks are delivered.
	C() <-chan time.Time
	// Stop turns the ticker off: no tick is received after it returns.
	// It does not close the channel.
	Stop()
}

// RealClock is the Clock of the operating system.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// NewTicker returns a ticker backed by time.NewTicker.
func (RealClock) NewTicker(d time.Duration) Ticker {
	return realTicker{time.NewTicker(d)}
}

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()               { r.t.Stop() }

// FakeClock is a Clock that moves only when told to, for tests. Its tickers
// fire when Set or Advance moves the time to or past their next tick, so a
// loop driven by a ticker can be tested without sleeping. It is safe for use
// by several goroutines.
type FakeClock struct {
	mu      sync.Mutex
	now     time.Time
	tickers map[*fakeTicker]struct{}
	changed chan struct{} // closed and replaced when the set of tickers changes
}

// NewFakeClock returns a FakeClock that reads start.
func NewFakeClock(start time.Time) *FakeClock {
	return &FakeClock{
		now:     start,
		tickers: make(map[*fakeTicker]struct{}),
		changed: make(chan struct{}),
	}
}

// Now returns the fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the fake time forward by d and fires the tickers it passes.
// A negative d moves the time back, as Set does.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(c.now.Add(d))
}

// Set moves the fake time to t and fires the tickers whose next tick is at
// or before t. Moving the time back fires nothing; the tickers keep their
// next tick.
func (c *FakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(t)
}

func (c *FakeClock) setLocked(t time.Time) {
	c.now = t
	for tk := range c.tickers {
		if t.Before(tk.next) {
			continue
		}
		select {
		case tk.ch <- t:
		default: // the receiver has not taken the previous tick: drop this one
		}
		// The next tick is the first multiple of the period after t.
		missed := t.Sub(tk.next)/tk.period + 1
		tk.next = tk.next.Add(missed * tk.period)
	}
}

// NewTicker returns a ticker whose first tick is due one period from the
// fake time now. It panics if d is not positive.
func (c *FakeClock) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("workflow: non-positive interval for FakeClock.NewTicker")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	tk := &fakeTicker{clock: c, ch: make(chan time.Time, 1), period: d, next: c.now.Add(d)}
	c.tickers[tk] = struct{}{}
	c.notifyLocked()
	return tk
}

// Tickers returns how many tickers of this clock are running.
func (c *FakeClock) Tickers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.tickers)
}

// WaitTickers blocks until at least n tickers are running or ctx ends; then
// it returns ctx's error. A test calls it before moving the time, to be sure
// that the loop under test has created its ticker and will see the tick.
func (c *FakeClock) WaitTickers(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		got, changed := len(c.tickers), c.changed
		c.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *FakeClock) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

type fakeTicker struct {
	clock  *FakeClock
	ch     chan time.Time
	period time.Duration
	next   time.Time // guarded by clock.mu
}

func (tk *fakeTicker) C() <-chan time.Time { return tk.ch }

func (tk *fakeTicker) Stop() {
	c := tk.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.tickers[tk]; ok {
		delete(c.tickers, tk)
		c.notifyLocked()
	}
	select {
	case <-tk.ch: // drop a tick sent before Stop and not yet received
	default:
	}
}
