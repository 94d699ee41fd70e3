// Package reconciletest writes the histories of grants into a store, for
// tests of the reconciler against real connectors: a grant that is
// active, one being provisioned, one that ended in the log while its
// access stayed in the target.
package reconciletest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// Open returns a store in a temporary directory, with the requests
// projection, closed when the test ends.
func Open(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), "latch.db"), store.Options{Projections: []store.Projection{store.Requests{}}})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Grant is one grant of a request of its own.
type Grant struct {
	Request string // the request's id
	ID      string // the grant's id
	Target  workflow.Target
	User    workflow.User // the beneficiary
	// Facts are what the connector reported when it granted.
	Facts     map[string]string
	ExpiresAt time.Time // zero means an hour after now
}

// Append appends events of one request, failing the test on an error.
func Append(t testing.TB, s *store.Store, requestID string, events ...workflow.Event) {
	t.Helper()
	for i := range events {
		events[i].RequestID = requestID
	}
	if _, err := s.Append(context.Background(), events...); err != nil {
		t.Fatalf("append the events of request %s: %v", requestID, err)
	}
}

// Event returns an event of kind about grant (none if grant is "")
// carrying payload, failing the test on an error.
func Event(t testing.TB, kind, grant string, payload any) workflow.Event {
	t.Helper()
	e, err := workflow.NewEvent(kind, workflow.ActorLatch, "", grant, payload)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Provisioning writes g's request, submitted and approved, with g being
// provisioned: the connector has been asked and has not answered.
func Provisioning(t testing.TB, s *store.Store, g Grant) {
	t.Helper()
	Append(t, s, g.Request,
		Event(t, workflow.KindSubmitted, "", workflow.Submitted{
			Item: "item-" + g.Target.Entitlement, Policy: "default",
			Requester: g.User.SlackID, Beneficiary: g.User.SlackID, Duration: time.Hour,
			Justification: "reconcile test", Targets: []workflow.Target{g.Target},
		}),
		Event(t, workflow.KindApproved, "", workflow.Approved{Condition: "true", Grants: []workflow.GrantTarget{{ID: g.ID, Target: g.Target}}}),
		Event(t, workflow.KindGrantProvisioning, g.ID, workflow.Note{}),
	)
}

// Active writes g's request through to active.
func Active(t testing.TB, s *store.Store, g Grant) {
	t.Helper()
	Provisioning(t, s, g)
	expires := g.ExpiresAt
	if expires.IsZero() {
		expires = time.Now().Add(time.Hour)
	}
	Append(t, s, g.Request,
		Event(t, workflow.KindGrantActive, g.ID, workflow.Provisioned{Facts: g.Facts, ExpiresAt: expires, Email: g.User.Email}),
		Event(t, workflow.KindActivated, "", workflow.Activated{ExpiresAt: expires}),
	)
}

// Revoked ends g's active request in the log alone, as if its revoke had
// been recorded while the access stayed in the target.
func Revoked(t testing.TB, s *store.Store, g Grant) {
	t.Helper()
	Append(t, s, g.Request,
		Event(t, workflow.KindEnding, "", workflow.Ending{Outcome: workflow.OutcomeRevoked, By: "U0ADMIN", Reason: "reconcile test"}),
		Event(t, workflow.KindGrantRevoking, g.ID, workflow.Note{}),
		Event(t, workflow.KindGrantRevoked, g.ID, workflow.Deprovisioned{}),
		Event(t, workflow.KindEnded, "", workflow.Note{}),
	)
}

// Events returns the events of the given kinds in the log, oldest first.
func Events(t testing.TB, s *store.Store, kinds ...string) []workflow.Event {
	t.Helper()
	var events []workflow.Event
	if err := s.Scan(context.Background(), store.Filter{Kinds: kinds}, func(e *workflow.Event) error {
		events = append(events, *e)
		return nil
	}); err != nil {
		t.Fatalf("scan the log: %v", err)
	}
	return events
}

// Record is a reconcile.Config.Record that appends to s.
func Record(s *store.Store) func(context.Context, []workflow.Event) error {
	return func(ctx context.Context, events []workflow.Event) error {
		_, err := s.Append(ctx, events...)
		return err
	}
}
