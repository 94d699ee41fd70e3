package workflow

import (
	"context"
	"fmt"
	"time"
)

// Extend lengthens the active grant of a request by d, at the wish of its
// beneficiary, up to the policy's extension cap on the grant's whole
// length. If the policy wants extensions approved, a new request for the
// same item is submitted instead, for d, and goes through the approval
// stages; once approved it overlaps the running grant, so access does not
// lapse. Extend returns the request that now carries the extension.
func (e *Engine) Extend(ctx context.Context, requestID, by string, d time.Duration, justification string) (Request, error) {
	unlock := e.lock(requestID)
	r, err := e.load(requestID)
	if err != nil {
		unlock()
		return r, err
	}
	p := e.cfg.Policies[r.Policy]
	switch {
	case by != r.Beneficiary:
		unlock()
		return r, refuse(RefusedNotYours, "only the person who holds this access may extend it")
	case r.State != RequestActive:
		unlock()
		return r, refuse(RefusedClosed, "this request is %s, not active", r.State)
	case p == nil:
		unlock()
		return r, fmt.Errorf("request %s: no policy %q", r.ID, r.Policy)
	case r.BreakGlass:
		unlock()
		return r, refuse(RefusedExtension, "break-glass access is not extended; request the item with /access")
	case !r.ExpiresAt.After(e.cfg.Clock.Now()):
		unlock()
		return r, refuse(RefusedClosed, "this access has expired; request it again")
	case d <= 0:
		unlock()
		return r, refuse(RefusedExtension, "say how much longer you need the access")
	}
	limit := p.Extension.MaxTotal
	if limit <= 0 {
		limit = p.Duration.Max
	}
	// Compared as what is left of the cap, so that no d can overflow it.
	if left := max(limit-r.ExpiresAt.Sub(r.DecidedAt), 0); d > left {
		unlock()
		return r, refuse(RefusedExtension, "that is more than the %s this access may last in all; you can extend by up to %s",
			FormatDuration(limit), FormatDuration(left))
	}
	if p.Extension.RequiresApproval {
		unlock()
		return e.Submit(ctx, Submission{
			Item: r.Item, Requester: by, Beneficiary: r.Beneficiary, Duration: d, Ticket: r.Ticket, Params: r.Params,
			Justification: fmt.Sprintf("extension of %s: %s", r.ID, justification),
		})
	}
	defer unlock()
	if err := e.commit(ctx, &r, event(KindExtended, by, "", Extended{ExpiresAt: r.ExpiresAt.Add(d), By: by})); err != nil {
		return r, err
	}
	e.schedule(&r)
	e.kick(r.ID) // pass the new expiry on to the connectors
	return r, nil
}
