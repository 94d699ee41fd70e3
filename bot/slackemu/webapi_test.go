package slackemu_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/latchhq/latch/bot/slackemu"
)

func slackErr(t *testing.T, err error) slack.SlackErrorResponse {
	t.Helper()
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) {
		t.Fatalf("err = %v (%T), want a slack.SlackErrorResponse", err, err)
	}
	return se
}

func TestTokens(t *testing.T) {
	emu := slackemu.Start(t)
	ctx := testCtx(t)

	res, err := newAPI(emu).AuthTestContext(ctx)
	if err != nil {
		t.Fatalf("auth.test: %v", err)
	}
	if res.UserID != emu.BotUserID() || res.TeamID != emu.TeamID() || res.BotID != emu.BotID() {
		t.Errorf("auth.test = %+v", res)
	}

	tests := []struct {
		name    string
		call    func() error
		want    string
		problem bool
	}{
		{"wrong bot token", func() error {
			_, err := slack.New("xoxb-wrong", slack.OptionAPIURL(emu.APIURL())).AuthTestContext(ctx)
			return err
		}, "invalid_auth", false},
		{"no token", func() error {
			_, err := slack.New("", slack.OptionAPIURL(emu.APIURL())).AuthTestContext(ctx)
			return err
		}, "not_authed", false},
		{"bot token for apps.connections.open", func() error {
			_, _, err := slack.New(emu.BotToken(), slack.OptionAppLevelToken(emu.BotToken()),
				slack.OptionAPIURL(emu.APIURL())).StartSocketModeContext(ctx)
			return err
		}, "not_allowed_token_type", true},
		{"wrong app token", func() error {
			_, _, err := slack.New(emu.BotToken(), slack.OptionAppLevelToken("xapp-1-nope"),
				slack.OptionAPIURL(emu.APIURL())).StartSocketModeContext(ctx)
			return err
		}, "invalid_auth", false},
		{"app token for chat.postMessage", func() error {
			_, _, err := slack.New(emu.AppToken(), slack.OptionAPIURL(emu.APIURL())).
				PostMessageContext(ctx, "#incidents", slack.MsgOptionText("hi", false))
			return err
		}, "not_allowed_token_type", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if got := slackErr(t, err).Err; got != tt.want {
				t.Errorf("error = %q, want %q", got, tt.want)
			}
			if got := len(emu.TakeProblems()) > 0; got != tt.problem {
				t.Errorf("problem recorded = %v, want %v", got, tt.problem)
			}
		})
	}

	info, url, err := slack.New(emu.BotToken(), slack.OptionAppLevelToken(emu.AppToken()),
		slack.OptionAPIURL(emu.APIURL())).StartSocketModeContext(ctx)
	if err != nil || !strings.HasPrefix(url, "ws://127.0.0.1:") || info.URL != url {
		t.Errorf("apps.connections.open = %q, %v", url, err)
	}
}

func TestUnknownMethod(t *testing.T) {
	emu := slackemu.Start(t)
	resp, err := http.PostForm(emu.APIURL()+"chat.frobnicate", url.Values{"token": {emu.BotToken()}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if got, want := string(body), `{"error":"unknown_method","ok":false}`; resp.StatusCode != 200 || got != want {
		t.Errorf("got %d %s, want 200 %s", resp.StatusCode, got, want)
	}
}

func TestErrorShapes(t *testing.T) {
	emu := slackemu.Start(t)
	ctx := testCtx(t)
	api := newAPI(emu)
	_, dmTS, err := api.PostMessageContext(ctx, emu.User("alice").ID, slack.MsgOptionText("hello", false))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := emu.AddChannel("random", false, "alice"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"post to unknown channel", func() error {
			_, _, err := api.PostMessageContext(ctx, "C0NOPE", slack.MsgOptionText("x", false))
			return err
		}, "channel_not_found"},
		{"post to channel without the bot", func() error {
			_, _, err := api.PostMessageContext(ctx, "#random", slack.MsgOptionText("x", false))
			return err
		}, "not_in_channel"},
		{"post without text or blocks", func() error {
			_, _, err := api.PostMessageContext(ctx, "#incidents")
			return err
		}, "no_text"},
		{"update unknown message", func() error {
			_, _, _, err := api.UpdateMessageContext(ctx, emu.DMChannel("alice"), "1.000001", slack.MsgOptionText("x", false))
			return err
		}, "message_not_found"},
		{"update with a user id as channel", func() error {
			_, _, _, err := api.UpdateMessageContext(ctx, emu.User("alice").ID, dmTS, slack.MsgOptionText("x", false))
			return err
		}, "channel_not_found"},
		{"delete unknown message", func() error {
			_, _, err := api.DeleteMessageContext(ctx, emu.DMChannel("alice"), "1.000001")
			return err
		}, "message_not_found"},
		{"ephemeral to unknown user", func() error {
			_, err := api.PostEphemeralContext(ctx, "#incidents", "U0NOPE", slack.MsgOptionText("x", false))
			return err
		}, "user_not_found"},
		{"ephemeral to user outside channel", func() error {
			_, err := api.PostEphemeralContext(ctx, "#security", emu.User("alice").ID, slack.MsgOptionText("x", false))
			return err
		}, "user_not_in_channel"},
		{"users.info unknown", func() error {
			_, err := api.GetUserInfoContext(ctx, "U0NOPE")
			return err
		}, "user_not_found"},
		{"users.lookupByEmail unknown", func() error {
			_, err := api.GetUserByEmailContext(ctx, "nobody@example.com")
			return err
		}, "users_not_found"},
		{"usergroups.users.list unknown", func() error {
			_, err := api.GetUserGroupMembersContext(ctx, "S0NOPE")
			return err
		}, "no_such_subteam"},
		{"views.open unknown trigger", func() error {
			_, err := api.OpenViewContext(ctx, "1.2.nope", requestModal())
			return err
		}, "invalid_trigger_id"},
		{"views.update unknown view", func() error {
			_, err := api.UpdateViewContext(ctx, requestModal(), "", "", "V0NOPE")
			return err
		}, "not_found"},
		{"views.publish unknown user", func() error {
			_, err := api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: "U0NOPE",
				View: slack.HomeTabViewRequest{Type: slack.VTHomeTab}})
			return err
		}, "user_not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := slackErr(t, tt.call()).Err; got != tt.want {
				t.Errorf("error = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestChat(t *testing.T) {
	emu := slackemu.Start(t)
	ctx := testCtx(t)
	api := newAPI(emu)
	alice := emu.User("alice")

	// A user ID as channel posts to the DM; the response names the DM.
	ch, ts, msg, err := api.PostMessageWithResponseContext(ctx, alice.ID, slack.MsgOptionText("hello <@U1>", false))
	if err != nil {
		t.Fatal(err)
	}
	if ch != emu.DMChannel("alice") || msg.Timestamp != ts || msg.BotID != emu.BotID() {
		t.Errorf("post = %s %s %+v", ch, ts, msg)
	}
	// conversations.open gives the same DM.
	im, _, _, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{alice.ID}})
	if err != nil || im.ID != ch {
		t.Errorf("conversations.open = %+v, %v; want %s", im, err, ch)
	}
	// Threads: a reply, and a reply to the reply joins the same thread.
	_, r1, err := api.PostMessageContext(ctx, ch, slack.MsgOptionText("reply 1", false), slack.MsgOptionTS(ts))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessageContext(ctx, ch, slack.MsgOptionText("reply 2", false), slack.MsgOptionTS(r1)); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, ch, ts, slack.MsgOptionText("hello, edited", false)); err != nil {
		t.Fatal(err)
	}
	dms := emu.DMs("alice")
	if len(dms) != 1 || dms[0].Text != "hello, edited" || dms[0].Edited != 1 {
		t.Fatalf("DMs = %+v", dms)
	}
	thread := emu.Thread(dms[0])
	if len(thread) != 2 || thread[0].Text != "reply 1" || thread[1].ThreadTS != ts {
		t.Errorf("thread = %+v", thread)
	}
	// Ephemeral messages belong to one user.
	if _, err := api.PostEphemeralContext(ctx, "#incidents", alice.ID, slack.MsgOptionText("only you", false)); err != nil {
		t.Fatal(err)
	}
	if e := emu.Ephemerals("alice"); len(e) != 1 || e[0].Text != "only you" || e[0].Channel != emu.Channel("incidents").ID {
		t.Errorf("ephemerals = %+v", e)
	}
	if e := emu.Ephemerals("bob"); len(e) != 0 {
		t.Errorf("bob sees %+v", e)
	}
	if m := emu.Messages("#incidents"); len(m) != 0 {
		t.Errorf("ephemeral listed in channel: %+v", m)
	}
	// Delete.
	if _, _, err := api.DeleteMessageContext(ctx, ch, ts); err != nil {
		t.Fatal(err)
	}
	if _, ok := emu.Current(dms[0]); ok {
		t.Error("deleted message still current")
	}
	if got := len(emu.CallsTo("chat.postMessage")); got != 3 {
		t.Errorf("chat.postMessage calls = %d, want 3", got)
	}
	if c := emu.CallsTo("chat.postMessage")[0]; c.Args["channel"] != alice.ID || c.Args["token"] != "" || c.Status != 200 {
		t.Errorf("recorded call = %+v", c)
	}
}

func TestDirectory(t *testing.T) {
	emu := slackemu.Start(t)
	ctx := testCtx(t)
	api := newAPI(emu)

	u, err := api.GetUserByEmailContext(ctx, "alice@example.com")
	if err != nil || u.ID != emu.User("alice").ID || u.RealName != "Alice Anderson" || u.Profile.Email != "alice@example.com" {
		t.Errorf("lookupByEmail = %+v, %v", u, err)
	}
	carol, ok := emu.Manager("alice")
	if !ok || carol.Name != "carol" {
		t.Errorf("manager of alice = %+v, %v", carol, ok)
	}
	if _, ok := emu.Manager("heidi"); ok {
		t.Error("heidi has a manager")
	}
	info, err := api.GetUserInfoContext(ctx, emu.User("grace").ID)
	if err != nil || !info.IsAdmin {
		t.Errorf("grace = %+v, %v", info, err)
	}
	groups, err := api.GetUserGroupsContext(ctx, slack.GetUserGroupsOptionIncludeUsers(true))
	if err != nil || len(groups) != 1 || groups[0].Handle != "oncall" || len(groups[0].Users) != 2 {
		t.Fatalf("usergroups.list = %+v, %v", groups, err)
	}
	members, err := api.GetUserGroupMembersContext(ctx, emu.Group("oncall").ID)
	if err != nil || len(members) != 2 || members[0] != emu.User("dave").ID {
		t.Errorf("usergroups.users.list = %v, %v", members, err)
	}
	mallory, err := emu.AddUser(slackemu.User{Name: "mallory", ManagerID: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if mallory.ManagerID != emu.User("bob").ID || mallory.Email != "mallory@example.com" {
		t.Errorf("added user = %+v", mallory)
	}
	if _, err := emu.AddUserGroup("dbas", "Database admins", "mallory", "frank"); err != nil {
		t.Fatal(err)
	}
	groups, err = api.GetUserGroupsContext(ctx)
	if err != nil || len(groups) != 2 {
		t.Errorf("usergroups.list after add = %+v, %v", groups, err)
	}
	if _, err := emu.AddUser(slackemu.User{Name: "mallory"}); err == nil {
		t.Error("duplicate user name accepted")
	}
}

func TestFailNext(t *testing.T) {
	emu := slackemu.Start(t)
	ctx := testCtx(t)

	emu.FailNext("auth.test", 1, http.StatusTooManyRequests, 2*time.Second)
	_, err := newAPI(emu).AuthTestContext(ctx)
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 2*time.Second {
		t.Fatalf("err = %v, want RateLimitedError after 2s", err)
	}

	emu.FailNext("", 2, http.StatusServiceUnavailable, 0)
	for range 2 {
		_, err = newAPI(emu).AuthTestContext(ctx)
		var sc slack.StatusCodeError
		if !errors.As(err, &sc) || sc.Code != http.StatusServiceUnavailable {
			t.Fatalf("err = %v, want StatusCodeError 503", err)
		}
	}
	if _, err := newAPI(emu).AuthTestContext(ctx); err != nil {
		t.Fatalf("after the burst: %v", err)
	}
	calls := emu.CallsTo("auth.test")
	if len(calls) != 4 || calls[0].Status != 429 || calls[0].Error != "ratelimited" || calls[3].Status != 200 {
		t.Errorf("calls = %+v", calls)
	}
}

// TestRetryAfterHonoured checks slack-go's retrying client waits out the
// Retry-After the emulator sends.
func TestRetryAfterHonoured(t *testing.T) {
	emu := slackemu.Start(t)
	ctx := testCtx(t)
	var (
		mu    sync.Mutex
		times []time.Time
	)
	emu.OnCall(func(c slackemu.Call) {
		if c.Method == "chat.postMessage" {
			mu.Lock()
			times = append(times, c.Time)
			mu.Unlock()
		}
	})
	emu.FailNext("chat.postMessage", 1, http.StatusTooManyRequests, time.Second)
	api := newAPI(emu, slack.OptionRetryConfig(slack.RetryConfig{MaxRetries: 2}))
	if _, _, err := api.PostMessageContext(ctx, "#incidents", slack.MsgOptionText("after the wait", false)); err != nil {
		t.Fatalf("post with retry: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 2 {
		t.Fatalf("calls = %d, want 2", len(times))
	}
	if gap := times[1].Sub(times[0]); gap < time.Second {
		t.Errorf("retried after %v, want at least the 1s Retry-After", gap)
	}
	if _, err := emu.WaitMessage(ctx, "incidents", "after the wait"); err != nil {
		t.Error(err)
	}
}

func TestWaitTimesOut(t *testing.T) {
	emu := slackemu.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := emu.WaitDM(ctx, "alice", "never"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
}
