package admin_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch/admin"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

func newClient(t *testing.T, base, token string) *admin.Client {
	t.Helper()
	c, err := admin.NewClient(base, []byte(token), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClient(t *testing.T) {
	w := newWorld(t, admin.Actor)
	r := w.submit("db", "UALICE")
	w.submit("db", "UBOB")
	ctx := context.Background()
	c := newClient(t, w.srv.URL+"/", testToken)

	rows, err := c.Grants(ctx, "UALICE", true)
	if err != nil || len(rows) != 1 || rows[0].Grant != r.Grants[0].ID {
		t.Fatalf("Grants(UALICE, active) = %+v, %v", rows, err)
	}
	detail, err := c.Request(ctx, r.Grants[0].ID)
	if err != nil || detail.Request.ID != r.ID || len(detail.Events) != 5 {
		t.Fatalf("Request = %+v, %v", detail, err)
	}
	res, err := c.Revoke(ctx, r.Grants[0].ID, "laptop stolen", "", 30*time.Second)
	if err != nil || !res.Settled || res.Request.State != workflow.RequestEnded {
		t.Fatalf("Revoke = %+v, %v", res, err)
	}
	_, err = c.Revoke(ctx, r.Grants[0].ID, "again", "", 0)
	if !errors.Is(err, admin.ErrConflict) || !strings.Contains(err.Error(), admin.ErrNotRevocable.Error()) {
		t.Errorf("second Revoke = %v, want a conflict saying %q", err, admin.ErrNotRevocable)
	}
	if _, err := c.Request(ctx, "nope"); !errors.Is(err, admin.ErrNotFound) {
		t.Errorf("Request(nope) = %v, want ErrNotFound", err)
	}

	var buf bytes.Buffer
	if err := c.Export(ctx, &buf, store.Filter{Kinds: []string{workflow.KindEnding}}, store.FormatJSONL); err != nil {
		t.Fatal(err)
	}
	if got := seqs(t, buf.Bytes()); len(got) != 1 {
		t.Errorf("export of the endings = %s", buf.Bytes())
	}
	v, err := c.Verify(ctx)
	if seq, _ := w.store.Head(); err != nil || !v.OK || v.Events != seq {
		t.Errorf("Verify = %+v, %v; want ok with %d events", v, err, seq)
	}

	bad := newClient(t, w.srv.URL, "wrong")
	_, err = bad.Grants(ctx, "", false)
	if !errors.Is(err, admin.ErrUnauthorized) || strings.Contains(err.Error(), "wrong") {
		t.Errorf("Grants with a wrong token = %v, want ErrUnauthorized without the token", err)
	}
	if _, err := bad.Verify(ctx); !errors.Is(err, admin.ErrUnauthorized) {
		t.Errorf("Verify with a wrong token = %v, want ErrUnauthorized", err)
	}
	if err := bad.Export(ctx, &buf, store.Filter{}, ""); !errors.Is(err, admin.ErrUnauthorized) {
		t.Errorf("Export with a wrong token = %v, want ErrUnauthorized", err)
	}
}

func TestNewClientErrors(t *testing.T) {
	tests := []struct {
		name, base, token string
	}{
		{"no scheme", "127.0.0.1:8089", testToken},
		{"another scheme", "ftp://127.0.0.1:8089", testToken},
		{"no host", "http://", testToken},
		{"a user", "http://me:pw@127.0.0.1:8089", testToken},
		{"no token", "http://127.0.0.1:8089", ""},
	}
	for _, tt := range tests {
		if _, err := admin.NewClient(tt.base, []byte(tt.token), nil); err == nil {
			t.Errorf("%s: NewClient(%q) accepted it", tt.name, tt.base)
		} else if strings.Contains(err.Error(), "pw") {
			t.Errorf("%s: the error repeats the password: %v", tt.name, err)
		}
	}
}

// TestClientNotLatch talks to a server that is not latch.
func TestClientNotLatch(t *testing.T) {
	srv := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	_, err := newClient(t, srv, testToken).Grants(context.Background(), "", false)
	var apiErr *admin.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadGateway || !strings.Contains(err.Error(), "bad gateway") {
		t.Errorf("Grants from a gateway = %v, want an APIError with 502", err)
	}
}

// TestServe serves the API on loopback until its context ends.
func TestServe(t *testing.T) {
	w := newWorld(t, admin.Actor)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- admin.Serve(ctx, ln, w.handler(w.eng, []byte(testToken))) }()

	base := "http://" + ln.Addr().String()
	if _, err := newClient(t, base, testToken).Grants(context.Background(), "", false); err != nil {
		t.Errorf("Grants through Serve: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve = %v after its context ended, want nil", err)
	}
	if _, err := newClient(t, base, testToken).Grants(context.Background(), "", false); err == nil {
		t.Errorf("the server still answers after Serve returned")
	}
}

func TestListenAndServeBadAddress(t *testing.T) {
	err := admin.ListenAndServe(context.Background(), "127.0.0.1:99999", http.NotFoundHandler())
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:99999") {
		t.Errorf("ListenAndServe on a bad port = %v, want an error naming it", err)
	}
}

// TestClientExportCutShort checks that an export the server breaks off
// midway is an error, not a short export.
func TestClientExportCutShort(t *testing.T) {
	srv := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Write([]byte(`{"seq":1}` + "\n"))
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	}))
	var buf bytes.Buffer
	err := newClient(t, srv, testToken).Export(context.Background(), &buf, store.Filter{}, "")
	if err == nil || !strings.Contains(err.Error(), "cut short") {
		t.Errorf("Export of a broken transfer = %v (got %q), want an error", err, buf.String())
	}
}
