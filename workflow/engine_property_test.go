package workflow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/latchhq/latch/workflow"
)

var people = []string{"UALICE", "UBOB", "UCAROL", "UDANA", "UEVE", "USAM"}

// allRequests returns every request in the store, by id.
func (w *world) allRequests() map[string]workflow.Request {
	w.t.Helper()
	all := map[string]workflow.Request{}
	for _, p := range people {
		if err := w.store.RequestsOf(p, func(r workflow.Request) error {
			all[r.ID] = r
			return nil
		}); err != nil {
			w.t.Fatal(err)
		}
	}
	return all
}

// TestEngineProperties drives the engine with random commands, clock moves,
// connector failures and restarts, and checks after every step that no
// access outlives its grant, that approvals came from eligible approvers,
// that the chain verifies and that the projection equals a rebuild.
func TestEngineProperties(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5, 6, 7, 8}
	steps := 120
	if testing.Short() {
		seeds, steps = seeds[:2], 40
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed))
			w := newWorld(t)
			ctx := context.Background()
			items := []string{"db-admin", "db-ro", "payments", "prod-shell"}
			var ids []string
			pick := func() string {
				if len(ids) == 0 {
					return "none"
				}
				return ids[rng.IntN(len(ids))]
			}
			who := func() string { return people[rng.IntN(len(people))] }
			for step := 0; step < steps; step++ {
				var op string
				switch n := rng.IntN(100); {
				case n < 25:
					op = "submit"
					r, err := w.eng.Submit(ctx, workflow.Submission{Item: items[rng.IntN(len(items))], Requester: who(),
						Duration: time.Duration(rng.IntN(10)) * time.Hour, Justification: "ticket " + fmt.Sprint(step)})
					if err == nil {
						ids = append(ids, r.ID)
					}
				case n < 50:
					op = "approve"
					// Mostly someone the request waits for, sometimes anyone.
					id, by := pick(), who()
					if r, ok, _ := w.store.Request(id); ok && r.State == workflow.RequestPending && rng.IntN(10) < 7 {
						for i, st := range r.Stages {
							if !st.Done && (r.Mode == workflow.Parallel || i == r.Stage) && len(st.Approvers) > 0 {
								by = st.Approvers[rng.IntN(len(st.Approvers))]
								break
							}
						}
					}
					w.eng.Approve(ctx, id, by)
				case n < 55:
					op = "deny"
					w.eng.Deny(ctx, pick(), who(), "no")
				case n < 58:
					op = "cancel"
					w.eng.Cancel(ctx, pick(), who())
				case n < 62:
					op = "release"
					id := pick()
					if r, ok, _ := w.store.Request(id); ok {
						w.eng.Release(ctx, id, r.Beneficiary)
					}
				case n < 65:
					op = "revoke"
					w.eng.Revoke(ctx, pick(), "USAM", "random")
				case n < 68:
					op = "extend"
					id := pick()
					if r, ok, _ := w.store.Request(id); ok {
						if x, err := w.eng.Extend(ctx, id, r.Beneficiary, time.Hour, "more"); err == nil && x.ID != id {
							ids = append(ids, x.ID)
						}
					}
				case n < 71:
					op = "breakglass"
					if r, err := w.eng.BreakGlass(ctx, workflow.BreakGlassCommand{Requester: who(), Item: "prod-shell", Reason: "fire", Channel: "CINCIDENT"}); err == nil {
						ids = append(ids, r.ID)
					}
				case n < 76:
					op = "target-trouble"
					w.target.mu.Lock()
					w.target.revokeFailing = rng.IntN(4)
					w.target.mu.Unlock()
				case n < 80:
					op = "restart"
					w.stop()
					w.start()
				default:
					op = "time"
					w.clock.Advance(time.Duration(1+rng.IntN(180)) * time.Minute)
				}
				w.settle()
				w.checkInvariants(fmt.Sprintf("step %d (%s)", step, op))
				if t.Failed() {
					return
				}
			}
			// Let everything expire: nothing may be left.
			w.target.mu.Lock()
			w.target.revokeFailing = 0
			w.target.mu.Unlock()
			for i := 0; i < 12; i++ {
				w.pass(workflow.RetryFailedEvery)
			}
			w.pass(24 * time.Hour)
			w.checkInvariants("the end")
			if len(w.target.access) != 0 {
				t.Errorf("access left at the end: %v", w.target.access)
			}
		})
	}
}

// checkInvariants checks what must hold whatever happened before.
func (w *world) checkInvariants(when string) {
	t := w.t
	t.Helper()
	now := w.clock.Now()
	all := w.allRequests()
	holders := map[string]bool{} // access some request accounts for
	for _, r := range all {
		// No grant is active after its expiry once the engine has caught up.
		if r.State == workflow.RequestActive && !r.ExpiresAt.After(now) {
			t.Errorf("%s: request %s is active %v after its expiry", when, r.ID, now.Sub(r.ExpiresAt))
		}
		for _, g := range r.Grants {
			if g.State == workflow.GrantRevokeFailed && w.notes.count("revoke-failed revoke_failed") == 0 {
				t.Errorf("%s: grant %s is revoke_failed and nobody was told", when, g.ID)
			}
			if !g.State.Ended() {
				holders[g.Target.Entitlement+"|"+emailOf(r.Beneficiary)] = true
			}
		}
		// Approved requests were approved by eligible people only.
		if r.DecidedBy != workflow.ActorLatch && (r.State == workflow.RequestActive || r.State == workflow.RequestEnded || r.State == workflow.RequestProvisioning) && !r.BreakGlass {
			for _, s := range r.Stages {
				if len(s.Approvals) < s.Required {
					t.Errorf("%s: request %s approved with %d of %d approvals in %s", when, r.ID, len(s.Approvals), s.Required, s.Name)
				}
				for _, a := range s.Approvals {
					if !slices.Contains(s.Approvers, a) || a == r.Requester || a == r.Beneficiary {
						t.Errorf("%s: request %s approved by %s, who is not eligible in %s", when, r.ID, a, s.Name)
					}
				}
			}
		}
	}
	// No access exists in the target that no grant accounts for.
	w.target.mu.Lock()
	for key := range w.target.access {
		if !holders[key] {
			t.Errorf("%s: the target holds %s, which no grant accounts for", when, key)
		}
	}
	w.target.mu.Unlock()
	if _, err := w.store.Verify(context.Background()); err != nil {
		t.Errorf("%s: %v", when, err)
	}
	// The projection equals one rebuilt from the log.
	before, _ := json.Marshal(all)
	if err := w.store.Rebuild("requests"); err != nil {
		t.Fatal(err)
	}
	after, _ := json.Marshal(w.allRequests())
	if !reflect.DeepEqual(before, after) {
		t.Errorf("%s: the requests projection differs from a rebuild", when)
	}
}

// emailOf maps the test's people to their emails.
func emailOf(id string) string {
	return map[string]string{
		"UALICE": "alice@example.com", "UBOB": "bob@example.com", "UCAROL": "carol@example.com",
		"UDANA": "dana@example.com", "UEVE": "eve@example.com", "USAM": "sam@example.com",
	}[id]
}
