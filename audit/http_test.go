package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchhq/latch/connectors/webhook"
)

// receiver is an HTTP endpoint that checks what an HTTPSink sends, as a
// SIEM would, and refuses the first fail batches.
type receiver struct {
	t      *testing.T
	secret []byte

	mu      sync.Mutex
	fail    int
	got     []uint64
	batches chan uint64 // last seq of every accepted batch
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := webhook.Verify(rc.secret, r.Header.Get(webhook.HeaderTimestamp), r.Header.Get(webhook.HeaderSignature), body, time.Now(), webhook.DefaultMaxAge); err != nil {
		rc.t.Errorf("receiver: signature: %v", err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if got := r.Header.Get("Content-Type"); got != "application/x-ndjson" {
		rc.t.Errorf("receiver: Content-Type %q, want application/x-ndjson", got)
	}
	if r.Method != http.MethodPost {
		rc.t.Errorf("receiver: method %s, want POST", r.Method)
	}
	var seqs []uint64
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		var e struct {
			Seq uint64 `json:"seq"`
			ID  string `json:"id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.ID == "" {
			rc.t.Errorf("receiver: line %q: %v", sc.Text(), err)
		}
		seqs = append(seqs, e.Seq)
	}
	if len(seqs) == 0 {
		rc.t.Errorf("receiver: empty batch")
		return
	}
	if got, want := r.Header.Get("Latch-Batch"), fmt.Sprintf("%d-%d", seqs[0], seqs[len(seqs)-1]); got != want {
		rc.t.Errorf("receiver: Latch-Batch %q, want %q", got, want)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.fail > 0 {
		rc.fail--
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	rc.got = append(rc.got, seqs...)
	w.WriteHeader(http.StatusAccepted)
	rc.batches <- seqs[len(seqs)-1]
}

func TestHTTPSinkDeliversSignedBatches(t *testing.T) {
	secret := []byte("s3cret-for-the-siem")
	rc := &receiver{t: t, secret: secret, fail: 2, batches: make(chan uint64, 64)}
	srv := httptest.NewServer(rc)
	defer srv.Close()

	s, _ := openStore(t)
	sink, err := NewHTTPSink(HTTPConfig{Name: "siem", URL: srv.URL + "/ingest", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	stop := runStream(t, NewStream(s, sink, fastRetry))
	appendN(t, s, 10)
	waitSeq(t, rc.batches, 10)
	stop()

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if want := span(1, 10); !slices.Equal(rc.got, want) {
		t.Errorf("receiver got %v, want %v", rc.got, want)
	}
}

func TestHTTPSinkFailures(t *testing.T) {
	secret := []byte("s3cret-for-the-siem")
	s, _ := openStore(t)
	events := appendN(t, s, 2)
	release := make(chan struct{})
	defer close(release)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		wantErr error
		status  int
	}{
		{"server error", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "down", http.StatusBadGateway)
		}, nil, http.StatusBadGateway},
		{"client error", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "no", http.StatusForbidden)
		}, nil, http.StatusForbidden},
		{"redirect, not followed", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/elsewhere" {
				t.Errorf("the redirect was followed")
			}
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}, nil, http.StatusFound},
		{"timeout", func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body) // lets the server see the client go
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}, context.DeadlineExceeded, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			sink, err := NewHTTPSink(HTTPConfig{Name: "siem", URL: srv.URL, Secret: secret, Timeout: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			err = sink.Deliver(context.Background(), events)
			if err == nil {
				t.Fatal("Deliver succeeded")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Deliver = %v, want %v", err, tt.wantErr)
			}
			if tt.status != 0 {
				var se *StatusError
				if !errors.As(err, &se) || se.StatusCode != tt.status {
					t.Errorf("Deliver = %v, want a StatusError %d", err, tt.status)
				}
			}
			if strings.Contains(err.Error(), string(secret)) {
				t.Errorf("the error %q holds the secret", err)
			}
		})
	}
}

func TestHTTPSinkConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     HTTPConfig
		wantErr error
	}{
		{"no name", HTTPConfig{URL: "https://siem.example.com", Secret: []byte("x")}, ErrNoName},
		{"no secret", HTTPConfig{Name: "siem", URL: "https://siem.example.com"}, ErrNoSecret},
		{"unknown format", HTTPConfig{Name: "siem", URL: "https://siem.example.com", Secret: []byte("x"), Format: "cef"}, ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewHTTPSink(tt.cfg); !errors.Is(err, tt.wantErr) {
				t.Errorf("NewHTTPSink = %v, want %v", err, tt.wantErr)
			}
		})
	}
	if _, err := NewHTTPSink(HTTPConfig{Name: "siem", URL: "siem.example.com/in", Secret: []byte("x")}); err == nil {
		t.Errorf("NewHTTPSink accepted a URL without a scheme")
	}
}

// The signature is the webhook connector's: a receiver written for one
// checks the other.
func TestHTTPSinkSignsAsTheWebhookConnector(t *testing.T) {
	secret := []byte("k")
	now := time.Unix(1_700_000_000, 0)
	var got http.Header
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		body, _ = io.ReadAll(r.Body)
	}))
	defer srv.Close()
	s, _ := openStore(t)
	sink, err := NewHTTPSink(HTTPConfig{Name: "siem", URL: srv.URL, Secret: secret, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Deliver(context.Background(), appendN(t, s, 1)); err != nil {
		t.Fatal(err)
	}
	if ts := got.Get(webhook.HeaderTimestamp); ts != "1700000000" {
		t.Errorf("timestamp %q, want 1700000000", ts)
	}
	if sig, want := got.Get(webhook.HeaderSignature), webhook.Sign(secret, "1700000000", body); sig != want {
		t.Errorf("signature %q, want %q", sig, want)
	}
	if err := webhook.Verify(secret, got.Get(webhook.HeaderTimestamp), got.Get(webhook.HeaderSignature), body, now, time.Minute); err != nil {
		t.Errorf("webhook.Verify: %v", err)
	}
}
