package reconcile

import (
	"strings"

	"github.com/latchhq/latch/workflow"
)

// Kinds of finding.
const (
	// Leftover is access latch granted whose grant has ended.
	Leftover = "leftover"
	// UnknownGrant is access marked as made for a grant latch does not
	// know.
	UnknownGrant = "unknown_grant"
	// Unmanaged is access in something latch manages that latch never
	// granted.
	Unmanaged = "unmanaged"
)

// Actions taken on a finding.
const (
	ActionReport       = "report"        // left in place and reported
	ActionRemove       = "remove"        // about to be taken away (in the event recorded first)
	ActionRemoved      = "removed"       // taken away
	ActionRemoveFailed = "remove_failed" // taking it away failed; retried at the next pass
)

// Event kinds the reconciler records; each carries a Finding.
const (
	KindLeftover     = "drift.leftover"
	KindUnmanaged    = "drift.unmanaged"
	KindRemoved      = "drift.removed"
	KindRemoveFailed = "drift.remove_failed"
)

// Finding is one holding that does not agree with the grants latch knows,
// and what the reconciler did about it. It holds no secret.
type Finding struct {
	Kind        string `json:"kind"` // Leftover, UnknownGrant or Unmanaged
	Connector   string `json:"connector"`
	Entitlement string `json:"entitlement"`
	Account     string `json:"account,omitempty"` // the target's name for the holder
	Email       string `json:"email,omitempty"`
	// GrantID is the grant the holding was made for: the one the
	// connector named, or for a leftover without one, the ended grant it
	// matched.
	GrantID   string `json:"grant_id,omitempty"`
	RequestID string `json:"request_id,omitempty"` // the grant's request, when latch knows it
	Action    string `json:"action"`
	Error     string `json:"error,omitempty"` // why the removal failed
}

// key identifies the drift a finding describes across passes.
func (f *Finding) key() string {
	return strings.Join([]string{f.Kind, f.Connector, f.Entitlement, f.Account, f.GrantID}, "\x00")
}

// event returns the audit event of kind about f.
func (f *Finding) event(kind string) (workflow.Event, error) {
	grantID := ""
	if f.Kind == Leftover {
		grantID = f.GrantID
	}
	return workflow.NewEvent(kind, workflow.ActorLatch, "", grantID, f)
}

// foundKind is the kind of the event that records f was found.
func (f *Finding) foundKind() string {
	if f.Kind == Leftover {
		return KindLeftover
	}
	return KindUnmanaged
}

// Title is a one-line heading for a notice about f.
func (f *Finding) Title() string {
	what := map[string]string{
		Leftover:     "Access latch granted outlived its grant",
		UnknownGrant: "Access marked as latch's belongs to no grant latch knows",
		Unmanaged:    "Access latch never granted",
	}[f.Kind]
	if what == "" {
		what = "Access drifted from latch's grants"
	}
	switch f.Action {
	case ActionRemoved:
		return what + ": removed"
	case ActionRemoveFailed:
		return what + ": removal failed"
	}
	return what
}

// Text describes f in plain text, for a notice: where, who, which grant,
// and what was done. It is not escaped for any markup.
func (f *Finding) Text() string {
	var b strings.Builder
	b.WriteString(f.Account)
	if f.Email != "" && !strings.EqualFold(f.Email, f.Account) {
		b.WriteString(" (" + f.Email + ")")
	}
	b.WriteString(" holds " + f.Entitlement + " on " + f.Connector)
	switch {
	case f.GrantID != "" && f.RequestID != "":
		b.WriteString(", from grant " + f.GrantID + " of request " + f.RequestID + ", which has ended")
	case f.GrantID != "":
		b.WriteString(", marked as made for grant " + f.GrantID)
	}
	b.WriteString(". ")
	switch f.Action {
	case ActionRemoved:
		b.WriteString("latch has taken it away.")
	case ActionRemoveFailed:
		b.WriteString("latch could not take it away and will try again: " + f.Error)
	default:
		b.WriteString("latch has left it in place; remove it by hand, or have latch remove such access with reconcile.remove_unmanaged.")
	}
	return b.String()
}
