package workflow

import (
	"context"
	"slices"
	"time"
)

// maxReminderDoubling caps how far apart reminders drift: the n-th reminder
// comes RemindAfter·2ⁿ after the one before, up to this many doublings.
const maxReminderDoubling = 6

// waitingStage returns the stage a pending request waits on longest: the
// current one if sequential, the first open one if parallel.
func waitingStage(r *Request) int {
	if r.Mode != Parallel {
		return r.Stage
	}
	return slices.IndexFunc(r.Stages, func(s StageState) bool { return !s.Done })
}

// reminderTimes returns when a pending request's approvers are next
// reminded and when its fallback approvers are asked (zero for never).
func reminderTimes(p *Policy, r *Request) (remind, escalate time.Time) {
	i := waitingStage(r)
	if p == nil || i < 0 || i >= len(r.Stages) {
		return
	}
	s := r.Stages[i]
	opened := s.OpenedAt
	if opened.IsZero() {
		opened = r.SubmittedAt
	}
	if d := p.Reminders.RemindAfter; d > 0 {
		// Reminders so far n: the next is due after d·(2⁰+…+2ⁿ).
		n := min(s.Reminders, maxReminderDoubling)
		remind = opened.Add(d * time.Duration(1<<(n+1)-1))
	}
	if d := p.Reminders.EscalateAfter; d > 0 && !s.Escalated && len(p.Reminders.FallbackApprovers) > 0 {
		escalate = opened.Add(d)
	}
	return remind, escalate
}

// remind reminds the approvers a pending request waits on.
func (e *Engine) remind(ctx context.Context, requestID string) {
	unlock := e.lock(requestID)
	defer unlock()
	r, err := e.load(requestID)
	if err != nil || r.State != RequestPending {
		return
	}
	i := waitingStage(&r)
	if err := e.commit(ctx, &r, event(KindReminded, ActorLatch, "", StageDecision{Stage: i})); err != nil {
		return
	}
	e.schedule(&r)
	e.notify.Reminder(ctx, r, i)
}

// escalate adds the policy's fallback approvers to the stage a pending
// request waits on, and asks them.
func (e *Engine) escalate(ctx context.Context, requestID string) {
	unlock := e.lock(requestID)
	defer unlock()
	r, err := e.load(requestID)
	if err != nil || r.State != RequestPending {
		return
	}
	p := e.cfg.Policies[r.Policy]
	it, ok := e.cfg.Catalogue.Item(r.Item)
	if p == nil || !ok {
		return
	}
	beneficiary, err := e.user(ctx, r.Beneficiary)
	if err != nil {
		return
	}
	ids, err := resolveApprovers(ctx, e.cfg.Directory, p.Reminders.FallbackApprovers, it, beneficiary)
	if err != nil {
		return
	}
	if !p.AllowSelfApproval {
		ids = slices.DeleteFunc(ids, func(id string) bool { return id == r.Requester || id == r.Beneficiary })
	}
	i := waitingStage(&r)
	if err := e.commit(ctx, &r, event(KindEscalated, ActorLatch, "", Escalated{Stage: i, To: ids})); err != nil {
		return
	}
	e.schedule(&r)
	e.notify.ApprovalNeeded(ctx, r, i)
}
