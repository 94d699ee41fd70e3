package slackemu_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/latchhq/latch/bot/slackemu"
)

func repeat(n int, item string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = item
	}
	return strings.Join(parts, ",")
}

func text(n int) string { return strings.Repeat("x", n) }

func plain(s string) string { return fmt.Sprintf(`{"type":"plain_text","text":%q}`, s) }

func button(id, txt string) string {
	return fmt.Sprintf(`{"type":"button","action_id":%q,"text":%s,"value":"v"}`, id, plain(txt))
}

func option(txt, val string) string {
	return fmt.Sprintf(`{"text":%s,"value":%q}`, plain(txt), val)
}

type apiReply struct {
	OK               bool     `json:"ok"`
	Error            string   `json:"error"`
	Errors           []string `json:"errors"`
	ResponseMetadata struct {
		Messages []string `json:"messages"`
	} `json:"response_metadata"`
}

// postRaw calls a Web API method with form arguments.
func postRaw(t *testing.T, emu *slackemu.Server, method string, args url.Values) apiReply {
	t.Helper()
	args.Set("token", emu.BotToken())
	resp, err := http.PostForm(emu.APIURL()+method, args)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r apiReply
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestMessageBlockLimits(t *testing.T) {
	emu := slackemu.Start(t)
	tests := []struct {
		name   string
		blocks string
		want   string // expected substring of the first error message
	}{
		{"valid", `[{"type":"section","text":{"type":"mrkdwn","text":"*hi*"}},{"type":"divider"}]`, ""},
		{"51 blocks", "[" + repeat(51, `{"type":"divider"}`) + "]", "no more than 50 items allowed [json-pointer:/blocks]"},
		{"section text 3001", `[{"type":"section","text":{"type":"mrkdwn","text":"` + text(3001) + `"}}]`,
			"must be less than 3001 characters [json-pointer:/blocks/0/text/text]"},
		{"section text 3000 ok", `[{"type":"section","text":{"type":"mrkdwn","text":"` + text(3000) + `"}}]`, ""},
		{"section without text or fields", `[{"type":"section"}]`, "[json-pointer:/blocks/0]"},
		{"11 fields", `[{"type":"section","fields":[` + repeat(11, plain("f")) + `]}]`,
			"no more than 10 items allowed [json-pointer:/blocks/0/fields]"},
		{"field text 2001", `[{"type":"section","fields":[` + plain(text(2001)) + `]}]`,
			"must be less than 2001 characters [json-pointer:/blocks/0/fields/0/text]"},
		{"header 151", `[{"type":"header","text":` + plain(text(151)) + `}]`,
			"must be less than 151 characters [json-pointer:/blocks/0/text/text]"},
		{"header mrkdwn", `[{"type":"header","text":{"type":"mrkdwn","text":"x"}}]`,
			"must be plain_text [json-pointer:/blocks/0/text/type]"},
		{"context 11 elements", `[{"type":"context","elements":[` + repeat(11, `{"type":"mrkdwn","text":"c"}`) + `]}]`,
			"no more than 10 items allowed [json-pointer:/blocks/0/elements]"},
		{"empty context", `[{"type":"context","elements":[]}]`, "[json-pointer:/blocks/0/elements]"},
		{"actions 26 elements", `[{"type":"actions","elements":[` + repeat(26, `{"type":"button","text":`+plain("b")+`}`) + `]}]`,
			"no more than 25 items allowed [json-pointer:/blocks/0/elements]"},
		{"empty actions", `[{"type":"actions","elements":[]}]`, "[json-pointer:/blocks/0/elements]"},
		{"button text 76", `[{"type":"actions","elements":[` + button("a", text(76)) + `]}]`,
			"[ERROR] must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]"},
		{"button text mrkdwn", `[{"type":"actions","elements":[{"type":"button","text":{"type":"mrkdwn","text":"b"}}]}]`,
			"must be plain_text [json-pointer:/blocks/0/elements/0/text/type]"},
		{"button value 2001", `[{"type":"actions","elements":[{"type":"button","text":` + plain("b") + `,"value":"` + text(2001) + `"}]}]`,
			"must be less than 2001 characters [json-pointer:/blocks/0/elements/0/value]"},
		{"button url 3001", `[{"type":"actions","elements":[{"type":"button","text":` + plain("b") + `,"url":"` + text(3001) + `"}]}]`,
			"[json-pointer:/blocks/0/elements/0/url]"},
		{"button style", `[{"type":"actions","elements":[{"type":"button","text":` + plain("b") + `,"style":"green"}]}]`,
			"[json-pointer:/blocks/0/elements/0/style]"},
		{"action_id 256", `[{"type":"actions","elements":[` + button(text(256), "b") + `]}]`,
			"must be less than 256 characters [json-pointer:/blocks/0/elements/0/action_id]"},
		{"duplicate action_id", `[{"type":"actions","elements":[` + button("a", "b") + "," + button("a", "c") + `]}]`,
			"[json-pointer:/blocks/0/elements/1/action_id]"},
		{"block_id 256", `[{"type":"divider","block_id":"` + text(256) + `"}]`,
			"must be less than 256 characters [json-pointer:/blocks/0/block_id]"},
		{"duplicate block_id", `[{"type":"divider","block_id":"d"},{"type":"divider","block_id":"d"}]`,
			"[json-pointer:/blocks/1/block_id]"},
		{"option text 76", `[{"type":"actions","elements":[{"type":"static_select","options":[` + option(text(76), "v") + `]}]}]`,
			"must be less than 76 characters [json-pointer:/blocks/0/elements/0/options/0/text/text]"},
		{"option value 151", `[{"type":"actions","elements":[{"type":"static_select","options":[` + option("t", text(151)) + `]}]}]`,
			"must be less than 151 characters [json-pointer:/blocks/0/elements/0/options/0/value]"},
		{"101 options", `[{"type":"actions","elements":[{"type":"static_select","options":[` + repeat(101, option("t", "v")) + `]}]}]`,
			"no more than 100 items allowed [json-pointer:/blocks/0/elements/0/options]"},
		{"initial option not an option", `[{"type":"actions","elements":[{"type":"static_select","options":[` + option("t", "v") + `],"initial_option":` + option("t", "w") + `}]}]`,
			"[json-pointer:/blocks/0/elements/0/initial_option]"},
		{"input without label", `[{"type":"input","element":{"type":"plain_text_input"}}]`,
			"missing required field: label [json-pointer:/blocks/0]"},
		{"input label 2001", `[{"type":"input","label":` + plain(text(2001)) + `,"element":{"type":"plain_text_input"}}]`,
			"[json-pointer:/blocks/0/label/text]"},
		{"text type", `[{"type":"section","text":{"type":"markdown","text":"x"}}]`,
			"must be a valid enum value [json-pointer:/blocks/0/text/type]"},
		{"missing type", `[{"text":{"type":"mrkdwn","text":"x"}}]`, "missing required field: type [json-pointer:/blocks/0]"},
		{"unknown block", `[{"type":"carousel_of_doom"}]`, "[json-pointer:/blocks/0/type]"},
		{"button in context", `[{"type":"context","elements":[` + button("a", "b") + `]}]`,
			"[json-pointer:/blocks/0/elements/0/type]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := postRaw(t, emu, "chat.postMessage", url.Values{
				"channel": {"#incidents"}, "text": {"fallback"}, "blocks": {tt.blocks},
			})
			problems := emu.TakeProblems()
			if tt.want == "" {
				if !r.OK || len(problems) > 0 {
					t.Fatalf("rejected: %+v %q", r, problems)
				}
				return
			}
			if r.OK || r.Error != "invalid_blocks" {
				t.Fatalf("reply = %+v, want invalid_blocks", r)
			}
			if len(r.ResponseMetadata.Messages) == 0 || !strings.Contains(r.ResponseMetadata.Messages[0], tt.want) {
				t.Errorf("messages = %q, want one containing %q", r.ResponseMetadata.Messages, tt.want)
			}
			if len(problems) == 0 || !strings.Contains(problems[0], tt.want) {
				t.Errorf("problems = %q, want one containing %q", problems, tt.want)
			}
		})
	}
}

// TestInvalidBlocksViaSlackGo checks slack-go surfaces the messages.
func TestInvalidBlocksViaSlackGo(t *testing.T) {
	emu := slackemu.Start(t)
	_, _, err := newAPI(emu).PostMessageContext(testCtx(t), "#incidents", slack.MsgOptionBlocks(
		slack.NewActionBlock("", slack.NewButtonBlockElement("a", "v",
			slack.NewTextBlockObject(slack.PlainTextType, text(80), false, false)))))
	se := slackErr(t, err)
	if se.Err != "invalid_blocks" || len(se.ResponseMetadata.Messages) != 1 ||
		!strings.Contains(se.ResponseMetadata.Messages[0], "/blocks/0/elements/0/text/text") {
		t.Errorf("error = %+v", se)
	}
	if p := emu.TakeProblems(); len(p) != 1 {
		t.Errorf("problems = %q", p)
	}
}

func modalJSON(title, extra, blocks string) string {
	return `{"type":"modal","title":` + plain(title) + extra + `,"blocks":[` + blocks + `]}`
}

func TestViewLimits(t *testing.T) {
	emu := slackemu.Start(t)
	triggers := make(chan string, 1)
	startApp(t, emu, func(app *testApp, evt socketmode.Event) any {
		if cmd, ok := evt.Data.(slack.SlashCommand); ok {
			triggers <- cmd.TriggerID
		}
		return nil
	})
	input := func(id string) string {
		return `{"type":"input","block_id":"b` + id + `","label":` + plain("L") + `,"element":{"type":"plain_text_input","action_id":"` + id + `"}}`
	}
	submit := `,"submit":` + plain("Go")
	tests := []struct {
		name string
		view string
		want string
	}{
		{"valid", modalJSON("Request", submit, input("a")), ""},
		{"101 blocks", modalJSON("Request", "", repeat(101, `{"type":"divider"}`)),
			"no more than 100 items allowed [json-pointer:/view/blocks]"},
		{"title 25", modalJSON(text(25), "", ""), "must be less than 25 characters [json-pointer:/view/title/text]"},
		{"no title", `{"type":"modal","blocks":[]}`, "missing required field: title [json-pointer:/view]"},
		{"submit 25", modalJSON("T", `,"submit":`+plain(text(25)), ""), "[json-pointer:/view/submit/text]"},
		{"close mrkdwn", modalJSON("T", `,"close":{"type":"mrkdwn","text":"x"}`, ""), "[json-pointer:/view/close/type]"},
		{"private_metadata 3001", modalJSON("T", `,"private_metadata":"`+text(3001)+`"`, ""),
			"must be less than 3001 characters [json-pointer:/view/private_metadata]"},
		{"callback_id 256", modalJSON("T", `,"callback_id":"`+text(256)+`"`, ""), "[json-pointer:/view/callback_id]"},
		{"inputs need submit", modalJSON("T", "", input("a")), "submit"},
		{"max_length 3001", modalJSON("T", submit, `{"type":"input","label":`+plain("L")+`,"element":{"type":"plain_text_input","max_length":3001}}`),
			"[json-pointer:/view/blocks/0/element/max_length]"},
		{"duplicate input action_id", modalJSON("T", submit, input("a")+","+strings.Replace(input("a"), `"ba"`, `"bb"`, 1)),
			"[json-pointer:/view/blocks/1/element/action_id]"},
		{"home type", `{"type":"home","blocks":[]}`, "must be modal [json-pointer:/view/type]"},
	}
	ctx := testCtx(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := emu.Slash(ctx, "alice", "", "/access", ""); err != nil {
				t.Fatal(err)
			}
			trig := <-triggers
			r := postRaw(t, emu, "views.open", url.Values{"trigger_id": {trig}, "view": {tt.view}})
			problems := emu.TakeProblems()
			if tt.want == "" {
				if !r.OK || len(problems) > 0 {
					t.Fatalf("rejected: %+v %q", r, problems)
				}
				return
			}
			if r.OK || r.Error != "invalid_arguments" {
				t.Fatalf("reply = %+v, want invalid_arguments", r)
			}
			if !strings.Contains(strings.Join(r.ResponseMetadata.Messages, "\n"), tt.want) {
				t.Errorf("messages = %q, want one containing %q", r.ResponseMetadata.Messages, tt.want)
			}
			if len(problems) == 0 {
				t.Error("no problem recorded")
			}
		})
	}
}
