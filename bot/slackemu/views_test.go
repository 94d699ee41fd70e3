package slackemu_test

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/latchhq/latch/bot/slackemu"
)

func plainText(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

func simpleModal(title, callbackID string) *slack.ModalViewRequest {
	return &slack.ModalViewRequest{
		Type: slack.VTModal, Title: plainText(title), Submit: plainText("Next"), CallbackID: callbackID,
		NotifyOnClose: true,
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewInputBlock("note", plainText("Note"), nil, slack.NewPlainTextInputBlockElement(nil, "note_input")),
		}},
	}
}

// TestSubmissionResponseActions drives every response_action an app can
// return from a view_submission.
func TestSubmissionResponseActions(t *testing.T) {
	emu := slackemu.Start(t)
	ctx := testCtx(t)
	var mu sync.Mutex
	respond := map[string]any{} // note text → ack payload
	var closed []slack.InteractionCallback
	startApp(t, emu, func(app *testApp, evt socketmode.Event) any {
		switch d := evt.Data.(type) {
		case slack.SlashCommand:
			if _, err := app.api.OpenView(d.TriggerID, *simpleModal("First", "first")); err != nil {
				t.Errorf("open: %v", err)
			}
		case slack.InteractionCallback:
			mu.Lock()
			defer mu.Unlock()
			if d.Type == slack.InteractionTypeViewClosed {
				closed = append(closed, d)
				return nil
			}
			if d.Type == slack.InteractionTypeViewSubmission {
				return respond[d.View.State.Values["note"]["note_input"].Value]
			}
		}
		return nil
	})
	mu.Lock()
	respond["push"] = slack.NewPushViewSubmissionResponse(simpleModal("Second", "second"))
	respond["update"] = slack.NewUpdateViewSubmissionResponse(simpleModal("Updated", "updated"))
	respond["clear"] = slack.NewClearViewSubmissionResponse()
	respond["bad key"] = slack.NewErrorsViewSubmissionResponse(map[string]string{"nope": "x"})
	respond["bad view"] = slack.NewUpdateViewSubmissionResponse(simpleModal(strings.Repeat("t", 30), "x"))
	mu.Unlock()

	if _, err := emu.Slash(ctx, "alice", "", "/access", ""); err != nil {
		t.Fatal(err)
	}
	first, err := emu.WaitView(ctx, "alice", "First")
	if err != nil {
		t.Fatal(err)
	}
	// push: a second view on top; the first stays below it.
	ack, err := emu.Submit(ctx, "alice", first, map[string]string{"note_input": "push"})
	if err != nil || ack.ResponseAction != "push" {
		t.Fatalf("push: %+v, %v", ack, err)
	}
	second := emu.View("alice")
	if second.Title != "Second" || second.PreviousViewID != first.ID || second.RootViewID != first.ID {
		t.Fatalf("after push: %+v", second)
	}
	if stack := emu.ModalStack("alice"); len(stack) != 2 {
		t.Errorf("stack = %d views", len(stack))
	}
	// The covered view cannot be used.
	if _, err := emu.Submit(ctx, "alice", first, map[string]string{"note_input": "x"}); !errors.Is(err, slackemu.ErrNotVisible) {
		t.Errorf("submit covered view: %v", err)
	}
	emu.TakeProblems()
	// update: same view ID, new content.
	ack, err = emu.Submit(ctx, "alice", second, map[string]string{"note_input": "update"})
	if err != nil || ack.ResponseAction != "update" {
		t.Fatalf("update: %+v, %v", ack, err)
	}
	if v := emu.View("alice"); v.ID != second.ID || v.Title != "Updated" || v.CallbackID != "updated" || v.Hash == second.Hash {
		t.Errorf("after update: %+v", v)
	}
	// Invalid responses are problems and leave the view as it was.
	for _, note := range []string{"bad key", "bad view"} {
		if _, err := emu.Submit(ctx, "alice", emu.View("alice"), map[string]string{"note_input": note}); !errors.Is(err, slackemu.ErrBadAck) {
			t.Errorf("%s: err = %v, want ErrBadAck", note, err)
		}
		if p := emu.TakeProblems(); len(p) == 0 {
			t.Errorf("%s: no problem recorded", note)
		}
	}
	// No response_action: the top view closes, the first is back.
	if _, err := emu.Submit(ctx, "alice", emu.View("alice"), map[string]string{"note_input": "done"}); err != nil {
		t.Fatal(err)
	}
	if v := emu.View("alice"); v == nil || v.ID != first.ID {
		t.Fatalf("after plain submit: %+v", v)
	}
	// The first view kept what alice typed before the push.
	if got := string(emu.View("alice").Values["note"]["note_input"]); !strings.Contains(got, `"value":"push"`) {
		t.Errorf("first view state = %s", got)
	}
	// clear closes everything.
	if _, err := emu.Submit(ctx, "alice", emu.View("alice"), map[string]string{"note_input": "push"}); err != nil {
		t.Fatal(err)
	}
	if _, err := emu.Submit(ctx, "alice", emu.View("alice"), map[string]string{"note_input": "clear"}); err != nil {
		t.Fatal(err)
	}
	if v := emu.View("alice"); v != nil {
		t.Errorf("after clear: %+v", v)
	}
	// Closing a view with notify_on_close sends view_closed.
	if _, err := emu.Slash(ctx, "alice", "", "/access", ""); err != nil {
		t.Fatal(err)
	}
	v, err := emu.WaitView(ctx, "alice", "First")
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.CloseView(ctx, "alice", v); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(closed) != 1 || closed[0].View.ID != v.ID || closed[0].IsCleared {
		t.Errorf("view_closed = %+v", closed)
	}
	if emu.View("alice") != nil {
		t.Error("view still open after close")
	}
}

func TestSubmitChecksInputs(t *testing.T) {
	emu := slackemu.Start(t)
	ctx := testCtx(t)
	startApp(t, emu, func(app *testApp, evt socketmode.Event) any {
		if d, ok := evt.Data.(slack.SlashCommand); ok {
			if _, err := app.api.OpenView(d.TriggerID, requestModal()); err != nil {
				t.Errorf("open: %v", err)
			}
		}
		return nil
	})
	if _, err := emu.Slash(ctx, "alice", "", "/access", ""); err != nil {
		t.Fatal(err)
	}
	v, err := emu.WaitView(ctx, "alice", "Request access")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		values  map[string]string
		want    error
		problem bool
	}{
		{"unknown input", map[string]string{"owner": "bob", "reason_input": "x"}, slackemu.ErrNoSuchInput, true},
		{"not an option", map[string]string{"item_select": "a", "duration_select": "99h", "reason_input": "x"}, slackemu.ErrInvalidValue, false},
		{"required missing", map[string]string{"item_select": "a", "duration_select": "1h"}, slackemu.ErrInvalidValue, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := emu.Submit(ctx, "alice", v, tt.values)
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if got := len(emu.TakeProblems()) > 0; got != tt.problem {
				t.Errorf("problem recorded = %v, want %v", got, tt.problem)
			}
		})
	}
	// Another user cannot submit alice's modal.
	if _, err := emu.Submit(ctx, "bob", v, nil); !errors.Is(err, slackemu.ErrNotVisible) {
		t.Errorf("bob submit: %v", err)
	}
	emu.TakeProblems()
	// Input keys may be block IDs too.
	if _, err := emu.Submit(ctx, "alice", v, map[string]string{"item": "db", "duration": "1h", "reason": "r"}); err != nil {
		t.Errorf("submit by block id: %v", err)
	}
}

func TestSuggestRules(t *testing.T) {
	emu := slackemu.Start(t)
	ctx := testCtx(t)
	var mu sync.Mutex
	var options any
	startApp(t, emu, func(app *testApp, evt socketmode.Event) any {
		switch d := evt.Data.(type) {
		case slack.SlashCommand:
			m := requestModal()
			m.Blocks.BlockSet[0].(*slack.InputBlock).Element.(*slack.SelectBlockElement).MinQueryLength = nil
			if _, err := app.api.OpenView(d.TriggerID, m); err != nil {
				t.Errorf("open: %v", err)
			}
		case slack.InteractionCallback:
			if d.Type == slack.InteractionTypeBlockSuggestion {
				mu.Lock()
				defer mu.Unlock()
				return options
			}
		}
		return nil
	})
	if _, err := emu.Slash(ctx, "alice", "", "/access", ""); err != nil {
		t.Fatal(err)
	}
	v, err := emu.WaitView(ctx, "alice", "Request access")
	if err != nil {
		t.Fatal(err)
	}
	// Default min_query_length is 3.
	if _, err := emu.Suggest(ctx, "alice", v, "item_select", "db"); !errors.Is(err, slackemu.ErrQueryTooShort) {
		t.Errorf("short query: %v", err)
	}
	opt := func(txt, val string) map[string]any {
		return map[string]any{"text": map[string]any{"type": "plain_text", "text": txt}, "value": val}
	}
	many := []any{}
	for range 101 {
		many = append(many, opt("x", "x"))
	}
	tests := []struct {
		name    string
		options any
		want    []string
		err     error
	}{
		{"options", map[string]any{"options": []any{opt("Prod DB", "db1"), opt("Staging DB", "db2")}}, []string{"db1", "db2"}, nil},
		{"groups", map[string]any{"option_groups": []any{map[string]any{
			"label": map[string]any{"type": "plain_text", "text": "Databases"}, "options": []any{opt("Prod", "p")}}}}, []string{"p"}, nil},
		{"no options", nil, nil, nil},
		{"101 options", map[string]any{"options": many}, nil, slackemu.ErrBadAck},
		{"long text", map[string]any{"options": []any{opt(strings.Repeat("x", 76), "v")}}, nil, slackemu.ErrBadAck},
		{"mrkdwn text", map[string]any{"options": []any{map[string]any{
			"text": map[string]any{"type": "mrkdwn", "text": "*x*"}, "value": "v"}}}, nil, slackemu.ErrBadAck},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			options = tt.options
			mu.Unlock()
			got, err := emu.Suggest(ctx, "alice", v, "item_select", "data")
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if tt.err != nil {
				if len(emu.TakeProblems()) == 0 {
					t.Error("no problem recorded")
				}
				return
			}
			var vals []string
			for _, o := range got {
				vals = append(vals, o.Value)
			}
			if strings.Join(vals, ",") != strings.Join(tt.want, ",") {
				t.Errorf("values = %v, want %v", vals, tt.want)
			}
		})
	}
}

func TestHomeAndSelect(t *testing.T) {
	emu := slackemu.Start(t)
	ctx := testCtx(t)
	var mu sync.Mutex
	var actions []slack.InteractionCallback
	var homeEvents int
	startApp(t, emu, func(app *testApp, evt socketmode.Event) any {
		switch d := evt.Data.(type) {
		case slack.InteractionCallback:
			mu.Lock()
			actions = append(actions, d)
			mu.Unlock()
		default:
			if evt.Type != socketmode.EventTypeEventsAPI {
				return nil
			}
			mu.Lock()
			homeEvents++
			mu.Unlock()
			home := slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: []slack.Block{
				slack.NewHeaderBlock(plainText("Your access")),
				slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "*prod-db* — 2h left", false, false), nil,
					slack.NewAccessory(slack.NewButtonBlockElement("release", "g1", plainText("Release")))),
				slack.NewActionBlock("filters", slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plainText("Show"), "filter",
					slack.NewOptionBlockObject("active", plainText("Active"), nil),
					slack.NewOptionBlockObject("all", plainText("All"), nil))),
			}}}
			if _, err := app.api.PublishView(evtUser(evt), home, ""); err != nil {
				t.Errorf("publish: %v", err)
			}
		}
		return nil
	})
	if _, err := emu.OpenHome(ctx, "dave"); err != nil {
		t.Fatal(err)
	}
	home, err := emu.WaitHome(ctx, "dave", "Release")
	if err != nil {
		t.Fatal(err)
	}
	want := "# Your access\n*prod-db* — 2h left\n[Release]\n<static_select: Active | All>"
	if got := home.Render(); got != want {
		t.Errorf("render:\n%s\nwant:\n%s", got, want)
	}
	if emu.Home("erin") != nil {
		t.Error("erin has dave's home")
	}
	if _, err := emu.Click(ctx, "dave", home, "release"); err != nil {
		t.Fatal(err)
	}
	if _, err := emu.Select(ctx, "dave", home, "filter", "all"); err != nil {
		t.Fatal(err)
	}
	if _, err := emu.Select(ctx, "dave", home, "filter", "none"); !errors.Is(err, slackemu.ErrInvalidValue) {
		t.Errorf("bad option: %v", err)
	}
	if _, err := emu.Click(ctx, "erin", home, "release"); !errors.Is(err, slackemu.ErrNotVisible) {
		t.Errorf("erin click: %v", err)
	}
	emu.TakeProblems()
	mu.Lock()
	defer mu.Unlock()
	if len(actions) != 2 {
		t.Fatalf("actions = %d", len(actions))
	}
	click := actions[0]
	if click.Container.Type != "view" || click.View.ID != home.ID || click.View.Type != slack.VTHomeTab ||
		click.ActionCallback.BlockActions[0].Value != "g1" || click.TriggerID == "" {
		t.Errorf("click payload = %+v", click)
	}
	sel := actions[1].ActionCallback.BlockActions[0]
	if sel.ActionID != "filter" || sel.BlockID != "filters" || sel.SelectedOption.Value != "all" || sel.SelectedOption.Text.Text != "All" {
		t.Errorf("select payload = %+v", sel)
	}
}

func evtUser(evt socketmode.Event) string {
	// The only events_api event the emulator sends is app_home_opened.
	var p struct {
		Event struct {
			User string `json:"user"`
		} `json:"event"`
	}
	_ = json.Unmarshal(evt.Request.Payload, &p)
	return p.Event.User
}

func TestEphemeralAndResponseURL(t *testing.T) {
	emu := slackemu.Start(t)
	ctx := testCtx(t)
	startApp(t, emu, func(app *testApp, evt socketmode.Event) any {
		switch d := evt.Data.(type) {
		case slack.SlashCommand:
			// Search results as an ephemeral message with a button.
			_, err := app.api.PostEphemeral(d.ChannelID, d.UserID,
				slack.MsgOptionText("results", false),
				slack.MsgOptionBlocks(slack.NewActionBlock("r",
					slack.NewButtonBlockElement("request", "prod-db", plainText("Request")))))
			if err != nil {
				t.Errorf("ephemeral: %v", err)
			}
			// And a visible note through the response_url.
			if _, _, err := app.api.PostMessage("", slack.MsgOptionResponseURL(d.ResponseURL, slack.ResponseTypeInChannel),
				slack.MsgOptionText("alice is searching", false)); err != nil {
				t.Errorf("response_url: %v", err)
			}
		case slack.InteractionCallback:
			if d.Type == slack.InteractionTypeBlockActions && d.Container.IsEphemeral {
				if _, _, err := app.api.PostMessage("", slack.MsgOptionReplaceOriginal(d.ResponseURL),
					slack.MsgOptionText("Requested "+d.ActionCallback.BlockActions[0].Value, false)); err != nil {
					t.Errorf("replace_original: %v", err)
				}
			}
		}
		return nil
	})
	if _, err := emu.Slash(ctx, "alice", "incidents", "/access", "prod"); err != nil {
		t.Fatal(err)
	}
	eph, err := emu.WaitEphemeral(ctx, "alice", "[Request]")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := emu.WaitMessage(ctx, "#incidents", "alice is searching"); err != nil {
		t.Fatal(err)
	}
	if _, err := emu.Click(ctx, "bob", eph, "request"); !errors.Is(err, slackemu.ErrNotVisible) {
		t.Errorf("bob clicks alice's ephemeral: %v", err)
	}
	emu.TakeProblems()
	if _, err := emu.Click(ctx, "alice", eph, "request"); err != nil {
		t.Fatal(err)
	}
	got, err := emu.WaitEphemeral(ctx, "alice", "Requested prod-db")
	if err != nil {
		t.Fatal(err)
	}
	if got.TS != eph.TS || got.Edited != 1 || len(emu.Ephemerals("alice")) != 1 {
		t.Errorf("replaced ephemeral = %+v", got)
	}
	if n := len(emu.CallsTo("response_url")); n != 2 {
		t.Errorf("response_url calls = %d", n)
	}
}

func TestModalUpdateAndHash(t *testing.T) {
	emu := slackemu.Start(t)
	ctx := testCtx(t)
	views := make(chan *slack.ViewResponse, 1)
	app := startApp(t, emu, func(app *testApp, evt socketmode.Event) any {
		if d, ok := evt.Data.(slack.SlashCommand); ok {
			v, err := app.api.OpenView(d.TriggerID, *simpleModal("Loading", "load"))
			if err != nil {
				t.Errorf("open: %v", err)
			}
			views <- v
		}
		return nil
	})
	if _, err := emu.Slash(ctx, "alice", "", "/access", ""); err != nil {
		t.Fatal(err)
	}
	opened := <-views
	v, err := emu.WaitView(ctx, "alice", "Loading")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := emu.Submit(ctx, "alice", v, nil); !errors.Is(err, slackemu.ErrInvalidValue) {
		t.Errorf("submit without required note: %v", err)
	}
	// Typing into the input is kept across views.update.
	if _, err := emu.Select(ctx, "alice", v, "note_input", "typed"); err != nil {
		t.Fatal(err)
	}
	upd, err := app.api.UpdateViewContext(ctx, *simpleModal("Loaded", "load"), "", opened.Hash, opened.ID)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if upd.State == nil || upd.State.Values["note"]["note_input"].Value != "typed" {
		t.Errorf("state after update = %+v", upd.State)
	}
	if _, err := app.api.UpdateViewContext(ctx, *simpleModal("Again", "load"), "", opened.Hash, opened.ID); slackErr(t, err).Err != "hash_conflict" {
		t.Errorf("stale hash: %v", err)
	}
	if got := emu.View("alice").Title; got != "Loaded" {
		t.Errorf("title = %q", got)
	}
}
