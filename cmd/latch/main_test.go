package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// result is what one run of the command line produced.
type result struct {
	code           int
	stdout, stderr string
}

// latch runs the command line in-process.
func latch(t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

// newStore creates a closed store holding n events, one a minute from
// 2026-11-01T09:00Z, alternating kinds request.submitted and grant.revoked.
func newStore(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "latch.db")
	now := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	s, err := store.Open(path, store.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < n; i++ {
		e := workflow.Event{
			Kind:      []string{"request.submitted", "grant.revoked"}[i%2],
			Actor:     "U01ALICE",
			RequestID: fmt.Sprint("r", i),
			Payload:   json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)),
		}
		if _, err := s.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Minute)
	}
	return path
}

func TestMain(m *testing.M) {
	// The tests set what they need; nothing from the caller's environment
	// may change what latch does under test.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "LATCH_") || strings.HasPrefix(k, "SLACK_") {
			os.Unsetenv(k)
		}
	}
	os.Exit(m.Run())
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args     []string
		wantHelp string // the command whose help the message points to
	}{
		{[]string{"frobnicate"}, "latch --help"},
		{[]string{"audit", "frobnicate"}, "latch audit --help"},
		{[]string{"version", "--bogus"}, "latch version --help"},
		{[]string{"audit", "verify", "extra"}, "latch audit verify --help"},
	}
	for _, tt := range tests {
		r := latch(t, tt.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tt.wantHelp) {
			t.Errorf("latch %v = %+v, want exit %d pointing to %q", tt.args, r, exitUsage, tt.wantHelp)
		}
	}
}

func TestGroupCommandsShowHelp(t *testing.T) {
	for _, args := range [][]string{nil, {"audit"}} {
		r := latch(t, args...)
		if r.code != exitOK || !strings.Contains(r.stdout, "Available Commands") {
			t.Errorf("latch %v = %+v, want its help", args, r)
		}
		if strings.Contains(r.stdout, "completion") {
			t.Errorf("latch %v offers a completion command", args)
		}
	}
}
