package workflow

import (
	"context"
	"maps"
	"time"
)

// Notices are delivered with a bound of their own: NoticeTimeout for each,
// and once the engine is closing, DrainTimeout for all that are still
// queued. A notice is not dropped because the engine is shutting down; it
// is dropped only if delivering it takes longer than that.
const (
	NoticeTimeout = 30 * time.Second
	DrainTimeout  = 30 * time.Second
)

// outbox is the engine's Notifier: it queues each notice and hands them to
// the configured Notifier in order on a goroutine of its own, so that a
// slow notifier (Slack honouring a rate limit) never holds a request's
// lock or delays a deadline.
type outbox struct {
	e      *Engine
	n      Notifier
	queue  []func(ctx context.Context) // guarded by e.mu
	active bool                        // a sender goroutine runs; guarded by e.mu
}

// post queues a notice and makes sure a sender runs.
func (o *outbox) post(fn func(ctx context.Context)) {
	e := o.e
	e.mu.Lock()
	o.queue = append(o.queue, fn)
	start := !o.active
	o.active = true
	e.mu.Unlock()
	if start && !e.background(o.send) {
		e.mu.Lock()
		o.active = false // closed: the notices are dropped with the engine
		e.mu.Unlock()
	}
}

// send delivers queued notices until none is left. The engine's context
// ending (Close) does not cancel them: what was queued is still delivered,
// within DrainTimeout.
func (o *outbox) send(ctx context.Context) {
	detached := context.WithoutCancel(ctx)
	var drain context.Context
	for {
		o.e.mu.Lock()
		if len(o.queue) == 0 {
			o.active = false
			o.e.mu.Unlock()
			return
		}
		fn := o.queue[0]
		o.queue[0] = nil
		o.queue = o.queue[1:]
		o.e.mu.Unlock()
		parent := detached
		if ctx.Err() != nil {
			if drain == nil {
				var cancel context.CancelFunc
				drain, cancel = context.WithTimeout(detached, DrainTimeout)
				defer cancel()
			}
			parent = drain
		}
		nctx, cancel := context.WithTimeout(parent, NoticeTimeout)
		fn(nctx)
		cancel()
	}
}

func (o *outbox) Submitted(_ context.Context, r Request) {
	r = r.Clone()
	o.post(func(ctx context.Context) { o.n.Submitted(ctx, r) })
}

func (o *outbox) ApprovalNeeded(_ context.Context, r Request, stage int) {
	r = r.Clone()
	o.post(func(ctx context.Context) { o.n.ApprovalNeeded(ctx, r, stage) })
}

func (o *outbox) Decided(_ context.Context, r Request) {
	r = r.Clone()
	o.post(func(ctx context.Context) { o.n.Decided(ctx, r) })
}

func (o *outbox) Granted(_ context.Context, r Request, messages map[string]string) {
	r, messages = r.Clone(), maps.Clone(messages)
	o.post(func(ctx context.Context) { o.n.Granted(ctx, r, messages) })
}

func (o *outbox) ExpiringSoon(_ context.Context, r Request) {
	r = r.Clone()
	o.post(func(ctx context.Context) { o.n.ExpiringSoon(ctx, r) })
}

func (o *outbox) Ended(_ context.Context, r Request) {
	r = r.Clone()
	o.post(func(ctx context.Context) { o.n.Ended(ctx, r) })
}

func (o *outbox) RevokeFailed(_ context.Context, r Request, g Grant) {
	r = r.Clone()
	o.post(func(ctx context.Context) { o.n.RevokeFailed(ctx, r, g) })
}

func (o *outbox) TakenBackUnrecorded(_ context.Context, r Request, g Grant) {
	r = r.Clone()
	o.post(func(ctx context.Context) { o.n.TakenBackUnrecorded(ctx, r, g) })
}

func (o *outbox) Reminder(_ context.Context, r Request, stage int) {
	r = r.Clone()
	o.post(func(ctx context.Context) { o.n.Reminder(ctx, r, stage) })
}

func (o *outbox) BreakGlass(_ context.Context, r Request) {
	r = r.Clone()
	o.post(func(ctx context.Context) { o.n.BreakGlass(ctx, r) })
}

func (o *outbox) ReviewNeeded(_ context.Context, r Request) {
	r = r.Clone()
	o.post(func(ctx context.Context) { o.n.ReviewNeeded(ctx, r) })
}
