package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/google/uuid"
)

// crashChildEnv names the store a crash child appends to.
const crashChildEnv = "LATCH_STORE_CRASH_CHILD"

// TestCrashChild is not a test of its own: TestKilledMidAppend runs the test
// binary again with only this test selected, and kills it.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("runs only as the child of TestKilledMidAppend")
	}
	s, err := Open(path, Options{Projections: []Projection{countByKind{1}}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	for w := 0; w < 16; w++ {
		go func() {
			for i := 0; ; i++ {
				got, err := s.Append(context.Background(), ev("crash.test", fmt.Sprint("w", w), "", fmt.Sprintf(`{"i":%d}`, i)), ev("crash.test", fmt.Sprint("w", w), "", ""))
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(2)
				}
				// The events are acknowledged once this line is out.
				mu.Lock()
				for _, e := range got {
					fmt.Fprintln(out, e.Seq, e.ID)
				}
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestKilledMidAppend kills a process that is appending from many goroutines
// and checks that the store opens, verifies, holds every event whose Append
// had returned, and that its projection agrees with the log. (A kill keeps
// the page cache, so this shows atomicity; TestCommitsAreSynced covers the
// fsync.)
func TestKilledMidAppend(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	path := filepath.Join(t.TempDir(), "latch.db")
	acked := map[uint64]uuid.UUID{}
	for round, killAfter := range []int{1, 500, 3000, 7000} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		n := 0
		for sc.Scan() {
			var seq uint64
			var id string
			if _, err := fmt.Sscan(sc.Text(), &seq, &id); err != nil {
				t.Fatalf("child printed %q: %v", sc.Text(), err)
			}
			acked[seq] = uuid.MustParse(id)
			if n++; n == killAfter {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
		}
		err = cmd.Wait()
		if n < killAfter {
			t.Fatalf("round %d: the child stopped after %d events: %v", round, n, err)
		}

		s, err := Open(path, Options{Projections: []Projection{countByKind{1}}})
		if err != nil {
			t.Fatalf("round %d: open after kill: %v", round, err)
		}
		r, err := s.Verify(context.Background())
		if err != nil {
			t.Fatalf("round %d: verify after kill: %v", round, err)
		}
		for seq, id := range acked {
			e, ok, err := s.Get(seq)
			if err != nil || !ok || e.ID != id {
				t.Fatalf("round %d: acknowledged event %d (%v) read back as %v %v %v", round, seq, id, e.ID, ok, err)
			}
		}
		// The projection was committed with the events it counts.
		if got := counts(t, s)["crash.test"]; got != r.Count {
			t.Fatalf("round %d: projection counts %d events, the log holds %d", round, got, r.Count)
		}
		t.Logf("round %d: killed after %d acknowledged events; the log holds %d", round, n, r.Count)
		s.Close()
	}
}
