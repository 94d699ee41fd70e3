package slackemu

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Slack's fixed limits that the emulator enforces.
const (
	// TriggerTTL is how long a trigger_id can be exchanged for a modal.
	TriggerTTL = 3 * time.Second
	// DefaultAckTimeout is how long Slack waits for a Socket Mode ack.
	DefaultAckTimeout = 3 * time.Second
	// DefaultPingInterval is how often the emulator pings each socket.
	DefaultPingInterval = 5 * time.Second
	// DefaultMaxRetries is how often an unacked envelope is redelivered.
	DefaultMaxRetries = 3
)

// Sentinel errors returned by the test-facing methods.
var (
	// ErrClosed is returned once the server has been closed.
	ErrClosed = errors.New("slackemu: server closed")
	// ErrUnknownUser means a user name or ID is not in the workspace.
	ErrUnknownUser = errors.New("slackemu: unknown user")
	// ErrUnknownChannel means a channel name or ID is not in the workspace.
	ErrUnknownChannel = errors.New("slackemu: unknown channel")
	// ErrNotVisible means the acting user cannot see the surface they act on.
	ErrNotVisible = errors.New("slackemu: surface not visible to user")
	// ErrGone means the message or view no longer exists (deleted, closed, replaced).
	ErrGone = errors.New("slackemu: surface no longer exists")
	// ErrNoSuchAction means the surface has no element with that action_id (or button text).
	ErrNoSuchAction = errors.New("slackemu: no such element on surface")
	// ErrNoSuchInput means Submit got a value for an input the view does not have.
	ErrNoSuchInput = errors.New("slackemu: no such input in view")
	// ErrInvalidValue means a value is not acceptable for the element
	// (not one of a static select's options, too long, missing while required...).
	ErrInvalidValue = errors.New("slackemu: invalid value for element")
	// ErrQueryTooShort means Suggest was called with fewer characters than the
	// element's min_query_length, so Slack would not ask the app at all.
	ErrQueryTooShort = errors.New("slackemu: query shorter than min_query_length")
	// ErrNotAcked means an envelope was not acknowledged even after all redeliveries.
	ErrNotAcked = errors.New("slackemu: envelope not acknowledged")
	// ErrBadAck means the app acknowledged with a payload Slack would reject
	// (the details are recorded in Problems).
	ErrBadAck = errors.New("slackemu: invalid ack payload")
)

// Option configures a Server.
type Option func(*config)

type config struct {
	addr         string
	now          func() time.Time
	ackTimeout   time.Duration
	pingInterval time.Duration
	maxRetries   int
	seed         bool
	logf         func(format string, args ...any)
}

// WithClock replaces the clock used for trigger_id expiry and message
// timestamps. Socket timing (acks, pings) always uses real time.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// WithAddr sets the listen address (default "127.0.0.1:0").
func WithAddr(addr string) Option {
	return func(c *config) { c.addr = addr }
}

// WithAckTimeout sets how long an envelope may stay unacked before it is
// recorded as a problem and redelivered (default 3 s, like Slack).
func WithAckTimeout(d time.Duration) Option {
	return func(c *config) { c.ackTimeout = d }
}

// WithPingInterval sets how often the server pings each Socket Mode
// connection (default 5 s; slack-go reconnects after 30 s without a ping).
func WithPingInterval(d time.Duration) Option {
	return func(c *config) { c.pingInterval = d }
}

// WithMaxRetries sets how many times an unacked envelope is redelivered
// before the emulator gives up (default 3).
func WithMaxRetries(n int) Option {
	return func(c *config) { c.maxRetries = n }
}

// WithoutSeed starts with an empty workspace: only the team, the app and
// its bot user. Use AddUser, AddChannel and AddUserGroup to populate it.
func WithoutSeed() Option {
	return func(c *config) { c.seed = false }
}

// WithLog receives one line per Web API call, socket event and problem.
// Tokens are never logged. logf may be called with the server's lock held,
// so it must not call the Server.
func WithLog(logf func(format string, args ...any)) Option {
	return func(c *config) { c.logf = logf }
}

// Server is a running Slack emulator. All methods are safe for concurrent use.
type Server struct {
	cfg     config
	ln      net.Listener
	httpSrv *http.Server
	baseURL string
	wsURL   string

	wg sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	done    chan struct{}
	changed chan struct{}

	ws       *workspace
	seq      int
	lastUnix int64
	tsSeq    int

	messages []*message
	msgIndex map[string]*message

	views  map[string]*view
	modals map[string][]string // user ID → stack of view IDs, bottom first
	homes  map[string]string   // user ID → home view ID

	triggers     map[string]*trigger
	responseURLs map[string]*responseURL
	tickets      map[string]bool
	suggestions  map[string][]map[string]any // view ID + "\x00" + action_id → last options

	conns     []*wsConn
	envelopes map[string]*envelope
	queue     []*envelope
	redeliver int
	dropNext  int
	hellos    int
	pongs     int

	faults   []*fault
	calls    []Call
	acks     []AckRecord
	problems []string
	onCall   []func(Call)
}

// New starts a Slack emulator listening on loopback.
func New(opts ...Option) (*Server, error) {
	cfg := config{
		addr:         "127.0.0.1:0",
		now:          time.Now,
		ackTimeout:   DefaultAckTimeout,
		pingInterval: DefaultPingInterval,
		maxRetries:   DefaultMaxRetries,
		seed:         true,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.ackTimeout <= 0 {
		cfg.ackTimeout = DefaultAckTimeout
	}
	if cfg.pingInterval <= 0 {
		cfg.pingInterval = DefaultPingInterval
	}
	cfg.maxRetries = max(cfg.maxRetries, 0)
	if cfg.now == nil {
		cfg.now = time.Now
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return nil, fmt.Errorf("slackemu: listen: %w", err)
	}
	s := &Server{
		cfg:          cfg,
		ln:           ln,
		baseURL:      "http://" + ln.Addr().String(),
		wsURL:        "ws://" + ln.Addr().String(),
		done:         make(chan struct{}),
		changed:      make(chan struct{}),
		msgIndex:     map[string]*message{},
		views:        map[string]*view{},
		modals:       map[string][]string{},
		homes:        map[string]string{},
		triggers:     map[string]*trigger{},
		responseURLs: map[string]*responseURL{},
		tickets:      map[string]bool{},
		suggestions:  map[string][]map[string]any{},
		envelopes:    map[string]*envelope{},
	}
	s.ws = newWorkspace(cfg.seed)
	mux := http.NewServeMux()
	mux.HandleFunc("/api/", s.handleAPI)
	mux.HandleFunc("/link/", s.handleSocket)
	mux.HandleFunc("/response/", s.handleResponseURL)
	s.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.httpSrv.Serve(ln)
	}()
	return s, nil
}

// Start is New for tests: it fails the test if the server cannot start,
// closes the server at cleanup, and then fails the test if Problems is not
// empty.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := New(opts...)
	if err != nil {
		t.Fatalf("start slack emulator: %v", err)
	}
	t.Cleanup(func() {
		s.Close()
		if p := s.Problems(); len(p) > 0 {
			t.Errorf("slack emulator recorded %d problem(s):\n  %s", len(p), strings.Join(p, "\n  "))
		}
	})
	return s
}

// Close stops the server, closes every socket and waits for all of the
// emulator's goroutines to end. It is safe to call more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	conns := append([]*wsConn(nil), s.conns...)
	for _, e := range s.envelopes {
		if e.timer != nil && e.timer.Stop() {
			s.wg.Done()
		}
		e.timer = nil
	}
	s.bumpLocked()
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.httpSrv.Shutdown(ctx)
	_ = s.httpSrv.Close()
	for _, c := range conns {
		c.kill()
	}
	s.wg.Wait()
}

// APIURL is the Web API base URL ending in "/api/", for slack.OptionAPIURL.
func (s *Server) APIURL() string { return s.baseURL + "/api/" }

// BotToken is the bot token (xoxb-…) the app must use for Web API calls.
func (s *Server) BotToken() string { return botToken }

// AppToken is the app-level token (xapp-…) for apps.connections.open.
func (s *Server) AppToken() string { return appToken }

// TeamID is the workspace's team ID.
func (s *Server) TeamID() string { return teamID }

// AppID is the app's ID.
func (s *Server) AppID() string { return appID }

// BotUserID is the user ID of the app's bot user.
func (s *Server) BotUserID() string { return botUserID }

// BotID is the bot ID (B…) of the app's bot user.
func (s *Server) BotID() string { return botID }

// Problems returns everything the emulator found wrong with the app's
// behaviour so far: Block Kit violations, envelopes not acked in time,
// invalid ack payloads, actions on elements that were never rendered,
// calls with the wrong kind of token.
func (s *Server) Problems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.problems...)
}

// TakeProblems returns the recorded problems and forgets them, for tests
// that provoke a problem on purpose.
func (s *Server) TakeProblems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.problems
	s.problems = nil
	return p
}

// Calls returns every Web API call so far, oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	copy(out, s.calls)
	return out
}

// CallsTo returns the calls to one Web API method, oldest first.
func (s *Server) CallsTo(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// OnCall registers fn to be called after every Web API call (including
// failed and fault-injected ones and response_url posts, whose Method is
// "response_url"). fn runs on the request's goroutine after the state
// change is visible and before the response is written, so it must not
// block for long.
func (s *Server) OnCall(fn func(Call)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onCall = append(s.onCall, fn)
}

// Acks returns one record per ack received over Socket Mode, in order.
func (s *Server) Acks() []AckRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]AckRecord, len(s.acks))
	copy(out, s.acks)
	return out
}

// Wait blocks until cond returns true, re-evaluating it every time the
// emulator's state changes (a message, view, call, ack or connection), and
// returns ctx.Err() if ctx ends first. cond must not call Wait.
func (s *Server) Wait(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		closed := s.closed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		if closed {
			return ErrClosed
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// bumpLocked wakes every Wait. s.mu must be held.
func (s *Server) bumpLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) problemLocked(format string, args ...any) {
	p := fmt.Sprintf(format, args...)
	s.problems = append(s.problems, p)
	s.logf("PROBLEM: %s", p)
}

func (s *Server) logf(format string, args ...any) {
	if s.cfg.logf != nil {
		s.cfg.logf(format, args...)
	}
}

func (s *Server) now() time.Time { return s.cfg.now() }

// nextSeq returns a fresh number for deterministic IDs. s.mu must be held.
func (s *Server) nextSeq() int {
	s.seq++
	return s.seq
}

// newTS returns a fresh, strictly increasing message timestamp. s.mu must be held.
func (s *Server) newTS() string {
	u := s.now().Unix()
	if u > s.lastUnix {
		s.lastUnix = u
		s.tsSeq = 0
	}
	s.tsSeq++
	return fmt.Sprintf("%d.%06d", s.lastUnix, s.tsSeq)
}
