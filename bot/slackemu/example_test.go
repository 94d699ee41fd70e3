package slackemu_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/latchhq/latch/bot/slackemu"
)

// An app built on slack-go posts an approval card when /access runs; the
// example acts as the approver and clicks Approve.
func Example() {
	emu, err := slackemu.New()
	if err != nil {
		panic(err)
	}
	defer emu.Close()

	api := slack.New(emu.BotToken(),
		slack.OptionAppLevelToken(emu.AppToken()),
		slack.OptionAPIURL(emu.APIURL()))
	sm := socketmode.New(api, socketmode.OptionLog(log.New(io.Discard, "", 0)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { _ = sm.RunContext(ctx) })
	wg.Go(func() {
		carol := emu.User("carol").ID
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-sm.Events:
				if evt.Request == nil || evt.Request.EnvelopeID == "" {
					continue
				}
				_ = sm.Ack(*evt.Request)
				switch d := evt.Data.(type) {
				case slack.SlashCommand:
					_, _, _ = api.PostMessageContext(ctx, carol,
						slack.MsgOptionText("Access request", false),
						slack.MsgOptionBlocks(
							slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType,
								fmt.Sprintf("<@%s> asks for *%s*", d.UserID, d.Text), false, false), nil, nil),
							slack.NewActionBlock("decision",
								slack.NewButtonBlockElement("approve", "r1", slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false)),
								slack.NewButtonBlockElement("deny", "r1", slack.NewTextBlockObject(slack.PlainTextType, "Deny", false, false)))))
				case slack.InteractionCallback:
					_, _, _, _ = api.UpdateMessageContext(ctx, d.Channel.ID, d.Message.Timestamp,
						slack.MsgOptionText("Approved", false),
						slack.MsgOptionBlocks(slack.NewContextBlock("",
							slack.NewTextBlockObject(slack.MarkdownType, "Approved by <@"+d.User.ID+">", false, false))))
				}
			}
		}
	})

	if _, err := emu.Slash(ctx, "alice", "#incidents", "/access", "prod-db"); err != nil {
		panic(err)
	}
	card, err := emu.WaitDM(ctx, "carol", "[Approve]")
	if err != nil {
		panic(err)
	}
	fmt.Println(card.Render())
	if _, err := emu.Click(ctx, "carol", card, "approve"); err != nil {
		panic(err)
	}
	card, err = emu.WaitDM(ctx, "carol", "Approved by")
	if err != nil {
		panic(err)
	}
	fmt.Println(card.Render())
	fmt.Println(emu.Problems())
	// Output:
	// <@UALICE00> asks for *prod-db*
	// [Approve] [Deny]
	// Approved by <@UCAROL00>
	// []
}
