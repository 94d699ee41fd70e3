package slackemu_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/latchhq/latch/bot/slackemu"
)

// fakeClock is a settable clock for trigger expiry.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestHelloAndPings(t *testing.T) {
	emu := slackemu.Start(t, slackemu.WithPingInterval(20*time.Millisecond))
	app := startApp(t, emu, nil, socketmode.OptionPingInterval(400*time.Millisecond))
	ctx := testCtx(t)
	// 25 pongs take about 500 ms, longer than the client's 400 ms ping
	// timeout, so the client saw the pings and kept its connection.
	if err := emu.Wait(ctx, func() bool { return emu.Pongs() >= 25 }); err != nil {
		t.Fatal(err)
	}
	if got := emu.Hellos(); got != 1 {
		t.Errorf("hellos = %d, want 1 (the client reconnected)", got)
	}
	app.mu.Lock()
	defer app.mu.Unlock()
	var hello bool
	for _, e := range app.events {
		hello = hello || e == socketmode.EventTypeHello
	}
	if !hello {
		t.Errorf("client events %v have no hello", app.events)
	}
}

func TestTriggerExpiry(t *testing.T) {
	clock := &fakeClock{now: time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC)}
	emu := slackemu.Start(t, slackemu.WithClock(clock.Now))
	triggers := make(chan string, 1)
	app := startApp(t, emu, func(app *testApp, evt socketmode.Event) any {
		if cmd, ok := evt.Data.(slack.SlashCommand); ok {
			triggers <- cmd.TriggerID
		}
		return nil
	})
	ctx := testCtx(t)
	slash := func() string {
		t.Helper()
		if _, err := emu.Slash(ctx, "alice", "", "/access", ""); err != nil {
			t.Fatal(err)
		}
		return <-triggers
	}

	trig := slash()
	clock.Advance(2900 * time.Millisecond)
	if _, err := app.api.OpenViewContext(ctx, trig, requestModal()); err != nil {
		t.Fatalf("open within 3s: %v", err)
	}
	if _, err := app.api.OpenViewContext(ctx, trig, requestModal()); slackErr(t, err).Err != "exchanged_trigger_id" {
		t.Errorf("second use: %v, want exchanged_trigger_id", err)
	}
	trig = slash()
	clock.Advance(3100 * time.Millisecond)
	if _, err := app.api.OpenViewContext(ctx, trig, requestModal()); slackErr(t, err).Err != "expired_trigger_id" {
		t.Errorf("late open: %v, want expired_trigger_id", err)
	}
	if _, err := app.api.PushViewContext(ctx, trig, requestModal()); slackErr(t, err).Err != "expired_trigger_id" {
		t.Errorf("late push: %v, want expired_trigger_id", err)
	}
}

func TestAckRecords(t *testing.T) {
	emu := slackemu.Start(t)
	startApp(t, emu, func(app *testApp, evt socketmode.Event) any {
		if evt.Type == socketmode.EventTypeSlashCommand {
			return map[string]any{"text": "Looking…"}
		}
		return nil
	})
	ctx := testCtx(t)
	ack, err := emu.Slash(ctx, "bob", "#incidents", "/access", "list")
	if err != nil {
		t.Fatal(err)
	}
	if string(ack.Payload) != `{"text":"Looking…"}` || ack.Latency <= 0 || ack.RetryAttempt != 0 {
		t.Errorf("ack = %+v", ack)
	}
	if _, err := emu.OpenHome(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	acks := emu.Acks()
	if len(acks) != 2 || acks[0].Type != "slash_commands" || acks[1].Type != "events_api" || acks[0].EnvelopeID != ack.EnvelopeID {
		t.Fatalf("acks = %+v", acks)
	}
	// The ack's text became an ephemeral message for bob in #incidents.
	eph := emu.Ephemerals("bob")
	if len(eph) != 1 || eph[0].Text != "Looking…" || eph[0].Channel != emu.Channel("incidents").ID {
		t.Errorf("ephemerals = %+v", eph)
	}
}

func TestUnackedEnvelopeRedelivered(t *testing.T) {
	emu := slackemu.Start(t, slackemu.WithAckTimeout(100*time.Millisecond))
	var mu sync.Mutex
	seen := map[string]int{}
	app := startApp(t, emu, func(app *testApp, evt socketmode.Event) any {
		mu.Lock()
		defer mu.Unlock()
		seen[evt.Request.EnvelopeID]++
		if seen[evt.Request.EnvelopeID] == 1 {
			return skipAck
		}
		return nil
	})
	ack, err := emu.Slash(testCtx(t), "alice", "", "/access", "")
	if err != nil {
		t.Fatal(err)
	}
	if ack.RetryAttempt != 1 {
		t.Errorf("acked attempt = %d, want 1", ack.RetryAttempt)
	}
	reqs := app.Requests()
	if len(reqs) != 2 || reqs[0].EnvelopeID != reqs[1].EnvelopeID {
		t.Fatalf("requests = %+v", reqs)
	}
	if reqs[0].RetryAttempt != 0 || reqs[1].RetryAttempt != 1 || reqs[1].RetryReason != "timeout" {
		t.Errorf("retry fields = %d/%q then %d/%q", reqs[0].RetryAttempt, reqs[0].RetryReason, reqs[1].RetryAttempt, reqs[1].RetryReason)
	}
	if p := emu.TakeProblems(); len(p) != 1 {
		t.Errorf("problems = %q, want the one unacked delivery", p)
	}
}

func TestNeverAcked(t *testing.T) {
	emu := slackemu.Start(t, slackemu.WithAckTimeout(30*time.Millisecond), slackemu.WithMaxRetries(2))
	app := startApp(t, emu, func(*testApp, socketmode.Event) any { return skipAck })
	_, err := emu.Slash(testCtx(t), "alice", "", "/access", "")
	if !errors.Is(err, slackemu.ErrNotAcked) {
		t.Fatalf("err = %v, want ErrNotAcked", err)
	}
	if n := len(app.Requests()); n != 3 {
		t.Errorf("deliveries = %d, want 3", n)
	}
	if p := emu.TakeProblems(); len(p) != 3 {
		t.Errorf("problems = %q, want 3", p)
	}
}

func TestRedeliverNext(t *testing.T) {
	emu := slackemu.Start(t)
	app := startApp(t, emu, nil)
	emu.RedeliverNext()
	ack, err := emu.Slash(testCtx(t), "alice", "", "/access", "")
	if err != nil {
		t.Fatal(err)
	}
	reqs := app.waitRequests(t, 2)
	if reqs[1].EnvelopeID != ack.EnvelopeID || reqs[1].RetryAttempt != 1 || reqs[1].RetryReason != "timeout" {
		t.Errorf("second delivery = %+v", reqs[1])
	}
	if err := emu.Wait(testCtx(t), func() bool { return len(emu.Acks()) == 2 }); err != nil {
		t.Fatal(err)
	}
	// Only the next envelope is duplicated.
	if _, err := emu.Slash(testCtx(t), "alice", "", "/access", ""); err != nil {
		t.Fatal(err)
	}
	if n := len(app.Requests()); n != 3 {
		t.Errorf("requests = %d, want 3", n)
	}
}

func TestDisconnectBeforeAck(t *testing.T) {
	emu := slackemu.Start(t)
	app := startApp(t, emu, nil)
	emu.DisconnectBeforeAck()
	ack, err := emu.Slash(testCtx(t), "alice", "", "/access", "")
	if err != nil {
		t.Fatal(err)
	}
	if ack.RetryAttempt != 1 {
		t.Errorf("acked attempt = %d, want 1", ack.RetryAttempt)
	}
	reqs := app.Requests()
	if len(reqs) != 2 || reqs[0].EnvelopeID != reqs[1].EnvelopeID || reqs[1].RetryAttempt != 1 {
		t.Errorf("requests = %+v", reqs)
	}
	if got := emu.Hellos(); got != 2 {
		t.Errorf("hellos = %d, want 2", got)
	}
}

func TestDisconnectReconnect(t *testing.T) {
	for _, reason := range []string{slackemu.ReasonRefreshRequested, slackemu.ReasonWarning} {
		t.Run(reason, func(t *testing.T) {
			emu := slackemu.Start(t)
			startApp(t, emu, nil)
			ctx := testCtx(t)
			emu.Disconnect(reason)
			if err := emu.Wait(ctx, func() bool { return emu.Hellos() == 2 && emu.Connections() == 1 }); err != nil {
				t.Fatalf("no reconnect: %v (hellos %d)", err, emu.Hellos())
			}
			if _, err := emu.Slash(ctx, "alice", "", "/access", ""); err != nil {
				t.Fatalf("slash after reconnect: %v", err)
			}
		})
	}
}

func TestQueuedUntilConnected(t *testing.T) {
	emu := slackemu.Start(t)
	ctx := testCtx(t)
	type result struct {
		ack slackemu.Ack
		err error
	}
	done := make(chan result, 1)
	go func() {
		ack, err := emu.Slash(ctx, "alice", "", "/access", "")
		done <- result{ack, err}
	}()
	if err := emu.Wait(ctx, func() bool { return emu.Pending() == 1 }); err != nil {
		t.Fatal(err)
	}
	startApp(t, emu, nil)
	r := <-done
	if r.err != nil || r.ack.RetryAttempt != 0 {
		t.Errorf("slash = %+v, %v", r.ack, r.err)
	}
}

func TestCloseEndsWaits(t *testing.T) {
	emu, err := slackemu.New()
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	errc := make(chan error, 2)
	go func() {
		_, err := emu.Slash(ctx, "alice", "", "/access", "")
		errc <- err
	}()
	go func() {
		_, err := emu.WaitDM(ctx, "alice", "never")
		errc <- err
	}()
	emu.Close()
	emu.Close()
	for range 2 {
		if err := <-errc; !errors.Is(err, slackemu.ErrClosed) {
			t.Errorf("err = %v, want ErrClosed", err)
		}
	}
	if _, err := emu.Slash(context.Background(), "alice", "", "/access", ""); !errors.Is(err, slackemu.ErrClosed) {
		t.Errorf("after close: %v", err)
	}
}
