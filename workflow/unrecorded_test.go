package workflow_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchhq/latch/workflow"
)

// unwritable is a store whose appends fail, once told to, as a store on a
// full disk does.
type unwritable struct {
	workflow.Store
	full atomic.Bool
}

func (u *unwritable) Append(ctx context.Context, events ...workflow.Event) ([]workflow.Event, error) {
	if u.full.Load() {
		return nil, fmt.Errorf("store failed (%w): commit events: no space left on device", workflow.ErrUnrecorded)
	}
	return u.Store.Append(ctx, events...)
}

// TestUnwritableLogRefusesWorkButTakesAccessBack: with the log unwritable,
// new requests and decisions are refused with ErrUnrecorded and leave no
// trace, yet access that expires is taken back (once, with the security
// channel told); once latch runs on a writable store again, the expiry is
// recorded as usual.
func TestUnwritableLogRefusesWorkButTakesAccessBack(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	r := w.submit(workflow.Submission{Item: "db-ro", Requester: "UALICE", Duration: time.Hour, Justification: "on call"})
	pending := w.submit(workflow.Submission{Item: "db-admin", Requester: "UBOB", Duration: time.Hour, Justification: "INC-1"})
	if r.State != workflow.RequestActive || !w.target.has("readonly", "alice@example.com") {
		t.Fatalf("request %s, want active with access", r.State)
	}
	before := len(w.kinds(r.ID))

	eng := w.fillDisk()

	_, err := eng.Submit(ctx, workflow.Submission{Item: "db-ro", Requester: "UBOB", Duration: time.Hour, Justification: "report"})
	if !errors.Is(err, workflow.ErrUnrecorded) {
		t.Errorf("Submit with the log unwritable = %v, want ErrUnrecorded", err)
	}
	if _, err := eng.Approve(ctx, pending.ID, "UDANA"); !errors.Is(err, workflow.ErrUnrecorded) {
		t.Errorf("Approve with the log unwritable = %v, want ErrUnrecorded", err)
	}
	if _, err := eng.Release(ctx, r.ID, "UALICE"); !errors.Is(err, workflow.ErrUnrecorded) {
		t.Errorf("Release with the log unwritable = %v, want ErrUnrecorded", err)
	}

	w.pass(time.Hour + time.Second)
	if w.target.has("readonly", "alice@example.com") {
		t.Fatal("access outlived its expiry because the log could not be written")
	}
	note := "taken-back-unrecorded " + r.Grants[0].ID
	if got := w.notes.count(note); got != 1 {
		t.Errorf("%q told %d times, want once; notes: %v", note, got, w.notes.seen())
	}
	// The retries to record it take nothing back twice.
	revokes := w.target.revokes
	for range 5 {
		w.pass(workflow.RetryBase)
	}
	if w.target.revokes != revokes || w.notes.count(note) != 1 {
		t.Errorf("retries revoked %d more times and told %d times; want no more calls and one notice", w.target.revokes-revokes, w.notes.count(note))
	}
	if got := len(w.kinds(r.ID)); got != before {
		t.Errorf("the log gained %d events for the request while it could not be written", got-before)
	}

	// Back on a writable store, the expiry is recorded.
	w.stop()
	w.start()
	w.settle()
	got := w.request(r.ID)
	if got.State != workflow.RequestEnded || got.Outcome != workflow.OutcomeExpired {
		t.Errorf("after a restart on a writable store the request is %s; kinds %v", got.State, w.kinds(r.ID))
	}
	if !slices.Contains(w.kinds(r.ID), workflow.KindGrantRevoked) {
		t.Errorf("grant.revoked not recorded after the restart: %v", w.kinds(r.ID))
	}
	if w.target.has("readonly", "alice@example.com") {
		t.Error("access came back")
	}
}

// fillDisk runs a new engine on the world's store, whose disk then fills
// up, and returns it.
func (w *world) fillDisk() *workflow.Engine {
	w.t.Helper()
	w.eng.Close()
	full := &unwritable{Store: w.store}
	cfg := w.cfg
	cfg.Store = full
	eng, err := workflow.NewEngine(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := eng.Start(); err != nil {
		w.t.Fatal(err)
	}
	w.eng = eng
	full.full.Store(true)
	return eng
}

// TestUnwritableLogOverlappingGrants: of two grants of the same access,
// the first to expire leaves it to the second, which takes it back at its
// own expiry, although the log still shows the first active.
func TestUnwritableLogOverlappingGrants(t *testing.T) {
	w := newWorld(t)
	r1 := w.submit(workflow.Submission{Item: "db-ro", Requester: "UALICE", Duration: time.Hour, Justification: "on call"})
	r2 := w.submit(workflow.Submission{Item: "db-ro", Requester: "UALICE", Duration: 2 * time.Hour, Justification: "on call, longer"})
	if r1.State != workflow.RequestActive || r2.State != workflow.RequestActive {
		t.Fatalf("requests %s and %s, want both active", r1.State, r2.State)
	}
	w.fillDisk()

	w.pass(time.Hour + time.Second)
	if !w.target.has("readonly", "alice@example.com") {
		t.Fatal("the first grant's expiry took away access the second grant still gives")
	}
	if n := w.notes.count("taken-back-unrecorded " + r1.Grants[0].ID); n != 0 {
		t.Errorf("told %d times that the first grant was taken back while the second kept the access", n)
	}
	w.pass(time.Hour)
	if w.target.has("readonly", "alice@example.com") {
		t.Fatal("access outlived both grants' expiries because the log could not be written")
	}
	if n := w.notes.count("taken-back-unrecorded " + r2.Grants[0].ID); n != 1 {
		t.Errorf("told %d times that the second grant was taken back, want once; notes %v", n, w.notes.seen())
	}
}

// TestUnwritableLogRevokeFailing: a revoke that keeps failing while the
// log cannot be written backs off and is reported, as any failing revoke.
func TestUnwritableLogRevokeFailing(t *testing.T) {
	w := newWorld(t)
	r := w.submit(workflow.Submission{Item: "db-ro", Requester: "UALICE", Duration: time.Hour, Justification: "on call"})
	w.fillDisk()
	w.target.mu.Lock()
	w.target.revokeFailing = workflow.MaxRevokeAttempts + 1
	w.target.mu.Unlock()
	w.pass(time.Hour + time.Second)
	for range 40 {
		w.pass(workflow.RetryMax)
	}
	if n := w.notes.count("revoke-failed " + string(workflow.GrantActive)); n != 1 {
		t.Errorf("revoke failure reported %d times, want once; notes %v", n, w.notes.seen())
	}
	if w.target.has("readonly", "alice@example.com") {
		t.Error("access remains once the target took the revoke")
	}
	if n := w.notes.count("taken-back-unrecorded " + r.Grants[0].ID); n != 1 {
		t.Errorf("taken back told %d times, want once", n)
	}
	w.target.mu.Lock()
	calls := w.target.revokes
	w.target.mu.Unlock()
	// Backing off: far fewer calls than one per RetryBase over 3h20m.
	if calls > 3*workflow.MaxRevokeAttempts {
		t.Errorf("%d revoke calls: the retries do not back off", calls)
	}
}

// TestAdminPrefix: an admin entry ending in ':' admits the actors it
// starts, and nothing else.
func TestAdminPrefix(t *testing.T) {
	w := newWorld(t)
	w.eng.Close()
	cfg := w.cfg
	cfg.Admins = []string{"api:"}
	eng, err := workflow.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(); err != nil {
		t.Fatal(err)
	}
	w.eng = eng
	r := w.submit(workflow.Submission{Item: "db-ro", Requester: "UALICE", Duration: time.Hour, Justification: "on call"})
	for _, by := range []string{"api:", "api", "apix:jane", "UBOB"} {
		if _, err := eng.Revoke(context.Background(), r.ID, by, "test"); workflow.RefusalOf(err) != workflow.RefusedNotApprover {
			t.Errorf("revoke by %q = %v, want refused", by, err)
		}
	}
	if _, err := eng.Revoke(context.Background(), r.ID, "api:jane", "test"); err != nil {
		t.Errorf("revoke by api:jane = %v, want allowed", err)
	}
}
