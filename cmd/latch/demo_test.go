package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	keep := filepath.Join(t.TempDir(), "demo")
	r := latch(t, "demo", "--keep", keep)
	if r.code != exitOK {
		t.Fatalf("latch demo = %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"carol clicks [Approve]", // the sequential approval
		"Access to Production database (admin) is active",
		"Denied* by @grace: Use the anonymised export", // the denial, with its reason
		"Production logs is active",                    // the on-call auto-approval
		"Break-glass",
		"expired and was revoked",
		"The target system now holds: nothing",
		"latch audit verify: ok:",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the transcript does not say %q:\n%s", want, r.stdout)
		}
	}
	// The store is kept and verifies from the command line too.
	if _, err := os.Stat(filepath.Join(keep, "latch.db")); err != nil {
		t.Fatal(err)
	}
	if v := latch(t, "audit", "verify", "--db", filepath.Join(keep, "latch.db")); v.code != exitOK {
		t.Errorf("audit verify of the kept store = %+v", v)
	}
	// A second run refuses to mix its store with the first.
	if again := latch(t, "demo", "--keep", keep); again.code != exitFailure || !strings.Contains(again.stderr, "already holds") {
		t.Errorf("demo into a used directory = %+v", again)
	}
}
