// Package crash_test kills a running latch server again and again while
// people use it through the Slack emulator, and checks after every kill
// and every restart that nothing latch acknowledged was lost, that the
// audit log verifies, that its projections agree with the log, and that
// PostgreSQL holds no access latch cannot account for or should have
// taken back.
package crash_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/latchhq/latch/bot/slackemu"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

var (
	kills      = flag.Int("crash.kills", 50, "how many times the crash test kills the latch server")
	strictKept = flag.Bool("crash.strict-kept", true, "fail on the login role of a grant revoked as covered by another grant (see keptRoles)")
)

// revokeSlack is how long after a server is connected to Slack an overdue
// grant may still be in PostgreSQL.
const revokeSlack = 2 * time.Second

func TestKillServerRepeatedly(t *testing.T) {
	pg := startPostgres(t)
	n := *kills
	if testing.Short() {
		n = 5
	}

	dir := t.TempDir()
	bin := filepath.Join(dir, "latch")
	build := exec.Command("go", "build", "-o", bin, "github.com/latchhq/latch/cmd/latch")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	emu, err := slackemu.New()
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	cfg := writeConfig(t, emu, dir, pg.Port)
	if out, err := exec.Command(bin, "check", "--config", cfg).CombinedOutput(); err != nil {
		t.Fatalf("latch check: %v\n%s", err, out)
	}

	r := &run{t: t, emu: emu, pg: pg, bin: bin, cfg: cfg, dir: dir, db: filepath.Join(dir, "latch.db"),
		submits: make(map[string]string), roles: make(map[string]bool), keptRoles: make(map[string]bool),
		clicks: make(map[string]click), clicksAcked: make(map[string]bool), clicksFound: make(map[string]bool), clicksMissing: make(map[string]bool),
		held: newHoldings()}
	requesters := []string{"alice", "bob", "dave", "frank"}
	for _, name := range requesters {
		r.held.watch(emu, emu.User(name).ID)
	}
	emu.OnCall(r.held.notice)
	defer r.held.closeAll() // after the people below have stopped

	// People use latch for the whole run, whether it is up or not, and
	// use the access it gives them.
	ctx, stopActivity := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, name := range requesters {
		wg.Go(func() { r.requester(ctx, name, int64(i)) })
		wg.Go(func() { r.holder(ctx, emu.User(name).ID) })
	}
	for i, name := range []string{"carol", "heidi", "grace"} {
		wg.Go(func() { r.approver(ctx, name, int64(10+i)) })
	}
	defer func() {
		stopActivity()
		wg.Wait()
	}()

	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	for i := range n {
		// Every fifth life is long enough to see every overdue grant
		// revoked; the others end at a random moment.
		life := time.Duration(100+rng.IntN(1401)) * time.Millisecond
		if i%5 == 4 {
			life = 0
		}
		r.life(life)
		r.checkStopped()
		if t.Failed() {
			break
		}
	}
	stopActivity()
	wg.Wait()
	r.held.stop()
	// A last life with nobody acting, ended by SIGTERM.
	r.life(-1)
	r.checkStopped()

	t.Logf("kills: %d; requests submitted (form cleared): %d of %d sent", r.kills, r.cleared, r.submitSent.Load())
	a, rl := r.approveClicks, r.releaseClicks
	t.Logf("approvals: %d clicked, %d acked, %d of them found in the log; releases: %d clicked, %d acked, %d of them found in the log (%d ended by the clicker, %d refused, %d already ending)",
		r.approvals.Load(), a.acked, a.found, r.releases.Load(), rl.acked, rl.found, rl.byClicker, rl.refused, rl.alreadyEnding)
	t.Logf("events in the log: %d; requests: %d; grants revoked: %d; latch roles created: %d",
		r.events, r.requests, r.revoked, r.rolesSeen)
	t.Logf("start → connected to Slack: %s", summary(r.connects))
	t.Logf("start → the first overdue grant's role gone from PostgreSQL: %s", summary(r.firsts))
	t.Logf("start → every overdue grant gone from PostgreSQL (%d restarts with overdue grants, %d ended before the deadline): %s",
		len(r.recoveries), r.undecided, summary(r.recoveries))
	h := r.held
	t.Logf("logins with delivered credentials: %d of %d delivered (%d used once, over the %d sessions a person keeps; at most %d held at once); failed as the access was ending: %d; failed otherwise: %d",
		h.logins, len(h.all), h.notKept, maxHeld, h.maxOpen, h.loginsExplained, h.otherFailures)
	t.Logf("held sessions seen ended by revocation: %d; fresh logins refused after revocation: %d",
		h.endedByRevocation, h.freshRefused)
	if h.firstOtherFailure != "" {
		t.Logf("the first login that failed for a reason other than the access ending: %s", h.firstOtherFailure)
	}
	if h.keptAlive > 0 {
		t.Logf("sessions left alive by grants revoked as covered by another grant of the same person: %d", h.keptAlive)
	}
	if len(r.keptRoles) > 0 {
		t.Logf("login roles left in PostgreSQL by grants revoked as covered by another grant of the same person (Deprovisioned.Kept; -crash.strict-kept fails on them): %d", len(r.keptRoles))
	}
	if p := emu.TakeProblems(); len(p) > 0 {
		t.Logf("the emulator recorded %d problems (clicks on cards already decided, trigger ids expired across a kill…); first: %s", len(p), p[0])
	}
}

// run is the state of one crash test.
type run struct {
	t                 *testing.T
	emu               *slackemu.Server
	pg                *pgServer
	bin, cfg, dir, db string

	mu      sync.Mutex
	submits map[string]string // envelope id → the token in the justification
	clicks  map[string]click  // envelope id → the Approve or Release click

	// The acked clicks, those found in the log and those reported
	// missing from it; guarded by mu.
	clicksAcked, clicksFound, clicksMissing map[string]bool
	approveClicks, releaseClicks            clickCounts

	held *holdings // the logins delivered to the requesters

	submitSent, approvals, releases atomic.Int64 // sent; approvals and releases are clicks
	tokens                          atomic.Int64

	// What the checks found, for the report.
	kills, cleared, undecided        int
	events, requests, revoked        int
	rolesSeen                        int
	roles                            map[string]bool
	late                             []lateRole
	firsts                           []time.Duration // start → the first overdue role gone
	keptRoles                        map[string]bool // left behind by grants revoked as covered elsewhere
	connects, recoveries             []time.Duration
	grants                           map[string]grantInfo // from the last stop's read of the store
	killedAt, connectedAt, startedAt time.Time
}

// lateRole is a role of an overdue grant still in PostgreSQL after the
// deadline.
type lateRole struct {
	role             latchRole
	after, connected time.Duration // since the start
}

type grantInfo struct {
	request    string
	state      workflow.GrantState
	expires    time.Time
	revokingAt time.Time // the first grant.revoking
	endedAt    time.Time // grant.revoked or grant.failed
}

// life starts the server, waits until it is connected, lets it live for
// d (0: until every overdue grant is checked gone, and a little more; -1:
// the same, then SIGTERM), and kills it.
func (r *run) life(d time.Duration) {
	t := r.t
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(r.dir, "serve.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	hellos := r.emu.Hellos()
	cmd := exec.Command(r.bin, "serve", "--config", r.cfg)
	cmd.Env = append(os.Environ(),
		"SLACK_BOT_TOKEN="+r.emu.BotToken(),
		"SLACK_APP_TOKEN="+r.emu.AppToken(),
		"LATCH_SLACK_API_URL="+r.emu.APIURL(),
		pgPasswordEnv+"="+pgLatchPass,
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	r.startedAt = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	// Grants that were due by now must go once the server is up.
	var overdue []string
	for id, g := range r.grants {
		if !g.state.Ended() && !g.expires.IsZero() && g.expires.Before(r.startedAt) {
			overdue = append(overdue, id)
		}
	}

	var killAt <-chan time.Time
	if d > 0 {
		killAt = time.After(d)
	}
	connected := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if r.emu.Wait(ctx, func() bool { return r.emu.Hellos() > hellos }) == nil {
			close(connected)
		}
	}()
	r.connectedAt = time.Time{}
	baseline, firstSeen := -1, false // overdue roles at the first look; one of them seen gone
	checked := false                 // the overdue grants were seen gone, or missed their deadline
	settled := false                 // the held sessions of the overdue grants were seen ended, or late
	var left []latchRole             // the overdue grants' roles at the last look
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case err := <-exited:
			out, _ := os.ReadFile(filepath.Join(r.dir, "serve.log"))
			t.Fatalf("latch serve exited by itself: %v\n%s", err, tail(out))
		case <-connected:
			r.connectedAt = time.Now()
			r.connects = append(r.connects, r.connectedAt.Sub(r.startedAt))
			connected = nil
			continue
		case <-killAt:
		case <-poll.C:
			if !checked {
				left = r.stillThere(overdue)
				gone := len(left) == 0
				now := time.Now()
				if baseline < 0 {
					baseline = len(left)
				} else if len(left) < baseline && !firstSeen {
					firstSeen = true
					r.firsts = append(r.firsts, now.Sub(r.startedAt))
				}
				switch {
				case gone:
					if len(overdue) > 0 {
						r.recoveries = append(r.recoveries, now.Sub(r.startedAt))
					}
					checked = true
				case !r.connectedAt.IsZero() && now.After(r.connectedAt.Add(revokeSlack)):
					// Judged at the next stop, when the log tells why.
					for _, role := range r.stillThere(overdue) {
						r.late = append(r.late, lateRole{role: role, after: now.Sub(r.startedAt), connected: r.connectedAt.Sub(r.startedAt)})
					}
					checked = true
				}
			}
			if !settled && !r.connectedAt.IsZero() {
				settled = r.settleOverdue(overdue, left, time.Since(r.connectedAt) > revokeSlack)
			}
			if checked && settled && d <= 0 && time.Since(r.connectedAt) > 500*time.Millisecond {
				break // long lives go on a little after the check
			}
			continue
		}
		break
	}
	if !checked && len(overdue) > 0 {
		r.undecided++
	}
	if d < 0 {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := <-exited; err != nil {
			out, _ := os.ReadFile(filepath.Join(r.dir, "serve.log"))
			t.Errorf("latch serve after SIGTERM: %v\n%s", err, tail(out))
		}
	} else {
		cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		r.kills++
	}
	r.killedAt = time.Now()
}

func (r *run) stillThere(grants []string) []latchRole {
	if len(grants) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	roles, err := r.pg.latchRoles(ctx)
	if err != nil {
		r.t.Fatalf("list roles: %v", err)
	}
	var out []latchRole
	for _, role := range roles {
		if slices.Contains(grants, role.grantID) {
			out = append(out, role)
		}
	}
	return out
}

// checkStopped checks the store and PostgreSQL while no server runs.
func (r *run) checkStopped() {
	t := r.t
	t.Helper()

	if _, err := os.Stat(r.db); errors.Is(err, fs.ErrNotExist) {
		// Killed before it made its store: nothing may be in PostgreSQL.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if roles, err := r.pg.latchRoles(ctx); err != nil || len(roles) > 0 {
			t.Errorf("no store yet, but PostgreSQL has latch roles %v (%v)", roles, err)
		}
		return
	}

	// The audit log verifies, with the binary people use.
	if out, err := exec.Command(r.bin, "audit", "verify", "--db", r.db).CombinedOutput(); err != nil {
		t.Errorf("latch audit verify after kill %d: %v\n%s", r.kills, err, out)
	}

	st, err := store.Open(r.db, store.Options{ReadOnly: true, Projections: []store.Projection{store.Requests{}}})
	if err != nil {
		t.Fatalf("open the store after kill %d: %v", r.kills, err)
	}
	defer st.Close()

	// Fold the log ourselves.
	submitted := make(map[string]string) // justification → requester
	kept := make(map[string]bool)        // grants revoked without a call: another grant covered the target
	hist := make(map[string][]logged)    // request id → its events
	revoking := make(map[string]time.Time)
	ended := make(map[string]time.Time)
	folded, events, err := foldLog(st, func(e *workflow.Event, req *workflow.Request) {
		hist[e.RequestID] = append(hist[e.RequestID], newLogged(e, req.State))
		switch e.Kind {
		case workflow.KindSubmitted:
			submitted[req.Justification] = req.Requester
		case workflow.KindGrantRevoking:
			if _, ok := revoking[e.GrantID]; !ok {
				revoking[e.GrantID] = e.Time
			}
		case workflow.KindGrantRevoked, workflow.KindGrantFailed:
			ended[e.GrantID] = e.Time
		}
		if e.Kind == workflow.KindGrantRevoked {
			var p workflow.Deprovisioned
			if json.Unmarshal(e.Payload, &p) == nil && p.Kept {
				kept[e.GrantID] = true
			}
		}
	})
	if err != nil {
		t.Fatalf("scan the log: %v", err)
	}
	r.events, r.requests = events, len(folded)

	// The requests projection is what the log folds to.
	for id, want := range folded {
		got, ok, err := st.Request(id)
		if err != nil || !ok {
			t.Errorf("request %s is in the log but not in the projection (%v)", id, err)
			continue
		}
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		if !bytes.Equal(gj, wj) {
			t.Errorf("request %s: projection\n%s\nlog folds to\n%s", id, gj, wj)
		}
	}
	var inProjection int
	if err := st.View(store.RequestsProjection, func(b *bolt.Bucket) error {
		if byID := b.Bucket([]byte("by-id")); byID != nil {
			inProjection = byID.Stats().KeyN
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if inProjection != len(folded) {
		t.Errorf("the projection holds %d requests, the log %d", inProjection, len(folded))
	}

	// Every form whose submission was acked with "clear" was recorded:
	// the bot clears the form only once the engine has committed it.
	cleared := 0
	r.mu.Lock()
	for _, a := range r.emu.Acks() {
		token, ok := r.submits[a.EnvelopeID]
		if !ok || !isClear(a.Payload) {
			continue
		}
		cleared++
		if _, ok := submitted[token]; !ok {
			t.Errorf("the form submission %s was acked (clear) but no request.submitted holds %q", a.EnvelopeID, token)
		}
	}
	r.mu.Unlock()
	r.cleared = cleared

	// Every Approve and Release click that was acked was recorded first.
	r.checkClicks(hist)

	// Overdue grants not revoked in time after the last restart.
	for _, l := range r.late {
		if kept[l.role.grantID] && !*strictKept {
			r.keptRoles[l.role.name] = true
			continue
		}
		t.Errorf("role %s of overdue grant %s (%d sessions) still in PostgreSQL %s after the restart (connected after %s)",
			l.role.name, l.role.grantID, l.role.sessions, l.after, l.connected)
	}
	r.late = nil

	// Grants as the log tells them.
	grants := make(map[string]grantInfo)
	accounts := make(map[string]string) // login role → grant, from the connector's facts
	revoked := 0
	for _, req := range folded {
		for _, g := range req.Grants {
			grants[g.ID] = grantInfo{request: req.ID, state: g.State, expires: req.ExpiresAt,
				revokingAt: revoking[g.ID], endedAt: ended[g.ID]}
			if g.State == workflow.GrantRevoked {
				revoked++
			}
			if a := g.Facts["account"]; a != "" {
				accounts[a] = g.ID
			}
		}
	}
	r.grants, r.revoked = grants, revoked

	// The sessions opened with the delivered logins ended with the access.
	r.checkHoldings(grants, accounts, kept)

	// PostgreSQL holds no role the log does not account for, and none
	// whose grant expired long enough ago for the running server to have
	// taken it back.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	roles, err := r.pg.latchRoles(ctx)
	if err != nil {
		t.Fatalf("list roles: %v", err)
	}
	for _, role := range roles {
		if !r.roles[role.name] {
			r.roles[role.name] = true
			r.rolesSeen++
		}
		g, ok := grants[role.grantID]
		switch {
		case !ok:
			t.Errorf("role %s (grant %s) is in PostgreSQL, but the log has no such grant", role.name, role.grantID)
		case g.state == workflow.GrantRevoked && kept[role.grantID] && !*strictKept:
			// The engine skips the connector when another active grant of
			// the same person holds the same target; in ephemeral mode that
			// grant's own login role is left behind. Counted, reported.
			r.keptRoles[role.name] = true
		case g.state == workflow.GrantRevoked || g.state == workflow.GrantFailed:
			t.Errorf("role %s is in PostgreSQL, but the log says its grant %s is %s", role.name, role.grantID, g.state)
		case !g.expires.IsZero() && !r.connectedAt.IsZero():
			// While the server ran and was connected, a grant past its
			// expiry by more than the slack must have been revoked.
			due := g.expires
			if due.Before(r.connectedAt) {
				due = r.connectedAt
			}
			if r.killedAt.After(due.Add(revokeSlack)) {
				t.Errorf("role %s (grant %s, %s) expired at %s but was still in PostgreSQL at the kill %s later",
					role.name, role.grantID, g.state, g.expires.Format(time.RFC3339Nano), r.killedAt.Sub(g.expires))
			}
		}
	}
}

// foldLog folds every request's events in the log into the request, as
// the projection should hold it, calling visit (if given) after each event
// of a request with the request as it then stands. It also returns how
// many events the log holds.
func foldLog(st *store.Store, visit func(e *workflow.Event, r *workflow.Request)) (map[string]*workflow.Request, int, error) {
	folded := make(map[string]*workflow.Request)
	events := 0
	err := st.Scan(context.Background(), store.Filter{}, func(e *workflow.Event) error {
		events++
		if e.RequestID == "" {
			return nil
		}
		r := folded[e.RequestID]
		if r == nil {
			r = &workflow.Request{}
			folded[e.RequestID] = r
		}
		if err := workflow.ApplyEvent(r, e); err != nil {
			return fmt.Errorf("event %d (%s) does not fold: %w", e.Seq, e.Kind, err)
		}
		if visit != nil {
			visit(e, r)
		}
		return nil
	})
	return folded, events, err
}

func isClear(payload json.RawMessage) bool {
	var p struct {
		ResponseAction string `json:"response_action"`
	}
	return json.Unmarshal(payload, &p) == nil && p.ResponseAction == "clear"
}

// requester asks for access again and again, and sometimes releases it.
func (r *run) requester(ctx context.Context, name string, seed int64) {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(time.Now().UnixNano())))
	user := r.emu.User(name).ID
	for ctx.Err() == nil {
		if rng.IntN(4) == 0 {
			r.release(ctx, user, rng)
		} else {
			r.request(ctx, user, rng)
		}
		pause(ctx, time.Duration(50+rng.IntN(250))*time.Millisecond)
	}
}

func (r *run) request(ctx context.Context, user string, rng *rand.Rand) {
	items := []struct{ id, durations string }{{"db-quick", "10s 20s 1m"}, {"db-approved", "15s 30s 2m"}}
	item := items[rng.IntN(len(items))]
	durations := strings.Fields(item.durations)
	// Mostly the short ones, so that grants expire during the run.
	d := durations[0]
	if rng.IntN(3) == 0 {
		d = durations[1+rng.IntN(len(durations)-1)]
	}
	step, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	before := len(r.emu.Ephemerals(user))
	if _, err := r.emu.Slash(step, user, "", "/access", item.id); err != nil {
		return
	}
	var results slackemu.Message
	err := r.emu.Wait(step, func() bool {
		eph := r.emu.Ephemerals(user)
		for _, m := range slices.Backward(eph[min(before, len(eph)):]) {
			if m.HasAction("request_item") && strings.Contains(m.Render(), "`"+item.id+"`") {
				results = m
				return true
			}
		}
		return false
	})
	if err != nil {
		return
	}
	if _, err := r.emu.ClickByValue(step, user, results, "request_item", item.id); err != nil {
		return
	}
	v, err := r.emu.WaitView(step, user, "Why do you need it?")
	if err != nil {
		return
	}
	token := fmt.Sprintf("crash test, request number %d", r.tokens.Add(1))
	r.submitSent.Add(1)
	// The envelope id is known before the ack: record it in any case, for
	// the ack may come after this call gives up waiting.
	ack, _ := r.emu.Submit(step, user, v, map[string]string{"duration": d, "justification": token})
	if ack.EnvelopeID != "" {
		r.mu.Lock()
		r.submits[ack.EnvelopeID] = token
		r.mu.Unlock()
	}
}

// release clicks Release on one of the user's grants.
func (r *run) release(ctx context.Context, user string, rng *rand.Rand) {
	var found []slackemu.Message
	for _, m := range r.emu.DMs(user) {
		for _, m := range append([]slackemu.Message{m}, r.emu.Thread(m)...) {
			if m.HasAction(clickRelease) {
				found = append(found, m)
			}
		}
	}
	if len(found) == 0 {
		return
	}
	step, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if r.clickButton(step, user, found[rng.IntN(len(found))], clickRelease) {
		r.releases.Add(1)
	}
}

// approver approves the cards in their DMs.
func (r *run) approver(ctx context.Context, name string, seed int64) {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(time.Now().UnixNano())))
	user := r.emu.User(name).ID
	for ctx.Err() == nil {
		var cards []slackemu.Message
		for _, m := range r.emu.DMs(user) {
			if m.HasAction(clickApprove) {
				cards = append(cards, m)
			}
		}
		if len(cards) > 0 {
			step, cancel := context.WithTimeout(ctx, 5*time.Second)
			if r.clickButton(step, user, cards[rng.IntN(len(cards))], clickApprove) {
				r.approvals.Add(1)
			}
			cancel()
		}
		pause(ctx, time.Duration(100+rng.IntN(400))*time.Millisecond)
	}
}

// pause is a person's think time, not a wait for latch.
func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func summary(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	pick := func(q float64) time.Duration { return s[int(q*float64(len(s)-1))].Round(time.Millisecond) }
	return fmt.Sprintf("n=%d min %s p50 %s p90 %s max %s", len(s), pick(0), pick(0.5), pick(0.9), pick(1))
}

func tail(b []byte) string {
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
