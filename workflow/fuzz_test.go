package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fuzzKinds are the kinds FuzzApplyEvent picks from, by index; an index
// past the end gives an unknown kind.
var fuzzKinds = []string{
	KindSubmitted, KindApproval, KindStageApproved, KindApproved, KindDenied, KindCancelled, KindTimedOut,
	KindRefused, KindReminded, KindEscalated, KindActivated, KindExtended, KindFailed, KindEnding, KindEnded,
	KindWarned, KindReviewed, KindPosted,
	KindGrantProvisioning, KindGrantActive, KindGrantFailed, KindGrantRevoking, KindGrantRevoked,
	KindGrantRevokeFailed, KindGrantRefreshing, KindGrantRefreshed, KindGrantRefreshFailed,
}

// fuzzKind returns the index of kind in fuzzKinds, as a byte.
func fuzzKind(kind string) byte {
	for i, k := range fuzzKinds {
		if k == kind {
			return byte(i)
		}
	}
	panic("unknown kind " + kind)
}

// fuzzPayload is the payload of a seed event, as JSON.
func fuzzPayload(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(data)
}

// FuzzApplyEvent folds a fuzzed sequence of events into a request. Each
// byte of steps picks an event: its kind (low five bits), whether it names
// another request (bit 5) and which grant it is about (bits 6-7); the
// lines of payloads are the events' payloads, in order. ApplyEvent must not
// panic; an event it refuses leaves the request exactly as it was; one it
// accepts gives the same result when applied again to the same state; a
// request.refused event never changes anything but is accepted; and a
// decided request never becomes pending again.
func FuzzApplyEvent(f *testing.F) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	targets := []Target{{Connector: "pg", Entitlement: "ro"}, {Connector: "ssh", Entitlement: "prod"}}
	submitted := fuzzPayload(Submitted{
		Item: "db", Policy: "std", Requester: "U1", Beneficiary: "U1", Duration: time.Hour, Justification: "incident",
		Stages:  []StageState{{Name: "manager", Required: 1, Approvers: []string{"U2"}}, {Name: "dba", Required: 2, Approvers: []string{"U3", "U4"}}},
		Targets: targets,
	})
	approved := fuzzPayload(Approved{Grants: []GrantTarget{{ID: "g1", Target: targets[0]}, {ID: "g2", Target: targets[1]}}})
	vote := func(stage int, by string) string { return fuzzPayload(Vote{Stage: stage, By: by}) }
	stage := func(i int) string { return fuzzPayload(StageDecision{Stage: i}) }
	const g1, g2 = 0 << 6, 1 << 6
	type step struct {
		kind    byte
		payload string
	}
	seeds := [][]step{
		{{fuzzKind(KindSubmitted), submitted}, {fuzzKind(KindApproval), vote(0, "U2")}, {fuzzKind(KindStageApproved), stage(0)},
			{fuzzKind(KindApproval), vote(1, "U3")}, {fuzzKind(KindApproval), vote(1, "U4")}, {fuzzKind(KindStageApproved), stage(1)},
			{fuzzKind(KindApproved), approved},
			{fuzzKind(KindGrantActive) | g1, fuzzPayload(Provisioned{ExpiresAt: t0.Add(time.Hour)})},
			{fuzzKind(KindGrantActive) | g2, `{}`},
			{fuzzKind(KindActivated), fuzzPayload(Activated{ExpiresAt: t0.Add(time.Hour)})},
			{fuzzKind(KindExtended), fuzzPayload(Extended{ExpiresAt: t0.Add(2 * time.Hour), By: "U1"})},
			{fuzzKind(KindWarned), `{}`},
			{fuzzKind(KindEnding), fuzzPayload(Ending{Outcome: OutcomeExpired})},
			{fuzzKind(KindGrantRevoking) | g1, `{}`}, {fuzzKind(KindGrantRevoked) | g1, `{}`},
			{fuzzKind(KindGrantRevoking) | g2, `{}`}, {fuzzKind(KindGrantRevokeFailed) | g2, fuzzPayload(GrantError{Error: "timeout"})},
			{fuzzKind(KindGrantRevoked) | g2, fuzzPayload(Deprovisioned{ResolvedBy: "admin:ops", Note: "by hand"})},
			{fuzzKind(KindEnded), fuzzPayload(Note{Reason: OutcomeExpired})}},
		{{fuzzKind(KindSubmitted), submitted}, {fuzzKind(KindApproval), vote(0, "U1")}, {fuzzKind(KindApproval), vote(1, "U3")},
			{fuzzKind(KindRefused), fuzzPayload(Refused{Command: "approve", By: "U9", Reason: "not_approver"})},
			{fuzzKind(KindEscalated), fuzzPayload(Escalated{Stage: 0, To: []string{"U9"}})}, {fuzzKind(KindApproval), vote(0, "U9")},
			{fuzzKind(KindApproval), vote(0, "U9")}, {fuzzKind(KindDenied), fuzzPayload(Denied{Stage: 1, By: "U3", Reason: "no"})},
			{fuzzKind(KindApproved), approved}, {fuzzKind(KindCancelled), `{}`}},
		{{fuzzKind(KindSubmitted), submitted}, {fuzzKind(KindApproved), fuzzPayload(Approved{Condition: "true", Grants: []GrantTarget{{ID: "g1"}, {ID: "g2"}}})},
			{fuzzKind(KindGrantFailed) | g1, fuzzPayload(GrantError{Error: "down", Permanent: true})}, {fuzzKind(KindFailed), `{}`},
			{fuzzKind(KindPosted), fuzzPayload(Posted{Audience: AudienceApprover, User: "U2", Channel: "D1", Ref: "1.2"})},
			{fuzzKind(KindPosted), `{"channel":""}`}, {fuzzKind(KindReviewed), `{}`}},
		{{fuzzKind(KindSubmitted), `{"targets":[]}`}, {fuzzKind(KindSubmitted) | 1<<5, submitted}, {fuzzKind(KindApproval), `{"stage":-1}`},
			{fuzzKind(KindApproval), `{"stage":1e99}`}, {fuzzKind(KindApproval), `[`}, {31, `{}`}},
		{{fuzzKind(KindTimedOut), `{}`}, {fuzzKind(KindGrantActive) | 3<<6, `null`}},
	}
	for _, s := range seeds {
		var kinds []byte
		var payloads []string
		for _, st := range s {
			kinds = append(kinds, st.kind)
			payloads = append(payloads, st.payload)
		}
		f.Add(kinds, strings.Join(payloads, "\n"))
	}
	f.Fuzz(func(t *testing.T, steps []byte, payloads string) {
		lines := strings.Split(payloads, "\n")
		var r Request
		for i, b := range steps {
			e := Event{Seq: uint64(i + 1), Actor: "U1", RequestID: "r1", Time: t0.Add(time.Duration(i) * time.Minute)}
			if k := int(b & 31); k < len(fuzzKinds) {
				e.Kind = fuzzKinds[k]
			} else {
				e.Kind = "request.unknown"
			}
			if b&(1<<5) != 0 {
				e.RequestID = "r2"
			}
			e.GrantID = []string{"g1", "g2", "g3", ""}[b>>6]
			if i < len(lines) {
				e.Payload = json.RawMessage(lines[i])
			}
			before := r.Clone()
			err := ApplyEvent(&r, &e)
			if err != nil {
				if !errors.Is(err, ErrTransition) {
					t.Fatalf("event %d (%s): error %v does not match ErrTransition", i, e.Kind, err)
				}
				if !reflect.DeepEqual(r, before) {
					t.Fatalf("event %d (%s) was refused (%v) but changed the request:\nbefore %+v\nafter  %+v", i, e.Kind, err, before, r)
				}
				continue
			}
			again := before.Clone()
			if err := ApplyEvent(&again, &e); err != nil || !reflect.DeepEqual(again, r) {
				t.Fatalf("event %d (%s) applied twice to the same state gave different results (%v)", i, e.Kind, err)
			}
			if e.Kind == KindRefused && !reflect.DeepEqual(r, before) {
				t.Fatalf("a request.refused event changed the request")
			}
			if before.ID != "" && r.ID != before.ID {
				t.Fatalf("event %d (%s) changed the request id from %q to %q", i, e.Kind, before.ID, r.ID)
			}
			if before.ID != "" && before.State.Closed() && r.State == RequestPending {
				t.Fatalf("event %d (%s) reopened a %s request", i, e.Kind, before.State)
			}
			if r.Stage < 0 || r.Stage > len(r.Stages) {
				t.Fatalf("event %d (%s) left the current stage at %d of %d", i, e.Kind, r.Stage, len(r.Stages))
			}
		}
	})
}

// FuzzCondition compiles arbitrary text as a condition and evaluates what
// compiles against fixed facts. Nothing may panic; an evaluation that
// succeeds stays within ConditionCostLimit, and one that does not is
// stopped by the cost limit or fails on its own, not by the deadline.
func FuzzCondition(f *testing.F) {
	for _, s := range []string{
		`"oncall" in requester.groups && request.duration <= duration("6h")`,
		`true`, `1`, `request.justification.size() > 10`,
		`item.labels["env"] == "prod"`, `item.labels.missing == "x"`,
		`requester.manager == beneficiary.id || request.on_behalf`,
		`now > timestamp("2024-01-01T00:00:00Z") && now.getHours() < 18`,
		`request.justification.matches("^[A-Z]+-[0-9]+$")`, `request.ticket.matches("(")`,
		`[1,2,3].all(x, [1,2,3].all(y, [1,2,3].exists(z, x + y + z > 0)))`,
		`[1,2,3,4,5,6,7,8,9,10].map(a, [1,2,3,4,5,6,7,8,9,10].map(b, [1,2,3,4,5,6,7,8,9,10].map(c, [1,2,3,4,5,6,7,8,9,10].map(d, a*b*c*d)))).size() > 0`,
		`"abc".lowerAscii().upperAscii().split("b").join("-") == "A-C"`,
		`requester.email.endsWith("@example.com") && item.owners.exists(o, o == requester.id)`,
		`1 / 0 == 1`, `int("x") == 1`, `request.duration > duration("-1h")`,
		`requester.grops`, "\"\xff\"", `(((((((((((((((((((((((((true)))))))))))))))))))))))))`, ``, ` `,
	} {
		f.Add(s)
	}
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	person := PersonFacts{ID: "U1", Email: "ana@example.com", Manager: "U2", Groups: []string{"eng", "oncall"}}
	facts := Facts{
		Request:     RequestFacts{Duration: 2 * time.Hour, Justification: "INC-42 database is down", Ticket: "INC-42"},
		Requester:   person,
		Beneficiary: person,
		Item: ItemFacts{ID: "db", Name: "Database", Kind: "entitlement", Labels: map[string]string{"env": "prod"},
			Owners: []string{"U3"}, Connectors: []string{"pg"}},
		Now: now,
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := CompileCondition(text)
		if err != nil {
			var ce *ConditionError
			if !errors.As(err, &ce) && !strings.HasPrefix(err.Error(), "condition environment") {
				t.Fatalf("CompileCondition(%q) failed with %T, not a *ConditionError: %v", text, err, err)
			}
			return
		}
		if c.String() != text {
			t.Fatalf("String() = %q, want %q", c.String(), text)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, details, err := c.program.ContextEval(ctx, map[string]any{
			"request": facts.Request, "requester": facts.Requester, "beneficiary": facts.Beneficiary, "item": facts.Item, "now": facts.Now,
		})
		if ctx.Err() != nil {
			t.Fatalf("condition %q ran until the deadline; the cost limit did not stop it", text)
		}
		if err == nil && details != nil {
			if cost := details.ActualCost(); cost != nil && *cost > ConditionCostLimit {
				t.Fatalf("condition %q cost %d, over the limit of %d", text, *cost, ConditionCostLimit)
			}
		}
		// Eval itself must agree: no panic, and an error is never a true.
		if ok, err := c.Eval(context.Background(), facts); err != nil && ok {
			t.Fatalf("Eval(%q) = true with an error: %v", text, err)
		}
	})
}
