package bot

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/slack-go/slack"

	"github.com/latchhq/latch/workflow"
)

// Index finds catalogue items by what people type: words matched against
// an item's id, name, labels and description, best matches first. It is
// built once from the catalogue and is safe for concurrent use.
//
// Every word is looked up in an n-gram index (its trigrams, or the word
// itself when shorter), so a search reads only the items that can match.
type Index struct {
	entries []indexEntry
	grams   map[[3]byte][]int32 // entry positions by 1-, 2- and 3-gram (zero-padded), ascending
	options []*slack.OptionBlockObject
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
	ix := &Index{entries: make([]indexEntry, len(items)), grams: map[[3]byte][]int32{}, options: make([]*slack.OptionBlockObject, len(items))}
	for i, it := range items {
		ix.options[i] = itemOption(it)
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
		for j := range len(e.all) {
			for n := 1; n <= 3 && j+n <= len(e.all); n++ {
				var g [3]byte
				copy(g[:], e.all[j:j+n])
				list := ix.grams[g]
				if k := len(list); k == 0 || list[k-1] != int32(i) {
					ix.grams[g] = append(list, int32(i))
				}
			}
		}
	}
	return ix
}

// candidates returns the positions of the entries that contain every
// trigram of w (or w itself, if shorter), or nil if none can match. The
// slice is the caller's.
func (ix *Index) candidates(w string) []int32 {
	var lists [][]int32
	for j := 0; j == 0 || j+3 <= len(w); j++ {
		var g [3]byte
		copy(g[:], w[j:min(j+3, len(w))])
		list, ok := ix.grams[g]
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
	found := ix.search(query, limit, visible)
	out := make([]workflow.Item, len(found))
	for i, pos := range found {
		out[i] = ix.entries[pos].item
	}
	return out
}

// Options is Search for the item picker: the items' options, made once
// when the index was built. They are shared: copy one before changing it.
func (ix *Index) Options(query string, limit int, visible func(workflow.Item) bool) []*slack.OptionBlockObject {
	found := ix.search(query, limit, visible)
	out := make([]*slack.OptionBlockObject, len(found))
	for i, pos := range found {
		out[i] = ix.options[pos]
	}
	return out
}

// search returns the positions of the best entries, best first.
func (ix *Index) search(query string, limit int, visible func(workflow.Item) bool) []int32 {
	if limit <= 0 {
		return nil
	}
	ok := func(pos int32) bool { return visible == nil || visible(ix.entries[pos].item) }
	words := strings.Fields(strings.ToLower(query))
	if len(words) == 0 {
		var out []int32
		for i := range ix.entries {
			if len(out) == limit {
				break
			}
			if ok(int32(i)) {
				out = append(out, int32(i))
			}
		}
		return out
	}
	// Cheap tests first: the shortest words are single-byte searches.
	slices.SortStableFunc(words, func(a, b string) int { return cmp.Compare(len(a), len(b)) })
	// Only the entries that hold every n-gram of every word are read.
	var scan []int32
	for _, w := range words {
		c := ix.candidates(w)
		if c == nil {
			return nil
		}
		if scan == nil {
			scan = c
		} else if scan = intersect(scan, c); len(scan) == 0 {
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
	for _, pos := range scan {
		consider(pos)
	}
	slices.SortFunc(top, func(a, b hit) int {
		if better(a, b) {
			return -1
		}
		return 1
	})
	out := make([]int32, len(top))
	for i, h := range top {
		out[i] = h.pos
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
