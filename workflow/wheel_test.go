package workflow

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
	"unsafe"
)

const testTick = DefaultTick

// testDeadline returns a deadline whose ID holds n.
func testDeadline(kind DeadlineKind, n uint64) Deadline {
	d := Deadline{Kind: kind}
	binary.BigEndian.PutUint64(d.ID[8:], n)
	return d
}

// firing is one call of a FireFunc, with the time it was made at.
type firing struct {
	d   Deadline
	due time.Time
	now time.Time
}

// advance calls w.Advance(now) and returns what it fired.
func advance(t *testing.T, w *Wheel, now time.Time) []firing {
	t.Helper()
	var got []firing
	n := w.Advance(now, func(d Deadline, due time.Time) {
		got = append(got, firing{d: d, due: due, now: now})
	})
	if n != len(got) {
		t.Errorf("Advance(%v) returned %d, fired %d", now, n, len(got))
	}
	return got
}

// checkOrder reports firings that are not in order of due time, then kind,
// then ID.
func checkOrder(t *testing.T, got []firing) {
	t.Helper()
	for i := 1; i < len(got); i++ {
		a := fired{when: got[i-1].due.UnixNano(), key: got[i-1].d}
		b := fired{when: got[i].due.UnixNano(), key: got[i].d}
		if compareFired(a, b) > 0 {
			t.Errorf("firing %d (%v at %v) came after %v at %v", i, b.key, got[i].due, a.key, got[i-1].due)
		}
	}
}

// checkWheel verifies the wheel's internal structure: links, placement of
// every timer relative to the wheel's time, occupancy bits and the index.
func checkWheel(t *testing.T, w *Wheel) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	count := 0
	for s := int32(1); s <= w.due; s++ {
		level, slot := int(s-1)/slotCount, int(s-1)%slotCount
		isDue := s == w.due
		nonempty := w.node(s).next != s
		if !isDue && nonempty != (w.occupied[level]&(1<<slot) != 0) {
			t.Errorf("level %d slot %d: list nonempty %v, occupied bit %v", level, slot, nonempty, !nonempty)
		}
		prev := s
		for i := w.node(s).next; i != s; i = w.node(i).next {
			n := w.node(i)
			if n.prev != prev {
				t.Fatalf("entry %d: prev %d, want %d", i, n.prev, prev)
			}
			if int32(n.home) != s {
				t.Errorf("entry %d: home %d, in list %d", i, n.home, s)
			}
			tick := n.when / w.tick
			if isDue {
				if tick > w.elapsed {
					t.Errorf("entry %d: in the due list at tick %d, wheel at %d", i, tick, w.elapsed)
				}
			} else {
				wantLevel := (bits.Len64(uint64(tick^w.elapsed)|slotMask) - 1) / slotBits
				wantSlot := int(tick>>(wantLevel*slotBits)) & slotMask
				if tick <= w.elapsed || wantLevel != level || wantSlot != slot {
					t.Errorf("entry %d: tick %d in level %d slot %d, wheel at %d wants level %d slot %d",
						i, tick, level, slot, w.elapsed, wantLevel, wantSlot)
				}
			}
			if got := w.lookup(n.key); got != i {
				t.Errorf("entry %d: lookup of %v finds %d", i, n.key, got)
			}
			count++
			if count > w.live {
				t.Fatalf("more timers in the lists than the %d scheduled", w.live)
			}
			prev = i
		}
	}
	if count != w.live {
		t.Errorf("timers in the lists: got %d, want %d", count, w.live)
	}
	entries, filled := 0, 0
	for _, e := range w.index {
		if e == entryEmpty {
			continue
		}
		filled++
		if e == entryDeleted {
			continue
		}
		entries++
		i := int32(e & idxMask)
		if i < w.first || i >= w.used || w.node(i).home == 0 {
			t.Errorf("index entry %#x names no timer", e)
			continue
		}
		if tag := uint32(w.hash(w.node(i).key)) &^ idxMask; e&^idxMask != tag {
			t.Errorf("index entry %#x: tag %#x, want %#x", e, e&^idxMask, tag)
		}
	}
	if entries != w.live {
		t.Errorf("timers in the index: got %d, want %d", entries, w.live)
	}
	if filled != w.filled {
		t.Errorf("filled index entries: got %d, want %d", filled, w.filled)
	}
	if size := len(w.index); 4*w.filled > 3*size {
		t.Errorf("index of %d entries is %d filled, more than three quarters", size, w.filled)
	}
}

func TestNodeSize(t *testing.T) {
	if got, want := unsafe.Sizeof(node{}), uintptr(40); got != want {
		t.Errorf("node size: got %d, want %d", got, want)
	}
}

func TestDeadlineKindString(t *testing.T) {
	tests := []struct {
		kind DeadlineKind
		want string
	}{
		{DeadlineExpiry, "expiry"},
		{DeadlineWarn, "warn"},
		{DeadlineRemind, "remind"},
		{DeadlineEscalate, "escalate"},
		{DeadlineTimeout, "timeout"},
		{DeadlineRevokeRetry, "revoke-retry"},
		{DeadlineReviewRemind, "review-remind"},
		{0, "DeadlineKind(0)"},
		{200, "DeadlineKind(200)"},
	}
	for _, tt := range tests {
		if got := tt.kind.String(); got != tt.want {
			t.Errorf("DeadlineKind(%d).String(): got %q, want %q", uint8(tt.kind), got, tt.want)
		}
	}
}

func TestWheelFiresInOrder(t *testing.T) {
	offsets := []time.Duration{
		5 * time.Second, time.Millisecond, 3 * time.Hour, 10 * time.Millisecond,
		9 * time.Millisecond, 9 * time.Millisecond, 640 * time.Millisecond,
		641 * time.Millisecond, 48 * time.Hour, 5*time.Second + 1, 0,
	}
	w := NewWheel(clockStart, testTick)
	type want struct {
		d   Deadline
		due time.Time
	}
	var wants []want
	for i, off := range offsets {
		d := testDeadline(DeadlineKind(i%7+1), uint64(i))
		w.Schedule(d, clockStart.Add(off))
		wants = append(wants, want{d, clockStart.Add(off)})
	}
	slices.SortFunc(wants, func(a, b want) int {
		return compareFired(fired{a.due.UnixNano(), a.d}, fired{b.due.UnixNano(), b.d})
	})
	checkWheel(t, w)

	got := advance(t, w, clockStart.Add(72*time.Hour))
	if len(got) != len(wants) {
		t.Fatalf("fired %d timers, want %d", len(got), len(wants))
	}
	for i := range got {
		if got[i].d != wants[i].d || !got[i].due.Equal(wants[i].due) {
			t.Errorf("firing %d: got %v at %v, want %v at %v", i, got[i].d, got[i].due, wants[i].d, wants[i].due)
		}
	}
	if n := w.Len(); n != 0 {
		t.Errorf("Len after firing all: got %d, want 0", n)
	}
}

func TestWheelCancel(t *testing.T) {
	a, b := testDeadline(DeadlineExpiry, 1), testDeadline(DeadlineWarn, 1)
	at := clockStart.Add(time.Minute)
	tests := []struct {
		name      string
		run       func(w *Wheel) []bool // the results of the cancels
		want      []bool
		wantFired []Deadline
	}{
		{
			name: "by handle",
			run:  func(w *Wheel) []bool { return []bool{w.Cancel(w.Schedule(a, at))} },
			want: []bool{true},
		},
		{
			name: "twice",
			run: func(w *Wheel) []bool {
				h := w.Schedule(a, at)
				return []bool{w.Cancel(h), w.Cancel(h)}
			},
			want: []bool{true, false},
		},
		{
			name: "by deadline",
			run: func(w *Wheel) []bool {
				w.Schedule(a, at)
				w.Schedule(b, at)
				return []bool{w.CancelDeadline(a), w.CancelDeadline(a)}
			},
			want:      []bool{true, false},
			wantFired: []Deadline{b},
		},
		{
			name: "stale handle after reschedule",
			run: func(w *Wheel) []bool {
				h := w.Schedule(a, at)
				w.Schedule(a, at.Add(time.Second))
				return []bool{w.Cancel(h)}
			},
			want:      []bool{false},
			wantFired: []Deadline{a},
		},
		{
			name: "stale handle to a reused entry",
			run: func(w *Wheel) []bool {
				h := w.Schedule(a, at)
				w.Cancel(h)
				w.Schedule(b, at) // takes the freed entry
				return []bool{w.Cancel(h)}
			},
			want:      []bool{false},
			wantFired: []Deadline{b},
		},
		{
			name: "after firing",
			run: func(w *Wheel) []bool {
				h := w.Schedule(a, clockStart.Add(-time.Second))
				w.Advance(clockStart, func(Deadline, time.Time) {})
				return []bool{w.Cancel(h), w.CancelDeadline(a)}
			},
			want: []bool{false, false},
		},
		{
			name: "zero handle and unknown deadline",
			run: func(w *Wheel) []bool {
				w.Schedule(a, at)
				return []bool{w.Cancel(Handle{}), w.Cancel(Handle{idx: 1 << 30}), w.CancelDeadline(b)}
			},
			want:      []bool{false, false, false},
			wantFired: []Deadline{a},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWheel(clockStart, testTick)
			if got := tt.run(w); !slices.Equal(got, tt.want) {
				t.Errorf("cancels: got %v, want %v", got, tt.want)
			}
			checkWheel(t, w)
			var fired []Deadline
			for _, f := range advance(t, w, clockStart.Add(time.Hour)) {
				fired = append(fired, f.d)
			}
			if !slices.Equal(fired, tt.wantFired) {
				t.Errorf("fired: got %v, want %v", fired, tt.wantFired)
			}
		})
	}
}

func TestWheelReschedule(t *testing.T) {
	d := testDeadline(DeadlineExpiry, 7)
	tests := []struct {
		name  string
		times []time.Duration // scheduled in turn
	}{
		{"later", []time.Duration{time.Minute, time.Hour}},
		{"earlier", []time.Duration{time.Hour, time.Minute}},
		{"into the past", []time.Duration{time.Hour, -time.Hour}},
		{"out of the past", []time.Duration{-time.Hour, time.Hour}},
		{"many times", []time.Duration{time.Second, 3 * 24 * time.Hour, time.Millisecond, 90 * time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWheel(clockStart, testTick)
			for _, off := range tt.times {
				w.Schedule(d, clockStart.Add(off))
			}
			want := clockStart.Add(tt.times[len(tt.times)-1])
			if got, ok := w.When(d); !ok || !got.Equal(want) {
				t.Errorf("When: got %v, %v; want %v, true", got, ok, want)
			}
			if got := w.Len(); got != 1 {
				t.Errorf("Len: got %d, want 1", got)
			}
			checkWheel(t, w)
			if got := advance(t, w, want.Add(-1)); len(got) != 0 {
				t.Errorf("fired before the last time: %v", got)
			}
			got := advance(t, w, clockStart.Add(7*24*time.Hour))
			if len(got) != 1 || !got[0].due.Equal(want) {
				t.Errorf("fired %v, want one firing at %v", got, want)
			}
			if _, ok := w.When(d); ok {
				t.Error("When after firing: found the deadline")
			}
		})
	}
}

func TestWheelCatchUp(t *testing.T) {
	epoch := time.Unix(0, 0).UTC()
	tests := []struct {
		name    string
		at      time.Time
		wantDue time.Time
	}{
		{"a nanosecond ago", clockStart.Add(-1), clockStart.Add(-1)},
		{"an hour ago", clockStart.Add(-time.Hour), clockStart.Add(-time.Hour)},
		{"a month ago", clockStart.AddDate(0, -1, 0), clockStart.AddDate(0, -1, 0)},
		{"now", clockStart, clockStart},
		{"before 1970", time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), epoch},
		{"the zero time", time.Time{}, epoch},
	}
	w := NewWheel(clockStart, testTick)
	for i, tt := range tests {
		w.Schedule(testDeadline(DeadlineTimeout, uint64(i)), tt.at)
	}
	checkWheel(t, w)
	got := advance(t, w, clockStart)
	checkOrder(t, got)
	if len(got) != len(tests) {
		t.Fatalf("fired %d, want %d", len(got), len(tests))
	}
	byID := make(map[Deadline]time.Time)
	for _, f := range got {
		byID[f.d] = f.due
	}
	for i, tt := range tests {
		if due := byID[testDeadline(DeadlineTimeout, uint64(i))]; !due.Equal(tt.wantDue) {
			t.Errorf("%s: due %v, want %v", tt.name, due, tt.wantDue)
		}
	}
}

// TestWheelOnTime checks that a timer fires at its time and not a
// nanosecond before, from every level of the wheel, after the wheel has
// moved towards it in large steps.
func TestWheelOnTime(t *testing.T) {
	tests := []struct {
		name string
		in   time.Duration
	}{
		{"within the first tick", 3 * time.Millisecond},
		{"on the next tick", testTick},
		{"just after a tick", testTick + 1},
		{"end of level 0", 63*testTick + 5*time.Millisecond},
		{"start of level 1", 64 * testTick},
		{"level 2", 5000*testTick + 7},
		{"a minute", time.Minute + 7*time.Millisecond},
		{"an hour", time.Hour + 3},
		{"three days", 72*time.Hour + 3*time.Millisecond},
		{"two weeks", 14*24*time.Hour + 5*time.Millisecond},
		{"400 days", 400 * 24 * time.Hour},
		{"30 years", 30 * 365 * 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWheel(clockStart, testTick)
			d := testDeadline(DeadlineExpiry, 1)
			due := clockStart.Add(tt.in)
			w.Schedule(d, due)
			// A neighbour due a tick later must not fire with it.
			w.Schedule(testDeadline(DeadlineWarn, 1), due.Add(testTick))
			if tt.in >= time.Hour && w.occupied[0] != 0 {
				t.Errorf("a timer %v away occupies level 0", tt.in)
			}

			// Approach in large steps to a nanosecond before the due time.
			now := clockStart
			approach := due.Add(-1)
			step := max(approach.Sub(clockStart)/37, testTick)
			for now.Before(approach) {
				now = now.Add(step)
				if now.After(approach) {
					now = approach
				}
				if got := advance(t, w, now); len(got) != 0 {
					t.Fatalf("at %v: fired %v, due %v", now, got, due)
				}
				checkWheel(t, w)
			}
			got := advance(t, w, due)
			if len(got) != 1 || got[0].d != d || !got[0].due.Equal(due) {
				t.Fatalf("at the due time: fired %v, want %v at %v", got, d, due)
			}
		})
	}
}

func TestWheelManyInOneSlot(t *testing.T) {
	const n = 10000
	rng := rand.New(rand.NewPCG(1, 2))
	base := clockStart.Add(time.Hour).Truncate(testTick)
	w := NewWheel(clockStart, testTick)
	for i := range n {
		off := time.Duration(rng.Int64N(int64(testTick)))
		if i%10 == 0 {
			off = testTick / 2 // many at the very same time
		}
		w.Schedule(testDeadline(DeadlineKind(rng.IntN(7)+1), uint64(i)), base.Add(off))
	}
	checkWheel(t, w)
	first := advance(t, w, base.Add(testTick/2))
	rest := advance(t, w, base.Add(testTick))
	for _, f := range first {
		if f.due.After(base.Add(testTick / 2)) {
			t.Errorf("fired %v due %v at %v", f.d, f.due, base.Add(testTick/2))
		}
	}
	all := append(first, rest...)
	if len(all) != n {
		t.Fatalf("fired %d, want %d", len(all), n)
	}
	checkOrder(t, all)
	seen := make(map[Deadline]bool, n)
	for _, f := range all {
		if seen[f.d] {
			t.Fatalf("%v fired twice", f.d)
		}
		seen[f.d] = true
	}
}

func TestWheelFireMaySchedule(t *testing.T) {
	w := NewWheel(clockStart, testTick)
	a := testDeadline(DeadlineExpiry, 1)
	past := testDeadline(DeadlineRevokeRetry, 2)
	later := testDeadline(DeadlineRevokeRetry, 3)
	victim := testDeadline(DeadlineWarn, 4)
	w.Schedule(a, clockStart.Add(time.Second))
	w.Schedule(victim, clockStart.Add(2*time.Second))

	now := clockStart.Add(3 * time.Second)
	var got []Deadline
	w.Advance(now, func(d Deadline, due time.Time) {
		got = append(got, d)
		if d == a {
			w.Schedule(past, now.Add(-time.Millisecond))
			w.Schedule(later, now.Add(time.Second))
			w.CancelDeadline(victim)
		}
	})
	if want := []Deadline{a, past}; !slices.Equal(got, want) {
		t.Errorf("first Advance fired %v, want %v", got, want)
	}
	checkWheel(t, w)
	got = got[:0]
	for _, f := range advance(t, w, now.Add(time.Second)) {
		got = append(got, f.d)
	}
	if want := []Deadline{later}; !slices.Equal(got, want) {
		t.Errorf("second Advance fired %v, want %v", got, want)
	}
}

func TestWheelClockBack(t *testing.T) {
	w := NewWheel(clockStart, testTick)
	advance(t, w, clockStart.Add(10*time.Second))
	early := testDeadline(DeadlineRemind, 1)
	mid := testDeadline(DeadlineRemind, 2)
	w.Schedule(early, clockStart.Add(2*time.Second))
	w.Schedule(mid, clockStart.Add(7*time.Second))
	checkWheel(t, w)
	got := advance(t, w, clockStart.Add(5*time.Second)) // the clock went back
	if len(got) != 1 || got[0].d != early {
		t.Fatalf("after the clock went back: fired %v, want only %v", got, early)
	}
	if got := advance(t, w, clockStart.Add(6*time.Second)); len(got) != 0 {
		t.Fatalf("fired %v before its time", got)
	}
	if got := advance(t, w, clockStart.Add(7*time.Second)); len(got) != 1 || got[0].d != mid {
		t.Fatalf("at its time: fired %v, want %v", got, mid)
	}
}

// TestWheelAgainstReference drives the wheel with random operations and
// checks it against a plain map of deadlines: every timer fires exactly once,
// never before its time, in time order, and by the first Advance that passes
// its time.
func TestWheelAgainstReference(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			runAgainstReference(t, seed, 6000)
		})
	}
}

func runAgainstReference(t *testing.T, seed uint64, ops int) {
	rng := rand.New(rand.NewPCG(seed, 99))
	keys := make([]Deadline, 400)
	for i := range keys {
		keys[i] = testDeadline(DeadlineKind(i%7+1), rng.Uint64()%64) // some share an ID
		keys[i].ID[0] = byte(i)
	}
	now := clockStart.Add(time.Duration(rng.Int64N(int64(time.Hour))))
	w := NewWheel(now, testTick)
	ref := make(map[Deadline]time.Time)
	handles := make(map[Deadline]Handle)
	var stale []Handle

	randomDelay := func() time.Duration {
		switch rng.IntN(7) {
		case 0:
			return -time.Duration(rng.Int64N(int64(72 * time.Hour)))
		case 1:
			return time.Duration(rng.Int64N(int64(3 * testTick)))
		case 2:
			return time.Duration(rng.Int64N(int64(10 * time.Second)))
		case 3:
			return time.Duration(rng.Int64N(int64(2 * time.Hour)))
		case 4:
			return time.Duration(rng.Int64N(int64(60 * 24 * time.Hour)))
		case 5: // exactly on a tick
			return now.Add(time.Duration(rng.IntN(300)) * testTick).Truncate(testTick).Sub(now)
		default:
			return time.Duration(rng.Int64N(int64(5 * 365 * 24 * time.Hour)))
		}
	}
	randomStep := func() time.Duration {
		switch r := rng.IntN(20); {
		case r < 3:
			return 0
		case r < 5:
			return 1
		case r < 9:
			return testTick / 3
		case r < 12:
			return testTick
		case r < 18:
			return time.Duration(rng.Int64N(int64(2 * time.Second)))
		case r < 19:
			return time.Duration(rng.Int64N(int64(3 * 24 * time.Hour)))
		default:
			return -time.Duration(rng.Int64N(int64(time.Second)))
		}
	}
	schedule := func(d Deadline, at time.Time) {
		if h, ok := handles[d]; ok {
			stale = append(stale, h)
		}
		handles[d] = w.Schedule(d, at)
		ref[d] = at
	}
	forget := func(d Deadline) {
		stale = append(stale, handles[d])
		delete(handles, d)
		delete(ref, d)
	}

	for op := range ops {
		switch r := rng.IntN(10); {
		case r < 4:
			schedule(keys[rng.IntN(len(keys))], now.Add(randomDelay()))
		case r < 5 && len(stale) > 0 && rng.IntN(2) == 0:
			if h := stale[rng.IntN(len(stale))]; w.Cancel(h) {
				t.Fatalf("op %d: a stale handle cancelled a timer", op)
			}
		case r < 5:
			d := keys[rng.IntN(len(keys))]
			_, want := ref[d]
			if got := w.Cancel(handles[d]); got != want {
				t.Fatalf("op %d: Cancel(%v): got %v, want %v", op, d, got, want)
			}
			if want {
				forget(d)
			}
		case r < 6:
			d := keys[rng.IntN(len(keys))]
			_, want := ref[d]
			if got := w.CancelDeadline(d); got != want {
				t.Fatalf("op %d: CancelDeadline(%v): got %v, want %v", op, d, got, want)
			}
			if want {
				forget(d)
			}
		default:
			now = now.Add(randomStep())
			var got []firing
			w.Advance(now, func(d Deadline, due time.Time) {
				got = append(got, firing{d: d, due: due})
				want, ok := ref[d]
				switch {
				case !ok:
					t.Fatalf("op %d: fired %v, which is not scheduled", op, d)
				case !due.Equal(want):
					t.Fatalf("op %d: fired %v due %v, scheduled for %v", op, d, due, want)
				case due.After(now):
					t.Fatalf("op %d: fired %v due %v early, at %v", op, d, due, now)
				}
				forget(d)
				// Sometimes schedule a deadline that is not pending, for later.
				if rng.IntN(4) == 0 {
					if k := keys[rng.IntN(len(keys))]; ref[k].IsZero() {
						schedule(k, now.Add(1+time.Duration(rng.Int64N(int64(time.Hour)))))
					}
				}
			})
			checkOrder(t, got)
			for d, at := range ref {
				if !at.After(now) {
					t.Fatalf("op %d: %v due %v not fired at %v", op, d, at, now)
				}
			}
		}
		if got, want := w.Len(), len(ref); got != want {
			t.Fatalf("op %d: Len: got %d, want %d", op, got, want)
		}
		if op%97 == 0 {
			checkWheel(t, w)
		}
	}
	checkWheel(t, w)
	end := now.Add(10 * 365 * 24 * time.Hour)
	for _, f := range advance(t, w, end) {
		if at, ok := ref[f.d]; !ok || !at.Equal(f.due) {
			t.Fatalf("at the end: fired %v due %v, scheduled %v, %v", f.d, f.due, at, ok)
		}
		delete(ref, f.d)
	}
	if len(ref) != 0 || w.Len() != 0 {
		t.Fatalf("at the end: %d timers left, Len %d", len(ref), w.Len())
	}
}

// receive waits for a firing, failing the test if none comes in time.
func receive(t *testing.T, c <-chan firing) firing {
	t.Helper()
	select {
	case f := <-c:
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("no firing within 10s")
		return firing{}
	}
}

func TestWheelRun(t *testing.T) {
	clock := NewFakeClock(clockStart)
	w := NewWheel(clockStart, testTick)
	missed := testDeadline(DeadlineTimeout, 1)
	w.Schedule(missed, clockStart.Add(-time.Hour))
	expiry := testDeadline(DeadlineExpiry, 2)
	due := clockStart.Add(time.Second + 3*time.Millisecond)
	w.Schedule(expiry, due)

	fires := make(chan firing, 8)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- w.Run(ctx, clock, func(d Deadline, due time.Time) {
			fires <- firing{d: d, due: due, now: clock.Now()}
		})
	}()

	// What was missed fires at once, without the clock moving.
	if f := receive(t, fires); f.d != missed || !f.now.Equal(clockStart) {
		t.Fatalf("first firing: got %v at %v, want %v at %v", f.d, f.now, missed, clockStart)
	}
	if err := clock.WaitTickers(ctx, 1); err != nil {
		t.Fatalf("WaitTickers: %v", err)
	}
	for clock.Now().Before(due) {
		clock.Advance(testTick)
	}
	f := receive(t, fires)
	if f.d != expiry {
		t.Fatalf("second firing: got %v, want %v", f.d, expiry)
	}
	if late := f.now.Sub(f.due); late < 0 || late >= testTick {
		t.Errorf("fired %v after the due time, want within [0, %v)", late, testTick)
	}

	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want %v", err, context.Canceled)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if n := clock.Tickers(); n != 0 {
		t.Errorf("tickers left running: %d", n)
	}
}

func TestWheelRunStops(t *testing.T) {
	clock := NewFakeClock(clockStart)
	w := NewWheel(clockStart, testTick)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Run(ctx, clock, func(Deadline, time.Time) {}); !errors.Is(err, context.Canceled) {
		t.Errorf("Run with an ended context: got %v, want %v", err, context.Canceled)
	}
	if n := clock.Tickers(); n != 0 {
		t.Errorf("tickers left running: %d", n)
	}
}

// TestWheelConcurrent schedules, reschedules and cancels from several
// goroutines while Run fires; run it with -race.
func TestWheelConcurrent(t *testing.T) {
	const (
		workers = 4
		each    = 1500
	)
	clock := NewFakeClock(clockStart)
	w := NewWheel(clockStart, testTick)
	var mu sync.Mutex
	count := make(map[Deadline]int)
	fire := func(d Deadline, due time.Time) {
		if now := clock.Now(); due.After(now) {
			t.Errorf("%v fired at %v, due %v", d, now, due)
		}
		mu.Lock()
		count[d]++
		mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, clock, fire) }()
	if err := clock.WaitTickers(ctx, 1); err != nil {
		t.Fatalf("WaitTickers: %v", err)
	}

	stop := make(chan struct{})
	var ticking sync.WaitGroup
	ticking.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				clock.Advance(testTick)
			}
		}
	})

	far := clockStart.Add(100000 * time.Hour)
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 5))
			for i := range each {
				n := uint64(g*each + i)
				w.Schedule(testDeadline(DeadlineRemind, n), clock.Now().Add(time.Duration(rng.Int64N(int64(time.Second)))))
				old := w.Schedule(testDeadline(DeadlineExpiry, n), far.Add(time.Duration(rng.Int64N(int64(time.Hour)))))
				h := w.Schedule(testDeadline(DeadlineExpiry, n), far.Add(time.Duration(rng.Int64N(int64(time.Hour)))))
				if w.Cancel(old) {
					t.Errorf("a handle replaced by a reschedule cancelled %d", n)
				}
				if i%2 == 0 && !w.Cancel(h) {
					t.Errorf("Cancel of far timer %d failed", n)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	ticking.Wait()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	checkWheel(t, w)

	end := far.Add(2 * time.Hour)
	clock.Set(end)
	w.Advance(end, fire)
	for g := range workers {
		for i := range each {
			n := uint64(g*each + i)
			if got := count[testDeadline(DeadlineRemind, n)]; got != 1 {
				t.Errorf("near timer %d fired %d times, want 1", n, got)
			}
			want := 1
			if i%2 == 0 {
				want = 0
			}
			if got := count[testDeadline(DeadlineExpiry, n)]; got != want {
				t.Errorf("far timer %d fired %d times, want %d", n, got, want)
			}
		}
	}
	if n := w.Len(); n != 0 {
		t.Errorf("Len at the end: got %d, want 0", n)
	}
}
