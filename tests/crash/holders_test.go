package crash_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/latchhq/latch/bot/slackemu"
	"github.com/latchhq/latch/workflow"
)

// The people who asked for access log in to PostgreSQL with the
// credentials latch sent them and keep their sessions open. Once latch has
// taken the access back, those sessions must be over and the password
// must not let anyone in again.

// credentialsMark opens the PostgreSQL connector's message with a login.
const credentialsMark = "Your PostgreSQL login"

// maxHeld is how many sessions one person keeps open at once; the
// credentials they get beyond that are used once and let go, so that the
// sessions stay well under the server's max_connections (pgMaxConnections).
const maxHeld = 25

// pingTimeout bounds the query that tells whether a held session is alive.
const pingTimeout = time.Second

var (
	credentialsUser     = regexp.MustCompile(`(?m)^\s*user:\s+(\S+)`)
	credentialsPassword = regexp.MustCompile(`(?m)^\s*password:\s+(\S+)`)
	credentialsURL      = regexp.MustCompile(`postgresql://\S+`)
	unescapeMrkdwn      = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">")
)

// credentials is a login as a DM delivered it.
type credentials struct {
	role, password string
	url            string // the connection string of the message
	request        string // the value of the message's Release button
}

// parseCredentials reads the credentials in a message, if it has any.
func parseCredentials(m slackemu.Message) (credentials, bool) {
	text := m.Render()
	if !strings.Contains(text, credentialsMark) {
		return credentials{}, false
	}
	text = unescapeMrkdwn.Replace(text)
	user, password := credentialsUser.FindStringSubmatch(text), credentialsPassword.FindStringSubmatch(text)
	if user == nil || password == nil {
		return credentials{}, false
	}
	c := credentials{role: user[1], password: password[1], url: strings.TrimSuffix(credentialsURL.FindString(text), "```")}
	c.request, _ = buttonValue(m, clickRelease)
	return c, true
}

// holding is one delivered login and what became of it.
type holding struct {
	credentials
	user     string    // Slack id of the person it was delivered to
	grant    string    // from the role's comment, or from the log's facts
	loginAt  time.Time // when the person tried it
	loginEnd time.Time // when the attempt was over
	loginErr error     // why the login, or reading the secret table, failed
	conn     *pgx.Conn // the session kept open; nil once ended, or when not kept
	late     bool      // seen alive past its deadline, reported at the next stop
	judged   bool      // a failed login was found explained by the log
	kept     bool      // alive, as its grant was revoked as covered by another

	// Once its grant is revoked, the person tries the login again.
	retry       bool   // asked to
	fresh       bool   // the fresh login was refused
	freshWorked string // the fresh login worked: when, not reported yet
}

// holdings is every login delivered to the simulated people.
type holdings struct {
	mu     sync.Mutex
	all    []*holding
	open   map[string]int           // user → sessions kept open
	inbox  map[string][]string      // user → thread_ts of messages to read ("" for the top level)
	again  map[string][]*holding    // user → logins to try again, their grant revoked
	gone   bool                     // the holders have stopped: logins are tried again by the checks
	wake   map[string]chan struct{} // user → told of new messages
	owners map[string]string        // DM channel id or user id → user id

	// What was found, for the report.
	logins, notKept, maxOpen                   int
	loginsExplained, otherFailures             int
	endedByRevocation, freshRefused, keptAlive int
	firstOtherFailure                          string
	lateSessions                               []lateSession
}

// lateSession is a held session of an overdue grant still alive after the
// deadline.
type lateSession struct {
	h                *holding
	after, connected time.Duration // since the start
}

func newHoldings() *holdings {
	return &holdings{open: make(map[string]int), inbox: make(map[string][]string), again: make(map[string][]*holding),
		wake: make(map[string]chan struct{}), owners: make(map[string]string)}
}

// watch makes user a holder: told of every message latch posts with a
// login in their DM.
func (h *holdings) watch(emu *slackemu.Server, user string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.owners[user] = user
	h.owners[emu.DMChannel(user)] = user
	h.wake[user] = make(chan struct{}, 1)
}

// notice is the emulator's hook on every Web API call: a posted message
// with a login notifies its recipient, as Slack would.
func (h *holdings) notice(c slackemu.Call) {
	if c.Method != "chat.postMessage" || c.Error != "" || !strings.Contains(c.Args["blocks"], credentialsMark) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	user, ok := h.owners[c.Args["channel"]]
	if !ok {
		return
	}
	h.inbox[user] = append(h.inbox[user], c.Args["thread_ts"])
	h.wakeLocked(user)
}

func (h *holdings) wakeLocked(user string) {
	select {
	case h.wake[user] <- struct{}{}:
	default:
	}
}

// take returns the messages user was notified of, and the logins to try
// again.
func (h *holdings) take(user string) ([]string, []*holding) {
	h.mu.Lock()
	defer h.mu.Unlock()
	refs, again := h.inbox[user], h.again[user]
	h.inbox[user], h.again[user] = nil, nil
	slices.Sort(refs)
	return slices.Compact(refs), again
}

// stop tells the checks that nobody tries logins again any more.
func (h *holdings) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gone = true
	for user, xs := range h.again {
		for _, x := range xs {
			x.retry = false
		}
		delete(h.again, user)
	}
}

// closeAll ends every session still held.
func (h *holdings) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, x := range h.all {
		if x.conn != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			x.conn.Close(ctx)
			cancel()
			x.conn = nil
		}
	}
}

// holder reads the logins latch sends user, logs in with each, proves it
// can read the secret table, and keeps the session open.
func (r *run) holder(ctx context.Context, user string) {
	h := r.held
	h.mu.Lock()
	wake := h.wake[user]
	h.mu.Unlock()
	dm := r.emu.DMChannel(user)
	seen := make(map[string]bool) // roles already used
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		}
		refs, again := h.take(user)
		for _, x := range again {
			r.tryAgain(ctx, x)
		}
		var msgs []slackemu.Message
		for _, ts := range refs {
			if ts == "" {
				msgs = append(msgs, r.emu.DMs(user)...)
			} else {
				msgs = append(msgs, r.emu.Thread(slackemu.Message{Channel: dm, TS: ts})...)
			}
		}
		for _, m := range msgs {
			c, ok := parseCredentials(m)
			if !ok || seen[c.role] {
				continue
			}
			seen[c.role] = true
			r.use(ctx, user, c)
			if ctx.Err() != nil {
				return
			}
		}
	}
}

// use logs in with delivered credentials and records the outcome.
func (r *run) use(ctx context.Context, user string, c credentials) {
	h := r.held
	x := &holding{credentials: c, user: user, loginAt: time.Now()}
	conn, err := r.login(ctx, c)
	if ctx.Err() != nil {
		if conn != nil {
			conn.Close(context.Background())
		}
		return // the test is ending, not latch's doing
	}
	x.loginErr, x.loginEnd = err, time.Now()
	x.grant = r.grantOfRole(ctx, c.role)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.all = append(h.all, x)
	if err != nil {
		return
	}
	h.logins++
	if h.open[user] >= maxHeld {
		h.notKept++
		conn.Close(context.Background())
		return
	}
	x.conn = conn
	h.open[user]++
	open := 0
	for _, n := range h.open {
		open += n
	}
	h.maxOpen = max(h.maxOpen, open)
}

// tryAgain logs in afresh with the credentials of x, whose grant is
// revoked: PostgreSQL must refuse.
func (r *run) tryAgain(ctx context.Context, x *holding) {
	conn, err := r.login(ctx, x.credentials)
	if conn != nil {
		conn.Close(context.Background())
	}
	h := r.held
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err == nil:
		x.freshWorked = time.Now().Format("15:04:05.000")
	case refusedLogin(err):
		x.fresh = true
		h.freshRefused++
	default:
		x.retry = false // inconclusive: asked again at the next stop
	}
}

// login connects with c's connection string and reads the secret table.
func (r *run) login(ctx context.Context, c credentials) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(c.url)
	if err != nil || c.url == "" {
		cfg, err = pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d dbname=%s sslmode=disable", r.pg.Port, pgDatabase))
		if err != nil {
			return nil, err
		}
		cfg.User, cfg.Password = c.role, c.password
	}
	if cfg.User != c.role || cfg.Password != c.password || cfg.Port != uint16(r.pg.Port) || cfg.Database != pgDatabase {
		return nil, fmt.Errorf("the connection string says %s@%d/%s, the message %s", cfg.User, cfg.Port, cfg.Database, c.role)
	}
	cfg.ConnectTimeout = 2 * time.Second
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var v int
	if err := conn.QueryRow(ctx, "SELECT v FROM "+pgSecretTable).Scan(&v); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("read %s: %w", pgSecretTable, err)
	}
	if v != 42 {
		conn.Close(context.Background())
		return nil, fmt.Errorf("%w: %s holds %d, want 42", errWrongSecret, pgSecretTable, v)
	}
	return conn, nil
}

var errWrongSecret = errors.New("wrong secret")

// pgSecretTable is the table only the entitlement may read.
const pgSecretTable = "secret"

// grantOfRole finds the grant of a login role by the comment latch put on
// it; "" when the role is gone.
func (r *run) grantOfRole(ctx context.Context, role string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	roles, err := r.pg.latchRoles(ctx)
	if err != nil {
		return ""
	}
	for _, x := range roles {
		if x.name == role {
			return x.grantID
		}
	}
	return ""
}

// refusedLogin reports whether err is PostgreSQL refusing the login:
// a wrong password, an unknown role, or one that may not log in.
func refusedLogin(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000")
}

// alive reports whether a session still answers.
func alive(conn *pgx.Conn) bool {
	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	defer cancel()
	_, err := conn.Exec(ctx, "SELECT 1")
	return err == nil
}

// closeLocked ends x's session from this side. h.mu must be held.
func (h *holdings) closeLocked(x *holding) {
	if x.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	x.conn.Close(ctx)
	cancel()
	x.conn = nil
	h.open[x.user]--
}

// endedLocked records that latch ended x's session. h.mu must be held.
func (h *holdings) endedLocked(x *holding) {
	h.closeLocked(x)
	h.endedByRevocation++
}

// settleOverdue looks, during a life, at the held sessions of the grants
// that were overdue when the server started: once their role is gone from
// PostgreSQL, or the deadline has passed, each must be over. It reports
// whether every one is settled (seen ended, or reported late).
func (r *run) settleOverdue(overdue []string, left []latchRole, deadline bool) bool {
	h := r.held
	h.mu.Lock()
	defer h.mu.Unlock()
	settled := true
	now := time.Now()
	for _, x := range h.all {
		if x.conn == nil || x.late || x.grant == "" || !slices.Contains(overdue, x.grant) {
			continue
		}
		gone := !slices.ContainsFunc(left, func(l latchRole) bool { return l.grantID == x.grant })
		if !gone && !deadline {
			settled = false
			continue
		}
		if !alive(x.conn) {
			h.endedLocked(x)
			continue
		}
		if !deadline {
			settled = false // the role is gone; its sessions are being ended
			continue
		}
		x.late = true
		h.lateSessions = append(h.lateSessions, lateSession{h: x, after: now.Sub(r.startedAt), connected: r.connectedAt.Sub(r.startedAt)})
	}
	return settled
}

// checkHoldings checks, while no server runs, the delivered logins against
// the log: a failed login is explained by the access ending; a held
// session of a grant that ended, or that is overdue past the deadline, is
// over; a fresh login with the password of a revoked grant is refused.
func (r *run) checkHoldings(grants map[string]grantInfo, accounts map[string]string, kept map[string]bool) {
	r.t.Helper()
	for _, x := range r.judgeHoldings(grants, accounts, kept) {
		r.tryAgain(context.Background(), x)
	}
	if h := r.held; h.gone {
		// What the logins tried just now found.
		r.judgeHoldings(grants, accounts, kept)
	}
}

// judgeHoldings does the work of checkHoldings, and returns the logins to
// try again here, once the holders have stopped.
func (r *run) judgeHoldings(grants map[string]grantInfo, accounts map[string]string, kept map[string]bool) []*holding {
	t := r.t
	t.Helper()
	h := r.held
	h.mu.Lock()
	defer h.mu.Unlock()

	for _, l := range h.lateSessions {
		if kept[l.h.grant] && !*strictKept {
			if !l.h.kept {
				l.h.kept = true
				h.keptAlive++
			}
			continue
		}
		t.Errorf("the session of role %s (grant %s, logged in at %s) of an overdue grant still answered %s after the restart (connected after %s)",
			l.h.role, l.h.grant, l.h.loginAt.Format("15:04:05.000"), l.after, l.connected)
		h.closeLocked(l.h)
	}
	h.lateSessions = nil

	var again []*holding // to try here, the holders having stopped
	for _, x := range h.all {
		if g := accounts[x.role]; g != "" {
			if x.grant != "" && x.grant != g {
				t.Errorf("role %s: its comment names grant %s, the log's facts grant %s", x.role, x.grant, g)
			}
			x.grant = g
		}
		g, ok := grants[x.grant]
		if !ok {
			continue // not in the log yet as far as the facts tell
		}
		if x.request != "" && x.request != g.request {
			t.Errorf("the login %s for grant %s of request %s came with a Release button for request %s", x.role, x.grant, g.request, x.request)
			x.request = ""
		}

		if x.loginErr != nil && !x.judged {
			limit := x.loginEnd.Add(ackTolerance)
			switch {
			case !g.revokingAt.IsZero() && !g.revokingAt.After(limit),
				!g.expires.IsZero() && !g.expires.After(limit),
				g.state == workflow.GrantFailed:
				x.judged = true
				h.loginsExplained++
			case refusedLogin(x.loginErr) || errors.Is(x.loginErr, errWrongSecret):
				t.Errorf("the login delivered for grant %s (role %s, request %s) failed between %s and %s although the grant was %s, expiring at %s: %v",
					x.grant, x.role, g.request, x.loginAt.Format("15:04:05.000"), x.loginEnd.Format("15:04:05.000"),
					g.state, g.expires.Format("15:04:05.000"), x.loginErr)
				x.judged = true
			default:
				x.judged = true
				h.otherFailures++
				if h.firstOtherFailure == "" {
					h.firstOtherFailure = fmt.Sprintf("role %s at %s: %v", x.role, x.loginAt.Format("15:04:05.000"), x.loginErr)
				}
			}
		}

		if x.conn != nil {
			why := ""
			switch {
			case g.state.Ended():
				why = fmt.Sprintf("its grant is %s in the log since %s", g.state, g.endedAt.Format("15:04:05.000"))
			case !g.expires.IsZero() && !r.connectedAt.IsZero():
				due := g.expires
				if due.Before(r.connectedAt) {
					due = r.connectedAt
				}
				if r.killedAt.After(due.Add(revokeSlack)) {
					why = fmt.Sprintf("its grant (%s) expired at %s and the server ran until %s",
						g.state, g.expires.Format("15:04:05.000"), r.killedAt.Format("15:04:05.000"))
				}
			}
			switch {
			case why == "":
			case !alive(x.conn):
				h.endedLocked(x)
			case kept[x.grant] && !*strictKept:
				if !x.kept {
					x.kept = true
					h.keptAlive++
				}
			default:
				t.Errorf("the session of role %s (grant %s, logged in at %s) still answers after the kill %d, but %s",
					x.role, x.grant, x.loginAt.Format("15:04:05.000"), r.kills, why)
				h.closeLocked(x)
			}
		}

		if x.freshWorked != "" {
			t.Errorf("a fresh login as %s with the password delivered for grant %s worked at %s, after the grant was revoked at %s",
				x.role, x.grant, x.freshWorked, g.endedAt.Format("15:04:05.000"))
			x.freshWorked = ""
			x.fresh = true
		}
		if g.state == workflow.GrantRevoked && !x.fresh && !x.retry && !kept[x.grant] {
			x.retry = true
			if h.gone {
				again = append(again, x)
			} else {
				h.again[x.user] = append(h.again[x.user], x)
				h.wakeLocked(x.user)
			}
		}
	}
	return again
}
