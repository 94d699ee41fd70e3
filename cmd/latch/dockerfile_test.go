package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfile checks the container's contract, which the README shows:
// a static build, latch serve as an unprivileged user, the store on a
// volume, the admin port exposed and listening beyond loopback.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`CGO_ENABLED=0 go build .*\./cmd/latch`),
		regexp.MustCompile(`(?m)^USER 65532:65532$`),
		regexp.MustCompile(`(?m)^VOLUME \["/var/lib/latch"\]$`),
		regexp.MustCompile(`(?m)^EXPOSE 8089$`),
		regexp.MustCompile(`LATCH_STORE_PATH=/var/lib/latch/latch\.db`),
		regexp.MustCompile(`LATCH_ADMIN_LISTEN=0\.0\.0\.0:8089`),
		regexp.MustCompile(`(?m)^CMD \["serve"`),
	} {
		if !want.MatchString(text) {
			t.Errorf("the Dockerfile has no line matching %s", want)
		}
	}
	if strings.Contains(text, "USER root") || strings.Contains(text, "USER 0") {
		t.Error("the image runs as root")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"docker run", "/healthz", "/readyz", "livenessProbe", "readinessProbe"} {
		if !strings.Contains(string(readme), want) {
			t.Errorf("the README's container section does not show %q", want)
		}
	}
}
