package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/latchhq/latch/store"
)

// probe GETs a path and returns the status and body.
func probe(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestReadiness(t *testing.T) {
	s, err := store.Open(filepath.Join(t.TempDir(), "latch.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var connected, running atomic.Bool
	h := NewHealth()
	h.Add("store", StoreOpen(s))
	h.Add("slack", Up(connected.Load))
	h.Add("engine", Up(running.Load))
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()

	steps := []struct {
		name              string
		change            func()
		wantStatus        int
		wantFailing       []string
		wantNotMentioning []string
	}{
		{"nothing up yet", func() {}, 503, []string{"slack", "engine"}, []string{"store"}},
		{"slack connected", func() { connected.Store(true) }, 503, []string{"engine"}, []string{"slack", "store"}},
		{"engine running", func() { running.Store(true) }, 200, nil, []string{"slack", "engine", "store"}},
		{"slack drops", func() { connected.Store(false) }, 503, []string{"slack"}, []string{"engine", "store"}},
		{"slack back", func() { connected.Store(true) }, 200, nil, nil},
		{"store closed", func() { s.Close() }, 503, []string{"store"}, []string{"slack", "engine", "closed"}},
	}
	for _, st := range steps {
		st.change()
		status, body := probe(t, http.MethodGet, srv.URL+"/readyz")
		if status != st.wantStatus {
			t.Errorf("%s: got %d %q, want %d", st.name, status, body, st.wantStatus)
		}
		for _, name := range st.wantFailing {
			if !strings.Contains(body, "failing: "+name+"\n") {
				t.Errorf("%s: body %q does not name %s", st.name, body, name)
			}
		}
		for _, word := range st.wantNotMentioning {
			if strings.Contains(body, word) {
				t.Errorf("%s: body %q mentions %s", st.name, body, word)
			}
		}
		// Liveness does not depend on the readiness checks.
		if status, body := probe(t, http.MethodGet, srv.URL+"/healthz"); status != 200 || body != "ok\n" {
			t.Errorf("%s: /healthz got %d %q, want 200 ok", st.name, status, body)
		}
	}
	if got := h.Failing(context.Background()); len(got) != 1 || got[0] != "store" {
		t.Errorf("Failing: got %v, want [store]", got)
	}
}

func TestHealthRoutes(t *testing.T) {
	srv := httptest.NewServer(NewHealth().Handler())
	defer srv.Close()
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/healthz", 200},
		{http.MethodHead, "/healthz", 200},
		{http.MethodGet, "/readyz", 200}, // no checks: ready
		{http.MethodPost, "/readyz", 405},
		{http.MethodGet, "/metrics", 404},
	}
	for _, tt := range tests {
		if got, _ := probe(t, tt.method, srv.URL+tt.path); got != tt.want {
			t.Errorf("%s %s: got %d, want %d", tt.method, tt.path, got, tt.want)
		}
	}
}

func TestChecks(t *testing.T) {
	up := false
	check := Up(func() bool { return up })
	if err := check(context.Background()); !errors.Is(err, ErrNotReady) {
		t.Errorf("down: got %v, want ErrNotReady", err)
	}
	up = true
	if err := check(context.Background()); err != nil {
		t.Errorf("up: got %v, want nil", err)
	}
	s, err := store.Open(filepath.Join(t.TempDir(), "latch.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	open := StoreOpen(s)
	if err := open(context.Background()); err != nil {
		t.Errorf("open store: got %v, want nil", err)
	}
	s.Close()
	if err := open(context.Background()); !errors.Is(err, store.ErrClosed) {
		t.Errorf("closed store: got %v, want ErrClosed", err)
	}
}

func TestAddReplaces(t *testing.T) {
	h := NewHealth()
	h.Add("engine", Up(func() bool { return false }))
	h.Add("slack", Up(func() bool { return false }))
	h.Add("engine", Up(func() bool { return true }))
	if got := h.Failing(context.Background()); len(got) != 1 || got[0] != "slack" {
		t.Errorf("got %v, want [slack]", got)
	}
}

func TestLiveness(t *testing.T) {
	var writable, connected atomic.Bool
	writable.Store(true)
	h := NewHealth()
	h.AddLive("store", Up(writable.Load))
	h.Add("slack", Up(connected.Load))
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()

	// A check that a restart does not mend (Slack reconnects by itself)
	// does not make latch look dead.
	if status, body := probe(t, http.MethodGet, srv.URL+"/healthz"); status != 200 || body != "ok\n" {
		t.Errorf("slack down: /healthz got %d %q, want 200 ok", status, body)
	}
	writable.Store(false)
	status, body := probe(t, http.MethodGet, srv.URL+"/healthz")
	if status != 503 || body != "not live\nfailing: store\n" {
		t.Errorf("store failed: /healthz got %d %q, want 503 naming the store only", status, body)
	}
	if status, body := probe(t, http.MethodGet, srv.URL+"/readyz"); status != 503 || !strings.Contains(body, "failing: store\n") || !strings.Contains(body, "failing: slack\n") {
		t.Errorf("store failed: /readyz got %d %q, want 503 naming both", status, body)
	}
	// Registering it again keeps one entry.
	h.AddLive("store", Up(writable.Load))
	if got := h.Failing(context.Background()); len(got) != 2 {
		t.Errorf("Failing after AddLive twice: %v", got)
	}
}
