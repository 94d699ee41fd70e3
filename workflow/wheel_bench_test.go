package workflow

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// The schedule benchmarks do the same work three ways: the wheel,
// time.AfterFunc and a container/heap priority queue. Each iteration
// schedules benchTimers timers, each under its own Deadline (kept in an index
// so that scheduling a Deadline again replaces its timer), at times spread
// over a week, then either cancels every timer by the handle it got or fires
// them all in time order. ns/op and B/op are for the whole iteration;
// ns/timer and B/timer divide them by benchTimers. B/op counts every byte
// allocated, the growth of the arena and of the index included.
// time.AfterFunc has only the cancel variant: its timers run on the real
// clock, and firing a week of them would take a week.

const (
	benchTimers = 1_000_000
	benchSpread = 7 * 24 * time.Hour
	benchStep   = time.Minute // how far the clock moves between firings
)

var benchBase = time.Date(2025, 6, 2, 8, 0, 0, 0, time.UTC)

type benchWork struct {
	keys  []Deadline
	after []time.Duration // from benchBase
}

var benchInput = sync.OnceValue(func() *benchWork {
	rng := rand.New(rand.NewPCG(7, 11))
	w := &benchWork{
		keys:  make([]Deadline, benchTimers),
		after: make([]time.Duration, benchTimers),
	}
	for i := range benchTimers {
		k := &w.keys[i]
		k.Kind = DeadlineKind(i%7 + 1)
		for j := range k.ID {
			k.ID[j] = byte(rng.Uint32())
		}
		w.after[i] = time.Minute + time.Duration(rng.Int64N(int64(benchSpread)))
	}
	return w
})

// perTimer runs body once per iteration and adds the ns/timer and B/timer
// metrics.
func perTimer(b *testing.B, body func()) {
	b.Helper()
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	iterations := 0
	for b.Loop() {
		body()
		iterations++
	}
	runtime.ReadMemStats(&after)
	timers := float64(iterations) * benchTimers
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/timers, "ns/timer")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/timers, "B/timer")
}

// scheduleAndCancel schedules every timer of in, keeping the handles, then
// cancels them all by their handles.
func scheduleAndCancel[H any](b *testing.B, in *benchWork, handles []H, schedule func(Deadline, time.Time) H, cancel func(H) bool) {
	for i, k := range in.keys {
		handles[i] = schedule(k, benchBase.Add(in.after[i]))
	}
	for _, h := range handles {
		if !cancel(h) {
			b.Fatal("cancel failed")
		}
	}
}

// scheduleAndFire schedules every timer of in, then moves the time on by
// benchStep until all have fired.
func scheduleAndFire[H any](b *testing.B, in *benchWork, schedule func(Deadline, time.Time) H, advance func(time.Time, FireFunc)) {
	for i, k := range in.keys {
		schedule(k, benchBase.Add(in.after[i]))
	}
	n := 0
	count := func(Deadline, time.Time) { n++ }
	end := benchBase.Add(benchSpread + time.Hour)
	for now := benchBase; n < benchTimers; now = now.Add(benchStep) {
		if now.After(end) {
			b.Fatalf("fired %d of %d timers", n, benchTimers)
		}
		advance(now, count)
	}
}

func BenchmarkWheelSchedule(b *testing.B) {
	in := benchInput()
	b.Run("cancel", func(b *testing.B) {
		handles := make([]Handle, benchTimers)
		perTimer(b, func() {
			w := NewWheel(benchBase, DefaultTick)
			scheduleAndCancel(b, in, handles, w.Schedule, w.Cancel)
		})
	})
	b.Run("fire", func(b *testing.B) {
		perTimer(b, func() {
			w := NewWheel(benchBase, DefaultTick)
			scheduleAndFire(b, in, w.Schedule, func(now time.Time, fire FireFunc) { w.Advance(now, fire) })
		})
	})
}

// afterFuncTimer is a handle to a timer made by time.AfterFunc.
type afterFuncTimer struct {
	t   *time.Timer
	key Deadline
}

func BenchmarkAfterFuncSchedule(b *testing.B) {
	in := benchInput()
	b.Run("cancel", func(b *testing.B) {
		handles := make([]afterFuncTimer, benchTimers)
		var mu sync.Mutex
		fired := 0
		fire := func(Deadline, time.Time) { mu.Lock(); fired++; mu.Unlock() }
		perTimer(b, func() {
			index := make(map[Deadline]*time.Timer)
			schedule := func(k Deadline, at time.Time) afterFuncTimer {
				if old, ok := index[k]; ok {
					old.Stop()
				}
				t := time.AfterFunc(at.Sub(benchBase), func() { fire(k, at) })
				index[k] = t
				return afterFuncTimer{t, k}
			}
			cancel := func(h afterFuncTimer) bool {
				delete(index, h.key)
				return h.t.Stop()
			}
			scheduleAndCancel(b, in, handles, schedule, cancel)
		})
	})
}

// heapTimer is an entry of the container/heap priority queue.
type heapTimer struct {
	when  int64 // Unix nanoseconds
	key   Deadline
	index int
}

type timerHeap []*heapTimer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].when < h[j].when }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*heapTimer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}

// heapTimers is the heap with the same index and operations as the wheel.
type heapTimers struct {
	h     timerHeap
	index map[Deadline]*heapTimer
}

func (q *heapTimers) schedule(k Deadline, at time.Time) *heapTimer {
	if t, ok := q.index[k]; ok {
		t.when = at.UnixNano()
		heap.Fix(&q.h, t.index)
		return t
	}
	t := &heapTimer{when: at.UnixNano(), key: k}
	heap.Push(&q.h, t)
	q.index[k] = t
	return t
}

func (q *heapTimers) cancel(t *heapTimer) bool {
	if t.index < 0 {
		return false
	}
	heap.Remove(&q.h, t.index)
	delete(q.index, t.key)
	return true
}

func (q *heapTimers) advance(now time.Time, fire FireFunc) {
	ns := now.UnixNano()
	for len(q.h) > 0 && q.h[0].when <= ns {
		t := heap.Pop(&q.h).(*heapTimer)
		delete(q.index, t.key)
		fire(t.key, time.Unix(0, t.when).UTC())
	}
}

func BenchmarkHeapSchedule(b *testing.B) {
	in := benchInput()
	b.Run("cancel", func(b *testing.B) {
		handles := make([]*heapTimer, benchTimers)
		perTimer(b, func() {
			q := &heapTimers{index: make(map[Deadline]*heapTimer)}
			scheduleAndCancel(b, in, handles, q.schedule, q.cancel)
		})
	})
	b.Run("fire", func(b *testing.B) {
		perTimer(b, func() {
			q := &heapTimers{index: make(map[Deadline]*heapTimer)}
			scheduleAndFire(b, in, q.schedule, q.advance)
		})
	})
}

// BenchmarkExpiryLateness runs the wheel on the real clock with 1,000,000
// grants expiring within a few seconds of each other, and reports how late
// each fired: the time of the call minus the due time.
func BenchmarkExpiryLateness(b *testing.B) {
	const (
		lead   = time.Second     // time to schedule them all before the first is due
		spread = 3 * time.Second // the expiries spread over this
	)
	in := benchInput()
	var late []time.Duration
	for b.Loop() {
		late = make([]time.Duration, 0, benchTimers)
		done := make(chan struct{})
		fire := func(_ Deadline, due time.Time) {
			late = append(late, time.Since(due))
			if len(late) == benchTimers {
				close(done)
			}
		}
		w := NewWheel(time.Now(), DefaultTick)
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan error, 1)
		go func() { stopped <- w.Run(ctx, RealClock{}, fire) }()

		base := time.Now().Add(lead)
		for i, k := range in.keys {
			d := Deadline{Kind: DeadlineExpiry, ID: k.ID}
			w.Schedule(d, base.Add(in.after[i]%spread))
		}
		if time.Now().After(base) {
			b.Logf("scheduling took longer than %v", lead)
		}
		select {
		case <-done:
		case <-time.After(time.Minute):
			b.Fatalf("%d of %d timers still pending after a minute", w.Len(), benchTimers)
		}
		cancel()
		<-stopped
	}
	slices.Sort(late)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(late[len(late)/2]), "p50-ms")
	b.ReportMetric(ms(late[len(late)*99/100]), "p99-ms")
	b.ReportMetric(ms(late[len(late)-1]), "max-ms")
}
