package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/slack-go/slack"
)

// fakeSlack answers Web API calls the way Slack does: errors mostly with
// HTTP 200 and ok:false.
func fakeSlack(t *testing.T) *httptest.Server {
	t.Helper()
	answers := map[string]struct {
		status int
		body   string
	}{
		"chat.postMessage":   {200, `{"ok":true,"channel":"D1","ts":"1700000000.000100"}`},
		"chat.update":        {200, `{"ok":false,"error":"ratelimited"}`},
		"users.info":         {429, `{"ok":false,"error":"ratelimited"}`},
		"conversations.open": {200, `{"ok":false,"error":"channel_not_found","warning":"x"}`},
		"views.open":         {502, `bad gateway`},
		// Big answers: the caller still reads all of them.
		"conversations.history": {200, `{"ok":false,"error":"not_in_channel","messages":[` + strings.Repeat(`{"text":"hello"},`, 200) + `{}]}`},
		// Slack puts ok first; an answer that does not, past the part read
		// ahead, counts as ok.
		"conversations.replies": {200, `{"messages":[` + strings.Repeat(`{"text":"hello"},`, 200) + `{}],"ok":false,"error":"thread_not_found"}`},
		"users.list":            {200, `{"ok":true,"members":[` + strings.Repeat(`{"id":"U1"},`, 400) + `{}]}`},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := strings.TrimPrefix(r.URL.Path, "/api/")
		a, ok := answers[method]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if a.status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestRoundTripperCountsSlackCalls(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	api := fakeSlack(t)
	metricsSrv := httptest.NewServer(Handler(reg))
	defer metricsSrv.Close()
	client := &http.Client{Transport: m.RoundTripper(nil)}

	calls := []struct {
		method     string
		wantStatus int
	}{
		{"chat.postMessage", 200},
		{"chat.postMessage", 200},
		{"chat.update", 200},
		{"users.info", 429},
		{"conversations.open", 200},
		{"views.open", 502},
		{"conversations.history", 200},
		{"conversations.replies", 200},
		{"users.list", 200},
	}
	for _, c := range calls {
		// What the server sends, read without the round tripper.
		want := get(t, http.DefaultClient, api.URL+"/api/"+c.method)
		// The same call through it: the body arrives whole.
		req, err := http.NewRequest(http.MethodPost, api.URL+"/api/"+c.method, strings.NewReader("token=xoxb-secret-token"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer xoxb-secret-token")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: read body: %v", c.method, err)
		}
		if resp.StatusCode != c.wantStatus || string(got) != want {
			t.Errorf("%s: got %d %q, want %d %q", c.method, resp.StatusCode, got, c.wantStatus, want)
		}
	}
	// A server that does not answer.
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	if _, err := client.Get(down.URL + "/api/auth.test"); err == nil {
		t.Fatal("call to a closed server: no error")
	}

	s := scrapeMetrics(t, metricsSrv.URL)
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"latch_slack_api_calls_total", []string{"method", "chat.postMessage", "result", "ok"}, 2},
		{"latch_slack_api_calls_total", []string{"method", "chat.update", "result", "error"}, 1},
		{"latch_slack_api_calls_total", []string{"method", "users.info", "result", "rate_limited"}, 1},
		{"latch_slack_api_calls_total", []string{"method", "conversations.open", "result", "error"}, 1},
		{"latch_slack_api_calls_total", []string{"method", "views.open", "result", "http_error"}, 1},
		{"latch_slack_api_calls_total", []string{"method", "conversations.history", "result", "error"}, 1},
		{"latch_slack_api_calls_total", []string{"method", "users.list", "result", "ok"}, 1},
		{"latch_slack_api_calls_total", []string{"method", "conversations.replies", "result", "ok"}, 1},
		{"latch_slack_api_calls_total", []string{"method", "auth.test", "result", "transport_error"}, 1},
		{"latch_slack_api_errors_total", []string{"method", "chat.update", "error", "ratelimited"}, 1},
		{"latch_slack_api_errors_total", []string{"method", "users.info", "error", "http_429"}, 1},
		{"latch_slack_api_errors_total", []string{"method", "conversations.open", "error", "channel_not_found"}, 1},
		{"latch_slack_api_errors_total", []string{"method", "views.open", "error", "http_502"}, 1},
		{"latch_slack_api_errors_total", []string{"method", "conversations.history", "error", "not_in_channel"}, 1},
		{"latch_slack_api_errors_total", []string{"method", "auth.test", "error", "transport"}, 1},
		{"latch_slack_api_errors_total", []string{"method", "chat.postMessage"}, 0},
		{"latch_slack_api_rate_limited_total", []string{"method", "users.info"}, 1},
		{"latch_slack_api_rate_limited_total", []string{"method", "chat.update"}, 1},
		{"latch_slack_api_rate_limited_total", []string{"method", "chat.postMessage"}, 0},
	}
	for _, tt := range tests {
		if got := s.value(tt.name, tt.labels...); got != tt.want {
			t.Errorf("%s%v: got %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if text := get(t, http.DefaultClient, metricsSrv.URL+"/metrics"); strings.Contains(text, "xoxb") {
		t.Error("the token appears in /metrics")
	}
}

// The Slack client still sees Slack's answers, errors included, through
// the round tripper.
func TestRoundTripperUnderTheSlackClient(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	api := fakeSlack(t)
	client := slack.New("xoxb-test", slack.OptionAPIURL(api.URL+"/api/"),
		slack.OptionHTTPClient(&http.Client{Transport: m.RoundTripper(http.DefaultTransport)}))
	ctx := context.Background()

	if _, ts, err := client.PostMessageContext(ctx, "D1", slack.MsgOptionText("hi", false)); err != nil || ts != "1700000000.000100" {
		t.Errorf("post: got %q, %v; want the message's ts", ts, err)
	}
	if _, _, _, err := client.UpdateMessageContext(ctx, "D1", "1", slack.MsgOptionText("hi", false)); err == nil || err.Error() != "ratelimited" {
		t.Errorf("update: got %v, want Slack's ratelimited error", err)
	}
	var rl *slack.RateLimitedError
	if _, err := client.GetUserInfoContext(ctx, "U1"); !errors.As(err, &rl) {
		t.Errorf("users.info: got %v, want a *slack.RateLimitedError", err)
	}

	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()
	s := scrapeMetrics(t, srv.URL)
	if got := s.value("latch_slack_api_calls_total", "method", "chat.postMessage", "result", "ok"); got != 1 {
		t.Errorf("chat.postMessage ok: got %v, want 1", got)
	}
	if got := s.value("latch_slack_api_rate_limited_total", "method", "users.info"); got != 1 {
		t.Errorf("users.info rate limited: got %v, want 1", got)
	}
}

func TestOKAndError(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		ok        bool
		code      string
		wantFound bool
	}{
		{"ok", `{"ok":true}`, true, "", true},
		{"error", `{"ok":false,"error":"invalid_auth"}`, false, "invalid_auth", true},
		{"error first", `{"error":"invalid_auth","ok":false}`, false, "invalid_auth", true},
		{"ok later", `{"channel":{"id":"C1","members":[1,2]},"ok":true}`, true, "", true},
		{"cut short", `{"ok":false,"err`, false, "", true},
		{"no ok", `{"channel":"C1"}`, false, "", false},
		{"not json", `<html>`, false, "", false},
		{"an array", `[1,2]`, false, "", false},
		{"empty", ``, false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, code, found := okAndError([]byte(tt.body))
			if ok != tt.ok || code != tt.code || found != tt.wantFound {
				t.Errorf("got %v %q %v, want %v %q %v", ok, code, found, tt.ok, tt.code, tt.wantFound)
			}
		})
	}
}

func TestSlackMethod(t *testing.T) {
	tests := []struct{ path, want string }{
		{"/api/chat.postMessage", "chat.postMessage"},
		{"/api/apps.connections.open", "apps.connections.open"},
		{"/api/chat.postMessage/", "chat.postMessage"},
		{"/upload/v1/CwABAAAAXwoAAZnX", "other"},
		{"/api/", "other"},
		{"", "other"},
		{"/api/.hidden", "other"},
		{"/api/chat.post%20Message", "other"},
		{"/api/" + strings.Repeat("a.", 40), "other"},
	}
	for _, tt := range tests {
		if got := slackMethod(tt.path); got != tt.want {
			t.Errorf("slackMethod(%q): got %q, want %q", tt.path, got, tt.want)
		}
	}
}

// get reads a URL's body.
func get(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
