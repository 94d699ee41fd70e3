package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/latchhq/latch/workflow"
	bolt "go.etcd.io/bbolt"
)

// appendRequest appends one event of a request and fails the test on error.
func appendRequest(t *testing.T, s *Store, kind, actor, req, grant string, payload any) error {
	t.Helper()
	e, err := workflow.NewEvent(kind, actor, req, grant, payload)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Append(context.Background(), e)
	return err
}

// activeRequest submits, approves and activates request id for user until
// expires, on one target.
func activeRequest(t *testing.T, s *Store, id, user string, expires time.Time) {
	t.Helper()
	grant := id + "-g"
	target := workflow.Target{Connector: "pg", Entitlement: "readonly"}
	for _, st := range []struct {
		kind, grant string
		payload     any
	}{
		{workflow.KindSubmitted, "", workflow.Submitted{Requester: user, Beneficiary: user, Duration: time.Hour, Targets: []workflow.Target{target}}},
		{workflow.KindApproved, "", workflow.Approved{Condition: "auto", Grants: []workflow.GrantTarget{{ID: grant, Target: target}}}},
		{workflow.KindGrantProvisioning, grant, workflow.Note{}},
		{workflow.KindGrantActive, grant, workflow.Provisioned{}},
		{workflow.KindActivated, "", workflow.Activated{ExpiresAt: expires}},
	} {
		if err := appendRequest(t, s, st.kind, user, id, st.grant, st.payload); err != nil {
			t.Fatalf("%s: %v", st.kind, err)
		}
	}
}

func ids(t *testing.T, walk func(func(workflow.Request) error) error) []string {
	t.Helper()
	var out []string
	if err := walk(func(r workflow.Request) error {
		out = append(out, r.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRequestsProjection(t *testing.T) {
	s, path := openTemp(t, Options{Projections: []Projection{Requests{}}})
	base := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	activeRequest(t, s, "r1", "U1", base.Add(3*time.Hour))
	activeRequest(t, s, "r2", "U2", base.Add(1*time.Hour))
	activeRequest(t, s, "r3", "U1", base.Add(2*time.Hour))
	if err := appendRequest(t, s, workflow.KindSubmitted, "U3", "r4", "", workflow.Submitted{Requester: "U3", Beneficiary: "U1",
		Targets: []workflow.Target{{Connector: "pg", Entitlement: "admin"}}}); err != nil {
		t.Fatal(err)
	}
	if err := appendRequest(t, s, workflow.KindCancelled, "U3", "r4", "", workflow.Note{}); err != nil {
		t.Fatal(err)
	}

	r, ok, err := s.Request("r2")
	if err != nil || !ok || r.State != workflow.RequestActive || r.Grants[0].State != workflow.GrantActive {
		t.Fatalf("Request(r2) = %+v, %v, %v", r, ok, err)
	}
	if _, ok, _ := s.Request("nope"); ok {
		t.Errorf("Request(nope) found something")
	}
	if got := fmt.Sprint(ids(t, s.OpenRequests)); got != "[r1 r2 r3]" {
		t.Errorf("open requests %s, want [r1 r2 r3] (r4 was cancelled)", got)
	}
	var sums []string
	if err := s.OpenSummaries(func(sum workflow.Summary) error {
		sums = append(sums, fmt.Sprint(sum.ID, " ", sum.State, " ", sum.Whole))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(sums); got != "[r1 active true r2 active true r3 active true]" {
		t.Errorf("open summaries %s", got)
	}
	expiring := func(before time.Time) func(func(workflow.Request) error) error {
		return func(fn func(workflow.Request) error) error { return s.Expiring(before, fn) }
	}
	if got := fmt.Sprint(ids(t, expiring(base.Add(150*time.Minute)))); got != "[r2 r3]" {
		t.Errorf("expiring within 2.5h: %s, want [r2 r3] soonest first", got)
	}
	of := func(user string) func(func(workflow.Request) error) error {
		return func(fn func(workflow.Request) error) error { return s.RequestsOf(user, fn) }
	}
	if got := fmt.Sprint(ids(t, of("U1"))); got != "[r1 r3 r4]" {
		t.Errorf("requests of U1: %s, want [r1 r3 r4] (r4 is for U1)", got)
	}

	// An extension moves the request in the expiry index.
	if err := appendRequest(t, s, workflow.KindExtended, "U2", "r2", "", workflow.Extended{ExpiresAt: base.Add(4 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(ids(t, expiring(base.Add(150*time.Minute)))); got != "[r3]" {
		t.Errorf("expiring within 2.5h after extending r2: %s, want [r3]", got)
	}

	// An event that does not fit is refused, and not logged.
	head, _ := s.Head()
	err = appendRequest(t, s, workflow.KindApproval, "U9", "r1", "", workflow.Vote{Stage: 0, By: "U9"})
	if !errors.Is(err, workflow.ErrTransition) {
		t.Errorf("an event that does not fit = %v, want ErrTransition", err)
	}
	if now, _ := s.Head(); now != head {
		t.Errorf("a refused event reached the log")
	}

	// The projection equals one rebuilt from the log, also after a reopen.
	want := snapshot(t, s)
	s.Close()
	s, err = Open(path, Options{Projections: []Projection{Requests{}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Rebuild(RequestsProjection); err != nil {
		t.Fatal(err)
	}
	if got := snapshot(t, s); !reflect.DeepEqual(got, want) {
		t.Errorf("rebuilt projection differs:\n got %v\nwant %v", got, want)
	}
}

// snapshot reads every request and index entry of the projection.
func snapshot(t *testing.T, s *Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	if err := s.View(RequestsProjection, func(b *bolt.Bucket) error {
		return b.ForEachBucket(func(name []byte) error {
			return b.Bucket(name).ForEach(func(k, v []byte) error {
				out[string(name)+"/"+string(k)] = string(v)
				return nil
			})
		})
	}); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("the projection is empty")
	}
	return out
}

func TestRequestReadsNeedTheProjection(t *testing.T) {
	s, _ := openTemp(t, Options{})
	if _, _, err := s.Request("r1"); !errors.Is(err, ErrNoRequests) {
		t.Errorf("Request without the projection = %v, want ErrNoRequests", err)
	}
}

func TestRequestReadsAcrossChunks(t *testing.T) {
	s, _ := openTemp(t, Options{Projections: []Projection{Requests{}}})
	var want []string
	for i := 0; i < 600; i++ {
		id := fmt.Sprintf("r%04d", i)
		want = append(want, id)
		if err := appendRequest(t, s, workflow.KindSubmitted, "U1", id, "", workflow.Submitted{Requester: "U1", Beneficiary: "U1",
			Targets: []workflow.Target{{Connector: "pg", Entitlement: "readonly"}}}); err != nil {
			t.Fatal(err)
		}
	}
	of := func(fn func(workflow.Request) error) error { return s.RequestsOf("U1", fn) }
	if got := ids(t, of); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("RequestsOf over 600 requests returned %d, in order %v", len(got), len(got) == len(want))
	}
	if got := ids(t, s.OpenRequests); len(got) != 600 {
		t.Errorf("OpenRequests returned %d of 600", len(got))
	}
}
