package reconcile_test

import (
	"testing"

	"github.com/latchhq/latch/reconcile"
)

func TestFindingText(t *testing.T) {
	tests := []struct {
		f           reconcile.Finding
		title, text string
	}{
		{
			reconcile.Finding{Kind: reconcile.Leftover, Connector: "db", Entitlement: "readonly", Account: "jane_1", Email: "jane@example.com",
				GrantID: "g1", RequestID: "r1", Action: reconcile.ActionRemoved},
			"Access latch granted outlived its grant: removed",
			"jane_1 (jane@example.com) holds readonly on db, from grant g1 of request r1, which has ended. latch has taken it away.",
		},
		{
			reconcile.Finding{Kind: reconcile.UnknownGrant, Connector: "db", Entitlement: "readonly", Account: "x_1", GrantID: "g9",
				Action: reconcile.ActionRemoveFailed, Error: "server unavailable"},
			"Access marked as latch's belongs to no grant latch knows: removal failed",
			"x_1 holds readonly on db, marked as made for grant g9. latch could not take it away and will try again: server unavailable",
		},
		{
			reconcile.Finding{Kind: reconcile.Unmanaged, Connector: "corp", Entitlement: "cn=dba", Account: "lee", Email: "lee@example.com",
				Action: reconcile.ActionReport},
			"Access latch never granted",
			"lee (lee@example.com) holds cn=dba on corp. latch has left it in place; remove it by hand, or have latch remove such access with reconcile.remove_unmanaged.",
		},
	}
	for _, tt := range tests {
		if got := tt.f.Title(); got != tt.title {
			t.Errorf("Title() = %q, want %q", got, tt.title)
		}
		if got := tt.f.Text(); got != tt.text {
			t.Errorf("Text() = %q, want %q", got, tt.text)
		}
	}
}
