package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
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

func TestUnknownCommandIsAUsageError(t *testing.T) {
	r := latch(t, "frobnicate")
	if r.code != exitFailure && r.code != exitUsage {
		t.Errorf("exit code %d for an unknown command", r.code)
	}
	if r.stderr == "" {
		t.Errorf("nothing said about an unknown command")
	}
	if r := latch(t, "version", "--bogus"); r.code != exitUsage {
		t.Errorf("unknown flag: exit code %d, want %d", r.code, exitUsage)
	}
}
