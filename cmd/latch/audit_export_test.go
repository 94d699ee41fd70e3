package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/latchhq/latch/store"
)

func TestAuditExport(t *testing.T) {
	path := newStore(t, 10) // events 1..10 at 09:00..09:09, odd ones request.submitted
	tests := []struct {
		name     string
		args     []string
		wantSeqs string
	}{
		{"everything", nil, "1 2 3 4 5 6 7 8 9 10"},
		{"since", []string{"--since", "2026-11-01T09:07:00Z"}, "8 9 10"},
		{"until", []string{"--until", "2026-11-01T09:02:00Z"}, "1 2"},
		{"since a date", []string{"--since", "2026-11-02"}, ""},
		{"one kind", []string{"--kind", "grant.revoked"}, "2 4 6 8 10"},
		{"kinds and a window", []string{"--kind", "grant.revoked,request.submitted", "--since", "2026-11-01T09:03:00Z", "--until", "2026-11-01T09:05:00Z"}, "4 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := latch(t, append([]string{"audit", "export", "--db", path}, tt.args...)...)
			if r.code != exitOK {
				t.Fatalf("export = %+v", r)
			}
			var got []string
			sc := bufio.NewScanner(strings.NewReader(r.stdout))
			for sc.Scan() {
				var e store.ExportedEvent
				if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
					t.Fatalf("line %q: %v", sc.Text(), err)
				}
				got = append(got, strconv.FormatUint(e.Seq, 10))
			}
			if strings.Join(got, " ") != tt.wantSeqs {
				t.Errorf("exported events %q, want %q", strings.Join(got, " "), tt.wantSeqs)
			}
		})
	}
}

func TestAuditExportCSV(t *testing.T) {
	path := newStore(t, 3)
	r := latch(t, "audit", "export", "--db", path, "--format", "csv")
	if r.code != exitOK {
		t.Fatalf("export = %+v", r)
	}
	rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || rows[0][0] != "seq" || rows[3][0] != "3" || rows[3][7] != `{"n":2}` {
		t.Errorf("CSV = %q", rows)
	}
}

func TestAuditExportUsageErrors(t *testing.T) {
	path := newStore(t, 1)
	for _, args := range [][]string{
		{"--since", "yesterday"},
		{"--until", "2026-13-40"},
		{"--format", "xml"},
		{"--since", "2026-11-02", "--until", "2026-11-01"},
		{"--since", "2026-11-01T09:00:00"},
	} {
		r := latch(t, append([]string{"audit", "export", "--db", path}, args...)...)
		if r.code != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, args[0]) {
			t.Errorf("export %v = %+v, want a usage error naming %s", args, r, args[0])
		}
	}
}
