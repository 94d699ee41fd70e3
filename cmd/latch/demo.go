package main

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/latchhq/latch/bot/slackemu"
	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

//go:embed demo/config.yaml.tmpl
var demoConfig string

//go:embed demo/target.sh
var demoTarget []byte

func newDemoCmd() *cobra.Command {
	var keep string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Play a scripted run of latch against an emulated Slack, offline",
		Long: `Demo starts a Slack emulator on loopback, runs latch against it through the
same code as serve (Socket Mode, the engine, a real bbolt store and the exec
connector on a directory of files), and plays a scenario: a two-stage
approval, a parallel approval, a denial, an on-call auto-approval and a
break-glass. It prints who saw what and clicked what and every event, moves
the clock past the expiries, shows the revocations and verifies the audit
log. Nothing leaves the machine.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := runDemo(cmd.Context(), cmd.OutOrStdout(), keep); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "latch demo: %v\n", err)
				return &exitError{exitFailure}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&keep, "keep", "", "keep the store and the target's files in this directory")
	return cmd
}

// demo is one run of the scenario.
type demo struct {
	out   io.Writer
	emu   *slackemu.Server
	svc   *service
	clock *workflow.FakeClock
	dir   string
	names map[string]string // Slack id → name
	seq   uint64            // the last event printed
}

// demoStep bounds the wait for latch to react to one step.
const demoStep = 10 * time.Second

func runDemo(ctx context.Context, out io.Writer, keep string) (err error) {
	dir := keep
	if dir == "" {
		if dir, err = os.MkdirTemp("", "latch-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "latch.db")); err == nil {
		return fmt.Errorf("%s already holds a latch.db: give --keep an empty directory", dir)
	}

	emu, err := slackemu.New()
	if err != nil {
		return fmt.Errorf("start the Slack emulator: %w", err)
	}
	defer emu.Close()
	d := &demo{out: out, emu: emu, dir: dir, names: map[string]string{}}
	for _, u := range emu.Users() {
		d.names[u.ID] = u.Name
	}
	if err := emu.SetUserGroupMembers("oncall", emu.User("dave").ID); err != nil {
		return err
	}
	if _, err := emu.AddChannel("general", false, userIDs(emu.Users())...); err != nil {
		return err
	}

	cfg, err := d.writeConfig()
	if err != nil {
		return err
	}
	d.clock = workflow.NewFakeClock(time.Now().UTC().Truncate(time.Minute))
	var logs bytes.Buffer
	log := zerolog.New(zerolog.SyncWriter(&logs)).Level(zerolog.WarnLevel).With().Timestamp().Logger()
	svc, err := startService(ctx, cfg, serviceOptions{
		BotToken: emu.BotToken(), AppToken: emu.AppToken(), APIURL: emu.APIURL(), Clock: d.clock, Log: log,
	})
	if err != nil {
		return err
	}
	d.svc = svc
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- svc.run(runCtx) }()
	defer func() {
		stop()
		if runErr := <-ran; err == nil {
			err = runErr
		}
		svc.close()
		if err == nil && logs.Len() > 0 {
			err = fmt.Errorf("latch logged warnings during the demo:\n%s", logs.String())
		}
	}()

	d.say("latch demo: Slack is emulated on %s; the store is %s", strings.TrimSuffix(emu.APIURL(), "/api/"), cfg.Store.Path)
	d.say("The workspace: alice and bob report to carol; dave is on call (@oncall); erin and grace are security; frank owns billing.")
	wait, cancel := context.WithTimeout(ctx, demoStep)
	err = emu.WaitConnected(wait, 1)
	cancel()
	if err != nil {
		return fmt.Errorf("latch did not connect to the emulator: %w", err)
	}
	d.say("latch connected over Socket Mode.")

	for _, scene := range []struct {
		title string
		play  func(context.Context) error
	}{
		{"A two-stage approval: alice needs the production database, her manager and then its owner approve", d.sequential},
		{"A parallel approval: bob needs billing refunds; the owner and security are asked at once", d.parallel},
		{"A denial: frank asks for a customer export and his manager says no, with a reason", d.denial},
		{"An on-call auto-approval: dave is on call, so production logs need nobody's approval", d.autoApproval},
		{"Break-glass: dave takes a production shell from #incidents during an outage", d.breakGlass},
		{"Time passes: every grant expires and is revoked", d.expiries},
	} {
		d.say("")
		d.say("━━ %s", scene.title)
		if err := scene.play(ctx); err != nil {
			return fmt.Errorf("%s: %w", scene.title, err)
		}
	}

	d.say("")
	d.say("━━ The audit log")
	rep, err := svc.store.Verify(ctx)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	d.say("latch audit verify: ok: %d events, head %s", rep.Count, hex.EncodeToString(rep.Head[:]))
	if problems := emu.Problems(); len(problems) > 0 {
		return fmt.Errorf("the emulator saw Slack rules broken:\n%s", strings.Join(problems, "\n"))
	}
	if keep != "" {
		d.say("The store and the target's files are kept in %s (try: latch audit export --db %s/latch.db).", dir, dir)
	}
	return nil
}

func userIDs(users []slackemu.User) []string {
	var ids []string
	for _, u := range users {
		ids = append(ids, u.ID)
	}
	return ids
}

// writeConfig writes the demo's configuration and target script and loads
// the configuration as serve would.
func (d *demo) writeConfig() (*config.Config, error) {
	users := map[string]string{}
	for _, u := range d.emu.Users() {
		users[u.Name] = u.ID
	}
	tmpl, err := template.New("config").Parse(demoConfig)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, map[string]any{
		"Dir": d.dir, "U": users,
		"C": map[string]string{"security": d.emu.Channel("security").ID, "incidents": d.emu.Channel("incidents").ID},
	}); err != nil {
		return nil, err
	}
	path := filepath.Join(d.dir, "latch.yaml")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(d.dir, "target.sh"), demoTarget, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(d.dir, "admin_token"), []byte(rand.Text()+rand.Text()+"\n"), 0o600); err != nil {
		return nil, err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, fmt.Errorf("the demo configuration: %w", err)
	}
	return cfg, nil
}

// say prints a line of the transcript.
func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, format+"\n", args...)
}

// act prints what a person does.
func (d *demo) act(user, format string, args ...any) {
	d.say("[%s] ▶ %s %s", d.clock.Now().Format("15:04"), d.name(user), fmt.Sprintf(format, args...))
}

func (d *demo) name(id string) string {
	if n, ok := d.names[id]; ok {
		return n
	}
	return id
}

// show prints a message or view as its reader sees it, indented.
func (d *demo) show(who, where, text string) {
	d.say("    %s sees %s:", d.name(who), where)
	text = d.readable(text)
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		d.say("      │ %s", l)
	}
}

// slackMarkup matches a mention (<@U123>) or a date (<!date^…|fallback>).
var slackMarkup = regexp.MustCompile(`<@([A-Z0-9]+)>|<!date\^[^|>]*\|([^>]*)>`)

// readable shows mentions and dates as a Slack client would.
func (d *demo) readable(text string) string {
	return slackMarkup.ReplaceAllStringFunc(text, func(m string) string {
		sub := slackMarkup.FindStringSubmatch(m)
		if sub[1] != "" {
			return "@" + d.name(sub[1])
		}
		return sub[2]
	})
}

// events prints the events committed since the last call.
func (d *demo) events(ctx context.Context) error {
	return d.svc.store.Scan(ctx, store.Filter{From: d.seq + 1}, func(e *workflow.Event) error {
		d.seq = e.Seq
		actor := d.name(e.Actor)
		if actor == "" {
			actor = "latch"
		}
		grant := ""
		if e.GrantID != "" {
			grant = " grant " + short(e.GrantID)
		}
		d.say("      · event %3d %s %-24s by %s, request %s%s", e.Seq, e.Time.Format("15:04:05"), e.Kind, actor, short(e.RequestID), grant)
		return nil
	})
}

func short(id string) string {
	if len(id) > 8 {
		return id[len(id)-8:]
	}
	return id
}

// settle waits for the engine to finish what the last step started, then
// prints the new events.
func (d *demo) settle(ctx context.Context) error {
	d.svc.bot.Idle()
	d.svc.engine.Advance()
	d.svc.engine.Wait()
	return d.events(ctx)
}

// within returns a context for one step.
func within(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, demoStep)
}

// request has user open the form with /access in #general, find the item
// by typing, fill it in and submit it.
func (d *demo) request(ctx context.Context, user, typed, item, duration, why string) error {
	ctx, cancel := within(ctx)
	defer cancel()
	general := d.emu.Channel("general").ID
	d.act(user, "types /access in #general")
	if _, err := d.emu.Slash(ctx, user, general, "/access", ""); err != nil {
		return err
	}
	view, err := d.emu.WaitView(ctx, user, "Request access")
	if err != nil {
		return fmt.Errorf("no request form opened: %w", err)
	}
	options, err := d.emu.Suggest(ctx, user, view, "item", typed)
	if err != nil {
		return err
	}
	var texts []string
	for _, o := range options {
		texts = append(texts, o.Text)
	}
	d.act(user, "types %q in the item picker and is offered: %s", typed, strings.Join(texts, "; "))
	if !slices.ContainsFunc(options, func(o slackemu.SelectOption) bool { return o.Value == item }) {
		return fmt.Errorf("%s was not offered %s", d.name(user), item)
	}
	if _, err := d.emu.Select(ctx, user, view, "item", item); err != nil {
		return err
	}
	view, err = d.emu.WaitView(ctx, user, "Why do you need it?")
	if err != nil {
		return fmt.Errorf("the form did not ask for the item's details: %w", err)
	}
	d.show(user, "the form", view.Render())
	d.act(user, "asks for %s and submits: %q", duration, why)
	ack, err := d.emu.Submit(ctx, user, view, map[string]string{"duration": duration, "justification": why})
	if err != nil {
		return err
	}
	if len(ack.Errors) > 0 {
		return fmt.Errorf("the form was refused: %v", ack.Errors)
	}
	return d.settle(ctx)
}

// decide has user click a button on the latest DM that has it.
func (d *demo) click(ctx context.Context, user, contains, action string) (slackemu.Message, error) {
	ctx, cancel := within(ctx)
	defer cancel()
	msg, err := d.emu.WaitDM(ctx, user, contains)
	if err != nil {
		return msg, fmt.Errorf("%s got no DM with %q: %w", d.name(user), contains, err)
	}
	var card slackemu.Message
	err = d.emu.Wait(ctx, func() bool {
		for _, m := range slices.Backward(d.emu.DMs(user)) {
			if m.HasAction(action) && strings.Contains(m.Render(), contains) {
				card = m
				return true
			}
		}
		return false
	})
	if err != nil {
		return msg, fmt.Errorf("%s has no message with a %s button: %w", d.name(user), action, err)
	}
	d.show(user, "a DM", card.Render())
	d.act(user, "clicks %s", buttonName(action))
	if _, err := d.emu.Click(ctx, user, card, action); err != nil {
		return card, err
	}
	return card, nil
}

func buttonName(action string) string {
	return "[" + strings.ToUpper(action[:1]) + action[1:] + "]"
}

// after waits for a DM to user containing text, and shows it.
func (d *demo) after(ctx context.Context, user, contains string) error {
	ctx, cancel := within(ctx)
	defer cancel()
	var found string
	err := d.emu.Wait(ctx, func() bool {
		for _, m := range d.emu.DMs(user) {
			for _, t := range append([]slackemu.Message{m}, d.emu.Thread(m)...) {
				if r := t.Render(); strings.Contains(r, contains) {
					found = r
					return true
				}
			}
		}
		return false
	})
	if err != nil {
		return fmt.Errorf("%s was not told %q: %w", d.name(user), contains, err)
	}
	d.show(user, "in their DMs", found)
	return nil
}

func (d *demo) sequential(ctx context.Context) error {
	alice, carol, dave := d.emu.User("alice").ID, d.emu.User("carol").ID, d.emu.User("dave").ID
	if err := d.request(ctx, alice, "prod data", "prod-db-admin", "2h", "Backfill the orders table for INC-2041"); err != nil {
		return err
	}
	if _, err := d.click(ctx, carol, "Production database", "approve"); err != nil {
		return err
	}
	if err := d.settle(ctx); err != nil {
		return err
	}
	card, err := d.click(ctx, dave, "Production database", "approve")
	if err != nil {
		return err
	}
	if err := d.settle(ctx); err != nil {
		return err
	}
	if err := d.after(ctx, alice, "is active"); err != nil {
		return err
	}
	updated, _ := d.emu.Current(card)
	d.show(dave, "his card, updated in place", updated.Render())
	return nil
}

func (d *demo) parallel(ctx context.Context) error {
	bob, frank, erin := d.emu.User("bob").ID, d.emu.User("frank").ID, d.emu.User("erin").ID
	if err := d.request(ctx, bob, "refund", "billing-refunds", "1h", "Refund the double charge in ticket SUP-881"); err != nil {
		return err
	}
	if _, err := d.click(ctx, erin, "Billing refunds", "approve"); err != nil {
		return err
	}
	if err := d.settle(ctx); err != nil {
		return err
	}
	if _, err := d.click(ctx, frank, "Billing refunds", "approve"); err != nil {
		return err
	}
	if err := d.settle(ctx); err != nil {
		return err
	}
	return d.after(ctx, bob, "is active")
}

func (d *demo) denial(ctx context.Context) error {
	frank, grace := d.emu.User("frank").ID, d.emu.User("grace").ID
	if err := d.request(ctx, frank, "customer", "customer-export", "2h", "Quarterly churn analysis for finance"); err != nil {
		return err
	}
	if _, err := d.click(ctx, grace, "Customer data export", "deny"); err != nil {
		return err
	}
	ctx2, cancel := within(ctx)
	defer cancel()
	view, err := d.emu.WaitView(ctx2, grace, "Deny request")
	if err != nil {
		return err
	}
	reason := "Use the anonymised export in the warehouse instead"
	d.act(grace, "answers %q and submits", reason)
	if _, err := d.emu.Submit(ctx2, grace, view, map[string]string{"reason": reason}); err != nil {
		return err
	}
	if err := d.settle(ctx); err != nil {
		return err
	}
	return d.after(ctx, frank, "Denied")
}

func (d *demo) autoApproval(ctx context.Context) error {
	dave := d.emu.User("dave").ID
	if err := d.request(ctx, dave, "logs", "prod-logs", "2h", "Check error rates after the deploy"); err != nil {
		return err
	}
	return d.after(ctx, dave, "is active")
}

func (d *demo) breakGlass(ctx context.Context) error {
	dave, grace := d.emu.User("dave").ID, d.emu.User("grace").ID
	incidents := d.emu.Channel("incidents").ID
	step, cancel := within(ctx)
	defer cancel()
	d.act(dave, "types in #incidents: /access breakglass prod-shell primary database is down, INC-2042")
	if _, err := d.emu.Slash(step, dave, incidents, "/access", "breakglass prod-shell primary database is down, INC-2042"); err != nil {
		return err
	}
	if err := d.settle(ctx); err != nil {
		return err
	}
	msg, err := d.emu.WaitMessage(step, d.emu.Channel("security").ID, "Break-glass")
	if err != nil {
		return fmt.Errorf("no announcement in #security: %w", err)
	}
	d.show(grace, "in #security", msg.Render())
	d.act(grace, "clicks [Mark reviewed]")
	if _, err := d.emu.Click(step, grace, msg, "review"); err != nil {
		return err
	}
	if err := d.settle(ctx); err != nil {
		return err
	}
	return d.after(ctx, dave, "Production shell (break-glass) is active")
}

func (d *demo) expiries(ctx context.Context) error {
	d.say("    The target system now holds: %s", d.target())
	for _, step := range []time.Duration{55 * time.Minute, 10 * time.Minute, 65 * time.Minute} {
		d.clock.Advance(step)
		d.say("[%s] ⏩ %s later", d.clock.Now().Format("15:04"), workflow.FormatDuration(step))
		if err := d.settle(ctx); err != nil {
			return err
		}
	}
	alice := d.emu.User("alice").ID
	if err := d.after(ctx, alice, "expired and was revoked"); err != nil {
		return err
	}
	held := d.target()
	d.say("    The target system now holds: %s", held)
	if held != "nothing" {
		return errors.New("access is left in the target after every grant expired")
	}
	return nil
}

// target lists what the demo's target system holds.
func (d *demo) target() string {
	var held []string
	_ = filepath.WalkDir(filepath.Join(d.dir, "target"), func(path string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			rel, _ := filepath.Rel(filepath.Join(d.dir, "target"), path)
			held = append(held, rel)
		}
		return nil
	})
	if len(held) == 0 {
		return "nothing"
	}
	return strings.Join(held, ", ")
}
