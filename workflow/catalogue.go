package workflow

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// ErrDuplicateItem means two catalogue items share an id.
var ErrDuplicateItem = errors.New("duplicate item id")

// ItemKind says whether an item grants one target or several.
type ItemKind string

// The kinds of catalogue item.
const (
	KindEntitlement ItemKind = "entitlement" // exactly one target
	KindBundle      ItemKind = "bundle"      // one or more targets, possibly across connectors
)

// Target is one thing a connector can grant: a role in a database, a group in
// a directory, a principal on a certificate.
type Target struct {
	Connector   string // the connector's name
	Entitlement string // what to grant, in the connector's own terms
}

// Item is something people can request.
type Item struct {
	ID          string
	Name        string
	Description string
	Labels      map[string]string
	Owners      []string // Slack ids
	Kind        ItemKind
	Targets     []Target
	Policy      string // the name of the policy that governs it
}

// Connectors returns the names of the connectors the item's targets use,
// each once, in the order they first appear.
func (it Item) Connectors() []string {
	var names []string
	for _, t := range it.Targets {
		if !slices.Contains(names, t.Connector) {
			names = append(names, t.Connector)
		}
	}
	return names
}

// clone returns a copy of the item that shares no labels, owners or targets
// with it.
func (it Item) clone() Item {
	it.Labels = maps.Clone(it.Labels)
	it.Owners = slices.Clone(it.Owners)
	it.Targets = slices.Clone(it.Targets)
	return it
}

// Catalogue is the set of requestable items. It keeps copies: changing an
// item passed to NewCatalogue, or one returned by Item or Items, does not
// change the catalogue.
type Catalogue struct {
	items []Item
	byID  map[string]int
}

// NewCatalogue returns a catalogue of items, kept in the order given. Item ids
// must be unique.
func NewCatalogue(items []Item) (*Catalogue, error) {
	c := &Catalogue{items: make([]Item, len(items)), byID: make(map[string]int, len(items))}
	for i, it := range items {
		if _, dup := c.byID[it.ID]; dup {
			return nil, fmt.Errorf("%w %q", ErrDuplicateItem, it.ID)
		}
		c.items[i] = it.clone()
		c.byID[it.ID] = i
	}
	return c, nil
}

// Item returns the item with an id.
func (c *Catalogue) Item(id string) (Item, bool) {
	i, ok := c.byID[id]
	if !ok {
		return Item{}, false
	}
	return c.items[i].clone(), true
}

// Items returns every item, in catalogue order.
func (c *Catalogue) Items() []Item {
	items := make([]Item, len(c.items))
	for i, it := range c.items {
		items[i] = it.clone()
	}
	return items
}

// Len returns the number of items.
func (c *Catalogue) Len() int {
	return len(c.items)
}
