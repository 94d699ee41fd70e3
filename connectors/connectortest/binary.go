package connectortest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Integration reports whether integration suites must run: with
// LATCH_INTEGRATION=1 (as in CI), a missing server fails a test instead of
// skipping it.
func Integration() bool { return os.Getenv("LATCH_INTEGRATION") == "1" }

// Binary finds the program name, first on PATH and then in dirs, for a test
// that starts a real server. Without it the test skips, saying which
// package provides it; with LATCH_INTEGRATION=1 it fails instead.
func Binary(t testing.TB, name, pkg string, dirs ...string) string {
	t.Helper()
	if path, err := exec.LookPath(name); err == nil {
		return path
	}
	for _, dir := range dirs {
		matches, _ := filepath.Glob(filepath.Join(dir, name))
		for _, path := range matches {
			if info, err := os.Stat(path); err == nil && !info.IsDir() && info.Mode()&0o111 != 0 {
				return path
			}
		}
	}
	msg := name + " is not installed; install the " + pkg + " package to run this test"
	if Integration() {
		t.Fatal(msg + " (LATCH_INTEGRATION=1 requires it)")
	}
	t.Skip(msg)
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on now,
// for a server a test starts.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
