package slackemu_test

import (
	"slices"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/latchhq/latch/bot/slackemu"
)

func reportPercentiles(b *testing.B, d []time.Duration) {
	b.Helper()
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	at := func(p float64) float64 {
		i := int(p * float64(len(d)-1))
		return float64(d[i]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// BenchmarkSlashToModal times a slash command from the moment the envelope
// is sent until the app's views.open arrives, with the slack-go client.
func BenchmarkSlashToModal(b *testing.B) {
	emu := slackemu.Start(b)
	startApp(b, emu, func(app *testApp, evt socketmode.Event) any {
		if d, ok := evt.Data.(slack.SlashCommand); ok {
			if _, err := app.api.OpenView(d.TriggerID, *simpleModal("Bench", "bench")); err != nil {
				b.Error(err)
			}
		}
		return nil
	})
	opened := make(chan time.Time, 1)
	emu.OnCall(func(c slackemu.Call) {
		if c.Method == "views.open" {
			opened <- c.Time
		}
	})
	ctx := testCtx(b)
	var d []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if _, err := emu.Slash(ctx, "alice", "", "/access", ""); err != nil {
			b.Fatal(err)
		}
		d = append(d, (<-opened).Sub(start))
	}
	b.StopTimer()
	reportPercentiles(b, d)
}

// BenchmarkClickAck times a button click until the app's ack.
func BenchmarkClickAck(b *testing.B) {
	emu := slackemu.Start(b)
	startApp(b, emu, nil)
	ctx := testCtx(b)
	api := newAPI(emu)
	_, _, err := api.PostMessageContext(ctx, emu.User("carol").ID, slack.MsgOptionText("card", false),
		slack.MsgOptionBlocks(slack.NewActionBlock("d",
			slack.NewButtonBlockElement("approve", "r1", slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false)))))
	if err != nil {
		b.Fatal(err)
	}
	card := emu.DMs("carol")[0]
	var d []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if _, err := emu.Click(ctx, "carol", card, "approve"); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(start))
	}
	b.StopTimer()
	reportPercentiles(b, d)
}
