package admin_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"

	"github.com/latchhq/latch/admin"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// logStore is a store of bare events, as an audit log sees them.
type logStore struct {
	path  string
	store *store.Store
	clock *workflow.FakeClock
}

// newLogStore creates a store and appends batches of events, one batch a
// minute from start: batch i holds sizes[i] events, of kinds alternating
// request.submitted and grant.revoked.
func newLogStore(t *testing.T, sizes ...int) *logStore {
	t.Helper()
	l := &logStore{path: filepath.Join(t.TempDir(), "latch.db"), clock: workflow.NewFakeClock(start)}
	l.open(t)
	n := 0
	for _, size := range sizes {
		events := make([]workflow.Event, size)
		for i := range events {
			events[i] = workflow.Event{Kind: []string{"request.submitted", "grant.revoked"}[n%2], Actor: "U01ALICE",
				Payload: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}
			n++
		}
		if _, err := l.store.Append(context.Background(), events...); err != nil {
			t.Fatal(err)
		}
		l.clock.Advance(time.Minute)
	}
	return l
}

func (l *logStore) open(t *testing.T) {
	t.Helper()
	s, err := store.Open(l.path, store.Options{Now: l.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	l.store = s
	t.Cleanup(func() { s.Close() })
}

func (l *logStore) handler() *admin.Handler {
	return admin.New(admin.Config{Store: l.store, Engine: failingEngine{}, Token: []byte(testToken), Clock: l.clock, Log: zerolog.Nop()})
}

// seqs returns the sequence numbers of a JSONL export.
func seqs(t *testing.T, body []byte) []uint64 {
	t.Helper()
	var out []uint64
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		var e store.ExportedEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, e.Seq)
	}
	return out
}

func TestAuditExport(t *testing.T) {
	l := newLogStore(t, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1) // events 1..10 at 09:00..09:09
	srv := httptestServer(t, l.handler())
	tests := []struct {
		name  string
		query string
		want  string
	}{
		{"everything", "", "1 2 3 4 5 6 7 8 9 10"},
		{"since", "?since=2026-11-02T09:07:00Z", "8 9 10"},
		{"until", "?until=2026-11-02T09:02:00Z", "1 2"},
		{"since a date", "?since=2026-11-03", ""},
		{"since a while ago", "?since=3m", "8 9 10"}, // the clock is at 09:10
		{"one kind", "?kind=grant.revoked", "2 4 6 8 10"},
		{"kinds and a window", "?kind=grant.revoked,request.submitted&since=2026-11-02T09:03:00Z&until=2026-11-02T09:05:00Z", "4 5"},
		{"kinds repeated", "?kind=grant.revoked&kind=request.submitted&until=2026-11-02T09:02:00Z", "1 2"},
		{"jsonl by name", "?format=jsonl&since=9m", "2 3 4 5 6 7 8 9 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, srv, http.MethodGet, "/api/v1/audit"+tt.query, "Bearer "+testToken, nil)
			if a.status != http.StatusOK || a.header.Get("Content-Type") != "application/x-ndjson" {
				t.Fatalf("status %d, type %q: %s", a.status, a.header.Get("Content-Type"), a.body)
			}
			var got []string
			for _, s := range seqs(t, a.body) {
				got = append(got, strconv.FormatUint(s, 10))
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("events %q, want %q", strings.Join(got, " "), tt.want)
			}
		})
	}
}

// TestAuditExportSameAsStore checks that the API streams exactly what
// store.Export writes.
func TestAuditExportSameAsStore(t *testing.T) {
	l := newLogStore(t, 3, 4)
	srv := httptestServer(t, l.handler())
	for _, format := range []string{store.FormatJSONL, store.FormatCSV} {
		a := call(t, srv, http.MethodGet, "/api/v1/audit?format="+format, "Bearer "+testToken, nil)
		var want bytes.Buffer
		if err := l.store.Export(context.Background(), &want, store.Filter{}, format); err != nil {
			t.Fatal(err)
		}
		if a.status != http.StatusOK || !bytes.Equal(a.body, want.Bytes()) {
			t.Errorf("%s export: %d\n%s\nwant\n%s", format, a.status, a.body, want.Bytes())
		}
	}
	a := call(t, srv, http.MethodGet, "/api/v1/audit?format=csv", "Bearer "+testToken, nil)
	rows, err := csv.NewReader(bytes.NewReader(a.body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 8 || rows[0][0] != "seq" || rows[7][0] != "7" || !strings.HasPrefix(a.header.Get("Content-Type"), "text/csv") {
		t.Errorf("CSV (%s) = %q", a.header.Get("Content-Type"), rows)
	}
}

// flushCounter is a ResponseWriter that counts flushes.
type flushCounter struct {
	*httptest.ResponseRecorder
	flushes int
}

func (f *flushCounter) Flush() {
	f.flushes++
	f.ResponseRecorder.Flush()
}

// TestAuditExportStreams exports a log of many events: every one arrives,
// in order, and the answer is flushed as it is written rather than at the
// end.
func TestAuditExportStreams(t *testing.T) {
	const n = 30000
	l := newLogStore(t, n/3, n/3, n/3)
	h := l.handler()

	rec := &flushCounter{ResponseRecorder: httptest.NewRecorder()}
	req := httptest.NewRequest(http.MethodGet, "/api/v1/audit", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	// Each event takes some 300 bytes, the export writes 64 KiB blocks.
	if min := rec.Body.Len() / (64 << 10); rec.flushes < min {
		t.Errorf("%d flushes for %d bytes, want at least %d", rec.flushes, rec.Body.Len(), min)
	}
	got := seqs(t, rec.Body.Bytes())
	if len(got) != n {
		t.Fatalf("%d events, want %d", len(got), n)
	}
	for i, s := range got {
		if s != uint64(i+1) {
			t.Fatalf("event %d has sequence number %d", i+1, s)
		}
	}

	// Over HTTP, the answer is chunked: it has no length known in
	// advance.
	srv := httptestServer(t, h)
	hreq, err := http.NewRequest(http.MethodGet, srv+"/api/v1/audit?format=csv", nil)
	if err != nil {
		t.Fatal(err)
	}
	hreq.Header.Set("Authorization", "Bearer "+testToken)
	res, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	rows := 0
	r := csv.NewReader(res.Body)
	for {
		if _, err := r.Read(); err != nil {
			break
		}
		rows++
	}
	if res.ContentLength != -1 || rows != n+1 {
		t.Errorf("CSV export: length %d, %d rows; want unknown length and %d rows", res.ContentLength, rows, n+1)
	}
}

func TestAuditExportBadParameters(t *testing.T) {
	l := newLogStore(t, 1)
	srv := httptestServer(t, l.handler())
	tests := []struct{ query, param string }{
		{"?since=yesterday", "since"},
		{"?until=2026-13-40", "until"},
		{"?since=2026-11-01T09:00:00", "since"},
		{"?since=2026-11-02&until=2026-11-01", "since"},
		{"?format=xml", "format"},
		{"?format=csv&format=jsonl", "format"},
		{"?kinds=grant.revoked", "kinds"},
	}
	for _, tt := range tests {
		a := call(t, srv, http.MethodGet, "/api/v1/audit"+tt.query, "Bearer "+testToken, nil)
		wantError(t, a, http.StatusBadRequest, tt.param)
	}
}

func TestAuditVerify(t *testing.T) {
	l := newLogStore(t, 5, 5, 5, 5)
	srv := httptestServer(t, l.handler())
	seq, head := l.store.Head()
	a := call(t, srv, http.MethodGet, "/api/v1/audit/verify", "Bearer "+testToken, nil)
	want := fmt.Sprintf("{\"ok\":true,\"events\":%d,\"head\":%q}\n", seq, hex.EncodeToString(head[:]))
	if a.status != http.StatusOK || string(a.body) != want {
		t.Errorf("verify = %d %s, want 200 %s", a.status, a.body, want)
	}

	// Change one byte of event 13's payload behind latch's back.
	l.store.Close()
	db, err := bolt.Open(l.path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("events"))
		k := []byte{0, 0, 0, 0, 0, 0, 0, 13}
		v := append([]byte(nil), b.Get(k)...)
		v[len(v)-3] ^= 1
		return b.Put(k, v)
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	l.open(t)
	srv = httptestServer(t, l.handler())
	a = call(t, srv, http.MethodGet, "/api/v1/audit/verify", "Bearer "+testToken, nil)
	got := decode[admin.VerifyResult](t, a)
	if a.status != http.StatusConflict || got.OK || got.Seq != 13 || !strings.Contains(got.Error, "event 13") {
		t.Errorf("verify of a tampered log = %d %s, want 409 naming event 13", a.status, a.body)
	}
	if strings.Contains(string(a.body), `"head"`) {
		t.Errorf("a failed verify names a head: %s", a.body)
	}
}

func TestAuditVerifyEmptyLog(t *testing.T) {
	l := newLogStore(t)
	srv := httptestServer(t, l.handler())
	a := call(t, srv, http.MethodGet, "/api/v1/audit/verify", "Bearer "+testToken, nil)
	if want := `{"ok":true,"events":0,"head":"` + strings.Repeat("0", 64) + "\"}\n"; a.status != http.StatusOK || string(a.body) != want {
		t.Errorf("verify of an empty log = %d %s, want %s", a.status, a.body, want)
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"", time.Time{}},
		{"2026-11-01T09:30:00Z", time.Date(2026, 11, 1, 9, 30, 0, 0, time.UTC)},
		{"2026-11-01T09:30:00+01:00", time.Date(2026, 11, 1, 8, 30, 0, 0, time.UTC)},
		{"2026-11-01", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		{"90m", now.Add(-90 * time.Minute)},
		{"7d", now.Add(-7 * 24 * time.Hour)},
	}
	for _, tt := range tests {
		got, err := admin.ParseWhen(tt.in, now)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("ParseWhen(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"last tuesday", "2026-11-01T09:30:00", "0s", "-5m"} {
		if _, err := admin.ParseWhen(bad, now); err == nil {
			t.Errorf("ParseWhen accepted %q", bad)
		}
	}
}
