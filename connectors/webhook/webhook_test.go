package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchhq/latch/connectors/connectortest"
	"github.com/latchhq/latch/connectors/webhook"
	"github.com/latchhq/latch/workflow"
)

var (
	jane   = workflow.User{SlackID: "U0000JANE", Email: "jane@example.com"}
	omar   = workflow.User{SlackID: "U0000OMAR", Email: "omar@example.com"}
	secret = []byte("0123456789abcdef0123456789abcdef")
)

// payload is a request's body as the receiver reads it.
type payload struct {
	Action    string `json:"action"`
	GrantID   string `json:"grant_id"`
	RequestID string `json:"request_id"`
	User      struct {
		SlackID string `json:"slack_id"`
		Email   string `json:"email"`
	} `json:"user"`
	Entitlement string            `json:"entitlement"`
	ExpiresAt   *string           `json:"expires_at"`
	Params      map[string]string `json:"params"`
}

// answer is a response the receiver gave, replayed for a key seen before.
type answer struct {
	status int
	body   []byte
}

// receiver is a target behind a webhook: it verifies every request, keeps
// who has which entitlement, and dedupes by idempotency key.
type receiver struct {
	srv    *httptest.Server
	secret []byte

	mu           sync.Mutex
	people       map[string]bool
	entitlements map[string]bool
	grants       map[[2]string]bool // entitlement, Slack id
	answers      map[string]answer
	last         *payload
	lastHeader   http.Header
}

func newReceiver(t testing.TB) *receiver {
	t.Helper()
	r := &receiver{
		secret:       secret,
		people:       map[string]bool{jane.SlackID: true, omar.SlackID: true},
		entitlements: map[string]bool{"readers": true, "writers": true},
		grants:       make(map[[2]string]bool),
		answers:      make(map[string]answer),
	}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	err = webhook.Verify(r.secret, req.Header.Get(webhook.HeaderTimestamp), req.Header.Get(webhook.HeaderSignature), body, time.Now(), webhook.DefaultMaxAge)
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var p payload
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, "malformed body", http.StatusBadRequest)
		return
	}
	key := req.Header.Get(webhook.HeaderIdempotencyKey)
	if key != p.GrantID+":"+p.Action {
		http.Error(w, "idempotency key does not match the body", http.StatusBadRequest)
		return
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	r.last, r.lastHeader = &p, req.Header.Clone()
	a, seen := r.answers[key]
	if !seen {
		a = r.apply(p)
		r.answers[key] = a
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	w.Write(a.body)
}

// apply carries out p; r.mu is held.
func (r *receiver) apply(p payload) answer {
	fail := func(status int, msg string) answer {
		b, _ := json.Marshal(map[string]string{"error": msg})
		return answer{status, b}
	}
	switch {
	case !r.entitlements[p.Entitlement]:
		return fail(http.StatusBadRequest, "unknown entitlement "+p.Entitlement)
	case !r.people[p.User.SlackID]:
		return fail(http.StatusNotFound, "unknown person "+p.User.SlackID)
	}
	k := [2]string{p.Entitlement, p.User.SlackID}
	switch p.Action {
	case "grant":
		r.grants[k] = true
		b, _ := json.Marshal(map[string]any{
			"message": "you are in " + p.Entitlement,
			"facts":   map[string]string{"member": p.User.Email},
		})
		return answer{http.StatusOK, b}
	case "revoke":
		delete(r.grants, k)
		return answer{http.StatusNoContent, nil}
	}
	return fail(http.StatusBadRequest, "unknown action "+p.Action)
}

func (r *receiver) has(entitlement, slackID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.grants[[2]string{entitlement, slackID}]
}

// connector returns a connector for the server srv, with c's other fields.
func connector(t testing.TB, srv *httptest.Server, c webhook.Config) *webhook.Connector {
	t.Helper()
	c.Name = "test"
	c.URL = srv.URL
	c.Client = srv.Client()
	if c.Secret == nil {
		c.Secret = secret
	}
	conn, err := webhook.New(c)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return conn
}

func access(u workflow.User, entitlement string) workflow.Access {
	return workflow.Access{
		GrantID:     "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
		RequestID:   "0190a1b2-0000-7000-8000-000000000001",
		User:        u,
		Entitlement: entitlement,
		ExpiresAt:   time.Date(2030, 1, 2, 15, 4, 5, 0, time.FixedZone("CET", 3600)),
		Params:      map[string]string{"reason": "on call"},
	}
}

func asError(t *testing.T, err error) *webhook.Error {
	t.Helper()
	var e *webhook.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *webhook.Error", err, err)
	}
	return e
}

func TestConformance(t *testing.T) {
	connectortest.Run(t, connectortest.Harness{
		Start: func(t *testing.T) connectortest.Target {
			r := newReceiver(t)
			return connectortest.Target{
				Connector: connector(t, r.srv, webhook.Config{}),
				Has: func(_ context.Context, a workflow.Access) (bool, error) {
					return r.has(a.Entitlement, a.User.SlackID), nil
				},
				Down: func(*testing.T) { r.srv.Close() },
			}
		},
		Entitlement:    "readers",
		People:         []workflow.User{jane, omar},
		BadEntitlement: "admins",
		Unknown:        workflow.User{SlackID: "U0000NOBODY", Email: "nobody@example.com"},
		IsConnectorError: func(err error) bool {
			var e *webhook.Error
			return errors.As(err, &e)
		},
	})
}

func TestGrantRequestAndResponse(t *testing.T) {
	r := newReceiver(t)
	conn := connector(t, r.srv, webhook.Config{})
	a := access(jane, "writers")
	got, err := conn.Grant(t.Context(), a)
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	if got.Message != "you are in writers" {
		t.Errorf("message = %q, want %q", got.Message, "you are in writers")
	}
	if len(got.Facts) != 1 || got.Facts["member"] != jane.Email {
		t.Errorf("facts = %v, want member=%s", got.Facts, jane.Email)
	}

	r.mu.Lock()
	p, h := r.last, r.lastHeader
	r.mu.Unlock()
	checks := []struct{ name, got, want string }{
		{"action", p.Action, "grant"},
		{"grant_id", p.GrantID, a.GrantID},
		{"request_id", p.RequestID, a.RequestID},
		{"user.slack_id", p.User.SlackID, jane.SlackID},
		{"user.email", p.User.Email, jane.Email},
		{"entitlement", p.Entitlement, "writers"},
		{"expires_at", *p.ExpiresAt, "2030-01-02T14:04:05Z"},
		{"params.reason", p.Params["reason"], "on call"},
		{"Idempotency-Key", h.Get("Idempotency-Key"), a.GrantID + ":grant"},
		{"Content-Type", h.Get("Content-Type"), "application/json"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}

	if err := conn.Revoke(t.Context(), a); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	r.mu.Lock()
	key := r.lastHeader.Get("Idempotency-Key")
	r.mu.Unlock()
	if want := a.GrantID + ":revoke"; key != want {
		t.Errorf("revoke Idempotency-Key = %q, want %q", key, want)
	}
}

func TestNoExpiryIsNull(t *testing.T) {
	r := newReceiver(t)
	a := access(jane, "readers")
	a.ExpiresAt = time.Time{}
	a.Params = nil
	if _, err := connector(t, r.srv, webhook.Config{}).Grant(t.Context(), a); err != nil {
		t.Fatalf("Grant: %v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last.ExpiresAt != nil {
		t.Errorf("expires_at = %q, want null", *r.last.ExpiresAt)
	}
	if r.last.Params == nil {
		t.Error("params is null, want {}")
	}
}

func TestSignatureRefused(t *testing.T) {
	tests := []struct {
		name   string
		secret []byte
		now    func() time.Time
	}{
		{"wrong secret", []byte("another secret, not the receiver's"), time.Now},
		{"old timestamp", secret, func() time.Time { return time.Now().Add(-6 * time.Minute) }},
		{"future timestamp", secret, func() time.Time { return time.Now().Add(6 * time.Minute) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReceiver(t)
			conn := connector(t, r.srv, webhook.Config{Secret: tt.secret})
			webhook.SetNow(conn, tt.now)
			_, err := conn.Grant(t.Context(), access(jane, "readers"))
			if !errors.Is(err, workflow.ErrPermanent) {
				t.Fatalf("Grant: %v, want a permanent error", err)
			}
			if e := asError(t, err); e.Status != http.StatusUnauthorized {
				t.Errorf("status = %d, want %d", e.Status, http.StatusUnauthorized)
			}
			if r.has("readers", jane.SlackID) {
				t.Error("the receiver granted access on a refused request")
			}
			if strings.Contains(err.Error(), string(tt.secret)) {
				t.Error("the error holds the secret")
			}
		})
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"action":"grant"}`)
	good := webhook.Sign(secret, ts, body)
	tests := []struct {
		name      string
		secret    []byte
		timestamp string
		signature string
		body      []byte
		want      error
	}{
		{"valid", secret, ts, good, body, nil},
		{"valid among others", secret, ts, "v1=00ff, " + good, body, nil},
		{"wrong secret", []byte("other"), ts, good, body, webhook.ErrBadSignature},
		{"no secret", nil, ts, good, body, webhook.ErrBadSignature},
		{"tampered body", secret, ts, good, []byte(`{"action":"revoke"}`), webhook.ErrBadSignature},
		{"other timestamp signed", secret, ts, webhook.Sign(secret, strconv.FormatInt(now.Unix()-1, 10), body), body, webhook.ErrBadSignature},
		{"no version", secret, ts, strings.TrimPrefix(good, "v1="), body, webhook.ErrBadSignature},
		{"not hex", secret, ts, "v1=zz", body, webhook.ErrBadSignature},
		{"no signature", secret, ts, "", body, webhook.ErrBadSignature},
		{"old timestamp", secret, strconv.FormatInt(now.Add(-5*time.Minute-time.Second).Unix(), 10), "", body, webhook.ErrStale},
		{"future timestamp", secret, strconv.FormatInt(now.Add(5*time.Minute+time.Second).Unix(), 10), "", body, webhook.ErrStale},
		{"malformed timestamp", secret, "yesterday", good, body, webhook.ErrStale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig := tt.signature
			if tt.want == webhook.ErrStale && sig == "" {
				sig = webhook.Sign(tt.secret, tt.timestamp, tt.body) // well signed, yet stale
			}
			err := webhook.Verify(tt.secret, tt.timestamp, sig, tt.body, now, webhook.DefaultMaxAge)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	tests := []struct {
		status    int
		permanent bool
	}{
		{http.StatusBadRequest, true},
		{http.StatusUnauthorized, true},
		{http.StatusNotFound, true},
		{http.StatusConflict, true},
		{http.StatusTemporaryRedirect, true},
		{http.StatusRequestTimeout, false},
		{http.StatusTooManyRequests, false},
		{http.StatusInternalServerError, false},
		{http.StatusBadGateway, false},
		{http.StatusServiceUnavailable, false},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			var calls sync.Map
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Store(r.URL.Path, true)
				w.Header().Set("Location", "/elsewhere")
				w.WriteHeader(tt.status)
				io.WriteString(w, "  the receiver explains\n")
			}))
			t.Cleanup(srv.Close)
			conn := connector(t, srv, webhook.Config{})
			for _, call := range []struct {
				name string
				do   func() error
			}{
				{"grant", func() error { _, err := conn.Grant(t.Context(), access(jane, "readers")); return err }},
				{"revoke", func() error { return conn.Revoke(t.Context(), access(jane, "readers")) }},
			} {
				err := call.do()
				if err == nil {
					t.Fatalf("%s succeeded, want an error", call.name)
				}
				if got := errors.Is(err, workflow.ErrPermanent); got != tt.permanent {
					t.Errorf("%s: %v: permanent = %t, want %t", call.name, err, got, tt.permanent)
				}
				e := asError(t, err)
				if e.Status != tt.status || e.Body != "the receiver explains" || e.Action != call.name {
					t.Errorf("%s: error = %+v, want status %d, body %q", call.name, e, tt.status, "the receiver explains")
				}
			}
			if _, followed := calls.Load("/elsewhere"); followed {
				t.Error("a redirect was followed")
			}
		})
	}
}

// blockingServer returns a server whose handler signals arrived and then
// blocks until the request's context ends.
func blockingServer(t *testing.T) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: never let Close wait on a handler
	return srv, arrived
}

func TestTimeoutIsTransient(t *testing.T) {
	srv, _ := blockingServer(t)
	conn := connector(t, srv, webhook.Config{Timeout: 100 * time.Millisecond})
	_, err := conn.Grant(t.Context(), access(jane, "readers"))
	if err == nil || errors.Is(err, workflow.ErrPermanent) {
		t.Fatalf("Grant: %v, want a transient error", err)
	}
	e := asError(t, err)
	if !e.TimedOut || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v: TimedOut = %t, want true and context.DeadlineExceeded", err, e.TimedOut)
	}
}

func TestCancelIsTransient(t *testing.T) {
	srv, arrived := blockingServer(t)
	conn := connector(t, srv, webhook.Config{})
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-arrived
		cancel()
	}()
	err := conn.Revoke(ctx, access(jane, "readers"))
	if err == nil || errors.Is(err, workflow.ErrPermanent) {
		t.Fatalf("Revoke: %v, want a transient error", err)
	}
	if e := asError(t, err); e.TimedOut || !errors.Is(err, context.Canceled) {
		t.Errorf("error %v: TimedOut = %t, want false and context.Canceled", err, e.TimedOut)
	}
}

func TestResponseBounded(t *testing.T) {
	huge := strings.Repeat("x", webhook.MaxResponse+1)
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		wantErr     bool
	}{
		{"large JSON grant", http.StatusOK, "application/json", `{"message":"` + huge + `"}`, true},
		{"large failure", http.StatusInternalServerError, "text/plain", huge + "the end", true},
		{"large non-JSON success", http.StatusOK, "text/plain", huge, false},
		{"malformed JSON", http.StatusOK, "application/json", `{"message":`, true},
		{"no body", http.StatusOK, "application/json", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			t.Cleanup(srv.Close)
			got, err := connector(t, srv, webhook.Config{}).Grant(t.Context(), access(jane, "readers"))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Grant: %v, want error %t", err, tt.wantErr)
			}
			if err == nil {
				if got.Message != "" || got.Facts != nil {
					t.Errorf("Granted = %+v, want none", got)
				}
				return
			}
			if e := asError(t, err); len(e.Body) > webhook.MaxBodyTail {
				t.Errorf("error body is %d bytes, want at most %d", len(e.Body), webhook.MaxBodyTail)
			}
			if len(err.Error()) > webhook.MaxBodyTail+200 {
				t.Errorf("error is %d bytes long", len(err.Error()))
			}
		})
	}
}

func TestDownKeepsURLOut(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	srv.Close()
	conn, err := webhook.New(webhook.Config{Name: "test", URL: srv.URL + "/hook?token=s3cr3t-token", Secret: secret, Client: srv.Client()})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	_, err = conn.Grant(t.Context(), access(jane, "readers"))
	if err == nil || errors.Is(err, workflow.ErrPermanent) {
		t.Fatalf("Grant: %v, want a transient error", err)
	}
	if asError(t, err).Status != 0 {
		t.Errorf("status = %d, want 0", asError(t, err).Status)
	}
	if strings.Contains(err.Error(), "s3cr3t-token") || strings.Contains(err.Error(), string(secret)) {
		t.Errorf("error %q holds the URL's token or the secret", err)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		c    webhook.Config
		ok   bool
	}{
		{"https", webhook.Config{Name: "n", URL: "https://hooks.example.com/latch", Secret: secret}, true},
		{"http on 127.0.0.1", webhook.Config{Name: "n", URL: "http://127.0.0.1:8080/", Secret: secret}, true},
		{"http on ::1", webhook.Config{Name: "n", URL: "http://[::1]:8080/", Secret: secret}, true},
		{"http on localhost", webhook.Config{Name: "n", URL: "http://localhost/", Secret: secret}, true},
		{"http elsewhere", webhook.Config{Name: "n", URL: "http://hooks.example.com/", Secret: secret}, false},
		{"other scheme", webhook.Config{Name: "n", URL: "ftp://hooks.example.com/", Secret: secret}, false},
		{"relative", webhook.Config{Name: "n", URL: "/latch", Secret: secret}, false},
		{"credentials", webhook.Config{Name: "n", URL: "https://u:s3cr3t-pass@hooks.example.com/", Secret: secret}, false},
		{"no url", webhook.Config{Name: "n", Secret: secret}, false},
		{"no secret", webhook.Config{Name: "n", URL: "https://hooks.example.com/"}, false},
		{"no name", webhook.Config{URL: "https://hooks.example.com/", Secret: secret}, false},
		{"negative timeout", webhook.Config{Name: "n", URL: "https://hooks.example.com/", Secret: secret, Timeout: -time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := webhook.New(tt.c)
			if (err == nil) != tt.ok {
				t.Fatalf("New: %v, want ok %t", err, tt.ok)
			}
			if err == nil {
				return
			}
			if !errors.Is(err, webhook.ErrInvalidConfig) {
				t.Errorf("error %v does not wrap ErrInvalidConfig", err)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %q holds a credential", err)
			}
		})
	}
}
