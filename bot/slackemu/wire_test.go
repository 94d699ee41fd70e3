package slackemu_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/latchhq/latch/bot/slackemu"
)

// rawConn dials the emulator's socket with a bare WebSocket client.
func rawConn(t *testing.T, emu *slackemu.Server) *websocket.Conn {
	t.Helper()
	_, url, err := newAPI(emu).StartSocketModeContext(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	conn, resp, err := websocket.DefaultDialer.Dial(url, map[string][]string{"Origin": {"https://api.slack.com"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	t.Cleanup(func() { conn.Close() })
	return conn
}

func readJSON(t *testing.T, conn *websocket.Conn) map[string]any {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m map[string]any
	if err := conn.ReadJSON(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func keys(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, ",")
}

func TestWireFormat(t *testing.T) {
	emu := slackemu.Start(t)
	conn := rawConn(t, emu)
	hello := readJSON(t, conn)
	if got, want := keys(hello), "connection_info,debug_info,num_connections,type"; got != want {
		t.Errorf("hello keys = %s, want %s", got, want)
	}
	if hello["type"] != "hello" || hello["num_connections"] != float64(1) {
		t.Errorf("hello = %v", hello)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := emu.Slash(ctx, "alice", "#incidents", "/access", "prod")
		errc <- err
	}()
	env := readJSON(t, conn)
	if got, want := keys(env), "accepts_response_payload,envelope_id,payload,retry_attempt,retry_reason,type"; got != want {
		t.Errorf("envelope keys = %s, want %s", got, want)
	}
	p, _ := env["payload"].(map[string]any)
	want := "api_app_id,channel_id,channel_name,command,is_enterprise_install,response_url,team_domain,team_id,text,token,trigger_id,user_id,user_name"
	if got := keys(p); got != want {
		t.Errorf("slash payload keys = %s, want %s", got, want)
	}
	if env["type"] != "slash_commands" || env["accepts_response_payload"] != true || p["command"] != "/access" || p["text"] != "prod" {
		t.Errorf("envelope = %v", env)
	}
	// A frame Slack would drop, and an ack for nothing, are problems.
	big := `{"envelope_id":"` + env["envelope_id"].(string) + `","payload":{"text":"` + strings.Repeat("x", 21000) + `"}}`
	if err := conn.WriteMessage(websocket.TextMessage, []byte(big)); err != nil {
		t.Fatal(err)
	}
	if err := conn.WriteJSON(map[string]any{"envelope_id": "nope"}); err != nil {
		t.Fatal(err)
	}
	if err := conn.WriteJSON(map[string]any{"envelope_id": env["envelope_id"]}); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	problems := emu.TakeProblems()
	if len(problems) != 2 || !strings.Contains(problems[0], "21") || !strings.Contains(problems[1], "unknown envelope") {
		t.Errorf("problems = %q", problems)
	}
}

func TestResponseURLLimits(t *testing.T) {
	clock := &fakeClock{now: time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC)}
	emu := slackemu.Start(t, slackemu.WithClock(clock.Now))
	conn := rawConn(t, emu)
	readJSON(t, conn)
	ctx := testCtx(t)
	slash := func() string {
		t.Helper()
		errc := make(chan error, 1)
		go func() {
			_, err := emu.Slash(ctx, "alice", "", "/access", "")
			errc <- err
		}()
		env := readJSON(t, conn)
		if err := conn.WriteJSON(map[string]any{"envelope_id": env["envelope_id"]}); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		return env["payload"].(map[string]any)["response_url"].(string)
	}
	url := slash()
	post := func() int {
		t.Helper()
		status, err := httpPostJSON(url, `{"text":"hi"}`)
		if err != nil {
			t.Fatal(err)
		}
		return status
	}
	for i := range 5 {
		if got := post(); got != 200 {
			t.Fatalf("use %d: status %d", i+1, got)
		}
	}
	if got := post(); got != 404 {
		t.Errorf("sixth use: status %d, want 404", got)
	}
	if n := len(emu.Ephemerals("alice")); n != 5 {
		t.Errorf("ephemerals = %d", n)
	}
	calls := emu.CallsTo("response_url")
	if last := calls[len(calls)-1]; last.Error != "used_url" {
		t.Errorf("last call = %+v", last)
	}
	// A response_url lasts 30 minutes.
	url = slash()
	clock.Advance(31 * time.Minute)
	if got := post(); got != 404 {
		t.Errorf("late use: status %d, want 404", got)
	}
	calls = emu.CallsTo("response_url")
	if last := calls[len(calls)-1]; last.Error != "expired_url" {
		t.Errorf("last call = %+v", last)
	}
}
