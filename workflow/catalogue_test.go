package workflow

import (
	"errors"
	"slices"
	"testing"
)

func TestCatalogue(t *testing.T) {
	items := []Item{
		{ID: "a", Kind: KindEntitlement, Targets: []Target{{Connector: "pg", Entitlement: "ro"}}},
		{ID: "b", Kind: KindBundle, Targets: []Target{
			{Connector: "pg", Entitlement: "rw"},
			{Connector: "ldap", Entitlement: "cn=ops"},
			{Connector: "pg", Entitlement: "audit"},
		}},
	}
	c, err := NewCatalogue(items)
	if err != nil {
		t.Fatalf("NewCatalogue: %v", err)
	}
	if got := c.Len(); got != 2 {
		t.Errorf("Len() = %d, want 2", got)
	}
	b, ok := c.Item("b")
	if !ok {
		t.Fatalf("Item(b) not found")
	}
	if got, want := b.Connectors(), []string{"pg", "ldap"}; !slices.Equal(got, want) {
		t.Errorf("Connectors() = %v, want %v", got, want)
	}
	if _, ok := c.Item("zz"); ok {
		t.Errorf("Item(zz) found, want not found")
	}
	if got := c.Items(); len(got) != 2 || got[0].ID != "a" || got[1].ID != "b" {
		t.Errorf("Items() = %v, want a then b", got)
	}
}

func TestCatalogueDuplicate(t *testing.T) {
	_, err := NewCatalogue([]Item{{ID: "a"}, {ID: "a"}})
	if !errors.Is(err, ErrDuplicateItem) {
		t.Fatalf("NewCatalogue error = %v, want ErrDuplicateItem", err)
	}
}

func TestCatalogueKeepsCopies(t *testing.T) {
	in := []Item{{ID: "a", Labels: map[string]string{"env": "prod"}, Owners: []string{"U01"}, Targets: []Target{{Connector: "pg", Entitlement: "ro"}}}}
	c, err := NewCatalogue(in)
	if err != nil {
		t.Fatalf("NewCatalogue: %v", err)
	}
	mutate := func(it Item) {
		it.Labels["env"] = "dev"
		it.Owners[0] = "U99"
		it.Targets[0].Entitlement = "admin"
	}
	mutate(in[0])
	got, _ := c.Item("a")
	mutate(got)
	mutate(c.Items()[0])

	got, _ = c.Item("a")
	if got.Labels["env"] != "prod" || got.Owners[0] != "U01" || got.Targets[0].Entitlement != "ro" {
		t.Errorf("Item(a) = %+v after changes to copies, want the catalogue unchanged", got)
	}
}
