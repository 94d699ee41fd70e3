package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchhq/latch/workflow"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// requestMap is a Requests backed by a map.
type requestMap map[string]workflow.Request

func (m requestMap) Request(id string) (workflow.Request, bool, error) {
	r, ok := m[id]
	return r, ok, nil
}

// ocsfFixture returns one event of each shape the mapping tells apart,
// with fixed ids, times and hashes, and the requests they belong to.
func ocsfFixture() ([]workflow.Event, Requests) {
	target := workflow.Target{Connector: "prod-pg", Entitlement: "readonly"}
	req := workflow.Request{
		ID: "r1",
		Submitted: workflow.Submitted{
			Item: "prod-db-readonly", Requester: "U01ALICE", Beneficiary: "U01ALICE",
			Targets: []workflow.Target{target},
		},
		Grants: []workflow.Grant{{ID: "g1", Target: target, Email: "alice@example.com"}},
	}
	bg := req
	bg.ID, bg.BreakGlass, bg.Beneficiary = "r2", true, "U02CAROL"
	bg.Grants = []workflow.Grant{{ID: "g2", Target: target}}

	t0 := time.Date(2026, 3, 1, 9, 30, 0, 123456789, time.UTC)
	raw := []struct{ kind, actor, req, grant, payload string }{
		{workflow.KindSubmitted, "U01ALICE", "r1", "", `{"item":"prod-db-readonly","requester":"U01ALICE","beneficiary":"U01ALICE","targets":[{"Connector":"prod-pg","Entitlement":"readonly"}]}`},
		{workflow.KindApproved, "U01BOB", "r1", "", `{"grants":[{"id":"g1","target":{"Connector":"prod-pg","Entitlement":"readonly"}}]}`},
		{workflow.KindGrantActive, "latch", "r1", "g1", `{"email":"alice@example.com"}`},
		{workflow.KindGrantRevokeFailed, "latch", "r1", "g1", `{"error":"connection refused"}`},
		{workflow.KindGrantRevoked, "latch", "r1", "g1", `{}`},
		{workflow.KindDenied, "U01BOB", "r1", "", `{"stage":0,"by":"U01BOB","reason":"not during the freeze"}`},
		{workflow.KindSubmitted, "U02CAROL", "r2", "", `{"beneficiary":"U02CAROL","breakglass":true,"targets":[{"Connector":"prod-pg","Entitlement":"readonly"}]}`},
		{workflow.KindGrantActive, "latch", "r2", "g2", `{}`},
		{workflow.KindPosted, "latch", "r1", "", `{"audience":"approver","channel":"D1","ref":"1.2"}`},
		{"connector.note", "latch", "", "", `{"note":"hello"}`},
	}
	events := make([]workflow.Event, len(raw))
	var prev workflow.Hash
	for i, r := range raw {
		e := workflow.Event{
			Seq:       uint64(i + 1),
			ID:        uuid.MustParse("01900000-0000-7000-8000-0000000000" + string(rune('a'+i/16)) + string("0123456789abcdef"[i%16])),
			Time:      t0.Add(time.Duration(i) * time.Minute),
			Actor:     r.actor,
			Kind:      r.kind,
			RequestID: r.req,
			GrantID:   r.grant,
			Payload:   json.RawMessage(r.payload),
			PrevHash:  prev,
		}
		e.Hash[0], e.Hash[31] = byte(i+1), 0xee
		prev = e.Hash
		events[i] = e
	}
	return events, requestMap{"r1": req, "r2": bg}
}

func TestOCSFGolden(t *testing.T) {
	events, requests := ocsfFixture()
	enc, err := newEncoder(FormatOCSF, requests)
	if err != nil {
		t.Fatal(err)
	}
	got, err := enc.lines(events)
	if err != nil {
		t.Fatal(err)
	}
	// Indent each line for a golden file a person can review.
	var pretty bytes.Buffer
	for line := range bytes.Lines(got) {
		if err := json.Indent(&pretty, line, "", "  "); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join("testdata", "ocsf.golden.json")
	if *update {
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestOCSFGolden -update to create it)", err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Errorf("OCSF output differs from %s (run with -update if the change is meant):\n%s", path, pretty.Bytes())
	}
}

func TestOCSFMapping(t *testing.T) {
	events, requests := ocsfFixture()
	type shape struct {
		ClassUID    int   `json:"class_uid"`
		CategoryUID int   `json:"category_uid"`
		ActivityID  int   `json:"activity_id"`
		TypeUID     int   `json:"type_uid"`
		StatusID    int   `json:"status_id"`
		SeverityID  int   `json:"severity_id"`
		Time        int64 `json:"time"`
		Actor       *struct {
			User struct {
				UID string `json:"uid"`
			} `json:"user"`
		} `json:"actor"`
		User *struct {
			UID string `json:"uid"`
		} `json:"user"`
		Metadata struct {
			UID     string `json:"uid"`
			Product struct {
				Name       string `json:"name"`
				VendorName string `json:"vendor_name"`
			} `json:"product"`
		} `json:"metadata"`
		Unmapped struct {
			Seq  uint64 `json:"seq"`
			Kind string `json:"kind"`
		} `json:"unmapped"`
	}
	tests := []struct {
		seq                            int
		class, category, activity, typ int
		status, severity               int
		user                           string
	}{
		{1, 3003, 3, 99, 300399, 1, 1, "U01ALICE"},
		{2, 3003, 3, 1, 300301, 1, 1, "U01ALICE"},
		{3, 3005, 3, 1, 300501, 1, 1, "U01ALICE"},
		{4, 3005, 3, 2, 300502, 2, 4, "U01ALICE"},
		{5, 3005, 3, 2, 300502, 1, 1, "U01ALICE"},
		{6, 3003, 3, 1, 300301, 2, 1, "U01ALICE"},
		{7, 3003, 3, 99, 300399, 1, 3, "U02CAROL"},
		{8, 3005, 3, 1, 300501, 1, 3, "U02CAROL"},
		{9, 3003, 3, 99, 300399, 1, 1, "U01ALICE"},
		{10, 0, 0, 99, 99, 1, 1, ""},
	}
	for _, tt := range tests {
		e := events[tt.seq-1]
		t.Run(fmt.Sprintf("%d %s", e.Seq, e.Kind), func(t *testing.T) {
			o, err := toOCSF(&e, requests)
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(o)
			if err != nil {
				t.Fatal(err)
			}
			var got shape
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if got.ClassUID != tt.class || got.CategoryUID != tt.category || got.ActivityID != tt.activity || got.TypeUID != tt.typ {
				t.Errorf("class %d category %d activity %d type %d, want %d %d %d %d", got.ClassUID, got.CategoryUID, got.ActivityID, got.TypeUID, tt.class, tt.category, tt.activity, tt.typ)
			}
			if got.TypeUID != got.ClassUID*100+got.ActivityID {
				t.Errorf("type_uid %d is not class_uid*100 + activity_id", got.TypeUID)
			}
			if got.StatusID != tt.status || got.SeverityID != tt.severity {
				t.Errorf("status %d severity %d, want %d %d", got.StatusID, got.SeverityID, tt.status, tt.severity)
			}
			if got.Time != e.Time.UnixMilli() {
				t.Errorf("time %d, want %d", got.Time, e.Time.UnixMilli())
			}
			gotUser := ""
			if got.User != nil {
				gotUser = got.User.UID
			}
			if gotUser != tt.user {
				t.Errorf("user.uid %q, want %q", gotUser, tt.user)
			}
			if tt.class != 0 && (got.Actor == nil || got.Actor.User.UID != e.Actor) {
				t.Errorf("actor %+v, want actor.user.uid %q", got.Actor, e.Actor)
			}
			if got.Metadata.UID != e.ID.String() || got.Metadata.Product.Name != "latch" || got.Metadata.Product.VendorName != "latch" {
				t.Errorf("metadata %+v, want uid %s and product latch", got.Metadata, e.ID)
			}
			if got.Unmapped.Seq != e.Seq || got.Unmapped.Kind != e.Kind {
				t.Errorf("unmapped %+v, want the latch event %d", got.Unmapped, e.Seq)
			}
		})
	}
}

// failingRequests fails every lookup.
type failingRequests struct{}

func (failingRequests) Request(string) (workflow.Request, bool, error) {
	return workflow.Request{}, false, errLookup
}

var errLookup = errors.New("store is closed")

func TestOCSFLookupFailureFailsTheBatch(t *testing.T) {
	events, _ := ocsfFixture()
	enc, err := newEncoder(FormatOCSF, failingRequests{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enc.lines(events[1:3]); !errors.Is(err, errLookup) {
		t.Fatalf("lines = %v, want the lookup's error", err)
	}
}
