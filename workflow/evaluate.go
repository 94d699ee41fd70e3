package workflow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrRefused marks a command that policy or the request's state does not
// allow. Every *RefusedError matches it.
var ErrRefused = errors.New("refused")

// ErrUnrecorded means the audit log cannot be written (its disk is full,
// its file system read-only, a commit failed): nothing is done without a
// record, so latch takes no new work until its store is writable again.
// Errors from a store in that state match it with errors.Is.
var ErrUnrecorded = errors.New("the audit log cannot be written")

// RefusalReason says why a command was refused, in a form callers can act
// on without reading the message.
type RefusalReason string

// The reasons a command is refused.
const (
	RefusedUnknownItem   RefusalReason = "unknown_item"
	RefusedNotVisible    RefusalReason = "not_visible"   // the person may not see the item
	RefusedDuration      RefusalReason = "duration"      // outside the policy's range
	RefusedJustification RefusalReason = "justification" // missing or too short
	RefusedOnBehalf      RefusalReason = "on_behalf"     // may not request for that person
	RefusedNoApprovers   RefusalReason = "no_approvers"  // a stage could never approve
	RefusedNotApprover   RefusalReason = "not_approver"  // not in the current stage's approvers
	RefusedSelfApproval  RefusalReason = "self_approval" // deciding one's own request
	RefusedClosed        RefusalReason = "closed"        // the request was decided or is over
	RefusedAlreadyVoted  RefusalReason = "already_voted" // a second click by the same approver
	RefusedNotYours      RefusalReason = "not_yours"     // release or cancel by someone else
	RefusedExtension     RefusalReason = "extension"     // beyond the policy's cap
	RefusedBreakGlass    RefusalReason = "breakglass"    // not allowed here, now or for this person
	RefusedUnknown       RefusalReason = "unknown_request"
)

// RefusedError is a refused command: why, and a message for the person who
// gave it, saying what they can do instead.
type RefusedError struct {
	Reason  RefusalReason
	Message string
}

func (e *RefusedError) Error() string { return e.Message }

// Is reports whether target is ErrRefused.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

func refuse(reason RefusalReason, format string, args ...any) error {
	return &RefusedError{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// RefusalOf returns the reason of a refused command, or "" for another error.
func RefusalOf(err error) RefusalReason {
	var r *RefusedError
	if errors.As(err, &r) {
		return r.Reason
	}
	return ""
}

// Visible reports whether a person may see (and so request) an item under
// its policy: they belong to one of the policy's visible_to groups, if it
// names any, and its visible condition, if any, holds.
func Visible(ctx context.Context, p *Policy, it Item, u User, now time.Time) (bool, error) {
	if len(p.VisibleTo) > 0 && !slices.ContainsFunc(p.VisibleTo, func(g string) bool { return slices.Contains(u.Groups, g) }) {
		return false, nil
	}
	if p.Visible == nil {
		return true, nil
	}
	f := Facts{Requester: PersonFactsOf(u), Beneficiary: PersonFactsOf(u), Item: ItemFactsOf(it), Now: now}
	ok, err := p.Visible.Eval(ctx, f)
	if err != nil {
		return false, fmt.Errorf("policy %s: visible: %w", p.Name, err)
	}
	return ok, nil
}

// Submission is a request as a person fills it in.
type Submission struct {
	Item          string
	Requester     string // Slack id
	Beneficiary   string // Slack id; empty or the requester for oneself
	Duration      time.Duration
	Justification string
	Ticket        string
	Params        map[string]string
}

// CheckSubmission checks a submission against its item's policy before any
// approver is asked: both people may see the item, the requester may ask
// for the beneficiary, the duration is in range (zero takes the default,
// which is returned) and the justification is long enough.
func CheckSubmission(ctx context.Context, p *Policy, it Item, requester, beneficiary User, s Submission, now time.Time) (time.Duration, error) {
	for _, u := range []User{requester, beneficiary} {
		ok, err := Visible(ctx, p, it, u, now)
		if err != nil {
			return 0, err
		}
		if !ok {
			if u.SlackID == requester.SlackID {
				return 0, refuse(RefusedNotVisible, "%s is not in the catalogue available to you", it.ID)
			}
			return 0, refuse(RefusedNotVisible, "%s is not available to <@%s>, so it cannot be requested for them", it.ID, u.SlackID)
		}
	}
	if requester.SlackID != beneficiary.SlackID {
		if err := mayRequestFor(p.OnBehalf, requester, beneficiary); err != nil {
			return 0, err
		}
	}
	d := s.Duration
	if d == 0 {
		d = p.Duration.Default
	}
	if !p.Duration.Allows(d) {
		return 0, refuse(RefusedDuration, "%s is outside what %s allows: choose between %s and %s",
			FormatDuration(d), it.Name, FormatDuration(p.Duration.Min), FormatDuration(p.Duration.Max))
	}
	if n := len([]rune(strings.TrimSpace(s.Justification))); n == 0 || n < p.JustificationMinLength {
		return 0, refuse(RefusedJustification, "say why you need %s in at least %d characters", it.Name, max(p.JustificationMinLength, 1))
	}
	return d, nil
}

// mayRequestFor checks a third-party request against the on-behalf rules.
func mayRequestFor(rules OnBehalfRules, requester, beneficiary User) error {
	switch {
	case !rules.Allowed:
	case rules.Anyone:
		return nil
	case rules.Manager && beneficiary.Manager == requester.SlackID:
		return nil
	case slices.ContainsFunc(rules.Groups, func(g string) bool { return slices.Contains(requester.Groups, g) }):
		return nil
	}
	return refuse(RefusedOnBehalf, "you may not request this for <@%s>; ask them to request it themselves", beneficiary.SlackID)
}

// Decision is what a policy's conditions decide about a request before any
// approver is asked.
type Decision int

// The decisions of conditions.
const (
	AskApprovers Decision = iota
	AutoApprove
	AutoReject
)

// Decide evaluates auto_reject, then auto_approve. It returns the decision
// and the text of the condition that made it.
func Decide(ctx context.Context, p *Policy, f Facts) (Decision, string, error) {
	for _, c := range []struct {
		cond *Condition
		d    Decision
		name string
	}{{p.AutoReject, AutoReject, "auto_reject"}, {p.AutoApprove, AutoApprove, "auto_approve"}} {
		if c.cond == nil {
			continue
		}
		ok, err := c.cond.Eval(ctx, f)
		if err != nil {
			return AskApprovers, "", fmt.Errorf("policy %s: %s: %w", p.Name, c.name, err)
		}
		if ok {
			return c.d, c.cond.String(), nil
		}
	}
	return AskApprovers, "", nil
}

// UserGroups is implemented by directories that know Slack user groups, so
// that "usergroup:<handle>" approvers can be resolved.
type UserGroups interface {
	UserGroupMembers(ctx context.Context, handle string) ([]string, error)
}

// ResolveStages turns a policy's stages into the approver sets of one
// request. The requester and the beneficiary are left out unless the
// policy allows self-approval. A stage left with fewer people than it
// requires gets the policy's fallback approvers; if that is still too few,
// the request is refused, since it could never be approved.
func ResolveStages(ctx context.Context, dir Directory, p *Policy, it Item, requester, beneficiary User) ([]StageState, error) {
	var fallback []string
	if len(p.Reminders.FallbackApprovers) > 0 {
		var err error
		if fallback, err = resolveApprovers(ctx, dir, p.Reminders.FallbackApprovers, it, beneficiary); err != nil {
			return nil, err
		}
	}
	exclude := func(ids []string) []string {
		if p.AllowSelfApproval {
			return ids
		}
		return slices.DeleteFunc(ids, func(id string) bool { return id == requester.SlackID || id == beneficiary.SlackID })
	}
	fallback = exclude(fallback)
	stages := make([]StageState, len(p.Approval.Stages))
	for i, st := range p.Approval.Stages {
		ids, err := resolveApprovers(ctx, dir, st.Approvers, it, beneficiary)
		if err != nil {
			return nil, err
		}
		ids = exclude(ids)
		required := max(st.Required, 1)
		if len(ids) < required {
			for _, id := range fallback {
				if !slices.Contains(ids, id) {
					ids = append(ids, id)
				}
			}
		}
		if len(ids) < required {
			why := ""
			if slices.ContainsFunc(st.Approvers, func(a Approver) bool { return a.Kind == ApproverManager }) && beneficiary.Manager == "" {
				why = fmt.Sprintf(" (<@%s> has no manager on record)", beneficiary.SlackID)
			}
			return nil, refuse(RefusedNoApprovers, "stage %q needs %d approvals but only %d people other than you can give them%s; ask an admin to fix the policy %s",
				st.Name, required, len(ids), why, p.Name)
		}
		stages[i] = StageState{Name: st.Name, Required: required, Approvers: ids}
	}
	return stages, nil
}

// resolveApprovers returns the Slack ids that approvers name, without
// repeats, in the order they are named.
func resolveApprovers(ctx context.Context, dir Directory, approvers []Approver, it Item, beneficiary User) ([]string, error) {
	var ids []string
	add := func(more ...string) {
		for _, id := range more {
			if id != "" && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	for _, a := range approvers {
		switch a.Kind {
		case ApproverUser:
			add(a.Ref)
		case ApproverManager:
			add(beneficiary.Manager)
		case ApproverOwners:
			add(it.Owners...)
		case ApproverGroup:
			members, err := dir.Members(ctx, a.Ref)
			if err != nil {
				return nil, fmt.Errorf("approvers of group %s: %w", a.Ref, err)
			}
			add(members...)
		case ApproverUserGroup:
			ug, ok := dir.(UserGroups)
			if !ok {
				return nil, fmt.Errorf("approver %s: the directory does not read Slack user groups", a)
			}
			members, err := ug.UserGroupMembers(ctx, a.Ref)
			if err != nil {
				return nil, fmt.Errorf("approvers of user group %s: %w", a.Ref, err)
			}
			add(members...)
		default:
			return nil, fmt.Errorf("approver %s: unknown kind", a)
		}
	}
	return ids, nil
}
