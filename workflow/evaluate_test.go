package workflow

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// evalFixture is a small organisation: Alice (on call) and Bob report to
// Dana; Carol and Eve are DBAs; Sam is in security.
func evalFixture(t *testing.T) (*StaticDirectory, Item) {
	t.Helper()
	dir, err := NewStaticDirectory([]User{
		{SlackID: "UALICE", Email: "alice@example.com", Manager: "UDANA", Groups: []string{"eng", "oncall"}},
		{SlackID: "UBOB", Email: "bob@example.com", Manager: "UDANA", Groups: []string{"eng"}},
		{SlackID: "UCAROL", Email: "carol@example.com", Manager: "UDANA", Groups: []string{"eng"}},
		{SlackID: "UDANA", Email: "dana@example.com", Groups: []string{"eng"}},
		{SlackID: "UEVE", Email: "eve@example.com", Groups: []string{"dba"}},
		{SlackID: "USAM", Email: "sam@example.com", Groups: []string{"security"}},
	}, []Group{
		{Name: "eng"}, {Name: "oncall"}, {Name: "security"},
		{Name: "dba", Members: []string{"UCAROL"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	it := Item{ID: "prod-db", Name: "Production database", Owners: []string{"UCAROL", "UEVE"}, Kind: KindEntitlement,
		Targets: []Target{{Connector: "pg", Entitlement: "readonly"}}, Policy: "prod"}
	return dir, it
}

func user(t *testing.T, dir *StaticDirectory, id string) User {
	t.Helper()
	u, ok := dir.User(id)
	if !ok {
		t.Fatalf("no user %s", id)
	}
	return u
}

func mustCondition(t *testing.T, text string) *Condition {
	t.Helper()
	c, err := CompileCondition(text)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCheckSubmission(t *testing.T) {
	dir, it := evalFixture(t)
	base := Policy{
		Name:                   "prod",
		VisibleTo:              []string{"eng"},
		Duration:               DurationRules{Default: time.Hour, Min: 15 * time.Minute, Max: 8 * time.Hour},
		JustificationMinLength: 10,
	}
	ok := Submission{Item: it.ID, Requester: "UALICE", Justification: "INC-4211 slow queries"}
	tests := []struct {
		name         string
		policy       func(p *Policy)
		requester    string
		beneficiary  string
		edit         func(s *Submission)
		wantReason   RefusalReason
		wantDuration time.Duration
	}{
		{"default duration", nil, "UALICE", "UALICE", nil, "", time.Hour},
		{"chosen duration", nil, "UALICE", "UALICE", func(s *Submission) { s.Duration = 8 * time.Hour }, "", 8 * time.Hour},
		{"too long", nil, "UALICE", "UALICE", func(s *Submission) { s.Duration = 9 * time.Hour }, RefusedDuration, 0},
		{"too short", nil, "UALICE", "UALICE", func(s *Submission) { s.Duration = time.Minute }, RefusedDuration, 0},
		{"justification too short", nil, "UALICE", "UALICE", func(s *Submission) { s.Justification = "because" }, RefusedJustification, 0},
		{"no justification", func(p *Policy) { p.JustificationMinLength = 0 }, "UALICE", "UALICE", func(s *Submission) { s.Justification = "  " }, RefusedJustification, 0},
		{"requester outside visible_to", nil, "USAM", "USAM", nil, RefusedNotVisible, 0},
		{"visible condition false", func(p *Policy) { p.Visible = mustCondition(t, `"oncall" in requester.groups`) }, "UBOB", "UBOB", nil, RefusedNotVisible, 0},
		{"visible condition true", func(p *Policy) { p.Visible = mustCondition(t, `"oncall" in requester.groups`) }, "UALICE", "UALICE", nil, "", time.Hour},
		{"for someone else, not allowed", nil, "UDANA", "UBOB", nil, RefusedOnBehalf, 0},
		{"for a report, as their manager", func(p *Policy) { p.OnBehalf = OnBehalfRules{Allowed: true, Manager: true} }, "UDANA", "UBOB", nil, "", time.Hour},
		{"for a peer, manager rule only", func(p *Policy) { p.OnBehalf = OnBehalfRules{Allowed: true, Manager: true} }, "UALICE", "UBOB", nil, RefusedOnBehalf, 0},
		{"for anyone", func(p *Policy) { p.OnBehalf = OnBehalfRules{Allowed: true, Anyone: true} }, "UALICE", "UBOB", nil, "", time.Hour},
		{"by group", func(p *Policy) { p.OnBehalf = OnBehalfRules{Allowed: true, Groups: []string{"oncall"}} }, "UALICE", "UBOB", nil, "", time.Hour},
		{"for someone who may not see it", func(p *Policy) { p.OnBehalf = OnBehalfRules{Allowed: true, Anyone: true} }, "UALICE", "USAM", nil, RefusedNotVisible, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base
			if tt.policy != nil {
				tt.policy(&p)
			}
			s := ok
			s.Requester, s.Beneficiary = tt.requester, tt.beneficiary
			if tt.edit != nil {
				tt.edit(&s)
			}
			d, err := CheckSubmission(context.Background(), &p, it, user(t, dir, tt.requester), user(t, dir, tt.beneficiary), s, time.Now())
			if got := RefusalOf(err); got != tt.wantReason {
				t.Fatalf("got refusal %q (%v), want %q", got, err, tt.wantReason)
			}
			if err != nil && !errors.Is(err, ErrRefused) {
				t.Errorf("a refusal does not match ErrRefused: %v", err)
			}
			if d != tt.wantDuration {
				t.Errorf("duration %v, want %v", d, tt.wantDuration)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	dir, it := evalFixture(t)
	p := Policy{
		Name:        "prod-ro",
		AutoReject:  mustCondition(t, `request.justification.contains("test")`),
		AutoApprove: mustCondition(t, `"oncall" in requester.groups && request.duration <= duration("6h")`),
	}
	facts := func(who string, d time.Duration, why string) Facts {
		u := user(t, dir, who)
		return Facts{Request: RequestFacts{Duration: d, Justification: why}, Requester: PersonFactsOf(u), Beneficiary: PersonFactsOf(u), Item: ItemFactsOf(it), Now: time.Now()}
	}
	tests := []struct {
		name string
		f    Facts
		want Decision
	}{
		{"on call, short", facts("UALICE", 4*time.Hour, "INC-1"), AutoApprove},
		{"on call, too long", facts("UALICE", 7*time.Hour, "INC-1"), AskApprovers},
		{"not on call", facts("UBOB", time.Hour, "INC-1"), AskApprovers},
		{"rejected before approved", facts("UALICE", time.Hour, "just a test"), AutoReject},
	}
	for _, tt := range tests {
		got, cond, err := Decide(context.Background(), &p, tt.f)
		if err != nil || got != tt.want {
			t.Errorf("%s: Decide = %v, %v; want %v", tt.name, got, err, tt.want)
		}
		if got != AskApprovers && cond == "" {
			t.Errorf("%s: no condition named for the decision", tt.name)
		}
	}
}

// fakeUserGroups adds Slack user groups to a static directory.
type fakeUserGroups struct {
	*StaticDirectory
	groups map[string][]string
}

func (d fakeUserGroups) UserGroupMembers(_ context.Context, handle string) ([]string, error) {
	m, ok := d.groups[handle]
	if !ok {
		return nil, ErrUnknownGroup
	}
	return m, nil
}

func TestResolveStages(t *testing.T) {
	dir, it := evalFixture(t)
	stage := func(required int, approvers ...string) Stage {
		s := Stage{Name: "s", Required: required}
		for _, a := range approvers {
			ap, err := ParseApprover(a)
			if err != nil {
				t.Fatal(err)
			}
			s.Approvers = append(s.Approvers, ap)
		}
		return s
	}
	tests := []struct {
		name        string
		stages      []Stage
		self        bool
		fallback    []string
		requester   string
		beneficiary string
		want        string // approver sets, or the refusal reason
	}{
		{"manager then owners", []Stage{stage(1, "manager"), stage(1, "owners")}, false, nil, "UALICE", "UALICE", "[[UDANA] [UCAROL UEVE]]"},
		{"group and user, no repeats", []Stage{stage(2, "group:dba", "user:UEVE", "owners")}, false, nil, "UALICE", "UALICE", "[[UCAROL UEVE]]"},
		{"requester left out", []Stage{stage(1, "owners")}, false, nil, "UCAROL", "UCAROL", "[[UEVE]]"},
		{"requester kept when allowed", []Stage{stage(1, "owners")}, true, nil, "UCAROL", "UCAROL", "[[UCAROL UEVE]]"},
		{"beneficiary left out too", []Stage{stage(1, "owners", "manager")}, false, nil, "UDANA", "UCAROL", "[[UEVE]]"},
		{"no manager on record", []Stage{stage(1, "manager")}, false, nil, "UDANA", "UDANA", string(RefusedNoApprovers)},
		{"no manager, fallback asked", []Stage{stage(1, "manager")}, false, []string{"group:security"}, "UDANA", "UDANA", "[[USAM]]"},
		{"too few even with fallback", []Stage{stage(2, "owners")}, false, []string{"user:UCAROL"}, "UCAROL", "UCAROL", string(RefusedNoApprovers)},
		{"Slack user group", []Stage{stage(1, "usergroup:oncall-team")}, false, nil, "UBOB", "UBOB", "[[UALICE]]"},
	}
	ug := fakeUserGroups{dir, map[string][]string{"oncall-team": {"UALICE", "UBOB"}}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Policy{Name: "prod", Approval: Approval{Mode: Sequential, Stages: tt.stages}, AllowSelfApproval: tt.self}
			for _, f := range tt.fallback {
				a, _ := ParseApprover(f)
				p.Reminders.FallbackApprovers = append(p.Reminders.FallbackApprovers, a)
			}
			got, err := ResolveStages(context.Background(), ug, &p, it, user(t, dir, tt.requester), user(t, dir, tt.beneficiary))
			var s string
			if err != nil {
				s = string(RefusalOf(err))
			} else {
				var sets [][]string
				for _, st := range got {
					sets = append(sets, st.Approvers)
				}
				s = fmt.Sprint(sets)
			}
			if s != tt.want {
				t.Errorf("got %s (%v), want %s", s, err, tt.want)
			}
		})
	}
	// Without a directory that knows Slack user groups, such a stage is an
	// error, not an empty stage.
	p := Policy{Name: "prod", Approval: Approval{Stages: []Stage{stage(1, "usergroup:oncall-team")}}}
	if _, err := ResolveStages(context.Background(), dir, &p, it, user(t, dir, "UBOB"), user(t, dir, "UBOB")); err == nil || RefusalOf(err) != "" {
		t.Errorf("usergroup approvers without a Slack directory = %v, want an error that is not a refusal", err)
	}
}
