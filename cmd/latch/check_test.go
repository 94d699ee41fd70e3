package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckExample(t *testing.T) {
	r := latch(t, "check", "--config", "../../config.example.yaml")
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("check of the example = %+v", r)
	}
	if !strings.HasPrefix(r.stdout, "ok: ") || strings.Count(r.stdout, "\n") != 1 ||
		!strings.Contains(r.stdout, " items, ") || !strings.Contains(r.stdout, " policies, ") || !strings.Contains(r.stdout, " connectors\n") {
		t.Errorf("summary = %q, want one line counting items, policies and connectors", r.stdout)
	}
}

func TestCheckReportsEveryProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latch.yaml")
	bad := `store:
  path: /tmp/latch.db
channels:
  security: C0SECURITY
directory:
  users:
    - slack_id: U0ALICE001
      email: alice@example.com
connectors:
  - name: flags
    type: exec
    settings:
      command: /usr/local/bin/flags
catalogue:
  items:
    - id: flags-admin
      name: Feature flags admin
      targets: [{connector: flagz, entitlement: admin}]
      policy: standard
policies:
  standard:
    duration: {max: 4h}
    aproval:
      stages: [{approvers: ["user:U0ALICE001"]}]
`
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	r := latch(t, "check", "--config", path)
	if r.code != exitFailure || r.stdout != "" {
		t.Fatalf("check = %+v, want exit 1 and nothing on stdout", r)
	}
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	for _, want := range []string{
		"catalogue.items[0].targets[0].connector", // flagz: no such connector
		"policies.standard.aproval",               // did you mean approval
	} {
		found := false
		for _, l := range lines {
			// file:line: key.path: message
			if strings.HasPrefix(l, path+":") && strings.Contains(l, ": "+want+": ") {
				found = true
			}
		}
		if !found {
			t.Errorf("no line for %s in\n%s", want, r.stderr)
		}
	}
}

func TestCheckUsage(t *testing.T) {
	if r := latch(t, "check"); r.code != exitUsage || !strings.Contains(r.stderr, "--config") {
		t.Errorf("check without --config = %+v", r)
	}
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(broken, []byte("store:\n  path: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := latch(t, "check", "--config", broken); r.code != exitFailure || !strings.HasPrefix(r.stderr, broken+":") {
		t.Errorf("check of a file that is not YAML = %+v, want exit 1 and file:line: on stderr", r)
	}
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	if r := latch(t, "check", "--config", missing); r.code != exitFailure || !strings.Contains(r.stderr, "nope.yaml") {
		t.Errorf("check of a missing file = %+v", r)
	}
}

func TestPlural(t *testing.T) {
	for _, tt := range []struct {
		n          int
		noun, want string
	}{{1, "item", "1 item"}, {0, "item", "0 items"}, {2, "policy", "2 policies"}, {1, "policy", "1 policy"}} {
		if got := plural(tt.n, tt.noun); got != tt.want {
			t.Errorf("plural(%d, %q) = %q, want %q", tt.n, tt.noun, got, tt.want)
		}
	}
}
