package main

import (
	"bufio"
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch/admin"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// jsonGrants parses the JSON lines of latch grants.
func jsonGrants(t *testing.T, out string) []admin.GrantRow {
	t.Helper()
	var rows []admin.GrantRow
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var row admin.GrantRow
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		rows = append(rows, row)
	}
	return rows
}

func TestGrants(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		args []string
		want []string // the requests whose grants are listed, by fixture name
	}{
		{"all", nil, []string{"overdue", "active", "released", "stuck", "warehouse"}},
		{"active", []string{"--active"}, []string{"overdue", "active", "stuck", "warehouse"}},
		{"a person", []string{"--user", "U0BOB00002"}, []string{"active", "released"}},
		{"a person's active", []string{"--user", "U0BOB00002", "--active"}, []string{"active"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := latch(t, append([]string{"grants", "--db", f.db, "--format", "json"}, tt.args...)...)
			if r.code != exitOK {
				t.Fatalf("grants = %+v", r)
			}
			var got []string
			for _, row := range jsonGrants(t, r.stdout) {
				got = append(got, row.Grant)
			}
			var want []string
			for _, name := range tt.want {
				want = append(want, f.grant(t, name))
			}
			if !slices.Equal(got, want) {
				t.Errorf("grants %v, want %v (%v)", got, want, tt.want)
			}
		})
	}
}

func TestGrantsJSON(t *testing.T) {
	f := newFixture(t)
	r := latch(t, "grants", "--db", f.db, "--format", "json")
	if r.code != exitOK {
		t.Fatalf("grants = %+v", r)
	}
	rows := map[string]admin.GrantRow{}
	for _, row := range jsonGrants(t, r.stdout) {
		rows[row.Grant] = row
	}
	tests := []struct {
		name   string
		state  workflow.GrantState
		access bool
		left   time.Duration // 0: none
	}{
		{"overdue", workflow.GrantActive, true, -2 * time.Hour},
		{"active", workflow.GrantActive, true, 5 * time.Hour},
		{"released", workflow.GrantRevoked, false, 0},
		{"stuck", workflow.GrantRevoking, true, 0},
	}
	for _, tt := range tests {
		req := f.requests[tt.name]
		row := rows[f.grant(t, tt.name)]
		if row.State != tt.state || row.Access != tt.access || row.Request != req.ID || row.Beneficiary != req.Beneficiary ||
			row.Item != req.Item || row.Connector != "files" || row.Entitlement != req.Targets[0].Entitlement {
			t.Errorf("%s: got %+v, want state %s, access %v, of request %+v", tt.name, row, tt.state, tt.access, req)
		}
		switch {
		case tt.left == 0 && row.LeftSeconds != nil:
			t.Errorf("%s: %d seconds left, want none", tt.name, *row.LeftSeconds)
		case tt.left != 0 && (row.LeftSeconds == nil || (time.Duration(*row.LeftSeconds)*time.Second-tt.left).Abs() > time.Minute):
			t.Errorf("%s: %v seconds left, want about %s", tt.name, row.LeftSeconds, tt.left)
		}
	}
	if row := rows[f.grant(t, "released")]; row.Outcome != workflow.OutcomeReleased || row.EndedAt.IsZero() {
		t.Errorf("released grant: outcome %q, ended at %v", row.Outcome, row.EndedAt)
	}
	if row := rows[f.grant(t, "stuck")]; row.LastError == "" {
		t.Errorf("grant whose revoke fails has no last error: %+v", row)
	}
}

func TestGrantsTable(t *testing.T) {
	f := newFixture(t)
	r := latch(t, "grants", "--db", f.db, "--active")
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("grants = %+v", r)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "GRANT ") {
		t.Fatalf("want a header and 4 rows, got\n%s", r.stdout)
	}
	// Aligned: each column starts where its heading does.
	for _, heading := range []string{"REQUEST", "STATE", "EXPIRES", "LEFT"} {
		col := strings.Index(lines[0], heading)
		for _, l := range lines[1:] {
			if len(l) <= col || l[col-1] != ' ' || l[col] == ' ' {
				t.Errorf("column %s (at %d) is not aligned in\n%s", heading, col, r.stdout)
				break
			}
		}
	}
	states := map[string]string{} // by grant id
	for _, l := range lines[1:] {
		col := strings.Index(lines[0], "STATE")
		states[strings.Fields(l)[0]] = strings.TrimSpace(l[col:strings.Index(lines[0], "EXPIRES")])
	}
	for name, want := range map[string]string{
		"overdue": "active",
		"stuck":   "revoking (still gives access)",
	} {
		if got := states[f.grant(t, name)]; got != want {
			t.Errorf("state of %s = %q, want %q", name, got, want)
		}
	}
}

func TestGrantsNoneMatch(t *testing.T) {
	f := newFixture(t)
	for _, format := range []string{formatTable, formatJSON} {
		r := latch(t, "grants", "--db", f.db, "--user", "U0NOBODY00", "--format", format)
		if r.code != exitOK || r.stdout+r.stderr != "no grants match\n" {
			t.Errorf("grants --format %s of nobody = %+v, want exit 0 and one line", format, r)
		}
		if format == formatJSON && r.stdout != "" {
			t.Errorf("grants --format json wrote %q to stdout, want nothing", r.stdout)
		}
	}
}

func TestGrantsErrors(t *testing.T) {
	held := filepath.Join(t.TempDir(), "held.db")
	s, err := store.Open(held, store.Options{Projections: []store.Projection{store.Requests{}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bare := newStore(t, 4) // written without the requests projection
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no --db", []string{"grants"}, exitUsage, "--db"},
		{"bad format", []string{"grants", "--db", bare, "--format", "xml"}, exitUsage, "--format"},
		{"an argument", []string{"grants", "--db", bare, "extra"}, exitUsage, "extra"},
		{"held by a server", []string{"grants", "--db", held}, exitFailure, store.ErrLocked.Error()},
		{"no requests projection", []string{"grants", "--db", bare}, exitFailure, store.ErrNoRequests.Error()},
		{"no requests projection, one person", []string{"grants", "--db", bare, "--user", "U01ALICE"}, exitFailure, store.ErrNoRequests.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := latch(t, tt.args...)
			if r.code != tt.wantCode || r.stdout != "" || !strings.Contains(r.stderr, tt.wantErr) {
				t.Errorf("got %+v, want exit %d and %q on stderr", r, tt.wantCode, tt.wantErr)
			}
		})
	}
}

func TestLeftText(t *testing.T) {
	secs := func(d time.Duration) *int64 {
		n := int64(d / time.Second)
		return &n
	}
	tests := []struct {
		in   *int64
		want string
	}{
		{nil, "-"},
		{secs(30 * time.Second), "<1m"},
		{secs(5*time.Hour - time.Second), "4h59m"},
		{secs(26*time.Hour + 90*time.Second), "1d2h1m"},
		{secs(-2*time.Hour - 10*time.Second), "overdue 2h"},
		{secs(-10 * time.Second), "overdue <1m"},
	}
	for _, tt := range tests {
		if got := leftText(tt.in); got != tt.want {
			t.Errorf("leftText(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// sameRows reports how two JSON outputs of latch grants differ: in
// nothing, but the time left, which may be a second apart as the two
// runs are.
func sameRows(t *testing.T, got, want string) bool {
	t.Helper()
	g, w := jsonGrants(t, got), jsonGrants(t, want)
	if len(g) != len(w) {
		return false
	}
	for i := range g {
		if (g[i].LeftSeconds == nil) != (w[i].LeftSeconds == nil) {
			return false
		}
		if g[i].LeftSeconds != nil {
			if d := *g[i].LeftSeconds - *w[i].LeftSeconds; d < -2 || d > 2 {
				return false
			}
			g[i].LeftSeconds, w[i].LeftSeconds = nil, nil
		}
		if !reflect.DeepEqual(g[i], w[i]) {
			return false
		}
	}
	return true
}

// withoutLeft drops the LEFT column of a table of grants.
func withoutLeft(table string) string {
	lines := strings.Split(table, "\n")
	col := strings.Index(lines[0], "LEFT")
	for i, l := range lines {
		if col > 0 && len(l) > col {
			lines[i] = l[:col]
		}
	}
	return strings.Join(lines, "\n")
}

// TestGrantsServer lists grants through the server: the output is that of
// a local listing, in both formats.
func TestGrantsServer(t *testing.T) {
	f := newFixture(t)
	cases := [][]string{
		{"--format", "json"},
		{"--format", "json", "--active"},
		{"--format", "json", "--user", "U0BOB00002"},
		{"--format", "json", "--user", "U0NOBODY00"},
		{},
		{"--active"},
		{"--user", "U0NOBODY00"},
		{"--user", "U0BOB00002", "--active"},
		{"--format", "xml"},
	}
	local := make([]result, len(cases))
	for i, args := range cases {
		local[i] = latch(t, append([]string{"grants", "--db", f.db}, args...)...)
	}
	url := serveAPI(t, f.db, without(t), store.Requests{})
	for i, args := range cases {
		got := latch(t, append([]string{"grants", "--server", url}, args...)...)
		want := local[i]
		same := got.code == want.code && got.stderr == want.stderr
		if slices.Contains(args, "json") {
			same = same && sameRows(t, got.stdout, want.stdout)
		} else {
			same = same && withoutLeft(got.stdout) == withoutLeft(want.stdout)
		}
		if !same {
			t.Errorf("grants %v through the server = %+v\nwant %+v", args, got, want)
		}
	}
	if rows := jsonGrants(t, local[1].stdout); len(rows) != 4 {
		t.Errorf("local grants --active listed %d grants, want 4", len(rows))
	}
}
