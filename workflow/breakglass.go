package workflow

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// BreakGlassCommand is an emergency request from an incident channel.
type BreakGlassCommand struct {
	Requester string // Slack id
	Item      string
	Reason    string
	Channel   string // the Slack channel it was asked in
}

// BreakGlass grants an item at once, without approval, for the policy's
// break-glass duration: only for items whose policy enables it, to members
// of its break-glass groups, from its channels, and no more often than its
// rate limit. The grant is announced and must be reviewed afterwards; the
// reviewers are reminded until someone does.
func (e *Engine) BreakGlass(ctx context.Context, c BreakGlassCommand) (Request, error) {
	it, ok := e.cfg.Catalogue.Item(c.Item)
	if !ok {
		return Request{}, refuse(RefusedUnknownItem, "there is no item %q in the catalogue", c.Item)
	}
	p := e.cfg.Policies[it.Policy]
	if p == nil || !p.BreakGlass.Enabled {
		return Request{}, refuse(RefusedBreakGlass, "%s cannot be had by breaking the glass; request it with /access", it.Name)
	}
	bg := p.BreakGlass
	if !slices.Contains(bg.Channels, c.Channel) {
		return Request{}, refuse(RefusedBreakGlass, "break-glass access to %s is only given in its incident channels", it.Name)
	}
	if strings.TrimSpace(c.Reason) == "" {
		return Request{}, refuse(RefusedJustification, "say what the emergency is")
	}
	requester, err := e.user(ctx, c.Requester)
	if err != nil {
		return Request{}, err
	}
	if !slices.ContainsFunc(bg.Groups, func(g string) bool { return slices.Contains(requester.Groups, g) }) {
		return Request{}, refuse(RefusedBreakGlass, "only %s may break the glass for %s", strings.Join(bg.Groups, ", "), it.Name)
	}
	// The count and the grant it allows must not interleave with another
	// break-glass of the same person.
	e.bgMu.Lock()
	defer e.bgMu.Unlock()
	now := e.cfg.Clock.Now()
	if bg.RateLimit.Count > 0 {
		recent := 0
		if err := e.cfg.Store.RequestsOf(c.Requester, func(o Request) error {
			if o.BreakGlass && o.Requester == c.Requester && o.SubmittedAt.After(now.Add(-bg.RateLimit.Per)) {
				recent++
			}
			return nil
		}); err != nil {
			return Request{}, err
		}
		if recent >= bg.RateLimit.Count {
			return Request{}, refuse(RefusedBreakGlass, "you broke the glass %d times in the last %s, the most allowed; ask an approver with /access",
				recent, FormatDuration(bg.RateLimit.Per))
		}
	}
	events := []Event{
		event(KindSubmitted, c.Requester, "", Submitted{
			Item: it.ID, Policy: p.Name, Requester: c.Requester, Beneficiary: c.Requester, Duration: bg.MaxDuration,
			Justification: c.Reason, BreakGlass: true, Channel: c.Channel, Mode: p.Approval.Mode, Targets: it.Targets,
		}),
		e.approved(it.Targets, "breakglass"),
	}
	return e.create(ctx, events, func(r *Request) { e.notify.BreakGlass(ctx, *r) })
}

// Review records the review of a break-glass grant by one of its policy's
// reviewers, which stops the reminders.
func (e *Engine) Review(ctx context.Context, requestID, by, note string) (Request, error) {
	unlock := e.lock(requestID)
	defer unlock()
	r, err := e.load(requestID)
	if err != nil {
		return r, err
	}
	switch {
	case !r.BreakGlass:
		return r, refuse(RefusedBreakGlass, "only break-glass grants are reviewed")
	case r.Reviewed:
		return r, refuse(RefusedClosed, "this grant was reviewed already")
	}
	p := e.cfg.Policies[r.Policy]
	it, ok := e.cfg.Catalogue.Item(r.Item)
	if p == nil || !ok {
		return r, fmt.Errorf("request %s: its item or policy is gone", r.ID)
	}
	beneficiary, err := e.user(ctx, r.Beneficiary)
	if err != nil {
		return r, err
	}
	reviewers, err := resolveApprovers(ctx, e.cfg.Directory, p.BreakGlass.Reviewers, it, beneficiary)
	if err != nil {
		return r, err
	}
	if by == r.Requester || !slices.Contains(reviewers, by) {
		return r, refuse(RefusedNotApprover, "only a reviewer other than the person who broke the glass may review it")
	}
	if err := e.commit(ctx, &r, event(KindReviewed, by, "", Note{Reason: note})); err != nil {
		return r, err
	}
	e.schedule(&r)
	return r, nil
}

// remindReview reminds the reviewers of an unreviewed break-glass grant
// and sets the next reminder.
func (e *Engine) remindReview(ctx context.Context, requestID string) {
	r, ok, err := e.cfg.Store.Request(requestID)
	if err != nil || !ok || !r.BreakGlass || r.Reviewed {
		return
	}
	if p := e.cfg.Policies[r.Policy]; p != nil && p.BreakGlass.ReviewReminder > 0 {
		e.at(DeadlineReviewRemind, r.ID, e.cfg.Clock.Now().Add(p.BreakGlass.ReviewReminder))
	}
	e.notify.ReviewNeeded(ctx, r)
}
