package bot_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/latchhq/latch/bot"
	"github.com/latchhq/latch/bot/slackemu"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// The end-to-end tests run the bot, a real engine and store, over a real
// websocket against the emulator, and act only through what the bot
// rendered: they type slash commands, click buttons that are in messages
// and submit the forms the bot opened.

// target is the connector of these tests: it keeps who has what.
type target struct {
	mu          sync.Mutex
	has         map[string]bool // "entitlement email"
	grants      int
	failRevokes bool
}

func (t *target) Grant(_ context.Context, a workflow.Access) (workflow.Granted, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.has[a.Entitlement+" "+a.User.Email] = true
	t.grants++
	return workflow.Granted{Message: "password for " + a.User.Email + ": hunter2"}, nil
}

func (t *target) Revoke(_ context.Context, a workflow.Access) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.failRevokes {
		return errors.New("target unreachable")
	}
	delete(t.has, a.Entitlement+" "+a.User.Email)
	return nil
}

func (t *target) holds(entitlement, email string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.has[entitlement+" "+email]
}

// world is latch running against the emulator.
type world struct {
	t      testing.TB
	emu    *slackemu.Server
	clock  *workflow.FakeClock
	path   string
	cfg    workflow.Config
	target *target
	types  map[string]string

	store  *store.Store
	engine *workflow.Engine
	bot    *bot.Bot
	stop   context.CancelFunc
	done   chan error
}

func userIDs(emu *slackemu.Server) []string {
	var ids []string
	for _, u := range emu.Users() {
		ids = append(ids, u.ID)
	}
	return ids
}

// id returns a seeded user's Slack id.
func (w *world) id(name string) string { return w.emu.User(name).ID }

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func approvers(t testing.TB, texts ...string) []workflow.Approver {
	t.Helper()
	var out []workflow.Approver
	for _, s := range texts {
		out = append(out, must[workflow.Approver](t)(workflow.ParseApprover(s)))
	}
	return out
}

// newWorld seeds a catalogue for the emulator's people: alice and bob
// report to carol; dave is on call; erin and grace are security.
func newWorld(t testing.TB, items ...workflow.Item) *world {
	t.Helper()
	return newWorldWith(t, worldOptions{items: items})
}

// worldOptions change the world of a test or benchmark.
type worldOptions struct {
	items     []workflow.Item
	people    int                  // extra engineers, named user0, user1, …
	leads     int                  // the first leads of them manage the others; carol manages the leads
	connector workflow.Provisioner // instead of the in-memory target
	clock     workflow.Clock       // instead of a fake clock
}

func newWorldWith(t testing.TB, o worldOptions) *world {
	t.Helper()
	items := o.items
	emu := slackemu.Start(t)
	w := &world{t: t, emu: emu, clock: workflow.NewFakeClock(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)),
		path: filepath.Join(t.TempDir(), "latch.db"), target: &target{has: map[string]bool{}},
		types: map[string]string{"db": "exec"}}
	if err := emu.SetUserGroupMembers("oncall", w.id("dave")); err != nil {
		t.Fatal(err)
	}
	for i := range o.people {
		manager := w.id("carol")
		if o.leads > 0 && i >= o.leads {
			manager = w.id(fmt.Sprintf("user%d", i%o.leads))
		}
		if _, err := emu.AddUser(slackemu.User{Name: fmt.Sprintf("user%d", i), RealName: fmt.Sprintf("User %d", i),
			Email: fmt.Sprintf("user%d@example.com", i), ManagerID: manager}); err != nil {
			t.Fatal(err)
		}
	}
	everyone := userIDs(emu)
	if _, err := emu.AddChannel("general", false, everyone...); err != nil {
		t.Fatal(err)
	}
	var users []workflow.User
	for _, u := range emu.Users() {
		if u.IsBot {
			continue
		}
		wu := workflow.User{SlackID: u.ID, Email: u.Email, Manager: u.ManagerID}
		switch u.Name {
		case "erin", "grace", "frank", "heidi":
		default:
			wu.Groups = []string{"engineering"}
		}
		if u.Name == "erin" || u.Name == "grace" {
			wu.Groups = []string{"security"}
		}
		users = append(users, wu)
	}
	dir := must[*workflow.StaticDirectory](t)(workflow.NewStaticDirectory(users, []workflow.Group{
		{Name: "engineering"}, {Name: "security"}, {Name: "oncall", Source: workflow.GroupSlack, Ref: "oncall"},
	}))
	rules := workflow.DurationRules{Default: time.Hour, Min: 15 * time.Minute, Max: 8 * time.Hour}
	policies := map[string]*workflow.Policy{
		"seq": {Name: "seq", Duration: rules, JustificationMinLength: 10, WarnBefore: 10 * time.Minute,
			Extension: workflow.ExtensionRules{MaxTotal: 4 * time.Hour},
			OnBehalf:  workflow.OnBehalfRules{Allowed: true, Manager: true},
			Approval: workflow.Approval{Mode: workflow.Sequential, Stages: []workflow.Stage{
				{Name: "manager", Required: 1, Approvers: approvers(t, "manager")},
				{Name: "owners", Required: 1, Approvers: approvers(t, "owners")},
			}}},
		"par": {Name: "par", Duration: rules, JustificationMinLength: 10, OnBehalf: workflow.OnBehalfRules{Allowed: true, Manager: true},
			Approval: workflow.Approval{Mode: workflow.Parallel, Stages: []workflow.Stage{
				{Name: "peers", Required: 2, Approvers: approvers(t, "user:"+w.id("carol"), "user:"+w.id("dave"), "user:"+w.id("erin"))},
				{Name: "security", Required: 1, Approvers: approvers(t, "group:security")},
			}}},
		"auto": {Name: "auto", Duration: rules,
			AutoReject:  must[*workflow.Condition](t)(workflow.CompileCondition(`request.justification.contains("just testing")`)),
			AutoApprove: must[*workflow.Condition](t)(workflow.CompileCondition(`"oncall" in requester.groups`)),
			Approval:    workflow.Approval{Stages: []workflow.Stage{{Name: "manager", Required: 1, Approvers: approvers(t, "manager")}}}},
		"slow": {Name: "slow", Duration: rules,
			Reminders: workflow.Reminders{RemindAfter: 30 * time.Minute, PendingTimeout: 2 * time.Hour},
			Approval:  workflow.Approval{Stages: []workflow.Stage{{Name: "security", Required: 1, Approvers: approvers(t, "group:security")}}}},
		"mgr": {Name: "mgr", Duration: rules,
			Approval: workflow.Approval{Stages: []workflow.Stage{{Name: "manager", Required: 1, Approvers: approvers(t, "manager")}}}},
		"self": {Name: "self", Duration: rules,
			Approval: workflow.Approval{Stages: []workflow.Stage{{Name: "eng", Required: 1, Approvers: approvers(t, "group:engineering")}}}},
		"bg": {Name: "bg", Duration: rules, VisibleTo: []string{"oncall"},
			Approval: workflow.Approval{Stages: []workflow.Stage{{Name: "security", Required: 1, Approvers: approvers(t, "group:security")}}},
			BreakGlass: workflow.BreakGlass{Enabled: true, Groups: []string{"oncall"}, Channels: []string{emu.Channel("incidents").ID},
				MaxDuration: time.Hour, RateLimit: workflow.RateLimit{Count: 3, Per: 24 * time.Hour},
				ReviewReminder: 4 * time.Hour, Reviewers: approvers(t, "group:security")}},
	}
	item := func(id, name, policy string, owners ...string) workflow.Item {
		return workflow.Item{ID: id, Name: name, Description: "The " + name + ".", Kind: workflow.KindEntitlement, Policy: policy,
			Owners: owners, Targets: []workflow.Target{{Connector: "db", Entitlement: id}}}
	}
	if len(items) == 0 {
		items = []workflow.Item{
			item("prod-db", "Production database", "seq", w.id("dave"), w.id("erin")),
			item("billing", "Billing console", "par"),
			item("logs", "Production logs", "auto"),
			item("audit", "Audit trail", "slow"),
			item("wiki", "Engineering wiki admin", "self"),
			item("prod-shell", "Production shell", "bg"),
			item("team-db", "Team database", "mgr"),
		}
	}
	for i := range items {
		if items[i].Policy == "" {
			items[i].Policy = "seq"
		}
	}
	cat := must[*workflow.Catalogue](t)(workflow.NewCatalogue(items))
	var conn workflow.Provisioner = w.target
	if o.connector != nil {
		conn = o.connector
	}
	var clock workflow.Clock = w.clock
	if o.clock != nil {
		clock = o.clock
	}
	w.cfg = workflow.Config{Catalogue: cat, Policies: policies, Clock: clock, Admins: []string{w.id("grace")},
		Connectors: map[string]workflow.Provisioner{"db": conn}}
	w.cfg.Directory = dir
	w.start()
	t.Cleanup(w.shutdown)
	return w
}

// start opens the store and runs the engine and the bot, connected.
func (w *world) start() {
	t := w.t
	t.Helper()
	w.store = must[*store.Store](t)(store.Open(w.path, store.Options{Now: w.cfg.Clock.Now, Projections: []store.Projection{store.Requests{}}}))
	api := slack.New(w.emu.BotToken(), slack.OptionAppLevelToken(w.emu.AppToken()), slack.OptionAPIURL(w.emu.APIURL()))
	dir := bot.NewDirectory(w.cfg.Directory.(bot.GroupCatalog), api, w.cfg.Clock, time.Minute)
	b := must[*bot.Bot](t)(bot.New(bot.Config{API: api, Requests: w.store, Catalogue: w.cfg.Catalogue, Policies: w.cfg.Policies,
		Directory: dir, ConnectorTypes: w.types, Admins: w.cfg.Admins, SecurityChannel: w.emu.Channel("security").ID,
		Clock: w.cfg.Clock, Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		SocketOptions: []socketmode.Option{socketmode.OptionPingInterval(time.Minute)}}))
	cfg := w.cfg
	cfg.Store, cfg.Notifier, cfg.Directory = w.store, b, dir
	w.engine = must[*workflow.Engine](t)(workflow.NewEngine(cfg))
	b.SetEngine(w.engine)
	if err := w.engine.Start(); err != nil {
		t.Fatal(err)
	}
	w.bot = b
	ctx, stop := context.WithCancel(context.Background())
	w.stop, w.done = stop, make(chan error, 1)
	hellos := w.emu.Hellos()
	go func() { w.done <- b.Run(ctx) }()
	wait, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.emu.Wait(wait, func() bool { return w.emu.Hellos() > hellos }); err != nil {
		t.Fatalf("the bot did not connect: %v", err)
	}
}

// shutdown stops the bot, the engine and the store, as a restart would.
func (w *world) shutdown() {
	if w.stop == nil {
		return
	}
	w.stop()
	if err := <-w.done; err != nil {
		w.t.Errorf("bot.Run: %v", err)
	}
	w.engine.Close()
	w.store.Close()
	w.stop = nil
}

func (w *world) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	w.t.Cleanup(cancel)
	return ctx
}

// settle lets the bot and the engine finish what the last step started.
func (w *world) settle() {
	w.bot.Idle()
	w.engine.Advance()
	w.engine.Wait()
}

// pass moves the clock and lets latch act on what came due.
func (w *world) pass(d time.Duration) {
	w.clock.Advance(d)
	w.settle()
}

// form opens the request form for an item the way a person finds it:
// /access with words, then the Request button of the result.
func (w *world) form(user, item string) *slackemu.View {
	t := w.t
	t.Helper()
	ctx := w.ctx()
	if _, err := w.emu.Slash(ctx, user, w.emu.Channel("general").ID, "/access", item); err != nil {
		t.Fatal(err)
	}
	var results slackemu.Message
	err := w.emu.Wait(ctx, func() bool {
		for _, m := range slices.Backward(w.emu.Ephemerals(user)) {
			if m.HasAction("request_item") && strings.Contains(m.Render(), "`"+item+"`") {
				results = m
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatalf("no search result for %s shown to %s: %v", item, user, err)
	}
	ack, err := w.emu.ClickByValue(ctx, user, results, "request_item", item)
	if err != nil {
		t.Fatalf("click Request on %s: %v (%+v)", item, err, ack)
	}
	v, err := w.emu.WaitView(ctx, user, "Why do you need it?")
	if err != nil {
		t.Fatalf("no request form for %s: %v", item, err)
	}
	return v
}

// request submits the form for an item and returns the request made.
func (w *world) request(user, item string, values map[string]string) workflow.Request {
	t := w.t
	t.Helper()
	before := w.requestsOf(user)
	v := w.form(user, item)
	ack, err := w.emu.Submit(w.ctx(), user, v, values)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	if len(ack.Errors) > 0 {
		t.Fatalf("form refused: %v", ack.Errors)
	}
	w.settle()
	for _, r := range w.requestsOf(user) {
		if !slices.ContainsFunc(before, func(o workflow.Request) bool { return o.ID == r.ID }) {
			return r
		}
	}
	t.Fatalf("no request made by %s", user)
	return workflow.Request{}
}

func (w *world) requestsOf(user string) []workflow.Request {
	var out []workflow.Request
	if err := w.store.RequestsOf(user, func(r workflow.Request) error {
		out = append(out, r)
		return nil
	}); err != nil {
		w.t.Fatal(err)
	}
	return out
}

func (w *world) load(id string) workflow.Request {
	w.t.Helper()
	r, ok, err := w.store.Request(id)
	if err != nil || !ok {
		w.t.Fatalf("request %s: %t %v", id, ok, err)
	}
	return r
}

// card waits for the approval card of request r in user's DMs.
func (w *world) card(user string, r workflow.Request) slackemu.Message {
	w.t.Helper()
	var card slackemu.Message
	err := w.emu.Wait(w.ctx(), func() bool {
		for _, m := range w.emu.DMs(user) {
			if strings.Contains(string(m.Blocks), r.ID) && strings.Contains(m.Render(), "Access request") {
				card = m
				return true
			}
		}
		return false
	})
	if err != nil {
		w.t.Fatalf("%s has no card for %s: %v\nDMs: %s", user, r.ID, err, w.dump(user))
	}
	return card
}

func (w *world) dump(user string) string {
	var b strings.Builder
	for _, m := range w.emu.DMs(user) {
		b.WriteString("\n---\n" + m.Render())
	}
	for _, m := range w.emu.Ephemerals(user) {
		b.WriteString("\n--- (ephemeral)\n" + m.Render())
	}
	return b.String()
}

// click clicks a button on the current version of a message and lets
// latch act on it.
func (w *world) click(user string, m slackemu.Surface, action string) {
	w.t.Helper()
	if _, err := w.emu.Click(w.ctx(), user, m, action); err != nil {
		w.t.Fatalf("%s clicks %s: %v", user, action, err)
	}
	w.settle()
}

// told waits until user was shown text anywhere: a DM, a thread reply or an
// ephemeral message.
func (w *world) told(user, text string) {
	w.t.Helper()
	err := w.emu.Wait(w.ctx(), func() bool { return w.saw(user, text) })
	if err != nil {
		w.t.Fatalf("%s was not told %q: %v\nwhat they saw: %s", user, text, err, w.dump(user))
	}
}

func (w *world) saw(user, text string) bool {
	for _, m := range w.emu.DMs(user) {
		for _, t := range append([]slackemu.Message{m}, w.emu.Thread(m)...) {
			if strings.Contains(t.Render(), text) {
				return true
			}
		}
	}
	for _, m := range w.emu.Ephemerals(user) {
		if strings.Contains(m.Render(), text) {
			return true
		}
	}
	return false
}

// current returns the message as it is now, after any updates.
func (w *world) current(m slackemu.Message) slackemu.Message {
	w.t.Helper()
	now, ok := w.emu.Current(m)
	if !ok {
		w.t.Fatalf("message %s is gone", m.TS)
	}
	return now
}

// eventually waits for cond, failing with what.
func (w *world) eventually(what string, cond func() bool) {
	w.t.Helper()
	if err := w.emu.Wait(w.ctx(), cond); err != nil {
		w.t.Fatalf("%s: %v", what, err)
	}
}

func (w *world) state(id string, want workflow.RequestState) {
	w.t.Helper()
	w.eventually(fmt.Sprintf("request %s to be %s", id, want), func() bool {
		w.settle()
		return w.load(id).State == want
	})
}

var why = map[string]string{"justification": "Backfill the orders table for INC-2041"}

func TestSequentialApprovalThroughExpiry(t *testing.T) {
	w := newWorld(t)
	alice, carol, dave, erin := w.id("alice"), w.id("carol"), w.id("dave"), w.id("erin")
	r := w.request(alice, "prod-db", map[string]string{"duration": "2h", "justification": why["justification"]})
	if r.State != workflow.RequestPending || r.Duration != 2*time.Hour {
		t.Fatalf("request: %s for %s", r.State, r.Duration)
	}
	w.told(alice, "Waiting for approval")

	// Stage 1: the manager. The owners are not asked yet.
	managerCard := w.card(carol, r)
	if w.saw(dave, "Access request") {
		t.Error("an owner got a card before the manager approved")
	}
	if !strings.Contains(managerCard.Render(), "stage 1 of 2") {
		t.Errorf("manager's card: %s", managerCard.Render())
	}
	w.click(carol, managerCard, "approve")

	// Stage 2: both owners get a card; dave approves.
	daveCard, erinCard := w.card(dave, r), w.card(erin, r)
	w.click(dave, daveCard, "approve")
	w.state(r.ID, workflow.RequestActive)
	if !w.target.holds("prod-db", "alice@example.com") {
		t.Fatal("the connector was not asked to grant")
	}
	w.told(alice, "is active")
	w.told(alice, "hunter2") // the connector's message reaches the beneficiary

	// Every approver's copy shows the outcome, without buttons.
	w.eventually("every card updated", func() bool {
		for _, c := range []slackemu.Message{managerCard, daveCard, erinCard} {
			now := w.current(c)
			if now.HasAction("approve") || !strings.Contains(now.Render(), "Approved") {
				return false
			}
		}
		return true
	})
	for _, who := range []string{carol, dave, erin} {
		if w.saw(who, "hunter2") {
			t.Errorf("%s saw the beneficiary's credentials", who)
		}
	}

	// A warning before the end, then the expiry and the revocation.
	w.pass(time.Hour + 50*time.Minute)
	w.told(alice, "ends")
	w.pass(10 * time.Minute)
	w.state(r.ID, workflow.RequestEnded)
	if w.target.holds("prod-db", "alice@example.com") {
		t.Error("access remains after the expiry")
	}
	w.told(alice, "expired and was revoked")
}

func TestParallelTwoOfThree(t *testing.T) {
	w := newWorld(t)
	bob := w.id("bob")
	r := w.request(bob, "billing", why)
	// Every stage is asked at once.
	for _, who := range []string{"carol", "dave", "erin", "grace"} {
		w.card(w.id(who), r)
	}
	w.click(w.id("carol"), w.card(w.id("carol"), r), "approve")
	w.click(w.id("grace"), w.card(w.id("grace"), r), "approve")
	if got := w.load(r.ID).State; got != workflow.RequestPending {
		t.Fatalf("after 1 of 2 peers and security: %s, want pending", got)
	}
	// The card of the peer who voted says so and has no buttons.
	if c := w.current(w.card(w.id("carol"), r)); c.HasAction("approve") || !strings.Contains(c.Render(), "You approved") {
		t.Errorf("carol's card after her vote: %s", c.Render())
	}
	w.click(w.id("erin"), w.card(w.id("erin"), r), "approve")
	w.state(r.ID, workflow.RequestActive)
	// Dave, who did not vote, sees the outcome too.
	w.eventually("dave's card updated", func() bool {
		c := w.current(w.card(w.id("dave"), r))
		return !c.HasAction("approve") && strings.Contains(c.Render(), "Approved")
	})
}

func TestDenyWithReason(t *testing.T) {
	w := newWorld(t)
	alice, carol := w.id("alice"), w.id("carol")
	r := w.request(alice, "prod-db", why)
	card := w.card(carol, r)
	w.click(carol, card, "deny")
	v, err := w.emu.WaitView(w.ctx(), carol, "Deny request")
	if err != nil {
		t.Fatal(err)
	}
	// An empty reason is refused inline.
	ack, err := w.emu.Submit(w.ctx(), carol, v, map[string]string{"reason": "  "})
	if err != nil || ack.Errors["reason"] == "" {
		t.Fatalf("empty reason: %v %+v", err, ack)
	}
	if _, err := w.emu.Submit(w.ctx(), carol, v, map[string]string{"reason": "Use the read replica <!here>"}); err != nil {
		t.Fatal(err)
	}
	w.settle()
	w.state(r.ID, workflow.RequestRejected)
	w.told(alice, "Denied")
	w.told(alice, "Use the read replica &lt;!here&gt;")
	w.eventually("card updated", func() bool {
		c := w.current(card)
		return !c.HasAction("approve") && strings.Contains(c.Render(), "Denied")
	})
}

func TestOnCallAutoApproveAndAutoReject(t *testing.T) {
	w := newWorld(t)
	dave, bob := w.id("dave"), w.id("bob")
	// dave is in the Slack user group @oncall, read through the directory.
	r := w.request(dave, "logs", map[string]string{"justification": "error rates after the deploy"})
	w.state(r.ID, workflow.RequestActive)
	w.told(dave, "is active")
	if w.saw(w.id("heidi"), "Access request") {
		t.Error("dave's manager was asked although the policy approved")
	}
	r = w.request(bob, "logs", map[string]string{"justification": "just testing something"})
	w.state(r.ID, workflow.RequestRejected)
	w.told(bob, "Rejected by policy")
}

func TestRequestForSomeoneElse(t *testing.T) {
	w := newWorld(t)
	carol, alice, bob := w.id("carol"), w.id("alice"), w.id("bob")
	// carol, alice's manager, requests for alice; the form offers it.
	r := w.request(carol, "billing", map[string]string{"beneficiary": alice, "justification": why["justification"]})
	if r.Beneficiary != alice || r.Requester != carol {
		t.Fatalf("request by %s for %s", r.Requester, r.Beneficiary)
	}
	w.told(alice, "requested *Billing console* for you")
	// carol is one of the peers, but never approves her own request.
	for _, who := range []string{"dave", "erin", "grace"} {
		w.click(w.id(who), w.card(w.id(who), r), "approve")
	}
	if w.saw(carol, "Access request") {
		t.Error("the requester got an approval card")
	}
	w.state(r.ID, workflow.RequestActive)
	if !w.target.holds("billing", "alice@example.com") {
		t.Error("access went to the wrong person")
	}
	w.told(alice, "hunter2")
	if w.saw(carol, "hunter2") {
		t.Error("the requester saw the beneficiary's credentials")
	}
	// bob may not request for alice: he is not her manager.
	v := w.form(bob, "billing")
	ack, err := w.emu.Submit(w.ctx(), bob, v, map[string]string{"beneficiary": alice, "justification": why["justification"]})
	if err != nil || !strings.Contains(ack.Errors["beneficiary"], "may not request") {
		t.Fatalf("bob for alice: %v %+v", err, ack.Errors)
	}
}

func TestSelfApprovalAndStrangersRefused(t *testing.T) {
	w := newWorld(t)
	alice, bob, frank := w.id("alice"), w.id("bob"), w.id("frank")
	r := w.request(alice, "wiki", why)
	// alice is in engineering, the approving group, but gets no card.
	if w.saw(alice, "Access request") {
		t.Error("alice got a card for her own request")
	}
	card := w.card(bob, r)
	// frank forges a click on bob's card: the emulator refuses to show it
	// to him, so he sends the payload of the Approve button himself.
	if _, err := w.emu.ClickAs(w.ctx(), frank, card, "approve"); err != nil {
		t.Fatal(err)
	}
	w.settle()
	w.told(frank, "not an approver")
	if got := w.load(r.ID); got.State != workflow.RequestPending || len(got.Stages[0].Approvals) != 0 {
		t.Fatalf("a stranger's click counted: %s %v", got.State, got.Stages[0].Approvals)
	}
	var refused []string
	if err := w.store.Scan(context.Background(), store.Filter{Kinds: []string{workflow.KindRefused}}, func(e *workflow.Event) error {
		refused = append(refused, e.Actor)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(refused, frank) {
		t.Errorf("the refused click is not in the log: %v", refused)
	}
	// alice forges the Approve of bob's card for her own request.
	if _, err := w.emu.ClickAs(w.ctx(), alice, card, "approve"); err != nil {
		t.Fatal(err)
	}
	w.settle()
	if got := w.load(r.ID); len(got.Stages[0].Approvals) != 0 {
		t.Fatalf("alice approved her own request: %v", got.Stages[0].Approvals)
	}
	// A double click gives one decision.
	w.click(bob, card, "approve")
	if _, err := w.emu.ClickAs(w.ctx(), bob, card, "approve"); err != nil {
		t.Fatal(err)
	}
	w.settle()
	w.state(r.ID, workflow.RequestActive)
	votes := 0
	if err := w.store.Scan(context.Background(), store.Filter{Kinds: []string{workflow.KindApproval}}, func(e *workflow.Event) error {
		if e.RequestID == r.ID {
			votes++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if votes != 1 || w.target.grants != 1 {
		t.Errorf("double click: %d votes, %d grants, want 1 and 1", votes, w.target.grants)
	}
}

func TestBreakGlass(t *testing.T) {
	w := newWorld(t)
	dave, alice := w.id("dave"), w.id("alice")
	incidents, general := w.emu.Channel("incidents").ID, w.emu.Channel("general").ID
	slash := func(user, channel, text string) {
		t.Helper()
		if _, err := w.emu.Slash(w.ctx(), user, channel, "/access", text); err != nil {
			t.Fatal(err)
		}
		w.settle()
	}
	slash(dave, general, "breakglass prod-shell the database is down")
	w.told(dave, "Break-glass refused")
	slash(alice, incidents, "breakglass prod-shell the database is down")
	w.told(alice, "Break-glass refused")
	if w.target.grants != 0 {
		t.Fatal("break-glass granted where it may not be")
	}
	slash(dave, incidents, "breakglass prod-shell the database is down, INC-7")
	w.eventually("the grant", func() bool { return w.target.holds("prod-shell", "dave@example.com") })
	msg, err := w.emu.WaitMessage(w.ctx(), w.emu.Channel("security").ID, "Break-glass")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.emu.WaitMessage(w.ctx(), incidents, "Break-glass"); err != nil {
		t.Fatal(err)
	}
	w.click(w.id("erin"), msg, "review")
	w.eventually("the review", func() bool {
		var reviewed bool
		for _, r := range w.requestsOf(dave) {
			reviewed = reviewed || r.BreakGlass && r.Reviewed
		}
		return reviewed && !w.current(msg).HasAction("review")
	})
}

func TestReleaseAndExtend(t *testing.T) {
	w := newWorld(t)
	dave := w.id("dave")
	r := w.request(dave, "logs", map[string]string{"duration": "1h", "justification": "error rates after the deploy"})
	w.state(r.ID, workflow.RequestActive)
	granted := w.grantedMessage(dave, r)

	// Extend by 30 minutes through the form the Extend button opens.
	w.click(dave, granted, "extend")
	v, err := w.emu.WaitView(w.ctx(), dave, "Extend access")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.emu.Submit(w.ctx(), dave, v, map[string]string{"duration": "30m"}); err != nil {
		t.Fatal(err)
	}
	w.settle()
	w.told(dave, "Extended by 30m")
	if got := w.load(r.ID); !got.ExpiresAt.Equal(r.DecidedAt.Add(90 * time.Minute)) {
		t.Errorf("expiry after extending: %s, want %s", got.ExpiresAt, r.DecidedAt.Add(90*time.Minute))
	}
	// Released early, access is gone at once.
	w.click(dave, granted, "release")
	w.state(r.ID, workflow.RequestEnded)
	if w.target.holds("logs", "dave@example.com") {
		t.Error("access remains after release")
	}
	w.told(dave, "was released and revoked")
}

// grantedMessage waits for the beneficiary's "active" notice of r.
func (w *world) grantedMessage(user string, r workflow.Request) slackemu.Message {
	w.t.Helper()
	var found slackemu.Message
	w.eventually("the granted message", func() bool {
		for _, m := range w.emu.DMs(user) {
			for _, t := range append([]slackemu.Message{m}, w.emu.Thread(m)...) {
				if t.HasAction("release") && strings.Contains(string(t.Blocks), r.ID) && strings.Contains(t.Render(), "is active") {
					found = t
					return true
				}
			}
		}
		return false
	})
	return found
}

func TestReminderAndTimeout(t *testing.T) {
	w := newWorld(t)
	bob, erin := w.id("bob"), w.id("erin")
	r := w.request(bob, "audit", why)
	card := w.card(erin, r)
	w.pass(31 * time.Minute)
	w.told(erin, "Reminder")
	w.eventually("the card notes the reminder", func() bool { return strings.Contains(w.current(card).Render(), "reminded") })
	w.pass(2 * time.Hour)
	w.state(r.ID, workflow.RequestTimedOut)
	w.told(bob, "Timed out")
	w.eventually("the card shows the timeout", func() bool {
		c := w.current(card)
		return !c.HasAction("approve") && strings.Contains(c.Render(), "Timed out")
	})
}

func TestRestartInTheMiddle(t *testing.T) {
	w := newWorld(t)
	alice, carol := w.id("alice"), w.id("carol")
	r := w.request(alice, "prod-db", why)
	card := w.card(carol, r)
	w.shutdown()
	w.start()
	// The old button works, and the card posted before the restart is
	// updated by the new process.
	w.click(carol, card, "approve")
	w.card(w.id("dave"), r)
	w.eventually("the manager's card updated after the restart", func() bool {
		c := w.current(card)
		return !c.HasAction("approve") && strings.Contains(c.Render(), "1 of 1 approvals")
	})
}

func TestRedeliveryAfterRefreshIsProcessedOnce(t *testing.T) {
	w := newWorld(t)
	alice, carol := w.id("alice"), w.id("carol")
	r := w.request(alice, "wiki", why)
	card := w.card(w.id("bob"), r)
	_ = carol
	// Slack asks the app to reconnect and redelivers the click.
	w.emu.RedeliverNext()
	w.click(w.id("bob"), card, "approve")
	w.emu.Disconnect("refresh_requested")
	w.eventually("the bot reconnects", func() bool { return w.emu.Hellos() >= 2 && w.bot.Connected() })
	w.settle()
	w.state(r.ID, workflow.RequestActive)
	if w.target.grants != 1 {
		t.Errorf("%d grants, want 1", w.target.grants)
	}
	var refused int
	if err := w.store.Scan(context.Background(), store.Filter{Kinds: []string{workflow.KindRefused, workflow.KindApproval}}, func(e *workflow.Event) error {
		if e.RequestID == r.ID {
			refused++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if refused != 1 {
		t.Errorf("%d approval or refusal events, want exactly 1: the redelivered click was processed again", refused)
	}
	redelivered := slices.ContainsFunc(w.emu.Acks(), func(a slackemu.AckRecord) bool { return a.RetryAttempt > 0 })
	if !redelivered {
		t.Error("the emulator redelivered nothing")
	}
}

func TestHostileTextAndHugeCatalogue(t *testing.T) {
	items := make([]workflow.Item, 10000)
	long := strings.Repeat("Very long name ", 30)
	for i := range items {
		items[i] = workflow.Item{ID: fmt.Sprintf("item-%05d", i), Name: fmt.Sprintf("%s %d", long, i),
			Description: strings.Repeat("description ", 100), Kind: workflow.KindEntitlement, Policy: "seq",
			Labels: map[string]string{"n": fmt.Sprint(i)}, Owners: []string{"U_OWNER"},
			Targets: []workflow.Target{{Connector: "db", Entitlement: fmt.Sprintf("e%d", i)}}}
	}
	w := newWorld(t, items...)
	alice := w.id("alice")
	// Owners are emulator users: fix them up now that ids are known.
	_ = alice
	hostile := "<!channel> <@U0BOSS> please " + strings.Repeat("x", 2900)
	// Searching the whole catalogue never breaks a limit.
	if _, err := w.emu.Slash(w.ctx(), alice, w.emu.Channel("general").ID, "/access", "very long"); err != nil {
		t.Fatal(err)
	}
	w.settle()
	w.eventually("search results", func() bool { return len(w.emu.Ephemerals(alice)) > 0 })
	if _, err := w.emu.Slash(w.ctx(), alice, w.emu.Channel("general").ID, "/access", ""); err != nil {
		t.Fatal(err)
	}
	v, err := w.emu.WaitView(w.ctx(), alice, "Request access")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := w.emu.Suggest(w.ctx(), alice, v, "item", "")
	if err != nil || len(opts) != 100 {
		t.Fatalf("suggest: %d options, %v", len(opts), err)
	}
	if _, err := w.emu.Select(w.ctx(), alice, v, "item", "item-09999"); err != nil {
		t.Fatal(err)
	}
	v, err = w.emu.WaitView(w.ctx(), alice, "Why do you need it?")
	if err != nil {
		t.Fatal(err)
	}
	ack, err := w.emu.Submit(w.ctx(), alice, v, map[string]string{"justification": hostile})
	if err != nil || len(ack.Errors) > 0 {
		t.Fatalf("submit: %v %v", err, ack.Errors)
	}
	w.settle()
	card := w.card(w.id("carol"), w.requestsOf(alice)[0])
	text := string(card.Blocks)
	for _, bad := range []string{"<!channel>", "<@U0BOSS>"} {
		if strings.Contains(text, bad) {
			t.Errorf("the card renders %q from the justification", bad)
		}
	}
	// The emulator fails the test at cleanup if any call broke a Block
	// Kit limit.
}

func TestUnknownPersonIsTold(t *testing.T) {
	w := newWorld(t)
	u, err := w.emu.AddUser(slackemu.User{Name: "zed", RealName: "Zed Stranger", Email: "zed@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.emu.Slash(w.ctx(), u.ID, w.emu.Channel("general").ID, "/access", "prod"); err != nil {
		t.Fatal(err)
	}
	w.settle()
	w.told(u.ID, "does not know you")
	if errors.Is(nil, context.Canceled) {
		t.Fatal("unreachable")
	}
}

// panicky is an engine whose Approve panics, as a bug would.
type panicky struct{ bot.Engine }

func (panicky) Approve(context.Context, string, string) (workflow.Request, error) {
	panic("approve exploded")
}

func TestPanicIsRecoveredWithAnApology(t *testing.T) {
	w := newWorld(t)
	alice, bob := w.id("alice"), w.id("bob")
	r := w.request(alice, "wiki", why)
	card := w.card(bob, r)
	w.bot.SetEngine(panicky{w.engine})
	w.click(bob, card, "approve")
	w.told(bob, "Sorry, latch hit an internal error")
	// The bot goes on working, and the click can be tried again.
	w.bot.SetEngine(w.engine)
	w.click(bob, card, "approve")
	w.state(r.ID, workflow.RequestActive)
}

func TestSlackRateLimitsAndErrorsLoseNothing(t *testing.T) {
	w := newWorld(t)
	alice, carol := w.id("alice"), w.id("carol")
	// The next DMs are refused: twice with 429 and Retry-After, then a
	// burst of 5xx. The bot waits and retries; the notices arrive in order.
	w.emu.FailNext("chat.postMessage", 2, 429, 100*time.Millisecond)
	r := w.request(alice, "prod-db", why)
	w.emu.FailNext("chat.postMessage", 2, 503, 0)
	card := w.card(carol, r)
	w.click(carol, card, "approve")
	w.card(w.id("dave"), r)
	w.told(alice, "Waiting for approval")
	w.told(alice, "Asked <@"+w.id("dave")+">")
	if got := w.emu.CallsTo("chat.postMessage"); !slices.ContainsFunc(got, func(c slackemu.Call) bool { return c.Status == 429 }) {
		t.Error("no call was rate limited; the test tested nothing")
	}
}

func TestListAndAppHome(t *testing.T) {
	w := newWorld(t)
	dave, alice, grace := w.id("dave"), w.id("alice"), w.id("grace")
	active := w.request(dave, "logs", map[string]string{"justification": "error rates after the deploy"})
	w.state(active.ID, workflow.RequestActive)
	pending := w.request(dave, "wiki", why)
	waiting := w.request(alice, "wiki", why)

	// /access list: the active grant with Extend and Release, the pending
	// request with Cancel.
	if _, err := w.emu.Slash(w.ctx(), dave, w.emu.Channel("general").ID, "/access", "list"); err != nil {
		t.Fatal(err)
	}
	w.settle()
	list, err := w.emu.WaitEphemeral(w.ctx(), dave, "Your active access")
	if err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"extend", "release", "cancel"} {
		if !list.HasAction(action) {
			t.Errorf("/access list has no %s button:\n%s", action, list.Render())
		}
	}
	if !strings.Contains(list.Render(), "Production logs") || !strings.Contains(list.Render(), "Engineering wiki admin") {
		t.Errorf("/access list:\n%s", list.Render())
	}
	// Cancel from the list.
	w.click(dave, list, "cancel")
	w.state(pending.ID, workflow.RequestCancelled)

	// App Home: dave sees his access, and alice's request waiting for him
	// (he is in engineering), with Approve and Deny.
	if _, err := w.emu.OpenHome(w.ctx(), dave); err != nil {
		t.Fatal(err)
	}
	w.settle()
	home, err := w.emu.WaitHome(w.ctx(), dave, "Waiting for your approval")
	if err != nil {
		t.Fatal(err)
	}
	text := home.Render()
	if !strings.Contains(text, "Production logs") || !home.HasAction("approve") || !home.HasAction("release") {
		t.Fatalf("dave's home:\n%s", text)
	}
	if strings.Contains(text, "Active grants (admin)") {
		t.Error("a non-admin sees the admin list")
	}
	// Approving from App Home works and the home is refreshed.
	w.click(dave, home, "approve")
	w.state(waiting.ID, workflow.RequestActive)
	w.eventually("the home refreshed", func() bool {
		h := w.emu.Home(dave)
		return h != nil && strings.Contains(h.Render(), "Nothing waits for you")
	})
	// An admin sees the latest active grants.
	if _, err := w.emu.OpenHome(w.ctx(), grace); err != nil {
		t.Fatal(err)
	}
	w.settle()
	admin, err := w.emu.WaitHome(w.ctx(), grace, "Active grants (admin)")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(admin.Render(), "<@"+alice+">") || !strings.Contains(admin.Render(), "<@"+dave+">") {
		t.Errorf("the admin's home does not list both grants:\n%s", admin.Render())
	}
}

func TestRevokeFailureIsAnnounced(t *testing.T) {
	w := newWorld(t)
	dave := w.id("dave")
	r := w.request(dave, "logs", map[string]string{"justification": "error rates after the deploy"})
	w.state(r.ID, workflow.RequestActive)
	w.target.mu.Lock()
	w.target.failRevokes = true
	w.target.mu.Unlock()
	w.pass(time.Hour) // expired; every revoke fails, with back-off
	// The retries back off up to 5 minutes; after six failures the grant
	// is revoke_failed and announced.
	for range 12 {
		w.pass(5 * time.Minute)
	}
	if _, err := w.emu.WaitMessage(w.ctx(), w.emu.Channel("security").ID, "could not revoke"); err != nil {
		t.Fatalf("the security channel was not told: %v (grant %+v)", err, w.load(r.ID).Grants)
	}
	w.told(dave, "could not take back your access")
	w.target.mu.Lock()
	w.target.failRevokes = false
	w.target.mu.Unlock()
	for range 4 {
		w.pass(15 * time.Minute)
	}
	w.state(r.ID, workflow.RequestEnded)
	w.told(dave, "expired and was revoked")
}

// TestAckedClicksAreRecorded: a click that decides something is in the log
// by the time Slack has its ack, so a crash after the ack loses nothing
// the person was shown as done.
func TestAckedClicksAreRecorded(t *testing.T) {
	w := newWorld(t)
	alice, carol, dave := w.id("alice"), w.id("carol"), w.id("dave")
	recorded := func(id, kind, actor string) bool {
		found := false
		err := w.store.Scan(w.ctx(), store.Filter{}, func(e *workflow.Event) error {
			found = found || e.RequestID == id && e.Kind == kind && e.Actor == actor
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return found
	}
	r := w.request(alice, "prod-db", map[string]string{"duration": "2h", "justification": why["justification"]})
	if _, err := w.emu.Click(w.ctx(), carol, w.card(carol, r), "approve"); err != nil {
		t.Fatal(err)
	}
	// No settle: what is in the log now was there when the ack left.
	if !recorded(r.ID, workflow.KindApproval, carol) {
		t.Error("carol's approval was acked before it was in the log")
	}
	w.settle()

	l := w.request(dave, "logs", map[string]string{"duration": "1h", "justification": "error rates after the deploy"})
	w.state(l.ID, workflow.RequestActive)
	if _, err := w.emu.Click(w.ctx(), dave, w.grantedMessage(dave, l), "release"); err != nil {
		t.Fatal(err)
	}
	if !recorded(l.ID, workflow.KindEnding, dave) {
		t.Error("dave's release was acked before it was in the log")
	}
	w.settle()
	w.state(l.ID, workflow.RequestEnded)
}
