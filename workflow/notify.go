package workflow

import "context"

// Notifier tells people what the engine did, one call per thing a person
// must be told. The engine calls it after the events are committed, from
// one goroutine at a time and in the order things happened, outside any
// lock: a notifier may take its time (a rate limit, a retry) without
// holding up the engine, but it delays the notices queued behind it. Each
// call gets a copy of the request as it stood after the change.
type Notifier interface {
	// Submitted confirms a new request to its requester and, when it is
	// for someone else, tells the beneficiary.
	Submitted(ctx context.Context, r Request)
	// ApprovalNeeded asks the approvers of a stage to decide.
	ApprovalNeeded(ctx context.Context, r Request, stage int)
	// Decided tells the requester (and a third-party beneficiary) that the
	// request was approved, rejected, cancelled or timed out, and updates
	// the approvers' copies of the request.
	Decided(ctx context.Context, r Request)
	// Granted tells the beneficiary that access is active. messages holds,
	// by grant id, what connectors had for the beneficiary alone (such as
	// credentials): deliver it to them only, and once.
	Granted(ctx context.Context, r Request, messages map[string]string)
	// ExpiringSoon warns the beneficiary before the grant ends.
	ExpiringSoon(ctx context.Context, r Request)
	// Ended tells the beneficiary that access is gone (expired, released,
	// revoked, or rolled back after a failure).
	Ended(ctx context.Context, r Request)
	// RevokeFailed alerts the security channel that access could not be
	// taken back and is being retried.
	RevokeFailed(ctx context.Context, r Request, g Grant)
	// TakenBackUnrecorded alerts the security channel that a grant was
	// revoked at its expiry while the audit log could not record it; the
	// record follows once the log is writable again.
	TakenBackUnrecorded(ctx context.Context, r Request, g Grant)
	// Reminder reminds the approvers of a stage that still waits for them
	// (after an escalation, the fallback approvers are among them).
	Reminder(ctx context.Context, r Request, stage int)
	// BreakGlass announces an emergency grant in the channel it came from
	// and in the security channel.
	BreakGlass(ctx context.Context, r Request)
	// ReviewNeeded asks the reviewers to review a break-glass grant.
	ReviewNeeded(ctx context.Context, r Request)
}

// NopNotifier tells nobody anything. Embed it in a notifier that cares
// about only some notices.
type NopNotifier struct{}

var _ Notifier = NopNotifier{}

func (NopNotifier) Submitted(context.Context, Request)                  {}
func (NopNotifier) ApprovalNeeded(context.Context, Request, int)        {}
func (NopNotifier) Decided(context.Context, Request)                    {}
func (NopNotifier) Granted(context.Context, Request, map[string]string) {}
func (NopNotifier) ExpiringSoon(context.Context, Request)               {}
func (NopNotifier) Ended(context.Context, Request)                      {}
func (NopNotifier) RevokeFailed(context.Context, Request, Grant)        {}
func (NopNotifier) TakenBackUnrecorded(context.Context, Request, Grant) {}
func (NopNotifier) Reminder(context.Context, Request, int)              {}
func (NopNotifier) BreakGlass(context.Context, Request)                 {}
func (NopNotifier) ReviewNeeded(context.Context, Request)               {}
