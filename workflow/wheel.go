package workflow

import (
	"cmp"
	"context"
	"encoding/binary"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"
)

// DeadlineKind says what a deadline is for.
type DeadlineKind uint8

// The kinds of deadline the engine keeps. The zero value is not a kind.
const (
	DeadlineExpiry       DeadlineKind = iota + 1 // a grant ends
	DeadlineWarn                                 // warn the holder that a grant ends soon
	DeadlineRemind                               // remind the approvers of a pending request
	DeadlineEscalate                             // ask the fallback approvers of a pending request
	DeadlineTimeout                              // a pending request expires undecided
	DeadlineRevokeRetry                          // try a failed revoke again
	DeadlineReviewRemind                         // remind the reviewers of a break-glass grant
)

var deadlineKindNames = [...]string{
	DeadlineExpiry:       "expiry",
	DeadlineWarn:         "warn",
	DeadlineRemind:       "remind",
	DeadlineEscalate:     "escalate",
	DeadlineTimeout:      "timeout",
	DeadlineRevokeRetry:  "revoke-retry",
	DeadlineReviewRemind: "review-remind",
}

// String returns the kind's name, such as "expiry".
func (k DeadlineKind) String() string {
	if int(k) < len(deadlineKindNames) && deadlineKindNames[k] != "" {
		return deadlineKindNames[k]
	}
	return "DeadlineKind(" + strconv.Itoa(int(k)) + ")"
}

// Deadline names a timer: what it is for and the request or grant it
// belongs to. A Wheel holds at most one timer per Deadline.
type Deadline struct {
	Kind DeadlineKind
	ID   [16]byte // the UUID of the request or grant
}

// FireFunc receives a timer that has come due: its Deadline and the time it
// was scheduled for.
type FireFunc func(d Deadline, due time.Time)

// Handle refers to one scheduling of a timer, for Cancel. It stops referring
// to anything once the timer fires, is cancelled or is scheduled again. The
// zero Handle refers to nothing.
type Handle struct {
	idx int32
	gen uint32
}

// DefaultTick is the tick of a Wheel made with a tick of zero.
const DefaultTick = 10 * time.Millisecond

// The wheel has levels of 64 slots. A timer due at tick t, while the wheel
// has handled every tick up to e, lies at the level of the highest 6-bit
// digit in which t and e differ, in the slot named by t's digit at that
// level. Level 0 therefore holds the next 64 ticks one per slot; level k
// holds ranges of 64^k ticks. When the wheel reaches the start of a slot
// above level 0, the timers in it move down (at most once per level, since
// their next position shares one more digit with e); the timers of a level-0
// slot are due. Timers whose tick the wheel has already reached wait in the
// due list until the time passes them.
//
// Timers are nodes in an arena of fixed-size chunks, linked by int32
// indexes: each slot and the due list are circular doubly linked lists
// through a sentinel node. Node 0 means none.
//
// An open-addressing hash table of uint32 entries finds a timer by its
// Deadline: each entry holds the node's index in its low 27 bits and 5 bits
// of the Deadline's hash above them, so that a probe seldom reads a node
// other than the one it looks for. Removal leaves a tombstone (or an empty
// entry where no probe can pass); the table is rebuilt when entries and
// tombstones fill three quarters of it, at the smallest power of two that
// is at least twice the number of timers.
const (
	slotBits  = 6
	slotCount = 1 << slotBits
	slotMask  = slotCount - 1

	chunkBits = 10
	chunkSize = 1 << chunkBits
	chunkMask = chunkSize - 1

	idxBits      = 27
	idxMask      = 1<<idxBits - 1
	entryEmpty   = 0
	entryDeleted = math.MaxUint32 // its index part, idxMask, names no node
	minIndex     = 256
	// maxKeptBatch is the largest firing buffer kept between Advances;
	// a larger one (after a big catch-up) is released.
	maxKeptBatch = 1 << 14
)

// node is a timer, a slot's sentinel or a free arena entry. It is 40 bytes
// and holds no pointers, so the garbage collector does not scan the arena.
type node struct {
	when int64 // due time in Unix nanoseconds
	next int32 // list links; next also links the free list
	prev int32
	gen  uint32 // bumped on every reschedule and release, to expire Handles
	home uint16 // the sentinel of the list holding the timer; 0 when free
	key  Deadline
}

// fired is a timer taken out of the wheel to be handed to a FireFunc.
type fired struct {
	when int64
	key  Deadline
}

// Wheel is a hierarchical timing wheel holding deadlines, made by NewWheel.
// Schedule, Cancel and the lookups take constant time (expected, amortized);
// Advance fires what is due, with work proportional to the timers it fires
// and moves, never to the number of distant ones. A Wheel is safe for use by
// several goroutines. A timer that Advance has taken for firing is still
// delivered if another goroutine cancels or reschedules its Deadline
// meanwhile, so a FireFunc should check that the deadline still applies.
//
// Each timer costs 40 bytes of arena and 4 to 8 bytes of index. The arena
// does not shrink: entries freed by firing and cancelling are reused.
type Wheel struct {
	advMu sync.Mutex // serializes Advance; held while the FireFunc runs
	batch []fired    // reused firing buffer, guarded by advMu

	mu       sync.Mutex
	tick     int64 // nanoseconds
	levels   int
	elapsed  int64    // every tick up to this one has been taken out of the slots
	occupied []uint64 // per level, the slots that hold timers
	chunks   []*[chunkSize]node
	used     int32 // arena entries handed out, sentinels included
	free     int32 // head of the free list
	first    int32 // the first arena entry that is not a sentinel
	due      int32 // sentinel of the due list
	live     int   // timers scheduled
	index    []uint32
	shift    uint // 64 - log2(len(index))
	filled   int  // index entries that are not empty, tombstones included
	seed     uint64
}

// NewWheel returns an empty wheel whose time starts at start, with the given
// tick (DefaultTick if tick is zero or negative). The tick bounds how late a
// Run loop fires a timer; the design wants it at 100 ms or less.
func NewWheel(start time.Time, tick time.Duration) *Wheel {
	if tick <= 0 {
		tick = DefaultTick
	}
	w := &Wheel{tick: int64(tick), seed: rand.Uint64()}
	// Enough levels for every tick an int64 of nanoseconds can reach.
	w.levels = (bits.Len64(uint64(math.MaxInt64/w.tick)) + slotBits - 1) / slotBits
	w.occupied = make([]uint64, w.levels)
	w.elapsed = unixNano(start) / w.tick

	w.chunks = []*[chunkSize]node{new([chunkSize]node)}
	w.used = 1 // entry 0 is the nil node
	w.due = int32(w.levels*slotCount) + 1
	w.first = w.due + 1
	for s := int32(1); s < w.first; s++ {
		n := w.node(w.alloc())
		n.next, n.prev = s, s
	}
	w.rebuildIndex()
	return w
}

// Tick returns the wheel's tick.
func (w *Wheel) Tick() time.Duration { return time.Duration(w.tick) }

// Len returns how many timers are scheduled.
func (w *Wheel) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.live
}

// Schedule sets the timer for d to fire at the time at, replacing any timer
// already scheduled for d (whose Handle then no longer cancels anything).
// A time already past fires on the next Advance. Times before 1970 count as
// the Unix epoch.
func (w *Wheel) Schedule(d Deadline, at time.Time) Handle {
	ns := unixNano(at)
	w.mu.Lock()
	defer w.mu.Unlock()
	i := w.lookup(d)
	if i != 0 {
		w.unlink(i)
		w.node(i).gen++
	} else {
		i = w.alloc()
		w.node(i).key = d
		w.live++
		w.indexAdd(i)
	}
	n := w.node(i)
	n.when = ns
	w.place(i)
	return Handle{idx: i, gen: n.gen}
}

// Cancel stops the timer that h refers to and reports whether it did; it
// reports false if the timer has fired, been cancelled or been scheduled
// again. A timer already taken by Advance for firing cannot be stopped.
func (w *Wheel) Cancel(h Handle) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if h.idx < w.first || h.idx >= w.used {
		return false
	}
	n := w.node(h.idx)
	if n.home == 0 || n.gen != h.gen {
		return false
	}
	w.remove(h.idx)
	return true
}

// CancelDeadline stops the timer scheduled for d and reports whether there
// was one.
func (w *Wheel) CancelDeadline(d Deadline) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := w.lookup(d)
	if i == 0 {
		return false
	}
	w.remove(i)
	return true
}

// When returns the time the timer for d is scheduled for, and whether there
// is one.
func (w *Wheel) When(d Deadline) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := w.lookup(d)
	if i == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, w.node(i).when).UTC(), true
}

// Advance fires, through fire, every timer due at or before now, in order of
// due time (ties by kind, then ID), and returns how many it fired. It takes
// the wheel's lock only to collect the timers, so fire may call Schedule and
// Cancel; a timer it schedules at or before now fires in this same Advance.
// fire must not call Advance. Concurrent calls to Advance run one at a time.
func (w *Wheel) Advance(now time.Time, fire FireFunc) int {
	ns := unixNano(now)
	w.advMu.Lock()
	defer w.advMu.Unlock()
	count := 0
	for {
		w.mu.Lock()
		batch := w.collect(ns, w.batch[:0])
		w.mu.Unlock()
		w.batch = batch
		if len(batch) == 0 {
			break
		}
		for _, f := range batch {
			fire(f.key, time.Unix(0, f.when).UTC())
		}
		count += len(batch)
	}
	if cap(w.batch) > maxKeptBatch {
		w.batch = nil
	}
	return count
}

// Run advances the wheel on every tick of clock until ctx ends, firing the
// due timers through fire, and then returns ctx's error. It advances once
// at the start, so deadlines that passed while nothing ran fire at once.
func (w *Wheel) Run(ctx context.Context, clock Clock, fire FireFunc) error {
	t := clock.NewTicker(time.Duration(w.tick))
	defer t.Stop()
	for {
		w.Advance(clock.Now(), fire)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C():
		}
	}
}

// collect moves the timers due at or before ns into buf and returns it:
// those of one tick, or those that were already due, sorted. It returns buf
// empty when nothing more is due.
func (w *Wheel) collect(ns int64, buf []fired) []fired {
	now := ns / w.tick
	for {
		level, slot, start, ok := w.nextSlot()
		if !ok || start > now {
			w.elapsed = max(w.elapsed, now)
			return w.takeDue(ns, buf)
		}
		if start > w.elapsed {
			if buf = w.takeDue(ns, buf); len(buf) > 0 {
				return buf // what is already due comes before this slot
			}
			w.elapsed = start
		}
		w.cascade(level, slot)
	}
}

// nextSlot returns the occupied slot that the wheel reaches first and the
// tick it starts at. The lowest occupied level holds it, as every slot of a
// level lies before the next slot of the level above.
func (w *Wheel) nextSlot() (level, slot int, start int64, ok bool) {
	for level = range w.levels {
		occ := w.occupied[level]
		if occ == 0 {
			continue
		}
		shift := uint(level * slotBits)
		cur := uint(w.elapsed>>shift) & slotMask
		next := occ >> cur << cur
		if next == 0 {
			// Unreachable while the placement rule holds; handling the slot
			// anyway moves its timers where they belong.
			next = occ
		}
		slot = bits.TrailingZeros64(next)
		start = w.elapsed>>(shift+slotBits)<<(shift+slotBits) | int64(slot)<<shift
		return level, slot, start, true
	}
	return 0, 0, 0, false
}

// cascade empties a slot the wheel has reached, placing each of its timers
// again: into the due list, or into a lower level.
func (w *Wheel) cascade(level, slot int) {
	s := w.sentinel(level, slot)
	sn := w.node(s)
	i := sn.next
	sn.next, sn.prev = s, s
	w.occupied[level] &^= 1 << slot
	for i != s {
		next := w.node(i).next
		w.place(i)
		i = next
	}
}

// takeDue removes the timers of the due list that are due at or before ns,
// appends them to buf and sorts it.
func (w *Wheel) takeDue(ns int64, buf []fired) []fired {
	for i := w.node(w.due).next; i != w.due; {
		n := w.node(i)
		next := n.next
		if n.when <= ns {
			buf = append(buf, fired{when: n.when, key: n.key})
			w.remove(i)
		}
		i = next
	}
	if len(buf) > 1 {
		slices.SortFunc(buf, compareFired)
	}
	return buf
}

func compareFired(a, b fired) int {
	if c := cmp.Compare(a.when, b.when); c != 0 {
		return c
	}
	if c := cmp.Compare(a.key.Kind, b.key.Kind); c != 0 {
		return c
	}
	return slices.Compare(a.key.ID[:], b.key.ID[:])
}

// place links timer i into the list its due time calls for.
func (w *Wheel) place(i int32) {
	t := w.node(i).when / w.tick
	if t <= w.elapsed {
		w.pushBack(w.due, i)
		return
	}
	level := (bits.Len64(uint64(t^w.elapsed)|slotMask) - 1) / slotBits
	slot := int(t>>(level*slotBits)) & slotMask
	w.pushBack(w.sentinel(level, slot), i)
	w.occupied[level] |= 1 << slot
}

func (w *Wheel) sentinel(level, slot int) int32 {
	return int32(level*slotCount+slot) + 1
}

func (w *Wheel) node(i int32) *node {
	return &w.chunks[i>>chunkBits][i&chunkMask]
}

func (w *Wheel) pushBack(s, i int32) {
	n, sn := w.node(i), w.node(s)
	tail := sn.prev
	n.prev, n.next, n.home = tail, s, uint16(s)
	w.node(tail).next = i
	sn.prev = i
}

// unlink takes timer i out of its list.
func (w *Wheel) unlink(i int32) {
	n := w.node(i)
	w.node(n.prev).next = n.next
	w.node(n.next).prev = n.prev
	s := int32(n.home)
	if s != w.due && w.node(s).next == s {
		level, slot := int(s-1)/slotCount, int(s-1)%slotCount
		w.occupied[level] &^= 1 << slot
	}
}

// remove takes timer i out of its list and the index and frees it.
func (w *Wheel) remove(i int32) {
	w.unlink(i)
	w.indexRemove(i)
	n := w.node(i)
	n.home = 0
	n.gen++
	n.next = w.free
	w.free = i
	w.live--
}

// alloc returns a free arena entry, growing the arena by a chunk if needed.
func (w *Wheel) alloc() int32 {
	if i := w.free; i != 0 {
		w.free = w.node(i).next
		return i
	}
	if w.used == idxMask {
		panic("workflow: timer wheel is full")
	}
	if int(w.used) >= len(w.chunks)*chunkSize {
		w.chunks = append(w.chunks, new([chunkSize]node))
	}
	i := w.used
	w.used++
	return i
}

// hash mixes a Deadline with the wheel's seed. The top bits pick an index
// position; bits 27 to 31 are the entry's tag.
func (w *Wheel) hash(d Deadline) uint64 {
	a := binary.LittleEndian.Uint64(d.ID[:8])
	b := binary.LittleEndian.Uint64(d.ID[8:])
	h := (a ^ w.seed) * 0x9e3779b97f4a7c15
	h = (h ^ b ^ uint64(d.Kind)<<56) * 0xbf58476d1ce4e5b9
	h ^= h >> 31
	return h * 0x94d049bb133111eb
}

// lookup returns the timer scheduled for d, or 0.
func (w *Wheel) lookup(d Deadline) int32 {
	h := w.hash(d)
	tag := uint32(h) &^ idxMask
	mask := uint64(len(w.index) - 1)
	for p := h >> w.shift; ; p = (p + 1) & mask {
		switch e := w.index[p]; {
		case e == entryEmpty:
			return 0
		case e&^idxMask == tag && e != entryDeleted:
			if i := int32(e & idxMask); w.node(i).key == d {
				return i
			}
		}
	}
}

// indexAdd adds timer i, whose Deadline is not in the index yet and which
// w.live already counts.
func (w *Wheel) indexAdd(i int32) {
	if 2*w.live > len(w.index) || 4*(w.filled+1) > 3*len(w.index) {
		w.rebuildIndex()
	}
	w.put(i)
}

func (w *Wheel) put(i int32) {
	h := w.hash(w.node(i).key)
	mask := uint64(len(w.index) - 1)
	for p := h >> w.shift; ; p = (p + 1) & mask {
		switch w.index[p] {
		case entryEmpty:
			w.filled++
			fallthrough
		case entryDeleted:
			w.index[p] = uint32(h)&^idxMask | uint32(i)
			return
		}
	}
}

// indexRemove takes timer i out of the index.
func (w *Wheel) indexRemove(i int32) {
	h := w.hash(w.node(i).key)
	want := uint32(h)&^idxMask | uint32(i)
	mask := uint64(len(w.index) - 1)
	for p := h >> w.shift; ; p = (p + 1) & mask {
		if w.index[p] != want {
			continue
		}
		if w.index[(p+1)&mask] == entryEmpty {
			// No probe goes past p: the entry can be empty, not deleted.
			w.index[p] = entryEmpty
			w.filled--
		} else {
			w.index[p] = entryDeleted
		}
		return
	}
}

// rebuildIndex makes a new index, without tombstones, of the smallest
// size at least twice w.live.
func (w *Wheel) rebuildIndex() {
	size := minIndex
	for size < 2*w.live {
		size *= 2
	}
	old := w.index
	w.index = make([]uint32, size)
	w.shift = uint(64 - bits.TrailingZeros(uint(size)))
	w.filled = 0
	if int(w.used) <= 4*w.live {
		// Read the arena in order rather than jump from the old entries.
		for i := w.first; i < w.used; i++ {
			if w.node(i).home != 0 {
				w.put(i)
			}
		}
		return
	}
	for _, e := range old {
		if e != entryEmpty && e != entryDeleted {
			w.put(int32(e & idxMask))
		}
	}
}

// unixNano returns t in Unix nanoseconds, clamped to [0, MaxInt64].
func unixNano(t time.Time) int64 {
	switch sec := t.Unix(); {
	case sec < 0:
		return 0
	case sec >= math.MaxInt64/int64(time.Second):
		return math.MaxInt64
	}
	return t.UnixNano()
}
