package slackemu_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/latchhq/latch/bot/slackemu"
)

func TestRender(t *testing.T) {
	tests := []struct {
		name   string
		text   string
		blocks string
		want   string
	}{
		{"text only", "plain fallback", ``, "plain fallback"},
		{"empty blocks fall back to text", "fallback", `[]`, "fallback"},
		{"card", "fallback", `[
			{"type":"header","text":{"type":"plain_text","text":"Access request"}},
			{"type":"section","text":{"type":"mrkdwn","text":"*alice* wants *prod-db*"},
			 "fields":[{"type":"mrkdwn","text":"*Duration*\n2h"},{"type":"plain_text","text":"Reason: incident"}]},
			{"type":"context","elements":[{"type":"mrkdwn","text":"req-1"},{"type":"image","image_url":"https://x/y.png","alt_text":"avatar"}]},
			{"type":"divider"},
			{"type":"actions","elements":[
				{"type":"button","text":{"type":"plain_text","text":"Approve"},"action_id":"a"},
				{"type":"button","text":{"type":"plain_text","text":"Deny"},"action_id":"d"},
				{"type":"static_select","placeholder":{"type":"plain_text","text":"More"},"action_id":"s",
				 "options":[{"text":{"type":"plain_text","text":"Extend"},"value":"e"}]},
				{"type":"users_select","placeholder":{"type":"plain_text","text":"Delegate"},"action_id":"u"}]},
			{"type":"section","text":{"type":"mrkdwn","text":"Release early?"},
			 "accessory":{"type":"button","text":{"type":"plain_text","text":"Release"},"action_id":"r"}},
			{"type":"input","label":{"type":"plain_text","text":"Reason"},"optional":true,
			 "element":{"type":"plain_text_input","action_id":"i","initial_value":"because"}}
		]`, "# Access request\n*alice* wants *prod-db*\n*Duration*\n2h\nReason: incident\n" +
			"req-1 | [image: avatar]\n---\n[Approve] [Deny] <static_select: Extend> <users_select: Delegate>\n" +
			"Release early?\n[Release]\nReason (optional): <plain_text_input> = because"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := slackemu.Message{Text: tt.text, Blocks: json.RawMessage(tt.blocks)}
			if got := m.Render(); got != tt.want {
				t.Errorf("Render() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestElements(t *testing.T) {
	m := slackemu.Message{Blocks: json.RawMessage(`[
		{"type":"actions","block_id":"b1","elements":[
			{"type":"button","text":{"type":"plain_text","text":"Approve"},"action_id":"approve","value":"r1","style":"primary"}]},
		{"type":"input","block_id":"b2","label":{"type":"plain_text","text":"Why"},"dispatch_action":true,
		 "element":{"type":"static_select","action_id":"why","options":[{"text":{"type":"plain_text","text":"A"},"value":"a"}]}}
	]`)}
	got := m.Elements()
	want := []slackemu.Element{
		{BlockID: "b1", BlockType: "actions", ActionID: "approve", Type: "button", Text: "Approve", Value: "r1", Style: "primary"},
		{BlockID: "b2", BlockType: "input", ActionID: "why", Type: "static_select", Label: "Why", Dispatch: true,
			Options: []slackemu.SelectOption{{Text: "A", Value: "a"}}},
	}
	if len(got) != len(want) {
		t.Fatalf("Elements() = %+v", got)
	}
	for i := range want {
		if got[i].ActionID != want[i].ActionID || got[i].Text != want[i].Text || got[i].Value != want[i].Value ||
			got[i].Label != want[i].Label || got[i].Dispatch != want[i].Dispatch || got[i].Style != want[i].Style ||
			!slices.Equal(got[i].Options, want[i].Options) {
			t.Errorf("element %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if !m.HasAction("approve") || m.HasAction("deny") {
		t.Error("HasAction")
	}
}

func TestMentions(t *testing.T) {
	tests := []struct {
		name   string
		text   string
		blocks string
		want   []string
	}{
		{"none", "hello &lt;!channel&gt; @channel", ``, nil},
		{"escaped mentions", "<@UALICE00> and <!here> and <!subteam^SONCALL0|@oncall>", ``,
			[]string{"@UALICE00", "!here", "!subteam^SONCALL0"}},
		{"mrkdwn block", "", `[{"type":"section","text":{"type":"mrkdwn","text":"<!channel> look"}}]`, []string{"!channel"}},
		{"plain_text does not notify", "", `[{"type":"header","text":{"type":"plain_text","text":"<!channel>"}}]`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := slackemu.Message{Text: tt.text, Blocks: json.RawMessage(tt.blocks)}
			if got := m.Mentions(); !slices.Equal(got, tt.want) {
				t.Errorf("Mentions() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWorkspaceSeed(t *testing.T) {
	emu := slackemu.Start(t)
	users := emu.Users()
	if len(users) != 9 || users[0].ID != emu.BotUserID() || !users[0].IsBot {
		t.Fatalf("users = %+v", users)
	}
	alice := emu.User("alice")
	if alice.ID != "UALICE00" || alice.Email != "alice@example.com" || emu.User(alice.ID).Name != "alice" {
		t.Errorf("alice = %+v", alice)
	}
	if got := emu.DMChannel("alice"); got != "DALICE00" {
		t.Errorf("DM = %s", got)
	}
	sec := emu.Channel("#security")
	if !sec.IsPrivate || slices.Contains(sec.Members, alice.ID) || !slices.Contains(sec.Members, emu.BotUserID()) {
		t.Errorf("#security = %+v", sec)
	}
	if g := emu.Group("@oncall"); len(g.Members) != 2 || g.Members[0] != emu.User("dave").ID {
		t.Errorf("oncall = %+v", g)
	}
	if _, ok := emu.LookupUser("zed"); ok {
		t.Error("zed exists")
	}
	// The same seed gives the same IDs.
	other := slackemu.Start(t, slackemu.WithoutSeed())
	if n := len(other.Users()); n != 1 {
		t.Errorf("unseeded users = %d", n)
	}
	u, err := other.AddUser(slackemu.User{Name: "alice"})
	if err != nil || u.ID != alice.ID {
		t.Errorf("added alice = %+v, %v", u, err)
	}
}
