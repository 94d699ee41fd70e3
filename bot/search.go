package bot

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/latchhq/latch/workflow"
)

// Index finds catalogue items by what people type: words matched against
// an item's id, name, labels and description, best matches first. It is
// built once from the catalogue and is safe for concurrent use.
//
// Words of three letters or more are looked up in a trigram index, so a
// search reads only the items that can match; shorter words scan.
type Index struct {
	entries  []indexEntry
	trigrams map[[3]byte][]int32 // entry positions, ascending
}

type indexEntry struct {
	item   workflow.Item
	id     string // lowercased
	name   string
	labels string // "key=value key value …"
	desc   string
	all    string // all of the above, for the first test
}

// NewIndex indexes the items of a catalogue.
func NewIndex(cat *workflow.Catalogue) *Index {
	items := cat.Items()
	ix := &Index{entries: make([]indexEntry, len(items)), trigrams: map[[3]byte][]int32{}}
	for i, it := range items {
		var labels strings.Builder
		for _, k := range slices.Sorted(maps.Keys(it.Labels)) {
			labels.WriteString(k + "=" + it.Labels[k] + " " + k + " " + it.Labels[k] + " ")
		}
		e := indexEntry{
			item:   it,
			id:     strings.ToLower(it.ID),
			name:   strings.ToLower(it.Name),
			labels: strings.ToLower(labels.String()),
			desc:   strings.ToLower(it.Description),
		}
		e.all = e.id + "\x00" + e.name + "\x00" + e.labels + "\x00" + e.desc
		ix.entries[i] = e
		for j := 0; j+3 <= len(e.all); j++ {
			g := [3]byte{e.all[j], e.all[j+1], e.all[j+2]}
			list := ix.trigrams[g]
			if n := len(list); n == 0 || list[n-1] != int32(i) {
				ix.trigrams[g] = append(list, int32(i))
			}
		}
	}
	return ix
}

// candidates returns the positions of the entries that contain every
// trigram of w (len(w) >= 3), or nil if none can match.
func (ix *Index) candidates(w string) []int32 {
	var lists [][]int32
	for j := 0; j+3 <= len(w); j++ {
		list, ok := ix.trigrams[[3]byte{w[j], w[j+1], w[j+2]}]
		if !ok {
			return nil
		}
		lists = append(lists, list)
	}
	slices.SortFunc(lists, func(a, b []int32) int { return cmp.Compare(len(a), len(b)) })
	out := slices.Clone(lists[0])
	for _, l := range lists[1:] {
		out = intersect(out, l)
		if len(out) == 0 {
			return nil
		}
	}
	return out
}

// intersect keeps the positions of a that are also in b; both ascend.
func intersect(a, b []int32) []int32 {
	out, j := a[:0], 0
	for _, x := range a {
		for j < len(b) && b[j] < x {
			j++
		}
		if j == len(b) {
			break
		}
		if b[j] == x {
			out = append(out, x)
		}
	}
	return out
}

// hit is a matching entry and its score.
type hit struct {
	score int
	pos   int32
}

// better orders hits best first: higher score, then catalogue order.
func better(a, b hit) bool {
	return a.score > b.score || a.score == b.score && a.pos < b.pos
}

// Search returns up to limit items that match every word of query and
// that visible accepts, best first: an exact id, then name prefixes, then
// words starting in the name, then matches anywhere in the id, name,
// labels and description. An empty query lists items in catalogue order.
func (ix *Index) Search(query string, limit int, visible func(workflow.Item) bool) []workflow.Item {
	if limit <= 0 {
		return nil
	}
	ok := func(pos int32) bool { return visible == nil || visible(ix.entries[pos].item) }
	words := strings.Fields(strings.ToLower(query))
	if len(words) == 0 {
		var out []workflow.Item
		for i := range ix.entries {
			if len(out) == limit {
				break
			}
			if ok(int32(i)) {
				out = append(out, ix.entries[i].item)
			}
		}
		return out
	}
	// The longest word narrows the search the most.
	longest := slices.MaxFunc(words, func(a, b string) int { return cmp.Compare(len(a), len(b)) })
	var scan []int32
	if len(longest) >= 3 {
		if scan = ix.candidates(longest); scan == nil {
			return nil
		}
	}
	// The best limit visible hits, kept in a min-heap by quality.
	top := make([]hit, 0, limit)
	consider := func(pos int32) {
		e := &ix.entries[pos]
		score := 0
		for _, w := range words {
			s := e.score(w)
			if s == 0 {
				return
			}
			score += s
		}
		h := hit{score, pos}
		if len(top) == limit && !better(h, top[0]) {
			return
		}
		if !ok(pos) {
			return
		}
		if len(top) < limit {
			top = append(top, h)
			up(top, len(top)-1)
			return
		}
		top[0] = h
		down(top, 0)
	}
	if scan != nil {
		for _, pos := range scan {
			consider(pos)
		}
	} else {
		for i := range ix.entries {
			consider(int32(i))
		}
	}
	slices.SortFunc(top, func(a, b hit) int {
		if better(a, b) {
			return -1
		}
		return 1
	})
	out := make([]workflow.Item, len(top))
	for i, h := range top {
		out[i] = ix.entries[h.pos].item
	}
	return out
}

// up and down keep h a min-heap by quality: h[0] is the worst hit kept.
func up(h []hit, i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !better(h[parent], h[i]) {
			return
		}
		h[parent], h[i] = h[i], h[parent]
		i = parent
	}
}

func down(h []hit, i int) {
	for {
		worst, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && better(h[worst], h[l]) {
			worst = l
		}
		if r < len(h) && better(h[worst], h[r]) {
			worst = r
		}
		if worst == i {
			return
		}
		h[i], h[worst] = h[worst], h[i]
		i = worst
	}
}

// score rates how well one typed word matches the entry; 0 is no match.
// The first place the word occurs in all (id, name, labels, description,
// in that order) says which fields can match at all.
func (e *indexEntry) score(w string) int {
	i := strings.Index(e.all, w)
	nameStart := len(e.id) + 1
	nameEnd := nameStart + len(e.name)
	switch {
	case i < 0:
		return 0
	case i >= nameEnd: // only in the labels or the description
		if i < nameEnd+1+len(e.labels) {
			return 15
		}
		return 5
	case i >= nameStart: // first in the name
		switch {
		case i == nameStart:
			return 60
		case wordPrefix(e.name, w):
			return 40
		}
		return 25
	}
	// In the id, and perhaps in the name too.
	switch {
	case e.id == w:
		return 100
	case strings.HasPrefix(e.name, w):
		return 60
	case i == 0:
		return 50
	case wordPrefix(e.name, w):
		return 40
	case strings.Contains(e.name, w):
		return 25
	}
	return 20
}

// wordPrefix reports whether some word of s (after a space, dash, dot,
// slash or underscore) starts with w.
func wordPrefix(s, w string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], w)
		if j < 0 {
			return false
		}
		at := i + j
		if at > 0 && strings.ContainsRune(" -_./:", rune(s[at-1])) {
			return true
		}
		i = at + 1
		if i >= len(s) {
			return false
		}
	}
}
