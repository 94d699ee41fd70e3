package slackemu_test

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/latchhq/latch/bot/slackemu"
)

// formView has one input of every kind Submit converts.
const formView = `{"type":"modal","title":{"type":"plain_text","text":"Form"},
 "submit":{"type":"plain_text","text":"Send"},"callback_id":"form","blocks":[
 {"type":"input","block_id":"who","label":{"type":"plain_text","text":"Beneficiary"},
  "element":{"type":"users_select","action_id":"who_select"}},
 {"type":"input","block_id":"team","label":{"type":"plain_text","text":"Team"},
  "element":{"type":"multi_users_select","action_id":"team_select"}},
 {"type":"input","block_id":"where","label":{"type":"plain_text","text":"Channel"},"optional":true,
  "element":{"type":"conversations_select","action_id":"where_select"}},
 {"type":"input","block_id":"flags","label":{"type":"plain_text","text":"Flags"},"optional":true,
  "element":{"type":"checkboxes","action_id":"flags_check","options":[
   {"text":{"type":"mrkdwn","text":"*notify*"},"value":"notify"},{"text":{"type":"plain_text","text":"Page"},"value":"page"}]}},
 {"type":"input","block_id":"level","label":{"type":"plain_text","text":"Level"},
  "element":{"type":"radio_buttons","action_id":"level_radio","initial_option":{"text":{"type":"plain_text","text":"Read"},"value":"ro"},
   "options":[{"text":{"type":"plain_text","text":"Read"},"value":"ro"},{"text":{"type":"plain_text","text":"Write"},"value":"rw"}]}},
 {"type":"input","block_id":"day","label":{"type":"plain_text","text":"Start"},"optional":true,
  "element":{"type":"datepicker","action_id":"day_pick"}},
 {"type":"input","block_id":"len","label":{"type":"plain_text","text":"Ticket"},"dispatch_action":true,"optional":true,
  "element":{"type":"plain_text_input","action_id":"ticket","max_length":8}},
 {"type":"actions","block_id":"more","elements":[
  {"type":"button","action_id":"add","text":{"type":"plain_text","text":"Add approver"}},
  {"type":"overflow","action_id":"menu","options":[{"text":{"type":"plain_text","text":"Help"},"value":"help"}]}]}
]}`

func TestInputKinds(t *testing.T) {
	emu := slackemu.Start(t)
	ctx := testCtx(t)
	var mu sync.Mutex
	var got []slack.InteractionCallback
	startApp(t, emu, func(app *testApp, evt socketmode.Event) any {
		switch d := evt.Data.(type) {
		case slack.SlashCommand:
			var m slack.ModalViewRequest
			if err := json.Unmarshal([]byte(formView), &m); err != nil {
				t.Errorf("form view: %v", err)
			}
			if _, err := app.api.OpenView(d.TriggerID, m); err != nil {
				t.Errorf("views.open: %v", err)
			}
		case slack.InteractionCallback:
			mu.Lock()
			got = append(got, d)
			mu.Unlock()
			if d.Type == slack.InteractionTypeBlockActions && d.ActionCallback.BlockActions[0].ActionID == "add" {
				if _, err := app.api.PushView(d.TriggerID, *simpleModal("Approver", "approver")); err != nil {
					t.Errorf("push: %v", err)
				}
			}
		}
		return nil
	})
	if _, err := emu.Slash(ctx, "alice", "", "/access", ""); err != nil {
		t.Fatal(err)
	}
	v, err := emu.WaitView(ctx, "alice", "Form")
	if err != nil {
		t.Fatal(err)
	}
	// Typing into a dispatching input sends block_actions; over max_length is refused.
	if _, err := emu.Type(ctx, "alice", v, "ticket", "INC-1234"); err != nil {
		t.Fatal(err)
	}
	if _, err := emu.Type(ctx, "alice", v, "ticket", "INC-123456"); !errors.Is(err, slackemu.ErrInvalidValue) {
		t.Errorf("too long: %v", err)
	}
	if _, err := emu.Select(ctx, "alice", v, "menu", "help"); err != nil {
		t.Fatal(err)
	}
	if _, err := emu.Select(ctx, "alice", v, "who_select", "nobody"); !errors.Is(err, slackemu.ErrUnknownUser) {
		t.Errorf("unknown user: %v", err)
	}
	if _, err := emu.Submit(ctx, "alice", v, map[string]string{
		"who_select": "bob", "team_select": "carol, dave", "where_select": "#incidents",
		"flags_check": "notify,page", "day_pick": "2025-02-01",
	}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(got) != 3 {
		mu.Unlock()
		t.Fatalf("payloads = %d, want 3", len(got))
	}
	typed, menu, sub := got[0].ActionCallback.BlockActions[0], got[1].ActionCallback.BlockActions[0], got[2]
	mu.Unlock()
	if typed.Type != "plain_text_input" || typed.Value != "INC-1234" || typed.BlockID != "len" {
		t.Errorf("typed action = %+v", typed)
	}
	if menu.Type != "overflow" || menu.SelectedOption.Value != "help" {
		t.Errorf("overflow action = %+v", menu)
	}
	vals := sub.View.State.Values
	if vals["who"]["who_select"].SelectedUser != emu.User("bob").ID ||
		len(vals["team"]["team_select"].SelectedUsers) != 2 ||
		vals["where"]["where_select"].SelectedConversation != emu.Channel("incidents").ID ||
		len(vals["flags"]["flags_check"].SelectedOptions) != 2 ||
		vals["level"]["level_radio"].SelectedOption.Value != "ro" ||
		vals["day"]["day_pick"].SelectedDate != "2025-02-01" ||
		vals["len"]["ticket"].Value != "INC-1234" {
		t.Errorf("state values = %+v", vals)
	}

	// A button in the modal can push a view onto the stack.
	if _, err := emu.Slash(ctx, "alice", "", "/access", ""); err != nil {
		t.Fatal(err)
	}
	v, err = emu.WaitView(ctx, "alice", "Form")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := emu.ClickByText(ctx, "alice", v, "Add approver"); err != nil {
		t.Fatal(err)
	}
	if top, err := emu.WaitView(ctx, "alice", "Approver"); err != nil || top.PreviousViewID != v.ID {
		t.Fatalf("pushed view = %+v, %v", top, err)
	}
	if _, err := emu.ClickByText(ctx, "alice", v, "Add approver"); !errors.Is(err, slackemu.ErrNotVisible) {
		t.Errorf("click under a pushed view: %v", err)
	}
	emu.TakeProblems()
	// Closing the pushed view returns to the form.
	if err := emu.CloseView(ctx, "alice", emu.View("alice")); err != nil {
		t.Fatal(err)
	}
	if top := emu.View("alice"); top == nil || top.ID != v.ID {
		t.Errorf("after close: %+v", top)
	}
}

func TestPushLimit(t *testing.T) {
	emu := slackemu.Start(t)
	ctx := testCtx(t)
	errs := make(chan error, 8)
	startApp(t, emu, func(app *testApp, evt socketmode.Event) any {
		if d, ok := evt.Data.(slack.InteractionCallback); ok && d.Type == slack.InteractionTypeBlockActions {
			_, err := app.api.PushView(d.TriggerID, stackModal())
			errs <- err
		}
		if d, ok := evt.Data.(slack.SlashCommand); ok {
			_, err := app.api.OpenView(d.TriggerID, stackModal())
			errs <- err
		}
		return nil
	})
	if _, err := emu.Slash(ctx, "alice", "", "/access", ""); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := <-errs; err != nil {
			t.Fatalf("view %d: %v", i, err)
		}
		if _, err := emu.Click(ctx, "alice", emu.View("alice"), "deeper"); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-errs; slackErr(t, err).Err != "push_limit_reached" {
		t.Errorf("fourth view: %v", err)
	}
	if n := len(emu.ModalStack("alice")); n != 3 {
		t.Errorf("stack = %d", n)
	}
}

func stackModal() slack.ModalViewRequest {
	return slack.ModalViewRequest{Type: slack.VTModal, Title: plainText("Level"), ClearOnClose: true,
		Blocks: slack.Blocks{BlockSet: []slack.Block{slack.NewActionBlock("",
			slack.NewButtonBlockElement("deeper", "", plainText("Deeper")))}}}
}

func TestMessagesTab(t *testing.T) {
	emu := slackemu.Start(t)
	app := startApp(t, emu, nil)
	if _, err := emu.OpenMessagesTab(testCtx(t), "erin"); err != nil {
		t.Fatal(err)
	}
	req := app.Requests()[0]
	if req.Type != "events_api" {
		t.Errorf("request = %+v", req)
	}
}
