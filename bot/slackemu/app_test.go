package slackemu_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/latchhq/latch/bot/slackemu"
)

// testApp is a minimal Socket Mode app built on the real slack-go client.
// Its handler decides what to do with each request and returns the ack
// payload (nil for a plain ack); returning skipAck leaves it unacked.
type testApp struct {
	api *slack.Client
	sm  *socketmode.Client

	mu       sync.Mutex
	requests []socketmode.Request
	events   []socketmode.EventType
	changed  chan struct{}
}

type handlerFunc func(app *testApp, evt socketmode.Event) any

// skipAck tells the test app not to ack a request.
var skipAck = new(int)

func newAPI(emu *slackemu.Server, opts ...slack.Option) *slack.Client {
	base := []slack.Option{
		slack.OptionAppLevelToken(emu.AppToken()),
		slack.OptionAPIURL(emu.APIURL()),
		slack.OptionLog(log.New(io.Discard, "", 0)),
	}
	return slack.New(emu.BotToken(), append(base, opts...)...)
}

// startApp connects a test app to emu and stops it at cleanup.
func startApp(t testing.TB, emu *slackemu.Server, h handlerFunc, opts ...socketmode.Option) *testApp {
	t.Helper()
	api := newAPI(emu)
	opts = append([]socketmode.Option{socketmode.OptionLog(log.New(io.Discard, "", 0))}, opts...)
	app := &testApp{api: api, sm: socketmode.New(api, opts...), changed: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = app.sm.RunContext(ctx) })
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-app.sm.Events:
				app.record(evt)
				if evt.Request == nil || evt.Request.EnvelopeID == "" {
					continue
				}
				var payload any
				if h != nil {
					payload = h(app, evt)
				}
				if payload == skipAck {
					continue
				}
				if payload == nil {
					_ = app.sm.Ack(*evt.Request)
				} else {
					_ = app.sm.Ack(*evt.Request, payload)
				}
			}
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := emu.WaitConnected(wctx, 1); err != nil {
		t.Fatalf("app did not connect: %v", err)
	}
	return app
}

func (a *testApp) record(evt socketmode.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, evt.Type)
	if evt.Request != nil && evt.Request.EnvelopeID != "" {
		a.requests = append(a.requests, *evt.Request)
	}
	close(a.changed)
	a.changed = make(chan struct{})
}

// Requests returns the envelopes the app received, in order.
func (a *testApp) Requests() []socketmode.Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]socketmode.Request(nil), a.requests...)
}

// waitRequests waits until the app has received at least n envelopes.
func (a *testApp) waitRequests(t *testing.T, n int) []socketmode.Request {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		a.mu.Lock()
		got, ch := len(a.requests), a.changed
		a.mu.Unlock()
		if got >= n {
			return a.Requests()
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("app got %d envelopes, want %d", got, n)
		}
	}
}

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func httpPostJSON(url, body string) (int, error) {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}
