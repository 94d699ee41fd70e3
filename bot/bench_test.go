package bot_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchhq/latch/bot/slackemu"
	latchexec "github.com/latchhq/latch/connectors/exec"
	"github.com/latchhq/latch/workflow"
)

// percentiles reports the p50 and p99 of ds, in milliseconds.
func percentiles(b *testing.B, ds []time.Duration) {
	b.Helper()
	if len(ds) == 0 {
		b.Fatal("nothing was measured")
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		return float64(ds[int(q*float64(len(ds)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
	b.ReportMetric(float64(ds[len(ds)-1])/float64(time.Millisecond), "max-ms")
}

// BenchmarkAck measures how long the bot takes to ack envelopes while 200
// people type slash commands, type into the item picker and click Request
// on search results, all at once. Slack allows 3 s. With think=0 every
// person acts again the moment the last action was acked, which saturates
// the machine (the emulator shares its two cores); with a think time the
// load is what 200 busy people could offer.
func BenchmarkAck(b *testing.B) {
	for _, think := range []time.Duration{400 * time.Millisecond, 0} {
		b.Run(fmt.Sprintf("users=200/think=%s", think), func(b *testing.B) { benchmarkAck(b, 200, think) })
	}
}

func benchmarkAck(b *testing.B, people int, think time.Duration) {
	w := newWorldWith(b, worldOptions{people: people})
	general := w.emu.Channel("general").ID
	type person struct {
		id      string
		results slackemu.Message
	}
	ps := make([]*person, people)
	setup := sync.WaitGroup{}
	errs := make(chan error, people)
	for i := range ps {
		p := &person{id: w.id(fmt.Sprintf("user%d", i))}
		ps[i] = p
		setup.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := w.emu.Slash(ctx, p.id, general, "/access", "prod"); err != nil {
				errs <- err
				return
			}
			m, err := w.emu.WaitEphemeral(ctx, p.id, "Request")
			if err != nil {
				errs <- err
				return
			}
			p.results = m
			if _, err := w.emu.Slash(ctx, p.id, general, "/access", ""); err != nil {
				errs <- err
				return
			}
			if _, err := w.emu.WaitView(ctx, p.id, "Request access"); err != nil {
				errs <- err
			}
		})
	}
	setup.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	w.bot.Idle()
	start := time.Now()
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() {
			ctx := context.Background()
			if think > 0 {
				// Spread the people over the think time.
				pause(think * time.Duration(i) / time.Duration(people))
			}
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				var err error
				switch i % 3 {
				case 0:
					_, err = w.emu.Slash(ctx, p.id, general, "/access", "list")
				case 1:
					_, err = w.emu.Suggest(ctx, p.id, w.emu.View(p.id), "item", "prod")
				case 2:
					// A click on Request opens a new form in place of the
					// open one: wait for it, as a person would.
					before := w.emu.View(p.id).ID
					if _, err = w.emu.Click(ctx, p.id, p.results, "request_item"); err == nil {
						wait, cancel := context.WithTimeout(ctx, 10*time.Second)
						err = w.emu.Wait(wait, func() bool { v := w.emu.View(p.id); return v != nil && v.ID != before })
						cancel()
					}
				}
				if err != nil {
					b.Error(err)
					return
				}
				pause(think)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	elapsed := time.Since(start)
	w.bot.Idle()
	var ds []time.Duration
	for _, a := range w.emu.Acks() {
		if !a.Sent.Before(start) {
			ds = append(ds, a.Latency)
		}
	}
	b.ReportMetric(float64(len(ds))/elapsed.Seconds(), "envelopes/s")
	percentiles(b, ds)
}

// pause waits for d of real time: a person thinking between actions.
func pause(d time.Duration) {
	if d > 0 {
		<-time.After(d)
	}
}

// BenchmarkSlashToViewsOpen measures from the slash command leaving the
// emulator to the bot's views.open call arriving there.
func BenchmarkSlashToViewsOpen(b *testing.B) {
	w := newWorld(b)
	alice := w.id("alice")
	general := w.emu.Channel("general").ID
	var mu sync.Mutex
	opened := map[string]time.Time{} // by trigger id
	w.emu.OnCall(func(c slackemu.Call) {
		if c.Method == "views.open" {
			mu.Lock()
			opened[c.Args["trigger_id"]] = c.Time
			mu.Unlock()
		}
	})
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		sent := time.Now()
		ack, err := w.emu.Slash(ctx, alice, general, "/access", "")
		if err != nil {
			b.Fatal(err)
		}
		var at time.Time
		if err := w.emu.Wait(ctx, func() bool {
			mu.Lock()
			defer mu.Unlock()
			at = opened[ack.TriggerID]
			return !at.IsZero()
		}); err != nil {
			b.Fatal(err)
		}
		cancel()
		ds = append(ds, at.Sub(sent))
		if v := w.emu.View(alice); v != nil {
			if err := w.emu.CloseView(context.Background(), alice, v); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	percentiles(b, ds)
}

// BenchmarkApprovalToGranted measures from the final Approve click to the
// beneficiary's "active" DM, with the exec connector running a real
// program for the grant.
func BenchmarkApprovalToGranted(b *testing.B) {
	script := filepath.Join(b.TempDir(), "grant.sh")
	state := filepath.Join(b.TempDir(), "state")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nset -eu\ncase \"$LATCH_ACTION\" in\ngrant) touch \"$STATE_DIR/$LATCH_GRANT_ID\" ;;\nrevoke) rm -f \"$STATE_DIR/$LATCH_GRANT_ID\" ;;\nesac\n"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.Mkdir(state, 0o755); err != nil {
		b.Fatal(err)
	}
	conn, err := latchexec.New("db", latchexec.Config{Command: script, Env: []string{"STATE_DIR=" + state}})
	if err != nil {
		b.Fatal(err)
	}
	w := newWorldWith(b, worldOptions{connector: conn})
	alice, bob := w.id("alice"), w.id("bob")
	var mu sync.Mutex
	active := map[string]time.Time{} // request id → when the DM was posted
	w.emu.OnCall(func(c slackemu.Call) {
		if c.Method != "chat.postMessage" || !strings.Contains(c.Args["text"], "is active") {
			return
		}
		for _, r := range strings.Split(c.Args["blocks"], "\"") {
			if len(r) == 36 && strings.Count(r, "-") == 4 {
				mu.Lock()
				if _, ok := active[r]; !ok {
					active[r] = c.Time
				}
				mu.Unlock()
			}
		}
	})
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		r, err := w.engine.Submit(context.Background(), workflow.Submission{Item: "wiki", Requester: alice, Duration: time.Hour,
			Justification: fmt.Sprintf("benchmark run %d", i)})
		if err != nil {
			b.Fatal(err)
		}
		card := w.card(bob, r)
		b.StartTimer()
		clicked := time.Now()
		if _, err := w.emu.Click(context.Background(), bob, card, "approve"); err != nil {
			b.Fatal(err)
		}
		var at time.Time
		w.eventually("the granted DM", func() bool {
			mu.Lock()
			defer mu.Unlock()
			at = active[r.ID]
			return !at.IsZero()
		})
		ds = append(ds, at.Sub(clicked))
		b.StopTimer()
		if _, err := w.engine.Release(context.Background(), r.ID, alice); err != nil {
			b.Fatal(err)
		}
		w.settle()
		b.StartTimer()
	}
	b.StopTimer()
	percentiles(b, ds)
}
