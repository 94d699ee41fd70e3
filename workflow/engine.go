package workflow

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Store is what the engine needs from storage: an append-only log whose
// appends are durable when they return, and the requests folded from it.
type Store interface {
	Append(ctx context.Context, events ...Event) ([]Event, error)
	Request(id string) (Request, bool, error)
	OpenRequests(fn func(Request) error) error
	// OpenSummaries calls fn with the summary of every open request.
	OpenSummaries(fn func(Summary) error) error
	RequestsOf(user string, fn func(Request) error) error
}

// Revoke retries: the delay starts at RetryBase and doubles up to RetryMax;
// after MaxRevokeAttempts failures the grant is revoke_failed and retried
// every RetryFailedEvery until it succeeds.
const (
	RetryBase        = 5 * time.Second
	RetryMax         = 5 * time.Minute
	RetryFailedEvery = 15 * time.Minute
)

// ActorLatch is the actor of events latch causes by itself.
const ActorLatch = "latch"

// Config is what an Engine is made of.
type Config struct {
	Store      Store
	Catalogue  *Catalogue
	Policies   map[string]*Policy
	Directory  Directory
	Connectors map[string]Provisioner // by connector name
	Notifier   Notifier
	Clock      Clock
	// Admins may revoke any grant. An entry ending in ':' admits every
	// actor it starts (such as "api:", the admin API's operators).
	Admins []string
	// Tick is the wheel's tick (default DefaultTick).
	Tick time.Duration
	// ShutdownGrace is how long Close lets the work in flight finish
	// before cancelling it (default DefaultShutdownGrace).
	ShutdownGrace time.Duration
}

// DefaultShutdownGrace bounds how long Close waits for connector calls in
// flight.
const DefaultShutdownGrace = 30 * time.Second

// Engine runs requests through their lives: it turns commands into events,
// checks them against policy and state, commits them, and then does what
// they call for: asking approvers, calling connectors, keeping deadlines.
type Engine struct {
	cfg    Config
	wheel  *Wheel
	notify Notifier       // cfg.Notifier, through an ordered queue
	locks  [64]sync.Mutex // by request id, held from reading a request to committing its events

	ctx    context.Context // ends when the engine closes
	cancel context.CancelFunc
	loop   sync.WaitGroup // the deadline loop

	mu      sync.Mutex
	idle    *sync.Cond                   // signalled when busy drops to zero
	busy    int                          // background goroutines running
	running map[string]bool              // requests whose worker runs
	again   map[string]bool              // requests to look at again when their worker finishes
	backoff map[string]time.Time         // grant id → earliest next connector attempt
	granted map[string]map[string]string // request id → connector messages not yet delivered
	// unrecorded holds, by grant id, what takeBack did while the log could
	// not record it, so that a grant is not taken back again and again.
	unrecorded map[string]*takenBack
	bgMu       sync.Mutex // serialises break-glass rate-limit checks
	closed     bool
	looping    bool // Start's loop runs; guarded by mu
}

// NewEngine returns an engine; Start brings it up to date with the store.
func NewEngine(cfg Config) (*Engine, error) {
	switch {
	case cfg.Store == nil, cfg.Catalogue == nil, cfg.Directory == nil, cfg.Notifier == nil, cfg.Clock == nil:
		return nil, errors.New("engine: store, catalogue, directory, notifier and clock are required")
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = DefaultShutdownGrace
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{
		cfg:     cfg,
		wheel:   NewWheel(cfg.Clock.Now(), cfg.Tick),
		ctx:     ctx,
		cancel:  cancel,
		running: make(map[string]bool),
		again:   make(map[string]bool),
		backoff: make(map[string]time.Time),
		granted: make(map[string]map[string]string),

		unrecorded: make(map[string]*takenBack),
	}
	e.idle = sync.NewCond(&e.mu)
	e.notify = &outbox{e: e, n: cfg.Notifier}
	return e, nil
}

// lock locks the request id and returns the unlock.
func (e *Engine) lock(id string) func() {
	h := fnv.New32a()
	h.Write([]byte(id))
	m := &e.locks[h.Sum32()%uint32(len(e.locks))]
	m.Lock()
	return m.Unlock
}

// Start loads every open request from the store, schedules its deadlines
// (those already past fire at once), ends in bulk the grants that expired
// while the engine was stopped, and resumes any connector call whose
// outcome was not recorded. It then keeps the deadlines until Close. Call
// it once, before any command.
func (e *Engine) Start() error {
	now := e.cfg.Clock.Now()
	var overdue []Request
	var partial []string // requests the summary is not enough for
	if err := e.cfg.Store.OpenSummaries(func(s Summary) error {
		r := s.Request()
		switch {
		case !s.Whole:
			partial = append(partial, s.ID)
		case !r.ExpiresAt.After(now):
			overdue = append(overdue, r)
		default:
			e.schedule(&r)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("engine: load open requests: %w", err)
	}
	e.endOverdue(overdue)
	for _, id := range partial {
		r, err := e.load(id)
		if err != nil {
			return fmt.Errorf("engine: %w", err)
		}
		e.schedule(&r)
		switch {
		case r.State == RequestProvisioning, r.State == RequestRevoking, r.State == RequestFailed,
			slices.ContainsFunc(r.Grants, func(g Grant) bool { return stale(&r, &g) }):
			e.kick(r.ID)
		}
	}
	e.mu.Lock()
	e.looping = true
	e.mu.Unlock()
	e.loop.Add(1)
	go func() {
		defer e.loop.Done()
		defer func() {
			e.mu.Lock()
			e.looping = false
			e.mu.Unlock()
		}()
		e.wheel.Run(e.ctx, e.cfg.Clock, e.fire)
	}()
	return nil
}

// Running reports whether the engine keeps its deadlines: started and not
// closed.
func (e *Engine) Running() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.looping && !e.closed
}

// endOverdue records the end of requests whose expiry passed while the
// engine was stopped, many to a commit, and starts their revokes. Those it
// cannot record this way keep their expiry deadline, which fires at once.
func (e *Engine) endOverdue(overdue []Request) {
	var ended []string
	defer func() {
		// The revokes start once every end is on record.
		for _, id := range ended {
			e.kick(id)
		}
	}()
	for chunk := range slices.Chunk(overdue, 1024) {
		events := make([]Event, len(chunk))
		for i := range chunk {
			events[i] = event(KindEnding, ActorLatch, "", Ending{Outcome: OutcomeExpired})
			events[i].RequestID = chunk[i].ID
		}
		if _, err := e.cfg.Store.Append(e.ctx, events...); err != nil {
			for i := range chunk {
				e.schedule(&chunk[i])
			}
			continue
		}
		for i := range chunk {
			ended = append(ended, chunk[i].ID)
		}
	}
}

// Close stops the engine and waits for its background work. Deadlines are
// not lost: they are rebuilt from the store at the next Start.
func (e *Engine) Close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	// No new work starts now. What is in flight (a connector call, the
	// commits after it, the queued notices) gets ShutdownGrace to finish
	// before it is cancelled.
	idle := make(chan struct{})
	go func() {
		e.Wait()
		close(idle)
	}()
	grace := time.NewTimer(e.cfg.ShutdownGrace)
	select {
	case <-idle:
	case <-grace.C:
	}
	grace.Stop()
	e.cancel()
	e.loop.Wait()
	<-idle
}

// Wait blocks until no background work is left: no connector call in
// flight and no request waiting for its worker.
func (e *Engine) Wait() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for e.busy > 0 || len(e.running) > 0 {
		e.idle.Wait()
	}
}

// Advance fires the deadlines due by the clock's time now, and returns how
// many fired. Start's loop calls it on every tick; tests call it after
// moving a fake clock.
func (e *Engine) Advance() int {
	return e.wheel.Advance(e.cfg.Clock.Now(), e.fire)
}

// deadline returns the wheel key of a request's deadline.
func deadline(kind DeadlineKind, requestID string) (Deadline, bool) {
	id, err := uuid.Parse(requestID)
	if err != nil {
		return Deadline{}, false
	}
	return Deadline{Kind: kind, ID: id}, true
}

// at schedules or cancels a request's deadline (a zero time cancels).
func (e *Engine) at(kind DeadlineKind, requestID string, t time.Time) {
	d, ok := deadline(kind, requestID)
	if !ok {
		return
	}
	if t.IsZero() {
		e.wheel.CancelDeadline(d)
		return
	}
	e.wheel.Schedule(d, t)
}

// schedule sets the deadlines a request in its current state has, and
// cancels those it no longer has.
func (e *Engine) schedule(r *Request) {
	p := e.cfg.Policies[r.Policy]
	var timeout, remind, escalate, expiry, warn time.Time
	switch r.State {
	case RequestPending:
		if p != nil && p.Reminders.PendingTimeout > 0 {
			timeout = r.SubmittedAt.Add(p.Reminders.PendingTimeout)
		}
		remind, escalate = reminderTimes(p, r)
	case RequestProvisioning:
		// A grant still being provisioned at its expiry is ended all the
		// same, and what was granted of it taken back.
		expiry = expiryOf(r)
	case RequestActive:
		expiry = r.ExpiresAt
		// No warning for access that has ended already (while latch was down).
		if p != nil && p.WarnBefore > 0 && !r.Warned && r.ExpiresAt.After(e.cfg.Clock.Now()) {
			warn = r.ExpiresAt.Add(-p.WarnBefore)
		}
	}
	// A break-glass grant is reminded about until reviewed, at its own pace.
	switch d, _ := deadline(DeadlineReviewRemind, r.ID); {
	case !r.BreakGlass || r.Reviewed || p == nil || p.BreakGlass.ReviewReminder <= 0:
		e.at(DeadlineReviewRemind, r.ID, time.Time{})
	default:
		if _, set := e.wheel.When(d); !set {
			e.at(DeadlineReviewRemind, r.ID, r.SubmittedAt.Add(p.BreakGlass.ReviewReminder))
		}
	}
	e.at(DeadlineTimeout, r.ID, timeout)
	e.at(DeadlineRemind, r.ID, remind)
	e.at(DeadlineEscalate, r.ID, escalate)
	e.at(DeadlineExpiry, r.ID, expiry)
	e.at(DeadlineWarn, r.ID, warn)
}

// fire handles a deadline that came due.
func (e *Engine) fire(d Deadline, _ time.Time) {
	id := uuid.UUID(d.ID).String()
	e.background(func(ctx context.Context) {
		switch d.Kind {
		case DeadlineExpiry:
			if r, err := e.end(ctx, id, ActorLatch, OutcomeExpired, "", nil); err != nil && ctx.Err() == nil {
				// The end was not recorded (the store is failing): take the
				// access back all the same, and try again to record it.
				if errors.Is(err, ErrUnrecorded) && r.ID == id && !e.working(id) {
					// (A worker in the middle of a connector call is let
					// finish: its next step fails before any other call.)
					e.takeBack(ctx, r)
				}
				e.at(DeadlineExpiry, id, e.cfg.Clock.Now().Add(RetryBase))
			}
		case DeadlineTimeout:
			e.timeout(ctx, id)
		case DeadlineWarn:
			e.warn(ctx, id)
		case DeadlineRevokeRetry:
			e.kick(id)
		case DeadlineRemind:
			e.remind(ctx, id)
		case DeadlineEscalate:
			e.escalate(ctx, id)
		case DeadlineReviewRemind:
			e.remindReview(ctx, id)
		}
	})
}

// background runs fn on its own goroutine, tracked so Close can wait, and
// reports whether it started it (not after Close).
func (e *Engine) background(fn func(ctx context.Context)) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.busy++
	go func() {
		defer func() {
			e.mu.Lock()
			e.busy--
			e.idle.Broadcast()
			e.mu.Unlock()
		}()
		fn(e.ctx)
	}()
	return true
}

// load returns a request, or a refusal if there is none.
func (e *Engine) load(id string) (Request, error) {
	r, ok, err := e.cfg.Store.Request(id)
	if err != nil {
		return r, fmt.Errorf("load request %s: %w", id, err)
	}
	if !ok {
		return r, refuse(RefusedUnknown, "there is no request %s", id)
	}
	return r, nil
}

// commit checks events against r, appends them and folds the committed
// events into r. The caller holds r's lock.
func (e *Engine) commit(ctx context.Context, r *Request, events ...Event) error {
	trial := r.Clone()
	now := e.cfg.Clock.Now()
	for i := range events {
		if events[i].RequestID == "" {
			events[i].RequestID = r.ID
		}
		ev := events[i]
		ev.Time = now
		if err := ApplyEvent(&trial, &ev); err != nil {
			return err
		}
	}
	done, err := e.cfg.Store.Append(ctx, events...)
	if err != nil {
		return fmt.Errorf("commit %s: %w", events[0].Kind, err)
	}
	for i := range done {
		if err := ApplyEvent(r, &done[i]); err != nil {
			return fmt.Errorf("fold committed %s: %w", done[i].Kind, err)
		}
	}
	return nil
}

// event builds an event, panicking only on a payload that cannot be encoded
// (the payload types are all plain structs).
func event(kind, actor, grantID string, payload any) Event {
	ev, err := NewEvent(kind, actor, "", grantID, payload)
	if err != nil {
		panic(err)
	}
	return ev
}

// user looks a person up in the directory.
func (e *Engine) user(ctx context.Context, id string) (User, error) {
	d := e.cfg.Directory
	email, err := d.Email(ctx, id)
	if err != nil {
		return User{}, fmt.Errorf("look up %s: %w", id, err)
	}
	manager, err := d.Manager(ctx, id)
	if err != nil {
		return User{}, fmt.Errorf("look up %s: %w", id, err)
	}
	groups, err := d.Groups(ctx, id)
	if err != nil {
		return User{}, fmt.Errorf("look up %s: %w", id, err)
	}
	return User{SlackID: id, Email: email, Manager: manager, Groups: groups}, nil
}

// Submit checks a request against its item's policy and records it. The
// request is refused (an error matching ErrRefused, saying why) if the item
// is unknown or invisible to the people involved, the duration or the
// justification does not fit the policy, or a stage could never approve.
// auto_reject and auto_approve decide it at once when they hold; otherwise
// the first stage (every stage, if parallel) is asked to approve.
func (e *Engine) Submit(ctx context.Context, s Submission) (Request, error) {
	it, ok := e.cfg.Catalogue.Item(s.Item)
	if !ok {
		return Request{}, refuse(RefusedUnknownItem, "there is no item %q in the catalogue", s.Item)
	}
	p := e.cfg.Policies[it.Policy]
	if p == nil {
		return Request{}, fmt.Errorf("item %s: no policy %q", it.ID, it.Policy)
	}
	if s.Beneficiary == "" {
		s.Beneficiary = s.Requester
	}
	requester, err := e.user(ctx, s.Requester)
	if err != nil {
		return Request{}, err
	}
	beneficiary := requester
	if s.Beneficiary != s.Requester {
		if beneficiary, err = e.user(ctx, s.Beneficiary); err != nil {
			return Request{}, err
		}
	}
	now := e.cfg.Clock.Now()
	d, err := CheckSubmission(ctx, p, it, requester, beneficiary, s, now)
	if err != nil {
		return Request{}, err
	}
	facts := Facts{
		Request:     RequestFacts{Duration: d, Justification: s.Justification, Ticket: s.Ticket, OnBehalf: s.Beneficiary != s.Requester},
		Requester:   PersonFactsOf(requester),
		Beneficiary: PersonFactsOf(beneficiary),
		Item:        ItemFactsOf(it),
		Now:         now,
	}
	decision, cond, err := Decide(ctx, p, facts)
	if err != nil {
		return Request{}, err
	}
	var stages []StageState
	if decision == AskApprovers {
		if stages, err = ResolveStages(ctx, e.cfg.Directory, p, it, requester, beneficiary); err != nil {
			return Request{}, err
		}
	}
	events := []Event{event(KindSubmitted, s.Requester, "", Submitted{
		Item: it.ID, Policy: p.Name, Requester: s.Requester, Beneficiary: s.Beneficiary, Duration: d,
		Justification: s.Justification, Ticket: s.Ticket, Params: s.Params, Mode: p.Approval.Mode,
		Stages: stages, Targets: it.Targets,
	})}
	switch decision {
	case AutoReject:
		events = append(events, event(KindDenied, ActorLatch, "", Denied{Stage: -1, Reason: "refused by the policy's auto_reject condition", Condition: cond}))
	case AutoApprove:
		events = append(events, e.approved(it.Targets, cond))
	}
	return e.create(ctx, events, nil)
}

// create records a new request from its first events, under a new id, and
// acts on it; announce, if given, runs first, under the request's lock.
func (e *Engine) create(ctx context.Context, events []Event, announce func(*Request)) (Request, error) {
	id := uuid.Must(uuid.NewV7()).String()
	for i := range events {
		events[i].RequestID = id
	}
	unlock := e.lock(id)
	defer unlock()
	var r Request
	if err := e.commit(ctx, &r, events...); err != nil {
		return Request{}, err
	}
	if announce != nil {
		announce(&r)
	}
	e.notify.Submitted(ctx, r)
	e.after(ctx, &r)
	return r, nil
}

// approved builds the event that approves a request, with a new grant for
// each target.
func (e *Engine) approved(targets []Target, cond string) Event {
	grants := make([]GrantTarget, len(targets))
	for i, t := range targets {
		grants[i] = GrantTarget{ID: uuid.Must(uuid.NewV7()).String(), Target: t}
	}
	return event(KindApproved, ActorLatch, "", Approved{Grants: grants, Condition: cond})
}

// after does what a request's new state calls for once its events are
// committed: tell people, set deadlines, start connector work.
func (e *Engine) after(ctx context.Context, r *Request) {
	e.schedule(r)
	switch r.State {
	case RequestPending:
		for i, s := range r.Stages {
			if !s.Done && (r.Mode == Parallel || i == r.Stage) {
				e.notify.ApprovalNeeded(ctx, *r, i)
			}
		}
	case RequestProvisioning:
		e.notify.Decided(ctx, *r)
		e.kick(r.ID)
	case RequestRejected, RequestCancelled, RequestTimedOut:
		e.notify.Decided(ctx, *r)
	case RequestRevoking, RequestFailed:
		e.kick(r.ID)
	}
}

// Approve records an approver's approval. It is refused, and the refusal
// recorded, when the request is closed, when by is not an approver of an
// open stage, or when by would approve their own request; a second approval
// by the same person is refused without a record (a double click).
func (e *Engine) Approve(ctx context.Context, requestID, by string) (Request, error) {
	return e.decide(ctx, requestID, by, true, "")
}

// Deny rejects a request, with a reason, on behalf of one of its approvers.
func (e *Engine) Deny(ctx context.Context, requestID, by, reason string) (Request, error) {
	return e.decide(ctx, requestID, by, false, reason)
}

func (e *Engine) decide(ctx context.Context, requestID, by string, approve bool, reason string) (Request, error) {
	unlock := e.lock(requestID)
	defer unlock()
	r, err := e.load(requestID)
	if err != nil {
		return r, err
	}
	command := "approve"
	if !approve {
		command = "deny"
	}
	refused := func(reason RefusalReason, format string, args ...any) (Request, error) {
		return r, e.recordRefusal(ctx, &r, command, by, refuse(reason, format, args...))
	}
	if r.State.Closed() {
		return refused(RefusedClosed, "this request was already %s", r.State)
	}
	p := e.cfg.Policies[r.Policy]
	if (by == r.Requester || by == r.Beneficiary) && (p == nil || !p.AllowSelfApproval) {
		return refused(RefusedSelfApproval, "you cannot decide a request you made or that is for you")
	}
	stage := -1
	for i, s := range r.Stages {
		if s.Done || (r.Mode != Parallel && i != r.Stage) {
			continue
		}
		if slices.Contains(s.Approvals, by) {
			return r, refuse(RefusedAlreadyVoted, "you approved this request already")
		}
		if slices.Contains(s.Approvers, by) {
			stage = i
			break
		}
	}
	if stage < 0 {
		return refused(RefusedNotApprover, "you are not an approver of this request at this stage")
	}
	var events []Event
	if !approve {
		events = append(events, event(KindDenied, by, "", Denied{Stage: stage, By: by, Reason: reason}))
	} else {
		events = append(events, event(KindApproval, by, "", Vote{Stage: stage, By: by}))
		s := r.Stages[stage]
		if len(s.Approvals)+1 >= s.Required {
			events = append(events, event(KindStageApproved, by, "", StageDecision{Stage: stage}))
			left := false
			for i, o := range r.Stages {
				left = left || (i != stage && !o.Done)
			}
			if !left {
				ev := e.approved(r.Targets, "")
				ev.Actor = by
				events = append(events, ev)
			}
		}
	}
	stageBefore := r.Stage
	if err := e.commit(ctx, &r, events...); err != nil {
		return r, err
	}
	if r.State == RequestPending && r.Stage == stageBefore {
		e.schedule(&r) // votes so far; nobody new to ask
		return r, nil
	}
	e.after(ctx, &r)
	return r, nil
}

// recordRefusal records in the log that a command on r was refused, for
// refusals that matter to security (someone deciding or ending a request
// that is not theirs to), and returns the refusal.
func (e *Engine) recordRefusal(ctx context.Context, r *Request, command, by string, refusal error) error {
	if err := e.commit(ctx, r, event(KindRefused, by, "", Refused{Command: command, By: by, Reason: refusal.Error()})); err != nil {
		return errors.Join(refusal, err)
	}
	return refusal
}

// RecordPost records that a message about a request was posted, so that
// it can be updated later. It changes nothing else about the request.
func (e *Engine) RecordPost(ctx context.Context, requestID string, p Posted) (Request, error) {
	unlock := e.lock(requestID)
	defer unlock()
	r, err := e.load(requestID)
	if err != nil {
		return r, err
	}
	if slices.Contains(r.Posts, p) {
		return r, nil
	}
	if err := e.commit(ctx, &r, event(KindPosted, ActorLatch, "", p)); err != nil {
		return r, err
	}
	return r, nil
}

// Cancel withdraws a pending request; only its requester may.
func (e *Engine) Cancel(ctx context.Context, requestID, by string) (Request, error) {
	unlock := e.lock(requestID)
	defer unlock()
	r, err := e.load(requestID)
	if err != nil {
		return r, err
	}
	switch {
	case by != r.Requester:
		return r, e.recordRefusal(ctx, &r, "cancel", by, refuse(RefusedNotYours, "only the requester may cancel a request"))
	case r.State != RequestPending:
		return r, refuse(RefusedClosed, "this request was already %s", r.State)
	}
	if err := e.commit(ctx, &r, event(KindCancelled, by, "", Note{Reason: "cancelled by the requester"})); err != nil {
		return r, err
	}
	e.after(ctx, &r)
	return r, nil
}

// timeout expires a request nobody decided in time.
func (e *Engine) timeout(ctx context.Context, requestID string) {
	unlock := e.lock(requestID)
	defer unlock()
	r, err := e.load(requestID)
	if err != nil || r.State != RequestPending {
		return
	}
	if err := e.commit(ctx, &r, event(KindTimedOut, ActorLatch, "", Note{Reason: "nobody decided in time"})); err != nil {
		return
	}
	e.after(ctx, &r)
}

// warn tells the beneficiary that access ends soon.
func (e *Engine) warn(ctx context.Context, requestID string) {
	unlock := e.lock(requestID)
	defer unlock()
	r, err := e.load(requestID)
	if err != nil || r.State != RequestActive || r.Warned || !r.ExpiresAt.After(e.cfg.Clock.Now()) {
		return
	}
	if err := e.commit(ctx, &r, event(KindWarned, ActorLatch, "", Note{})); err != nil {
		return
	}
	e.notify.ExpiringSoon(ctx, r)
}

// Release ends an active grant early at its beneficiary's wish.
func (e *Engine) Release(ctx context.Context, requestID, by string) (Request, error) {
	return e.end(ctx, requestID, by, OutcomeReleased, "released by the beneficiary", func(r *Request) error {
		if by != r.Beneficiary {
			return refuse(RefusedNotYours, "only the person who holds this access may release it")
		}
		return nil
	})
}

// Revoke takes a grant back before it expires. An admin may revoke any
// grant, an approver of the request the grants it approved.
func (e *Engine) Revoke(ctx context.Context, requestID, by, reason string) (Request, error) {
	return e.end(ctx, requestID, by, OutcomeRevoked, reason, func(r *Request) error {
		if e.isAdmin(by) || slices.ContainsFunc(r.Stages, func(s StageState) bool { return slices.Contains(s.Approvers, by) }) {
			return nil
		}
		return refuse(RefusedNotApprover, "only an admin or an approver of this request may revoke it")
	})
}

// isAdmin reports whether an actor is one of Config.Admins.
func (e *Engine) isAdmin(by string) bool {
	return by != "" && slices.ContainsFunc(e.cfg.Admins, func(a string) bool {
		if prefix, ok := strings.CutSuffix(a, ":"); ok {
			return strings.HasPrefix(by, prefix+":") && len(by) > len(a)
		}
		return a == by
	})
}

// Resolve declares by hand that a grant latch could not revoke is gone
// (an admin removed the access in the target system), which stops the
// retries. Only admins may, and only for a grant whose revoke is failing.
func (e *Engine) Resolve(ctx context.Context, requestID, grantID, by, note string) (Request, error) {
	unlock := e.lock(requestID)
	r, err := e.load(requestID)
	if err != nil {
		unlock()
		return r, err
	}
	g, ok := r.Grant(grantID)
	switch {
	case !e.isAdmin(by):
		err = e.recordRefusal(ctx, &r, "resolve", by, refuse(RefusedNotApprover, "only an admin may resolve a failed revoke"))
	case !ok:
		err = refuse(RefusedUnknown, "request %s has no grant %s", requestID, grantID)
	case g.State != GrantRevokeFailed && g.State != GrantRevoking:
		err = refuse(RefusedClosed, "grant %s is %s; only a grant whose revoke is failing is resolved by hand", grantID, g.State)
	case strings.TrimSpace(note) == "":
		err = refuse(RefusedJustification, "say how the access was removed")
	default:
		err = e.commit(ctx, &r, event(KindGrantRevoked, by, grantID, Deprovisioned{ResolvedBy: by, Note: note}))
	}
	unlock()
	if err != nil {
		return r, err
	}
	e.done(grantID)
	e.kick(requestID) // the request ends once its last grant does
	return r, nil
}

// end starts taking a request's grants back. allowed, if given, checks who
// may.
func (e *Engine) end(ctx context.Context, requestID, by, outcome, reason string, allowed func(*Request) error) (Request, error) {
	unlock := e.lock(requestID)
	defer unlock()
	r, err := e.load(requestID)
	if err != nil {
		return r, err
	}
	if allowed == nil && ((r.State != RequestActive && r.State != RequestProvisioning) || expiryOf(&r).After(e.cfg.Clock.Now())) {
		return r, nil // an expiry overtaken by another end, or by an extension
	}
	if r.State != RequestActive && r.State != RequestProvisioning {
		return r, refuse(RefusedClosed, "this request is %s, not active", r.State)
	}
	if allowed != nil {
		if err := allowed(&r); err != nil {
			return r, e.recordRefusal(ctx, &r, outcome, by, err)
		}
	}
	if err := e.commit(ctx, &r, event(KindEnding, by, "", Ending{Outcome: outcome, By: by, Reason: reason})); err != nil {
		return r, err
	}
	e.after(ctx, &r)
	return r, nil
}

// kick makes sure a worker looks at the request soon: provisioning,
// revoking, retrying. One worker runs per request at a time.
func (e *Engine) kick(requestID string) {
	e.mu.Lock()
	if e.running[requestID] {
		e.again[requestID] = true
		e.mu.Unlock()
		return
	}
	e.running[requestID] = true
	e.mu.Unlock()
	started := e.background(func(ctx context.Context) {
		for {
			e.work(ctx, requestID)
			e.mu.Lock()
			if !e.again[requestID] || ctx.Err() != nil {
				delete(e.running, requestID)
				delete(e.again, requestID)
				e.idle.Broadcast()
				e.mu.Unlock()
				return
			}
			delete(e.again, requestID)
			e.mu.Unlock()
		}
	})
	if !started {
		e.mu.Lock()
		delete(e.running, requestID)
		e.idle.Broadcast()
		e.mu.Unlock()
	}
}

// work does the connector calls a request's state calls for, recording an
// intent before each call and its outcome after.
func (e *Engine) work(ctx context.Context, requestID string) {
	r, ok, err := e.cfg.Store.Request(requestID)
	if err != nil || !ok {
		return
	}
	var finished bool
	switch r.State {
	case RequestProvisioning:
		finished = e.provision(ctx, r)
	case RequestActive:
		finished = e.refresh(ctx, r)
	case RequestRevoking, RequestFailed:
		finished = !r.EndedAt.IsZero() || e.revoke(ctx, r)
	default:
		finished = true
	}
	// Come back when the first grant that had to wait may be tried again,
	// or soon if a commit failed part way.
	var next time.Time
	if !finished && ctx.Err() == nil {
		next = e.cfg.Clock.Now().Add(RetryBase)
	}
	e.mu.Lock()
	for _, g := range r.Grants {
		if t, ok := e.backoff[g.ID]; ok && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	e.mu.Unlock()
	e.at(DeadlineRevokeRetry, r.ID, next)
}

// waiting reports whether a grant's next attempt is not due yet.
func (e *Engine) waiting(grantID string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.backoff[grantID]
	return ok && e.cfg.Clock.Now().Before(t)
}

// retryLater sets when a grant's connector call may be tried again: after
// a delay that doubles with each attempt, with jitter, and every
// RetryFailedEvery once the attempts are used up.
func (e *Engine) retryLater(grantID string, attempt int) {
	delay := RetryFailedEvery
	if attempt < MaxRevokeAttempts {
		delay = min(RetryBase<<max(attempt-1, 0), RetryMax)
		delay = delay/2 + rand.N(delay/2+1) // between half and all of it
	}
	e.mu.Lock()
	e.backoff[grantID] = e.cfg.Clock.Now().Add(delay)
	e.mu.Unlock()
}

// done forgets a grant's backoff once its call succeeded.
func (e *Engine) done(grantID string) {
	e.mu.Lock()
	delete(e.backoff, grantID)
	e.mu.Unlock()
}

// access describes one grant of a request to its connector. A grant that
// took effect is described as it was granted: the person's email then,
// not now, so that a revoke reaches the account that was granted even
// after the person was renamed or left the directory.
func (e *Engine) access(ctx context.Context, r *Request, g *Grant) (Access, error) {
	u := User{SlackID: r.Beneficiary, Email: g.Email}
	if g.Email == "" {
		var err error
		if u, err = e.user(ctx, r.Beneficiary); err != nil {
			return Access{}, err
		}
	}
	return Access{
		GrantID: g.ID, RequestID: r.ID, User: u, Entitlement: g.Target.Entitlement,
		ExpiresAt: expiryOf(r), Params: r.Params,
	}, nil
}

// expiryOf is when a request's access ends: decision time plus its
// duration, or later once extended.
func expiryOf(r *Request) time.Time {
	if !r.ExpiresAt.IsZero() {
		return r.ExpiresAt
	}
	return r.DecidedAt.Add(r.Duration)
}

// connector returns the provisioner of a grant's target.
func (e *Engine) connector(g *Grant) (Provisioner, error) {
	p, ok := e.cfg.Connectors[g.Target.Connector]
	if !ok {
		return nil, Permanent(fmt.Errorf("no connector %q", g.Target.Connector))
	}
	return p, nil
}

// provision grants every target of an approved request that is not granted
// yet. When all are, the request is active until decision time plus its
// duration; when one fails for good, the request fails and what was
// granted is rolled back.
func (e *Engine) provision(ctx context.Context, r Request) bool {
	e.mu.Lock()
	messages := e.granted[r.ID]
	if messages == nil {
		messages = map[string]string{}
		e.granted[r.ID] = messages
	}
	e.mu.Unlock()
	for _, g := range r.Grants {
		if g.State != GrantProvisioning || e.waiting(g.ID) {
			continue
		}
		if e.step(ctx, r.ID, event(KindGrantProvisioning, ActorLatch, g.ID, Note{})) != nil {
			return false
		}
		var result []Event
		granted, email, err := e.grant(ctx, &r, &g)
		switch {
		case err == nil:
			e.done(g.ID)
			result = append(result, event(KindGrantActive, ActorLatch, g.ID, Provisioned{Facts: granted.Facts, ExpiresAt: expiryOf(&r), Email: email}))
			if granted.Message != "" {
				e.mu.Lock()
				messages[g.ID] = granted.Message
				e.mu.Unlock()
			}
		case IsPermanent(err):
			result = append(result, event(KindGrantFailed, ActorLatch, g.ID, GrantError{Error: err.Error(), Permanent: true}),
				event(KindFailed, ActorLatch, "", Note{Reason: fmt.Sprintf("%s: %v", g.Target.Connector, err)}))
		default:
			result = append(result, event(KindGrantFailed, ActorLatch, g.ID, GrantError{Error: err.Error()}))
			e.retryLater(g.ID, min(g.GrantAttempts+1, MaxRevokeAttempts-1))
		}
		if e.step(ctx, r.ID, result...) != nil {
			return false
		}
		if IsPermanent(err) {
			e.kick(r.ID) // roll back
			return true
		}
	}
	unlock := e.lock(r.ID)
	defer unlock()
	r, err := e.load(r.ID)
	if err != nil {
		return false
	}
	if r.State != RequestProvisioning || slices.ContainsFunc(r.Grants, func(g Grant) bool { return g.State != GrantActive }) {
		return true
	}
	if err := e.commit(ctx, &r, event(KindActivated, ActorLatch, "", Activated{ExpiresAt: r.DecidedAt.Add(r.Duration)})); err != nil {
		return false
	}
	e.schedule(&r)
	e.mu.Lock()
	delete(e.granted, r.ID)
	e.mu.Unlock()
	e.notify.Granted(ctx, r, messages)
	return true
}

// stale reports whether a grant's connector holds an older expiry than
// its request, after an extension.
func stale(r *Request, g *Grant) bool {
	return g.State == GrantActive && !g.NativeUntil.IsZero() && g.NativeUntil.Before(r.ExpiresAt)
}

// refresh passes an extended expiry on to the connectors, granting again
// with the new expiry (grants are idempotent), so that access a connector
// ends by itself does not lapse at the old time.
func (e *Engine) refresh(ctx context.Context, r Request) bool {
	for _, g := range r.Grants {
		if !stale(&r, &g) || e.waiting(g.ID) {
			continue
		}
		if e.step(ctx, r.ID, event(KindGrantRefreshing, ActorLatch, g.ID, Note{})) != nil {
			return false
		}
		granted, err := e.callRefresh(ctx, &r, &g)
		result := event(KindGrantRefreshed, ActorLatch, g.ID, Provisioned{Facts: granted.Facts, ExpiresAt: r.ExpiresAt})
		if err != nil {
			result = event(KindGrantRefreshFailed, ActorLatch, g.ID, GrantError{Error: err.Error(), Permanent: IsPermanent(err)})
			e.retryLater(g.ID, MaxRevokeAttempts-1)
		} else {
			e.done(g.ID)
		}
		if e.step(ctx, r.ID, result) != nil {
			return false
		}
		if err == nil && granted.Message != "" {
			// New credentials for the new expiry: the old ones may be gone.
			e.notify.Granted(ctx, r, map[string]string{g.ID: granted.Message})
		}
	}
	return true
}

// callRefresh asks a grant's connector to move its expiry.
func (e *Engine) callRefresh(ctx context.Context, r *Request, g *Grant) (Granted, error) {
	p, err := e.connector(g)
	if err != nil {
		return Granted{}, err
	}
	a, err := e.access(ctx, r, g)
	if err != nil {
		return Granted{}, err
	}
	a.Refresh = true
	return p.Grant(ctx, a)
}

// revoke takes back every grant of an ending request that still gives
// access, and closes the request when none does.
func (e *Engine) revoke(ctx context.Context, r Request) bool {
	for _, g := range r.Grants {
		if g.State.Ended() || e.waiting(g.ID) {
			continue
		}
		if err := e.step(ctx, r.ID, event(KindGrantRevoking, ActorLatch, g.ID, Note{})); err != nil {
			if errors.Is(err, ErrUnrecorded) {
				e.takeBack(ctx, r)
			}
			return false
		}
		kept, err := e.coveredElsewhere(&r, &g)
		if err == nil && !kept {
			_, err = e.call(ctx, &r, &g, false)
		}
		if err == nil {
			e.done(g.ID)
			if e.step(ctx, r.ID, event(KindGrantRevoked, ActorLatch, g.ID, Deprovisioned{Kept: kept})) != nil {
				return false
			}
			e.mu.Lock()
			delete(e.unrecorded, g.ID)
			e.mu.Unlock()
			continue
		}
		if e.step(ctx, r.ID, event(KindGrantRevokeFailed, ActorLatch, g.ID, GrantError{Error: err.Error(), Permanent: IsPermanent(err)})) != nil {
			return false
		}
		attempts := g.RevokeAttempts + 1
		e.retryLater(g.ID, attempts)
		if attempts == MaxRevokeAttempts {
			if now, err := e.load(r.ID); err == nil {
				if ng, ok := now.Grant(g.ID); ok {
					e.notify.RevokeFailed(ctx, now, *ng)
				}
			}
		}
	}
	unlock := e.lock(r.ID)
	defer unlock()
	r, err := e.load(r.ID)
	if err != nil {
		return false
	}
	if !r.EndedAt.IsZero() || slices.ContainsFunc(r.Grants, func(g Grant) bool { return !g.State.Ended() }) {
		return true
	}
	if err := e.commit(ctx, &r, event(KindEnded, ActorLatch, "", Note{})); err != nil {
		return false
	}
	e.notify.Ended(ctx, r)
	return true
}

// sameAccess reports whether two grants' facts describe the same access
// in the target: the same role for the same login, the same group member.
// Connectors that make access of its own for each grant (an ephemeral
// login role, a certificate) say so in their facts (account, key_id,
// serial), and such access is taken back grant by grant. How long each is
// valid does not count.
func sameAccess(a, b map[string]string) bool {
	for k, v := range a {
		if !strings.HasPrefix(k, "valid_") && b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if !strings.HasPrefix(k, "valid_") && a[k] != v {
			return false
		}
	}
	return true
}

// takeBack revokes the grants of a request that should be ending when the
// audit log cannot record it (its disk is full): access must not outlive
// its expiry because a disk filled up. Nothing is recorded now; the log
// still shows the request active (or revoking), so once latch runs on a
// writable store it revokes the grants again, which connectors take as
// done, and records it as usual. The security channel is told of each
// grant taken back this way, and of one that cannot be, as of any revoke
// that keeps failing. The caller makes sure no connector call of the
// request is in flight.
func (e *Engine) takeBack(ctx context.Context, r Request) {
	for _, g := range r.Grants {
		if g.State.Ended() || e.waiting(g.ID) {
			continue
		}
		e.mu.Lock()
		tb := e.unrecorded[g.ID]
		if tb == nil {
			tb = &takenBack{}
			e.unrecorded[g.ID] = tb
		}
		done := tb.done
		e.mu.Unlock()
		if done {
			continue
		}
		kept, err := e.coveredElsewhere(&r, &g)
		if err != nil || kept {
			continue // looked at again at the next retry
		}
		if _, err := e.call(ctx, &r, &g, false); err != nil {
			e.mu.Lock()
			tb.attempts++
			n := tb.attempts
			e.mu.Unlock()
			e.retryLater(g.ID, n)
			if n == MaxRevokeAttempts {
				g.RevokeAttempts, g.LastError = n, err.Error()
				e.notify.RevokeFailed(ctx, r, g)
			}
			continue
		}
		e.done(g.ID)
		e.mu.Lock()
		tb.done = true
		e.mu.Unlock()
		e.notify.TakenBackUnrecorded(ctx, r, g)
	}
}

// takenBack is what takeBack did about a grant.
type takenBack struct {
	done     bool // revoked, not yet recorded
	attempts int  // revokes that failed
}

// working reports whether a worker is acting on a request.
func (e *Engine) working(requestID string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.running[requestID]
}

// coveredElsewhere reports whether another request keeps the same target
// granted to the same person, in which case revoking would cut that access
// short: the target is revoked only when its last grant ends.
func (e *Engine) coveredElsewhere(r *Request, g *Grant) (bool, error) {
	covered := false
	now := e.cfg.Clock.Now()
	err := e.cfg.Store.RequestsOf(r.Beneficiary, func(o Request) error {
		// A request past its expiry covers nothing, even before its end
		// is recorded.
		if o.ID == r.ID || o.Beneficiary != r.Beneficiary || o.State != RequestActive || !expiryOf(&o).After(now) {
			return nil
		}
		if slices.ContainsFunc(o.Grants, func(og Grant) bool {
			return og.Target == g.Target && og.State == GrantActive && sameAccess(og.Facts, g.Facts)
		}) {
			covered = true
		}
		return nil
	})
	return covered, err
}

// grant asks a grant's connector to grant it, and returns the email of
// the account it was granted to.
func (e *Engine) grant(ctx context.Context, r *Request, g *Grant) (Granted, string, error) {
	p, err := e.connector(g)
	if err != nil {
		return Granted{}, "", err
	}
	a, err := e.access(ctx, r, g)
	if err != nil {
		return Granted{}, "", err
	}
	granted, err := p.Grant(ctx, a)
	return granted, a.User.Email, err
}

// call asks a grant's connector to grant or revoke it.
func (e *Engine) call(ctx context.Context, r *Request, g *Grant, grant bool) (Granted, error) {
	p, err := e.connector(g)
	if err != nil {
		return Granted{}, err
	}
	a, err := e.access(ctx, r, g)
	if err != nil {
		return Granted{}, err
	}
	if grant {
		return p.Grant(ctx, a)
	}
	return Granted{}, p.Revoke(ctx, a)
}

// step commits events of a request under its lock.
func (e *Engine) step(ctx context.Context, requestID string, events ...Event) error {
	unlock := e.lock(requestID)
	defer unlock()
	r, err := e.load(requestID)
	if err != nil {
		return err
	}
	return e.commit(ctx, &r, events...)
}
