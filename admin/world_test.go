package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/latchhq/latch/admin"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// testToken is the admin token of the test servers.
const testToken = "0123456789abcdef0123456789abcdef-test-token"

// target is a fake connector that records every call and can be made to
// fail revokes of one entitlement.
type target struct {
	mu        sync.Mutex
	calls     []string // "grant|revoke entitlement grant-id"
	access    map[string]bool
	failFirst map[string]int // entitlement → revokes that fail before one works
}

func newTarget() *target { return &target{access: map[string]bool{}, failFirst: map[string]int{}} }

func (f *target) Grant(_ context.Context, a workflow.Access) (workflow.Granted, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "grant "+a.Entitlement+" "+a.GrantID)
	f.access[a.GrantID] = true
	return workflow.Granted{Message: "password hunter2"}, nil
}

func (f *target) Revoke(_ context.Context, a workflow.Access) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "revoke "+a.Entitlement+" "+a.GrantID)
	if f.failFirst[a.Entitlement] > 0 {
		f.failFirst[a.Entitlement]--
		return errors.New("target unreachable")
	}
	delete(f.access, a.GrantID)
	return nil
}

// revoked returns the grant ids the target was asked to revoke.
func (f *target) revoked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if id, ok := strings.CutPrefix(c, "revoke "); ok {
			out = append(out, id[strings.Index(id, " ")+1:])
		}
	}
	return out
}

func (f *target) has(grantID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.access[grantID]
}

// world is a running latch: a real store, an engine with a fake clock and
// a fake target, and the admin API over real HTTP on loopback.
type world struct {
	t      *testing.T
	store  *store.Store
	eng    *workflow.Engine
	clock  *workflow.FakeClock
	target *target
	srv    *httptest.Server
	log    *syncBuffer
}

// syncBuffer is a buffer the server's goroutines may log into.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var start = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// newWorld starts a latch whose engine counts admins as given (with
// admin.Actor, the API may revoke).
func newWorld(t *testing.T, admins ...string) *world {
	t.Helper()
	dir, err := workflow.NewStaticDirectory([]workflow.User{
		{SlackID: "UALICE", Email: "alice@example.com"},
		{SlackID: "UBOB", Email: "bob@example.com"},
		{SlackID: "USAM", Email: "sam@example.com"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	always, err := workflow.CompileCondition("true")
	if err != nil {
		t.Fatal(err)
	}
	sam, err := workflow.ParseApprover("user:USAM")
	if err != nil {
		t.Fatal(err)
	}
	rules := workflow.DurationRules{Default: time.Hour, Min: 15 * time.Minute, Max: 8 * time.Hour}
	stages := workflow.Approval{Stages: []workflow.Stage{{Name: "sam", Required: 1, Approvers: []workflow.Approver{sam}}}}
	policies := map[string]*workflow.Policy{
		"auto": {Name: "auto", Duration: rules, AutoApprove: always, Approval: stages},
		"ask":  {Name: "ask", Duration: rules, Approval: stages},
	}
	cat, err := workflow.NewCatalogue([]workflow.Item{
		{ID: "db", Name: "Database", Kind: workflow.KindEntitlement, Policy: "auto", Targets: []workflow.Target{{Connector: "pg", Entitlement: "readonly"}}},
		{ID: "bundle", Name: "Bundle", Kind: workflow.KindBundle, Policy: "auto", Targets: []workflow.Target{
			{Connector: "pg", Entitlement: "writer"}, {Connector: "pg", Entitlement: "stuck"}}},
		{ID: "ask", Name: "Asked", Kind: workflow.KindEntitlement, Policy: "ask", Targets: []workflow.Target{{Connector: "pg", Entitlement: "admin"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, clock: workflow.NewFakeClock(start), target: newTarget(), log: &syncBuffer{}}
	w.store, err = store.Open(filepath.Join(t.TempDir(), "latch.db"), store.Options{Now: w.clock.Now, Projections: []store.Projection{store.Requests{}}})
	if err != nil {
		t.Fatal(err)
	}
	w.eng, err = workflow.NewEngine(workflow.Config{Store: w.store, Catalogue: cat, Policies: policies, Directory: dir,
		Connectors: map[string]workflow.Provisioner{"pg": w.target}, Notifier: workflow.NopNotifier{}, Clock: w.clock, Admins: admins})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.eng.Start(); err != nil {
		t.Fatal(err)
	}
	w.srv = httptest.NewServer(w.handler(w.eng, []byte(testToken)))
	t.Cleanup(func() {
		w.srv.Close()
		w.eng.Close()
		w.store.Close()
	})
	return w
}

// handler returns the API on the world's store with an engine and token,
// mounted beside another endpoint as the server mounts it.
func (w *world) handler(eng admin.Engine, token []byte) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	admin.New(admin.Config{Store: w.store, Engine: eng, Token: token, Clock: w.clock,
		Log: zerolog.New(w.log)}).Routes(mux)
	return mux
}

// submit submits a request and lets the engine finish with it.
func (w *world) submit(item, who string) workflow.Request {
	w.t.Helper()
	r, err := w.eng.Submit(context.Background(), workflow.Submission{Item: item, Requester: who, Justification: "maintenance"})
	if err != nil {
		w.t.Fatal(err)
	}
	w.eng.Wait()
	return w.request(r.ID)
}

func (w *world) request(id string) workflow.Request {
	w.t.Helper()
	r, ok, err := w.store.Request(id)
	if err != nil || !ok {
		w.t.Fatalf("request %s: %v %v", id, ok, err)
	}
	return r
}

// answer is one answer of the API.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// call calls the API with the test token.
func (w *world) call(method, path string, body any) answer {
	w.t.Helper()
	return call(w.t, w.srv.URL, method, path, "Bearer "+testToken, body)
}

// call calls a server with an Authorization header (none if empty).
func call(t *testing.T, base, method, path, auth string, body any) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, ok := body.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(body); err != nil {
				t.Fatal(err)
			}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{res.StatusCode, res.Header, b}
}

// decode decodes an answer's JSON body.
func decode[T any](t *testing.T, a answer) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Fatalf("answer %d %q: %v", a.status, a.body, err)
	}
	return v
}

// wantError checks that an answer is an error with a status whose message
// mentions what.
func wantError(t *testing.T, a answer, status int, what string) {
	t.Helper()
	e := decode[admin.ErrorBody](t, a)
	if a.status != status || !strings.Contains(e.Error, what) {
		t.Errorf("got %d %q, want %d with an error mentioning %q", a.status, a.body, status, what)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error answer has Content-Type %q, want application/json", ct)
	}
}
