package bot

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/latchhq/latch/workflow"
)

// FuzzParseCommand parses arbitrary /access text: the kind is one of the
// kinds, a search is never longer than maxSearch, and a break-glass command
// always names an item and a reason taken from the text.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"", "   ", "help", "HELP", "?", "list", "ls extra", "mine",
		"breakglass", "breakglass prod-db", "breakglass prod-db db is down",
		"break-glass\tprod-db\n  fire\u00a0in prod  ",
		"prod database", strings.Repeat("é", 300), strings.Repeat("word ", 100),
		"<!channel> <@U123> &amp;", "\xff\xfe breakglass", "breakglass \u2028 x y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c := ParseCommand(text)
		switch c.Kind {
		case CommandForm:
			if strings.TrimSpace(text) != "" {
				t.Errorf("ParseCommand(%q) opens the form, but the text has words", text)
			}
		case CommandSearch:
			if n := utf8.RuneCountInString(c.Words); n > maxSearch {
				t.Errorf("search of %d characters, more than %d", n, maxSearch)
			}
			if c.Words == "" {
				t.Errorf("ParseCommand(%q) searches for nothing", text)
			}
		case CommandBreakGlass:
			if c.Item == "" || strings.TrimSpace(c.Reason) == "" {
				t.Errorf("ParseCommand(%q) = break-glass with item %q, reason %q", text, c.Item, c.Reason)
			}
			if strings.ContainsFunc(c.Item, func(r rune) bool { return strings.TrimSpace(string(r)) == "" }) {
				t.Errorf("break-glass item %q holds white space", c.Item)
			}
			if !strings.Contains(text, c.Item) || !strings.Contains(text, c.Reason) {
				t.Errorf("ParseCommand(%q) = item %q, reason %q, not from the text", text, c.Item, c.Reason)
			}
		case CommandList, CommandHelp:
		default:
			t.Errorf("ParseCommand(%q) gave kind %d", text, c.Kind)
		}
	})
}

// refusingEngine refuses every command, as the engine does for a request
// that does not exist; it makes no network calls.
type refusingEngine struct{}

func refused() error {
	return &workflow.RefusedError{Reason: workflow.RefusedUnknown, Message: "That request does not exist."}
}

func (refusingEngine) Submit(context.Context, workflow.Submission) (workflow.Request, error) {
	return workflow.Request{}, &workflow.RefusedError{Reason: workflow.RefusedDuration, Message: "Choose a duration between 1m and 8h."}
}
func (refusingEngine) Approve(context.Context, string, string) (workflow.Request, error) {
	return workflow.Request{}, refused()
}
func (refusingEngine) Deny(context.Context, string, string, string) (workflow.Request, error) {
	return workflow.Request{}, refused()
}
func (refusingEngine) Cancel(context.Context, string, string) (workflow.Request, error) {
	return workflow.Request{}, refused()
}
func (refusingEngine) Release(context.Context, string, string) (workflow.Request, error) {
	return workflow.Request{}, refused()
}
func (refusingEngine) Extend(context.Context, string, string, time.Duration, string) (workflow.Request, error) {
	return workflow.Request{}, &workflow.RefusedError{Reason: workflow.RefusedJustification, Message: "Say why you need longer."}
}
func (refusingEngine) BreakGlass(context.Context, workflow.BreakGlassCommand) (workflow.Request, error) {
	return workflow.Request{}, refused()
}
func (refusingEngine) Review(context.Context, string, string, string) (workflow.Request, error) {
	return workflow.Request{}, refused()
}
func (refusingEngine) RecordPost(context.Context, string, workflow.Posted) (workflow.Request, error) {
	return workflow.Request{}, refused()
}

// maxAckEnvelope is Slack's limit on a Socket Mode response, envelope
// included; the envelope id and keys take less than the margin.
const (
	maxAckEnvelope = 20 * 1024
	ackMargin      = 256
)

// FuzzInteraction feeds arbitrary interaction payloads to the handlers that
// answer in the ack (type-ahead, form submissions) and to the routing of
// clicks. None may panic, and an ack's payload stays under Slack's limit.
// The work a click does after its ack talks to Slack, so it is not run.
func FuzzInteraction(f *testing.F) {
	cat, policies := bigCatalogue(f, 400)
	b := testBot(f, cat, policies)
	b.SetEngine(refusingEngine{})
	submission := func(callback, meta string, values map[string]map[string]slack.BlockAction) string {
		cb := slack.InteractionCallback{Type: slack.InteractionTypeViewSubmission, User: slack.User{ID: "UALICE"},
			View: slack.View{CallbackID: callback, PrivateMetadata: meta, State: &slack.ViewState{Values: values}}}
		data, err := json.Marshal(cb)
		if err != nil {
			f.Fatal(err)
		}
		return string(data)
	}
	item := "prod-database-00000"
	seeds := []string{
		`{}`,
		`{"type":"block_suggestion","action_id":"item","value":"prod","user":{"id":"UDBA"}}`,
		`{"type":"block_suggestion","action_id":"item","value":"","user":{"id":"UDBA"}}`,
		`{"type":"block_suggestion","action_id":"item","value":"x","user":{"id":"UNKNOWN"}}`,
		`{"type":"block_actions","user":{"id":"UALICE"},"actions":[{"action_id":"approve","value":"0190a0b0-0000-7000-8000-000000000001"}]}`,
		`{"type":"block_actions","user":{"id":"UALICE"},"view":{"type":"home"},"actions":[{"action_id":"release","value":"garbage"}]}`,
		`{"type":"block_actions","user":{"id":"UALICE"},"view":{"callback_id":"request","private_metadata":"{\"c\":\"C1\"}"},"actions":[{"action_id":"item","selected_option":{"value":"` + item + `"}}]}`,
		`{"type":"block_actions","user":{"id":"UALICE"},"actions":[]}`,
		submission(callbackRequest, `{"c":"C1"}`, nil),
		submission(callbackRequest, `{"c":"C1"}`, map[string]map[string]slack.BlockAction{
			inputItem: {inputItem: {SelectedOption: slack.OptionBlockObject{Value: item}}}}),
		submission(callbackRequest, `{"c":"C1","i":"`+item+`"}`, map[string]map[string]slack.BlockAction{
			inputItem:          {inputItem: {SelectedOption: slack.OptionBlockObject{Value: item}}},
			inputDuration:      {inputDuration: {SelectedOption: slack.OptionBlockObject{Value: "99h"}}},
			inputJustification: {inputJustification: {Value: strings.Repeat("<!channel> ", 500)}},
			inputBeneficiary:   {inputBeneficiary: {SelectedUser: "UDBA"}},
			inputPublicKey:     {inputPublicKey: {Value: "ssh-ed25519 AAAA"}},
		}),
		submission(callbackDeny, "some-request", map[string]map[string]slack.BlockAction{
			inputReason: {inputReason: {Value: "no"}}}),
		submission(callbackDeny, "some-request", nil),
		submission(callbackExtend, "some-request", map[string]map[string]slack.BlockAction{
			inputDuration:      {inputDuration: {SelectedOption: slack.OptionBlockObject{Value: "2h"}}},
			inputJustification: {inputJustification: {Value: ""}}}),
		submission(callbackExtend, "some-request", map[string]map[string]slack.BlockAction{
			inputDuration: {inputDuration: {SelectedOption: slack.OptionBlockObject{Value: "forever"}}}}),
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		var cb slack.InteractionCallback
		if err := json.Unmarshal(data, &cb); err != nil {
			return
		}
		payload, _ := b.onInteraction(ctx, cb)
		if payload == nil {
			return
		}
		out, err := json.Marshal(payload)
		if err != nil {
			t.Fatalf("the ack payload %T does not encode: %v", payload, err)
		}
		if len(out) > maxAckEnvelope-ackMargin {
			t.Fatalf("the ack payload of a %s is %d bytes, over Slack's %d-byte limit", cb.Type, len(out), maxAckEnvelope)
		}
	})
}
