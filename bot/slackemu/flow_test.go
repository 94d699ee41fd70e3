package slackemu_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/latchhq/latch/bot/slackemu"
)

func requestModal() slack.ModalViewRequest {
	return slack.ModalViewRequest{
		Type:       slack.VTModal,
		Title:      slack.NewTextBlockObject(slack.PlainTextType, "Request access", false, false),
		Submit:     slack.NewTextBlockObject(slack.PlainTextType, "Request", false, false),
		CallbackID: "request",
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewInputBlock("item", slack.NewTextBlockObject(slack.PlainTextType, "Item", false, false), nil,
				&slack.SelectBlockElement{Type: slack.OptTypeExternal, ActionID: "item_select",
					MinQueryLength: new(int)}),
			slack.NewInputBlock("duration", slack.NewTextBlockObject(slack.PlainTextType, "Duration", false, false), nil,
				slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, nil, "duration_select",
					slack.NewOptionBlockObject("1h", slack.NewTextBlockObject(slack.PlainTextType, "1 hour", false, false), nil),
					slack.NewOptionBlockObject("4h", slack.NewTextBlockObject(slack.PlainTextType, "4 hours", false, false), nil))),
			slack.NewInputBlock("reason", slack.NewTextBlockObject(slack.PlainTextType, "Justification", false, false), nil,
				slack.NewPlainTextInputBlockElement(nil, "reason_input")),
		}},
	}
}

// TestRequestFlow drives a whole request: slash command → modal →
// suggestion → submission with errors → resubmission → DM with buttons →
// click → message update.
func TestRequestFlow(t *testing.T) {
	emu := slackemu.Start(t)
	ctx := testCtx(t)
	var cardTS, cardChannel string
	app := startApp(t, emu, func(app *testApp, evt socketmode.Event) any {
		switch evt.Type {
		case socketmode.EventTypeSlashCommand:
			cmd := evt.Data.(slack.SlashCommand)
			if _, err := app.api.OpenView(cmd.TriggerID, requestModal()); err != nil {
				t.Errorf("open view: %v", err)
			}
		case socketmode.EventTypeInteractive:
			cb := evt.Data.(slack.InteractionCallback)
			switch cb.Type {
			case slack.InteractionTypeBlockSuggestion:
				return map[string]any{"options": []any{
					map[string]any{"text": map[string]any{"type": "plain_text", "text": "prod-db (read-only)"}, "value": "prod-db-ro"},
				}}
			case slack.InteractionTypeViewSubmission:
				vals := cb.View.State.Values
				if vals["reason"]["reason_input"].Value == "because" {
					return slack.NewErrorsViewSubmissionResponse(map[string]string{"reason": "Say more."})
				}
				item := vals["item"]["item_select"].SelectedOption
				dur := vals["duration"]["duration_select"].SelectedOption.Value
				ch, ts, err := app.api.PostMessage(emu.User("carol").ID,
					slack.MsgOptionText("alice requests "+item.Value, false),
					slack.MsgOptionBlocks(
						slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType,
							"*alice* requests *"+item.Text.Text+"* for "+dur, false, false), nil, nil),
						slack.NewActionBlock("decide",
							slack.NewButtonBlockElement("approve", "req-1", slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false)),
							slack.NewButtonBlockElement("deny", "req-1", slack.NewTextBlockObject(slack.PlainTextType, "Deny", false, false))),
					))
				if err != nil {
					t.Errorf("post: %v", err)
				}
				cardTS, cardChannel = ts, ch
			case slack.InteractionTypeBlockActions:
				a := cb.ActionCallback.BlockActions[0]
				if a.ActionID == "approve" {
					_, _, _, err := app.api.UpdateMessage(cb.Channel.ID, cb.Message.Timestamp,
						slack.MsgOptionText("approved", false),
						slack.MsgOptionBlocks(slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType,
							"Approved by <@"+cb.User.ID+"> ("+a.Value+")", false, false), nil, nil)))
					if err != nil {
						t.Errorf("update: %v", err)
					}
				}
			}
		}
		return nil
	})

	ack, err := emu.Slash(ctx, "alice", "#incidents", "/access", "")
	if err != nil {
		t.Fatalf("slash: %v", err)
	}
	if ack.TriggerID == "" {
		t.Fatalf("slash ack has no trigger id")
	}
	v, err := emu.WaitView(ctx, "alice", "Request access")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := v.CallbackID, "request"; got != want {
		t.Errorf("callback id = %q, want %q", got, want)
	}
	opts, err := emu.Suggest(ctx, "alice", v, "item_select", "prod")
	if err != nil {
		t.Fatalf("suggest: %v", err)
	}
	if len(opts) != 1 || opts[0].Value != "prod-db-ro" {
		t.Fatalf("options = %+v", opts)
	}
	ack, err = emu.Submit(ctx, "alice", v, map[string]string{
		"item_select": "prod-db-ro", "duration_select": "4h", "reason_input": "because",
	})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	if got := ack.Errors["reason"]; got != "Say more." {
		t.Fatalf("ack errors = %v", ack.Errors)
	}
	v = emu.View("alice")
	if v == nil || !strings.Contains(v.Render(), "! Say more.") {
		t.Fatalf("view after errors:\n%s", v.Render())
	}
	if _, err := emu.Submit(ctx, "alice", v, map[string]string{"reason": "incident 42"}); err != nil {
		t.Fatalf("resubmit: %v", err)
	}
	if v := emu.View("alice"); v != nil {
		t.Fatalf("modal still open after submission: %s", v.Render())
	}
	card, err := emu.WaitDM(ctx, "carol", "requests")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(card.Render(), "*prod-db (read-only)* for 4h") || !strings.Contains(card.Render(), "[Approve] [Deny]") {
		t.Errorf("card render:\n%s", card.Render())
	}
	if card.TS != cardTS || card.Channel != cardChannel {
		t.Errorf("card = %s/%s, posted %s/%s", card.Channel, card.TS, cardChannel, cardTS)
	}
	// Bob cannot click a button in Carol's DM.
	if _, err := emu.Click(ctx, "bob", card, "approve"); !errors.Is(err, slackemu.ErrNotVisible) {
		t.Errorf("bob click: err = %v, want ErrNotVisible", err)
	}
	if p := emu.TakeProblems(); len(p) != 1 {
		t.Errorf("problems = %q, want one", p)
	}
	if _, err := emu.Click(ctx, "carol", card, "approve"); err != nil {
		t.Fatalf("click: %v", err)
	}
	done, err := emu.WaitDM(ctx, "carol", "Approved by <@"+emu.User("carol").ID+"> (req-1)")
	if err != nil {
		t.Fatal(err)
	}
	if done.Edited != 1 || done.HasAction("approve") {
		t.Errorf("after approval: edited %d, render:\n%s", done.Edited, done.Render())
	}
	// The button is gone: clicking the stale snapshot fails.
	if _, err := emu.Click(ctx, "carol", card, "approve"); !errors.Is(err, slackemu.ErrNoSuchAction) {
		t.Errorf("stale click: err = %v, want ErrNoSuchAction", err)
	}
	if p := emu.TakeProblems(); len(p) != 1 {
		t.Errorf("problems = %q, want one", p)
	}
	if n := len(app.Requests()); n != 5 {
		t.Errorf("app got %d envelopes, want 5", n)
	}
}

func TestClickByValueAndClickAs(t *testing.T) {
	emu := slackemu.Start(t)
	ctx := testCtx(t)
	clicks := make(chan slack.InteractionCallback, 8)
	app := startApp(t, emu, func(app *testApp, evt socketmode.Event) any {
		if cb, ok := evt.Data.(slack.InteractionCallback); ok {
			clicks <- cb
		}
		return nil
	})
	result := func(item string) slack.Block {
		return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "`"+item+"`", false, false), nil,
			slack.NewAccessory(slack.NewButtonBlockElement("request_item", item, plainText("Request"))))
	}
	if _, _, err := app.api.PostMessageContext(ctx, emu.User("carol").ID, slack.MsgOptionText("results", false),
		slack.MsgOptionBlocks(result("wiki"), result("prod-db"))); err != nil {
		t.Fatal(err)
	}
	msg := emu.DMs("carol")[0]
	if _, err := emu.ClickByValue(ctx, "carol", msg, "request_item", "prod-db"); err != nil {
		t.Fatal(err)
	}
	if got := (<-clicks).ActionCallback.BlockActions[0].Value; got != "prod-db" {
		t.Errorf("clicked value = %q", got)
	}
	if _, err := emu.ClickByValue(ctx, "carol", msg, "request_item", "nope"); !errors.Is(err, slackemu.ErrNoSuchAction) {
		t.Errorf("missing value: %v", err)
	}
	emu.TakeProblems()
	// The message changes; a replay of the old snapshot still sends the
	// old button, and a stranger can forge it, without problems.
	if _, _, _, err := app.api.UpdateMessageContext(ctx, msg.Channel, msg.TS, slack.MsgOptionText("gone", false),
		slack.MsgOptionBlocks(slack.NewDividerBlock())); err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"carol", "frank"} {
		if _, err := emu.ClickAs(ctx, user, msg, "request_item"); err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		cb := <-clicks
		if cb.User.Name != user || cb.Message.Timestamp != msg.TS || cb.ActionCallback.BlockActions[0].Value != "wiki" {
			t.Errorf("forged click = user %s, message %s, %+v", cb.User.Name, cb.Message.Timestamp, cb.ActionCallback.BlockActions[0])
		}
	}
	if p := emu.Problems(); len(p) != 0 {
		t.Errorf("problems = %q", p)
	}
}
