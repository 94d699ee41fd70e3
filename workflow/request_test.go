package workflow

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// step is one event in a request's life.
type step struct {
	kind, actor, grant string
	payload            any
}

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// submitted opens a request for a bundle of two targets with two stages:
// the manager M, then one of the DBAs D1 and D2.
func submitted(mode ApprovalMode) step {
	return step{KindSubmitted, "U-REQ", "", Submitted{
		Item: "prod-admin", Policy: "prod", Requester: "U-REQ", Beneficiary: "U-REQ", Duration: time.Hour,
		Justification: "incident 42", Mode: mode,
		Stages: []StageState{
			{Name: "manager", Required: 1, Approvers: []string{"M"}},
			{Name: "dba", Required: 1, Approvers: []string{"D1", "D2"}},
		},
		Targets: []Target{{Connector: "pg", Entitlement: "admin"}, {Connector: "ldap", Entitlement: "cn=admins"}},
	}}
}

var (
	approvedBoth = step{KindApproved, "D1", "", Approved{Grants: []GrantTarget{
		{ID: "g1", Target: Target{Connector: "pg", Entitlement: "admin"}},
		{ID: "g2", Target: Target{Connector: "ldap", Entitlement: "cn=admins"}},
	}}}
	fullyApproved = []step{
		submitted(Sequential),
		{KindApproval, "M", "", Vote{Stage: 0, By: "M"}},
		{KindStageApproved, "latch", "", StageDecision{Stage: 0}},
		{KindApproval, "D1", "", Vote{Stage: 1, By: "D1"}},
		{KindStageApproved, "latch", "", StageDecision{Stage: 1}},
		approvedBoth,
	}
	active = append(fullyApproved[:len(fullyApproved):len(fullyApproved)],
		step{KindGrantProvisioning, "latch", "g1", Note{}},
		step{KindGrantActive, "latch", "g1", Provisioned{Facts: map[string]string{"role": "admin"}}},
		step{KindGrantProvisioning, "latch", "g2", Note{}},
		step{KindGrantActive, "latch", "g2", Provisioned{}},
		step{KindActivated, "latch", "", Activated{ExpiresAt: t0.Add(time.Hour)}},
	)
)

// fold applies steps to a new request, failing the test on any error.
func fold(t *testing.T, steps []step) Request {
	t.Helper()
	var r Request
	for i, s := range steps {
		if err := applyStep(&r, s); err != nil {
			t.Fatalf("step %d (%s): %v", i, s.kind, err)
		}
	}
	return r
}

func applyStep(r *Request, s step) error {
	e, err := NewEvent(s.kind, s.actor, "r1", s.grant, s.payload)
	if err != nil {
		return err
	}
	e.Time = t0
	return ApplyEvent(r, &e)
}

func with(steps []step, more ...step) []step {
	return append(steps[:len(steps):len(steps)], more...)
}

func TestRequestLifecycle(t *testing.T) {
	r := fold(t, active)
	if r.State != RequestActive || !r.ExpiresAt.Equal(t0.Add(time.Hour)) || r.Grants[0].Facts["role"] != "admin" {
		t.Fatalf("after activation: %+v", r)
	}
	r = fold(t, with(active,
		step{KindEnding, "latch", "", Ending{Outcome: OutcomeExpired}},
		step{KindGrantRevoking, "latch", "g1", Note{}},
		step{KindGrantRevoked, "latch", "g1", Deprovisioned{}},
		step{KindGrantRevoking, "latch", "g2", Note{}},
		step{KindGrantRevoked, "latch", "g2", Deprovisioned{Kept: true}},
		step{KindEnded, "latch", "", Note{}},
	))
	if r.State != RequestEnded || r.Outcome != OutcomeExpired || r.EndedAt.IsZero() {
		t.Errorf("after expiry: state %s outcome %q", r.State, r.Outcome)
	}
}

func TestRequestTransitions(t *testing.T) {
	vote := func(stage int, by string) step { return step{KindApproval, by, "", Vote{Stage: stage, By: by}} }
	stageDone := func(stage int) step { return step{KindStageApproved, "latch", "", StageDecision{Stage: stage}} }
	revokeFailed := step{KindGrantRevokeFailed, "latch", "g1", GrantError{Error: "connection refused"}}
	ending := step{KindEnding, "U-REQ", "", Ending{Outcome: OutcomeReleased}}
	tests := []struct {
		name      string
		before    []step
		next      step
		wantErr   bool
		wantState RequestState
	}{
		{"vote in the current stage", []step{submitted(Sequential)}, vote(0, "M"), false, RequestPending},
		{"vote in a later stage of a sequential request", []step{submitted(Sequential)}, vote(1, "D1"), true, ""},
		{"vote in any stage of a parallel request", []step{submitted(Parallel)}, vote(1, "D1"), false, RequestPending},
		{"vote by someone not in the stage", []step{submitted(Sequential)}, vote(0, "D1"), true, ""},
		{"second vote by the same approver", []step{submitted(Parallel), vote(1, "D1")}, vote(1, "D1"), true, ""},
		{"stage approved without its votes", []step{submitted(Sequential)}, stageDone(0), true, ""},
		{"vote in a stage that approved", []step{submitted(Parallel), vote(0, "M"), stageDone(0)}, vote(0, "M"), true, ""},
		{"request approved with a stage left", []step{submitted(Sequential), vote(0, "M"), stageDone(0)}, approvedBoth, true, ""},
		{"request approved by auto_approve", []step{submitted(Sequential)}, step{KindApproved, "latch", "", Approved{Condition: "true", Grants: approvedBoth.payload.(Approved).Grants}}, false, RequestProvisioning},
		{"approved with a grant missing", with(fullyApproved[:5]), step{KindApproved, "D1", "", Approved{Grants: approvedBoth.payload.(Approved).Grants[:1]}}, true, ""},
		{"deny", []step{submitted(Sequential), vote(0, "M")}, step{KindDenied, "D1", "", Denied{Stage: 1, By: "D1", Reason: "not during the freeze"}}, false, RequestRejected},
		{"vote after a deny", []step{submitted(Sequential), step{KindDenied, "M", "", Denied{By: "M"}}}, vote(0, "M"), true, ""},
		{"cancel", []step{submitted(Sequential)}, step{KindCancelled, "U-REQ", "", Note{}}, false, RequestCancelled},
		{"cancel after approval", fullyApproved, step{KindCancelled, "U-REQ", "", Note{}}, true, ""},
		{"time out", []step{submitted(Sequential)}, step{KindTimedOut, "latch", "", Note{}}, false, RequestTimedOut},
		{"escalated approver's vote counts", []step{submitted(Sequential), step{KindEscalated, "latch", "", Escalated{Stage: 0, To: []string{"F"}}}}, vote(0, "F"), false, RequestPending},
		{"submitted twice", []step{submitted(Sequential)}, submitted(Sequential), true, ""},
		{"an event before the request exists", nil, vote(0, "M"), true, ""},
		{"activated with a grant still provisioning", with(fullyApproved, step{KindGrantActive, "latch", "g1", Provisioned{}}), step{KindActivated, "latch", "", Activated{ExpiresAt: t0}}, true, ""},
		{"grant active twice", with(fullyApproved, step{KindGrantActive, "latch", "g1", Provisioned{}}), step{KindGrantActive, "latch", "g1", Provisioned{}}, true, ""},
		{"event of an unknown grant", fullyApproved, step{KindGrantActive, "latch", "g9", Provisioned{}}, true, ""},
		{"extend", active, step{KindExtended, "U-REQ", "", Extended{ExpiresAt: t0.Add(2 * time.Hour)}}, false, RequestActive},
		{"extend backwards", active, step{KindExtended, "U-REQ", "", Extended{ExpiresAt: t0}}, true, ""},
		{"extend a pending request", []step{submitted(Sequential)}, step{KindExtended, "U-REQ", "", Extended{ExpiresAt: t0.Add(2 * time.Hour)}}, true, ""},
		{"release", active, ending, false, RequestRevoking},
		{"revoke before ending", active, step{KindGrantRevoking, "latch", "g1", Note{}}, true, ""},
		{"ended with access left", with(active, ending), step{KindEnded, "latch", "", Note{}}, true, ""},
		{"revoked without a revoke", with(active, ending), step{KindGrantRevoked, "latch", "g1", Deprovisioned{}}, true, ""},
		{"revoke fails", with(active, ending, step{KindGrantRevoking, "latch", "g1", Note{}}), revokeFailed, false, RequestRevoking},
		{"revoked after revoke_failed", with(active, ending, step{KindGrantRevoking, "latch", "g1", Note{}},
			revokeFailed, revokeFailed, revokeFailed, revokeFailed, revokeFailed, revokeFailed), step{KindGrantRevoked, "latch", "g1", Deprovisioned{}}, false, RequestRevoking},
		{"provisioning fails", with(fullyApproved, step{KindGrantFailed, "latch", "g1", GrantError{Error: "no such role", Permanent: true}}), step{KindFailed, "latch", "", Note{Reason: "no such role"}}, false, RequestFailed},
		{"reviewed", active, step{KindReviewed, "U-SEC", "", Note{}}, false, RequestActive},
		{"refresh an active grant", active, step{KindGrantRefreshed, "latch", "g1", Provisioned{ExpiresAt: t0.Add(2 * time.Hour)}}, false, RequestActive},
		{"refresh a grant being revoked", with(active, ending), step{KindGrantRefreshing, "latch", "g1", Note{}}, true, ""},
		{"unknown kind", active, step{"request.frobbed", "latch", "", Note{}}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fold(t, tt.before)
			before := r.Clone()
			err := applyStep(&r, tt.next)
			if tt.wantErr {
				if !errors.Is(err, ErrTransition) {
					t.Fatalf("got %v, want ErrTransition", err)
				}
				if !reflect.DeepEqual(r, before) {
					t.Errorf("a refused event changed the request")
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v", err)
			}
			if r.State != tt.wantState {
				t.Errorf("state %s, want %s", r.State, tt.wantState)
			}
		})
	}
}

func TestSequentialStagesAdvance(t *testing.T) {
	r := fold(t, fullyApproved[:3])
	if r.Stage != 1 || !r.Stages[0].Done {
		t.Errorf("after stage 0 approved: current stage %d", r.Stage)
	}
}

func TestRevokeFailedAfterMaxAttempts(t *testing.T) {
	steps := with(active, step{KindEnding, "latch", "", Ending{Outcome: OutcomeExpired}}, step{KindGrantRevoking, "latch", "g1", Note{}})
	for i := 1; i <= MaxRevokeAttempts; i++ {
		steps = with(steps, step{KindGrantRevokeFailed, "latch", "g1", GrantError{Error: "timeout"}})
		r := fold(t, steps)
		want := GrantRevoking
		if i == MaxRevokeAttempts {
			want = GrantRevokeFailed
		}
		if got := r.Grants[0].State; got != want {
			t.Errorf("after %d failures the grant is %s, want %s", i, got, want)
		}
	}
}

func TestFailedRequestRollsBack(t *testing.T) {
	r := fold(t, with(fullyApproved,
		step{KindGrantActive, "latch", "g1", Provisioned{}},
		step{KindGrantFailed, "latch", "g2", GrantError{Error: "no such group", Permanent: true}},
		step{KindFailed, "latch", "", Note{Reason: "ldap: no such group"}},
		step{KindGrantRevoking, "latch", "g1", Note{}},
		step{KindGrantRevoked, "latch", "g1", Deprovisioned{}},
		step{KindEnded, "latch", "", Note{}},
	))
	if r.State != RequestFailed || r.Outcome != OutcomeRollback || r.EndedAt.IsZero() || r.Grants[1].State != GrantFailed {
		t.Errorf("after rollback: state %s outcome %q grants %+v", r.State, r.Outcome, r.Grants)
	}
}

func TestEventOfAnotherRequest(t *testing.T) {
	r := fold(t, []step{submitted(Sequential)})
	e, err := NewEvent(KindCancelled, "U-REQ", "r2", "", Note{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ApplyEvent(&r, &e); !errors.Is(err, ErrTransition) {
		t.Errorf("applying another request's event = %v, want ErrTransition", err)
	}
}
