package bot

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/latchhq/latch/workflow"
)

// Engine is what the bot asks of the workflow engine.
type Engine interface {
	Submit(ctx context.Context, s workflow.Submission) (workflow.Request, error)
	Approve(ctx context.Context, requestID, by string) (workflow.Request, error)
	Deny(ctx context.Context, requestID, by, reason string) (workflow.Request, error)
	Cancel(ctx context.Context, requestID, by string) (workflow.Request, error)
	Release(ctx context.Context, requestID, by string) (workflow.Request, error)
	Extend(ctx context.Context, requestID, by string, d time.Duration, justification string) (workflow.Request, error)
	BreakGlass(ctx context.Context, c workflow.BreakGlassCommand) (workflow.Request, error)
	Review(ctx context.Context, requestID, by, note string) (workflow.Request, error)
	RecordPost(ctx context.Context, requestID string, p workflow.Posted) (workflow.Request, error)
}

// Requests reads requests as the store keeps them.
type Requests interface {
	Request(id string) (workflow.Request, bool, error)
	RequestsOf(user string, fn func(workflow.Request) error) error
	OpenSummaries(fn func(workflow.Summary) error) error
}

// Config is what a Bot needs.
type Config struct {
	// API is the Web API client, made with the bot token (and, for Socket
	// Mode, the app-level token).
	API *slack.Client
	// Socket options, such as socketmode.OptionPingInterval; the bot makes
	// the Socket Mode client from API.
	SocketOptions []socketmode.Option

	Requests  Requests
	Catalogue *workflow.Catalogue
	Policies  map[string]*workflow.Policy
	Directory workflow.Directory
	// ConnectorTypes maps connector names to their types ("sshcert"…), so
	// that the request form asks for what a connector needs.
	ConnectorTypes map[string]string
	Admins         []string
	// SecurityChannel gets break-glass announcements, reviews and revoke
	// failures.
	SecurityChannel string
	Clock           workflow.Clock
	Log             zerolog.Logger
	// Workers bounds the envelopes handled at once (default 64).
	Workers int
	// OnAck, if set, is told how long each envelope took from its arrival
	// to its ack.
	OnAck func(envelopeType string, d time.Duration)
}

// Bot is latch's Slack front end: it handles /access, the buttons and
// forms, App Home, and it is the engine's Notifier. Make one with New, give
// it the engine with SetEngine, then Run it.
type Bot struct {
	cfg    Config
	api    *slack.Client
	socket *socketmode.Client
	index  *Index
	log    zerolog.Logger
	engine Engine

	seen      *seenSet
	stripes   [64]sync.Mutex // serialize card updates per request
	sem       chan struct{}
	wg        sync.WaitGroup
	connected atomic.Bool

	idleMu   sync.Mutex
	idle     *sync.Cond
	inflight int // envelopes being handled
}

// New returns a bot for cfg.
func New(cfg Config) (*Bot, error) {
	switch {
	case cfg.API == nil:
		return nil, errors.New("bot: no Slack API client")
	case cfg.Requests == nil || cfg.Catalogue == nil || cfg.Directory == nil:
		return nil, errors.New("bot: requests, catalogue and directory are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = workflow.RealClock{}
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 64
	}
	b := &Bot{
		cfg:   cfg,
		api:   cfg.API,
		index: NewIndex(cfg.Catalogue),
		log:   cfg.Log,
		seen:  newSeenSet(10000),
		sem:   make(chan struct{}, cfg.Workers),
	}
	b.idle = sync.NewCond(&b.idleMu)
	b.socket = socketmode.New(cfg.API, cfg.SocketOptions...)
	return b, nil
}

// SetEngine gives the bot the engine it acts on; call it before the engine
// starts, since the engine's first notices may need it.
func (b *Bot) SetEngine(e Engine) { b.engine = e }

// Connected reports whether the Socket Mode connection is up.
func (b *Bot) Connected() bool { return b.connected.Load() }

// Run connects over Socket Mode and handles envelopes until ctx ends; it
// then waits for the handlers in flight and returns.
func (b *Bot) Run(ctx context.Context) error {
	if b.engine == nil {
		return errors.New("bot: Run before SetEngine")
	}
	sockCtx, stop := context.WithCancel(ctx)
	defer stop()
	sockErr := make(chan error, 1)
	go func() { sockErr <- b.socket.RunContext(sockCtx) }()
	for {
		select {
		case <-ctx.Done():
			b.wg.Wait()
			stop()
			<-sockErr
			return nil
		case err := <-sockErr:
			b.wg.Wait()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("socket mode: %w", err)
		case ev := <-b.socket.Events:
			b.dispatch(ctx, ev)
		}
	}
}

// dispatch hands an envelope to a handler goroutine, or notes a change of
// the connection.
func (b *Bot) dispatch(ctx context.Context, ev socketmode.Event) {
	switch ev.Type {
	case socketmode.EventTypeConnected, socketmode.EventTypeHello:
		b.connected.Store(true)
		return
	case socketmode.EventTypeConnecting, socketmode.EventTypeDisconnect, socketmode.EventTypeConnectionError:
		b.connected.Store(false)
		if ev.Type == socketmode.EventTypeConnectionError {
			if err, ok := ev.Data.(error); ok {
				b.log.Warn().Err(err).Msg("slack connection error; reconnecting")
			} else {
				b.log.Warn().Msg("slack connection error; reconnecting")
			}
		}
		return
	case socketmode.EventTypeInvalidAuth:
		b.log.Error().Msg("slack refused the app-level token (invalid_auth); check SLACK_APP_TOKEN")
		return
	case socketmode.EventTypeSlashCommand, socketmode.EventTypeInteractive, socketmode.EventTypeEventsAPI:
	default:
		return
	}
	if ev.Request == nil {
		return
	}
	if !b.seen.add(ev.Request.EnvelopeID) {
		// Slack sent it again because our ack did not reach it: ack again,
		// with the same answer (a form's inline errors), and do nothing
		// twice.
		b.log.Debug().Str("envelope", ev.Request.EnvelopeID).Int("retry", ev.Request.RetryAttempt).Msg("duplicate envelope acked")
		b.ack(ev.Request, b.seen.answer(ev.Request.EnvelopeID))
		return
	}
	b.idleMu.Lock()
	b.inflight++
	b.idleMu.Unlock()
	// The handler waits for a worker on a goroutine of its own, so that a
	// burst never stops Run from reading the socket (Slack's pings
	// included).
	arrived := time.Now()
	b.wg.Go(func() {
		b.sem <- struct{}{}
		defer func() {
			<-b.sem
			b.idleMu.Lock()
			if b.inflight--; b.inflight == 0 {
				b.idle.Broadcast()
			}
			b.idleMu.Unlock()
		}()
		b.handle(ctx, ev, arrived)
	})
}

// Idle blocks until no envelope is being handled, including the work done
// after its ack.
func (b *Bot) Idle() {
	b.idleMu.Lock()
	defer b.idleMu.Unlock()
	for b.inflight > 0 {
		b.idle.Wait()
	}
}

// afterAck is work done once the envelope is acked.
type afterAck func(ctx context.Context)

// handle acks one envelope, with a payload when the handler has one, and
// then does the slow part of the work. A panic is logged with the envelope
// type and the person gets an apology.
func (b *Bot) handle(ctx context.Context, ev socketmode.Event, arrived time.Time) {
	acked := false
	user, channel := whoAndWhere(ev)
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		b.log.Error().Str("envelope_type", string(ev.Type)).Str("user", user).
			Str("panic", fmt.Sprint(p)).Bytes("stack", debug.Stack()).Msg("handler panicked")
		if !acked {
			b.ack(ev.Request, nil)
		}
		if user != "" {
			b.tell(context.WithoutCancel(ctx), user, channel, "Sorry, latch hit an internal error handling that, and it has been logged. Please try again; if it keeps happening, tell your security team.")
		}
	}()
	var (
		payload any
		after   afterAck
	)
	switch data := ev.Data.(type) {
	case slack.SlashCommand:
		after = b.onSlash(data)
	case slack.InteractionCallback:
		// What is answered in the ack must be done in time for it.
		ackBy, cancel := context.WithDeadline(ctx, arrived.Add(commandBudget))
		payload, after = b.onInteraction(ackBy, data)
		cancel()
	case slackevents.EventsAPIEvent:
		after = b.onEvent(data)
	}
	if answer, ok := payload.(*slack.ViewSubmissionResponse); ok {
		b.seen.remember(ev.Request.EnvelopeID, answer)
	}
	b.ack(ev.Request, payload)
	acked = true
	if b.cfg.OnAck != nil {
		b.cfg.OnAck(string(ev.Type), time.Since(arrived))
	}
	if after != nil {
		// Work after the ack finishes even if latch is shutting down, but
		// not forever.
		work, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		after(work)
	}
}

// ack acknowledges an envelope, with a payload if there is one. It gives up
// after a while if the connection is gone: Slack then redelivers.
func (b *Bot) ack(req *socketmode.Request, payload any) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := b.socket.AckCtx(ctx, req.EnvelopeID, payload); err != nil {
		b.log.Warn().Err(err).Str("envelope", req.EnvelopeID).Msg("ack not sent")
	}
}

// whoAndWhere returns the person and channel an envelope came from.
func whoAndWhere(ev socketmode.Event) (user, channel string) {
	switch data := ev.Data.(type) {
	case slack.SlashCommand:
		return data.UserID, data.ChannelID
	case slack.InteractionCallback:
		return data.User.ID, data.Channel.ID
	case slackevents.EventsAPIEvent:
		if e, ok := data.InnerEvent.Data.(*slackevents.AppHomeOpenedEvent); ok {
			return e.User, ""
		}
	}
	return "", ""
}

// seenSet remembers the last n envelope ids, and the answers given to the
// form submissions among them.
type seenSet struct {
	mu    sync.Mutex
	ids   map[string]*slack.ViewSubmissionResponse
	order []string
	next  int
}

func newSeenSet(n int) *seenSet {
	return &seenSet{ids: make(map[string]*slack.ViewSubmissionResponse, n), order: make([]string, n)}
}

// add records id and reports whether it is new.
func (s *seenSet) add(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ids[id]; ok {
		return false
	}
	if old := s.order[s.next]; old != "" {
		delete(s.ids, old)
	}
	s.order[s.next] = id
	s.next = (s.next + 1) % len(s.order)
	s.ids[id] = nil
	return true
}

// remember keeps the answer given to a form submission.
func (s *seenSet) remember(id string, answer *slack.ViewSubmissionResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ids[id]; ok {
		s.ids[id] = answer
	}
}

// answer returns the answer given to an envelope, if it was a form's; nil
// (no payload) otherwise.
func (s *seenSet) answer(id string) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.ids[id]; a != nil {
		return a
	}
	return nil
}

// isAdmin reports whether a person administers latch.
func (b *Bot) isAdmin(user string) bool { return slices.Contains(b.cfg.Admins, user) }

// person looks a person up in the directory, as the engine would.
func (b *Bot) person(ctx context.Context, id string) (workflow.User, error) {
	d := b.cfg.Directory
	email, err := d.Email(ctx, id)
	if err != nil {
		return workflow.User{}, err
	}
	manager, err := d.Manager(ctx, id)
	if err != nil {
		return workflow.User{}, err
	}
	groups, err := d.Groups(ctx, id)
	if err != nil {
		return workflow.User{}, err
	}
	return workflow.User{SlackID: id, Email: email, Manager: manager, Groups: groups}, nil
}

// visibleTo returns a filter of the items a person may see. Policies
// without a visible condition are decided once per policy.
func (b *Bot) visibleTo(ctx context.Context, u workflow.User) func(workflow.Item) bool {
	now := b.cfg.Clock.Now()
	byPolicy := map[string]bool{}
	return func(it workflow.Item) bool {
		p := b.cfg.Policies[it.Policy]
		if p == nil {
			return false
		}
		if ok, known := byPolicy[it.Policy]; known {
			return ok
		}
		ok, err := workflow.Visible(ctx, p, it, u, now)
		if err != nil {
			b.log.Warn().Err(err).Str("item", it.ID).Msg("visibility condition failed; item hidden")
			return false
		}
		if p.Visible == nil {
			byPolicy[it.Policy] = ok
		}
		return ok
	}
}
