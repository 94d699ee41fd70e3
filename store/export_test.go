package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch/workflow"
)

func TestExport(t *testing.T) {
	clock := newFakeClock()
	s, _ := openTemp(t, Options{Now: clock.Now})
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		e := ev([]string{"request.submitted", "grant.revoked"}[i%2], "U1", fmt.Sprint("r", i), `{"why":"needs \"quotes\", commas\nand <tags>"}`)
		if _, err := s.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
	}

	var out bytes.Buffer
	if err := s.Export(ctx, &out, Filter{Kinds: []string{"request.submitted"}}, FormatJSONL); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&out)
	var lines []ExportedEvent
	for sc.Scan() {
		var x ExportedEvent
		if err := json.Unmarshal(sc.Bytes(), &x); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, x)
	}
	if len(lines) != 3 || lines[0].Seq != 1 || lines[1].Seq != 3 || lines[2].Seq != 5 {
		t.Fatalf("JSONL export = %+v, want events 1, 3, 5", lines)
	}
	e3, _, _ := s.Get(3)
	if lines[1].Hash != hex.EncodeToString(e3.Hash[:]) || lines[1].PrevHash != hex.EncodeToString(e3.PrevHash[:]) ||
		lines[1].ID != e3.ID.String() || !lines[1].Time.Equal(e3.Time) || string(lines[1].Payload) != string(e3.Payload) {
		t.Errorf("exported %+v, stored %+v", lines[1], e3)
	}

	out.Reset()
	if err := s.Export(ctx, &out, Filter{From: 2, To: 3}, FormatCSV); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || strings.Join(rows[0], ",") != strings.Join(csvHeader, ",") {
		t.Fatalf("CSV export = %q", rows)
	}
	if rows[1][0] != "2" || rows[1][4] != "grant.revoked" || !json.Valid([]byte(rows[1][7])) {
		t.Errorf("CSV row = %q", rows[1])
	}

	if err := s.Export(ctx, &out, Filter{}, "xml"); err == nil {
		t.Errorf("export as xml succeeded")
	}
}

func TestExportCSVDefusesFormulas(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := context.Background()
	if _, err := s.Append(ctx, workflow.Event{Kind: "request.submitted", Actor: "=HYPERLINK(\"http://evil\")", RequestID: "@SUM(A1)", GrantID: "-2+3"}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := s.Export(ctx, &out, Filter{}, FormatCSV); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, col := range []int{3, 5, 6} {
		if c := rows[1][col]; !strings.HasPrefix(c, "'") {
			t.Errorf("column %s = %q, want it prefixed with '", rows[0][col], c)
		}
	}
	out.Reset()
	if err := s.Export(ctx, &out, Filter{}, FormatJSONL); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"actor":"=HYPERLINK`) {
		t.Errorf("JSONL changed the actor: %s", out.String())
	}
}
