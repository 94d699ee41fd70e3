package main

import (
	"runtime"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	r := latch(t, "version")
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "latch ") || !strings.Contains(r.stdout, runtime.Version()) {
		t.Errorf("latch version = %+v", r)
	}
	old := version
	version = "v1.2.3"
	defer func() { version = old }()
	if r := latch(t, "version"); !strings.HasPrefix(r.stdout, "latch v1.2.3 ") {
		t.Errorf("latch version with a release version = %q", r.stdout)
	}
	if r := latch(t, "version", "extra"); r.code != exitUsage {
		t.Errorf("latch version extra: exit code %d, want %d", r.code, exitUsage)
	}
}
