package workflow

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Policy says who may see and request an item, for how long, and who must
// approve. Conditions are nil when the policy does not set them.
type Policy struct {
	Name        string
	Description string

	// VisibleTo lists the groups whose members see items under this policy;
	// empty means everyone. Visible, when set, must also hold.
	VisibleTo []string
	Visible   *Condition

	// AutoApprove grants a request without asking anyone; AutoReject denies
	// it at once. AutoReject is checked first.
	AutoApprove *Condition
	AutoReject  *Condition

	Duration  DurationRules
	Extension ExtensionRules
	Approval  Approval

	// AllowSelfApproval lets the requester or the beneficiary approve their
	// own request when they are in a stage's approver set.
	AllowSelfApproval bool

	OnBehalf               OnBehalfRules
	JustificationMinLength int
	Reminders              Reminders

	// WarnBefore is how long before expiry the grantee is warned; zero means
	// no warning.
	WarnBefore time.Duration

	BreakGlass BreakGlass
}

// DurationRules bound how long a grant lasts.
type DurationRules struct {
	Default time.Duration
	Min     time.Duration
	Max     time.Duration
	// Choices are the durations the request form offers, shortest first.
	Choices []time.Duration
}

// Allows reports whether d is within [Min, Max].
func (r DurationRules) Allows(d time.Duration) bool {
	return d >= r.Min && d <= r.Max
}

// choiceLadder holds the durations offered when a policy lists none.
var choiceLadder = []time.Duration{
	15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 2 * 24 * time.Hour, 3 * 24 * time.Hour,
	7 * 24 * time.Hour, 14 * 24 * time.Hour, 30 * 24 * time.Hour,
}

// DeriveChoices returns the durations to offer when a policy lists none:
// the usual steps from 15 minutes to 30 days that fall within [lo, hi],
// plus lo, def and hi themselves, shortest first.
func DeriveChoices(lo, def, hi time.Duration) []time.Duration {
	choices := []time.Duration{lo, def, hi}
	for _, d := range choiceLadder {
		if d > lo && d < hi {
			choices = append(choices, d)
		}
	}
	slices.Sort(choices)
	return slices.Compact(choices)
}

// ExtensionRules say how far a grant may be extended.
type ExtensionRules struct {
	// MaxTotal caps the grant's whole length, extensions included.
	MaxTotal time.Duration
	// RequiresApproval sends an extension through the approval stages again.
	RequiresApproval bool
}

// ApprovalMode says how the stages of an approval run.
type ApprovalMode string

// The approval modes.
const (
	Sequential ApprovalMode = "sequential" // a stage is asked once the one before has approved
	Parallel   ApprovalMode = "parallel"   // every stage is asked at once
)

// Approval is the sequence of stages that must approve a request. Every stage
// must approve; any deny rejects the request.
type Approval struct {
	Mode   ApprovalMode
	Stages []Stage
}

// Stage is one step of an approval.
type Stage struct {
	Name      string
	Approvers []Approver
	// Required is how many different approvers of the stage must approve.
	Required int
}

// ApproverKind says how an Approver is resolved to people.
type ApproverKind string

// The kinds of approver.
const (
	ApproverUser      ApproverKind = "user"      // one person, by Slack id
	ApproverGroup     ApproverKind = "group"     // a directory group
	ApproverUserGroup ApproverKind = "usergroup" // a Slack user group, by handle
	ApproverManager   ApproverKind = "manager"   // the beneficiary's manager
	ApproverOwners    ApproverKind = "owners"    // the item's owners
)

// ErrApproverSyntax means an approver is not written in a form ParseApprover
// knows. Every *ApproverError matches it.
var ErrApproverSyntax = errors.New("invalid approver")

// ApproverFault says what is wrong with the text of an approver.
type ApproverFault int

// The ways an approver's text can be wrong.
const (
	ApproverUnknownKind ApproverFault = iota + 1 // the part before ":" is no ApproverKind
	ApproverNoRef                                // user, group or usergroup without a name after ":"
	ApproverExtraRef                             // manager or owners followed by ":" and more
)

// ApproverError is returned by ParseApprover for text that is not an
// approver.
type ApproverError struct {
	Text  string       // the text as given
	Kind  ApproverKind // what was written before ":", which may be no kind
	Fault ApproverFault
}

func (e *ApproverError) Error() string {
	switch e.Fault {
	case ApproverNoRef:
		return fmt.Sprintf("approver %q names nobody; write %s:<name>", e.Text, e.Kind)
	case ApproverExtraRef:
		return fmt.Sprintf("approver %q: %s takes nothing after it; write just %s", e.Text, e.Kind, e.Kind)
	}
	return fmt.Sprintf("unknown approver %q; write manager, owners, user:<Slack id or email>, group:<name> or usergroup:<Slack handle>", e.Text)
}

// Is reports whether target is ErrApproverSyntax.
func (e *ApproverError) Is(target error) bool {
	return target == ErrApproverSyntax
}

// Approver names who may approve. Its text form is "manager", "owners",
// "user:<slack id or email>", "group:<name>" or "usergroup:<handle>".
type Approver struct {
	Kind ApproverKind
	// Ref is the Slack id (or, before it is resolved, the email) for a user,
	// the group name for a group, the handle for a Slack user group, and
	// empty for manager and owners.
	Ref string
}

// ApproverKinds lists every approver kind, for messages that offer choices.
var ApproverKinds = []ApproverKind{ApproverUser, ApproverGroup, ApproverUserGroup, ApproverManager, ApproverOwners}

// ParseApprover parses the text form of an approver. The reference of a user
// is returned as written; resolving an email to a Slack id is the caller's.
// Text that is not an approver gives an *ApproverError.
func ParseApprover(s string) (Approver, error) {
	kind, ref, hasRef := strings.Cut(strings.TrimSpace(s), ":")
	a := Approver{Kind: ApproverKind(kind), Ref: strings.TrimSpace(ref)}
	fault := ApproverFault(0)
	switch a.Kind {
	case ApproverManager, ApproverOwners:
		if hasRef {
			fault = ApproverExtraRef
		}
	case ApproverUser, ApproverGroup, ApproverUserGroup:
		if a.Ref == "" {
			fault = ApproverNoRef
		}
	default:
		fault = ApproverUnknownKind
	}
	if fault != 0 {
		return Approver{}, &ApproverError{Text: s, Kind: a.Kind, Fault: fault}
	}
	return a, nil
}

// String returns the text form of the approver.
func (a Approver) String() string {
	if a.Ref == "" {
		return string(a.Kind)
	}
	return string(a.Kind) + ":" + a.Ref
}

// OnBehalfRules say who may request an item for someone else (the
// beneficiary).
type OnBehalfRules struct {
	Allowed bool
	Anyone  bool     // anyone may request for anyone
	Manager bool     // the beneficiary's manager may request for them
	Groups  []string // members of these groups may request for anyone
}

// Reminders keep a pending request from being forgotten.
type Reminders struct {
	RemindAfter    time.Duration // remind the current approvers; zero means never
	EscalateAfter  time.Duration // ask FallbackApprovers too; zero means never
	PendingTimeout time.Duration // expire the request
	// FallbackApprovers are asked when a stage has not decided by EscalateAfter.
	FallbackApprovers []Approver
}

// BreakGlass governs emergency access: an immediate, short grant without
// approval, announced loudly and reviewed afterwards.
type BreakGlass struct {
	Enabled     bool
	Groups      []string // who may break the glass
	Channels    []string // Slack channel ids where it may be done
	MaxDuration time.Duration
	RateLimit   RateLimit // per person
	// ReviewWithin is the time the reviewers have to review the grant;
	// ReviewReminder is how often they are reminded until they do.
	ReviewWithin   time.Duration
	ReviewReminder time.Duration
	Reviewers      []Approver
}

// RateLimit allows Count events in any window of length Per.
type RateLimit struct {
	Count int
	Per   time.Duration
}
