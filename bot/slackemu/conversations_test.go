package slackemu_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/latchhq/latch/bot/slackemu"
)

func TestConversationsAPI(t *testing.T) {
	emu := slackemu.Start(t)
	ctx := testCtx(t)
	api := newAPI(emu)
	incidents := emu.Channel("incidents")

	info, err := api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: incidents.ID})
	if err != nil || info.Name != "incidents" || !info.IsMember {
		t.Errorf("conversations.info = %+v, %v", info, err)
	}
	members, _, err := api.GetUsersInConversationContext(ctx, &slack.GetUsersInConversationParameters{ChannelID: emu.Channel("security").ID})
	if err != nil || len(members) != 4 {
		t.Errorf("conversations.members = %v, %v", members, err)
	}
	chans, _, err := api.GetConversationsContext(ctx, &slack.GetConversationsParameters{})
	if err != nil || len(chans) != 2 {
		t.Errorf("conversations.list = %+v, %v", chans, err)
	}
	mine, _, err := api.GetConversationsForUserContext(ctx, &slack.GetConversationsForUserParameters{})
	if err != nil || len(mine) != 2 {
		t.Errorf("users.conversations = %+v, %v", mine, err)
	}
	// The bot is not in a new channel until it joins.
	if _, err := emu.AddChannel("ops", false, "dave"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessageContext(ctx, "#ops", slack.MsgOptionText("x", false)); slackErr(t, err).Err != "not_in_channel" {
		t.Errorf("post before join: %v", err)
	}
	if _, _, _, err := api.JoinConversationContext(ctx, emu.Channel("ops").ID); err != nil {
		t.Fatal(err)
	}
	_, ts, err := api.PostMessageContext(ctx, "#ops", slack.MsgOptionText("root", false))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessageContext(ctx, "#ops", slack.MsgOptionText("reply", false), slack.MsgOptionTS(ts)); err != nil {
		t.Fatal(err)
	}
	if _, err := emu.WaitThread(ctx, emu.Messages("ops")[0], "reply"); err != nil {
		t.Error(err)
	}
	hist, err := api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: emu.Channel("ops").ID})
	if err != nil || len(hist.Messages) != 1 || hist.Messages[0].Text != "root" {
		t.Errorf("history = %+v, %v", hist, err)
	}
	replies, _, _, err := api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
		ChannelID: emu.Channel("ops").ID, Timestamp: ts})
	if err != nil || len(replies) != 2 || replies[1].Text != "reply" {
		t.Errorf("replies = %+v, %v", replies, err)
	}
	link, err := api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: emu.Channel("ops").ID, Ts: ts})
	if err != nil || !strings.Contains(link, strings.ReplaceAll(ts, ".", "")) {
		t.Errorf("permalink = %q, %v", link, err)
	}

	users, err := api.GetUsersContext(ctx)
	if err != nil || len(users) != 9 {
		t.Errorf("users.list = %d, %v", len(users), err)
	}
	prof, err := api.GetUserProfileContext(ctx, &slack.GetUserProfileParameters{UserID: emu.User("bob").ID})
	if err != nil || prof.RealName != "Bob Brown" || prof.FieldsMap()["XfMANAGER"].Value != emu.User("carol").ID {
		t.Errorf("profile = %+v, %v", prof, err)
	}
	team, err := api.GetTeamInfoContext(ctx)
	if err != nil || team.ID != emu.TeamID() {
		t.Errorf("team.info = %+v, %v", team, err)
	}
	bot, err := api.GetBotInfoContext(ctx, slack.GetBotInfoParameters{Bot: emu.BotID()})
	if err != nil || bot.AppID != emu.AppID() || bot.UserID != emu.BotUserID() {
		t.Errorf("bots.info = %+v, %v", bot, err)
	}
	if len(emu.Calls()) < 15 {
		t.Errorf("calls = %d", len(emu.Calls()))
	}
}

func TestWorkspaceChanges(t *testing.T) {
	emu := slackemu.Start(t)
	if err := emu.SetManager("alice", "dave"); err != nil {
		t.Fatal(err)
	}
	if m, _ := emu.Manager("alice"); m.Name != "dave" {
		t.Errorf("manager = %+v", m)
	}
	if err := emu.SetManager("alice", ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := emu.Manager("alice"); ok {
		t.Error("manager not cleared")
	}
	if err := emu.SetManager("alice", "zed"); err == nil {
		t.Error("unknown manager accepted")
	}
	if err := emu.JoinChannel("security", "alice"); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(emu.Channel("security").Members, emu.User("alice").ID) {
		t.Error("alice did not join")
	}
	if err := emu.SetUserGroupMembers("oncall", "frank"); err != nil {
		t.Fatal(err)
	}
	if g := emu.Group("oncall"); len(g.Members) != 1 || g.Members[0] != emu.User("frank").ID {
		t.Errorf("oncall = %+v", g)
	}
	if _, err := emu.AddChannel("incidents", false); err == nil {
		t.Error("duplicate channel accepted")
	}
}
