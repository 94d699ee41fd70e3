package bot_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchhq/latch/bot/slackemu"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// BenchmarkLoad sends requests and their approvals from 500 people through
// the emulator as fast as it takes them: each person asks for the team
// database with /access and the form, and their lead approves on the card.
// b.N is the number of requests (5000 for the figures in BENCHMARKS.md).
// It reports ack latency, approval to active, events per second and the
// process's peak RSS, and fails on any Block Kit or rate-limit violation.
func BenchmarkLoad(b *testing.B) {
	const people, leads = 500, 25
	w := newWorldWith(b, worldOptions{people: people, leads: leads, clock: workflow.RealClock{}})
	general := w.emu.Channel("general").ID
	ids := make([]string, people)
	for i := range ids {
		ids[i] = w.id(fmt.Sprintf("user%d", i))
	}
	requesters := ids[leads:]
	var next, retries atomic.Int64
	start := time.Now()
	b.ResetTimer()
	var wg sync.WaitGroup
	errs := make(chan error, len(requesters))
	for _, user := range requesters {
		wg.Go(func() {
			ctx := context.Background()
			for next.Add(1) <= int64(b.N) {
				if err := loadRequest(ctx, w, user, general, &retries); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	// The leads approve every card they get, as they come: the emulator
	// pokes a lead when a card is posted to them.
	approved := make(chan struct{})
	var approvals atomic.Int64
	var leadWG sync.WaitGroup
	pokes := map[string]chan struct{}{}
	for _, lead := range ids[:leads] {
		pokes[lead] = make(chan struct{}, 1)
	}
	w.emu.OnCall(func(c slackemu.Call) {
		if c.Method != "chat.postMessage" || !strings.Contains(c.Args["blocks"], `"approve"`) {
			return
		}
		if poke, ok := pokes[c.Args["channel"]]; ok {
			select {
			case poke <- struct{}{}:
			default:
			}
		}
	})
	for _, lead := range ids[:leads] {
		leadWG.Go(func() { loadApprove(w, lead, pokes[lead], approved, &approvals) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	// Every request is approved and active.
	wait, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := w.emu.Wait(wait, func() bool { return approvals.Load() >= int64(b.N) }); err != nil {
		b.Fatalf("%d of %d approved: %v", approvals.Load(), b.N, err)
	}
	close(approved)
	leadWG.Wait()
	w.bot.Idle()
	w.engine.Wait()
	b.StopTimer()
	elapsed := time.Since(start)

	var acks []time.Duration
	for _, a := range w.emu.Acks() {
		acks = append(acks, a.Latency)
	}
	var toActive []time.Duration
	approvedAt := map[string]time.Time{}
	head, _ := w.store.Head()
	if err := w.store.Scan(context.Background(), store.Filter{}, func(e *workflow.Event) error {
		switch e.Kind {
		case workflow.KindApproved:
			approvedAt[e.RequestID] = e.Time
		case workflow.KindActivated:
			if t, ok := approvedAt[e.RequestID]; ok {
				toActive = append(toActive, e.Time.Sub(t))
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	if len(toActive) < b.N {
		b.Fatalf("%d requests active, want %d", len(toActive), b.N)
	}
	if p := w.emu.Problems(); len(p) > 0 {
		b.Fatalf("the emulator saw Slack's rules broken: %v", p)
	}
	if n := len(rateLimited(w.emu)); n > 0 {
		b.Fatalf("%d Web API calls were rate limited", n)
	}
	percentiles(b, acks)
	slicesSort(toActive)
	b.ReportMetric(ms(toActive[len(toActive)/2]), "active-p50-ms")
	b.ReportMetric(ms(toActive[len(toActive)*99/100]), "active-p99-ms")
	b.ReportMetric(float64(head)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "requests/s")
	b.ReportMetric(peakRSS(b), "peak-RSS-MB")
	b.ReportMetric(float64(retries.Load()), "form-retries")
}

// loadRequest makes one request the way a person does. Under a load that
// saturates the machine a form can miss Slack's 3 s trigger window; the
// bot then says so and the person types /access again, as people do.
func loadRequest(ctx context.Context, w *world, user, channel string, retries *atomic.Int64) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var v *slackemu.View
	for attempt := 0; v == nil; attempt++ {
		if attempt == 5 {
			return fmt.Errorf("%s: no form after %d tries", user, attempt)
		}
		if attempt > 0 {
			retries.Add(1)
		}
		if _, err := w.emu.Slash(ctx, user, channel, "/access", ""); err != nil {
			return err
		}
		wait, stop := context.WithTimeout(ctx, 10*time.Second)
		v, _ = w.emu.WaitView(wait, user, "Request access")
		stop()
	}
	var err error
	if _, err = w.emu.Select(ctx, user, v, "item", "team-db"); err != nil {
		return err
	}
	v, err = w.emu.WaitView(ctx, user, "Why do you need it?")
	if err != nil {
		return err
	}
	ack, err := w.emu.Submit(ctx, user, v, map[string]string{"duration": "1h", "justification": "load test"})
	if err != nil {
		return err
	}
	if len(ack.Errors) > 0 {
		return fmt.Errorf("form refused: %v", ack.Errors)
	}
	return nil
}

// loadApprove clicks Approve on every card a lead gets until done closes.
func loadApprove(w *world, lead string, poke <-chan struct{}, done <-chan struct{}, approvals *atomic.Int64) {
	clicked := map[string]bool{}
	for {
		select {
		case <-done:
			return
		case <-poke:
		}
		for _, m := range w.emu.DMs(lead) {
			if clicked[m.TS] || !m.HasAction("approve") {
				continue
			}
			clicked[m.TS] = true
			if _, err := w.emu.Click(context.Background(), lead, m, "approve"); err == nil {
				approvals.Add(1)
			}
		}
	}
}

func rateLimited(emu *slackemu.Server) []slackemu.Call {
	var out []slackemu.Call
	for _, c := range emu.Calls() {
		if c.Status == 429 || c.Error == "ratelimited" {
			out = append(out, c)
		}
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func slicesSort(ds []time.Duration) { slices.Sort(ds) }

// peakRSS is the process's peak resident set, in MB (VmHWM on Linux).
func peakRSS(b *testing.B) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}
