package workflow

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestParseApprover(t *testing.T) {
	tests := []struct {
		text  string
		want  Approver
		fault ApproverFault // zero for valid text
	}{
		{"manager", Approver{Kind: ApproverManager}, 0},
		{"owners", Approver{Kind: ApproverOwners}, 0},
		{"user:U0123", Approver{Kind: ApproverUser, Ref: "U0123"}, 0},
		{"user:alice@example.com", Approver{Kind: ApproverUser, Ref: "alice@example.com"}, 0},
		{"group:dba", Approver{Kind: ApproverGroup, Ref: "dba"}, 0},
		{" usergroup: oncall ", Approver{Kind: ApproverUserGroup, Ref: "oncall"}, 0},
		{"manager:U01", Approver{}, ApproverExtraRef},
		{"owners:", Approver{}, ApproverExtraRef},
		{"user:", Approver{}, ApproverNoRef},
		{"group", Approver{}, ApproverNoRef},
		{"boss", Approver{}, ApproverUnknownKind},
		{"", Approver{}, ApproverUnknownKind},
	}
	for _, tt := range tests {
		got, err := ParseApprover(tt.text)
		if tt.fault == 0 {
			if err != nil || got != tt.want {
				t.Errorf("ParseApprover(%q) = %+v, %v; want %+v", tt.text, got, err, tt.want)
			}
			continue
		}
		var ae *ApproverError
		if !errors.As(err, &ae) || !errors.Is(err, ErrApproverSyntax) {
			t.Errorf("ParseApprover(%q) error = %v, want an *ApproverError matching ErrApproverSyntax", tt.text, err)
			continue
		}
		if ae.Fault != tt.fault || ae.Text != tt.text {
			t.Errorf("ParseApprover(%q) error = %+v, want fault %d for that text", tt.text, ae, tt.fault)
		}
	}
}

func TestApproverStringRoundTrip(t *testing.T) {
	for _, text := range []string{"manager", "owners", "user:U0123", "group:dba", "usergroup:oncall"} {
		a, err := ParseApprover(text)
		if err != nil {
			t.Fatalf("ParseApprover(%q): %v", text, err)
		}
		if got := a.String(); got != text {
			t.Errorf("String() = %q, want %q", got, text)
		}
	}
}

func TestDeriveChoices(t *testing.T) {
	h := time.Hour
	tests := []struct {
		lo, def, hi time.Duration
		want        []time.Duration
	}{
		{15 * time.Minute, h, 4 * h, []time.Duration{15 * time.Minute, 30 * time.Minute, h, 2 * h, 4 * h}},
		{h, 3 * h, 6 * h, []time.Duration{h, 2 * h, 3 * h, 4 * h, 6 * h}},
		{h, h, h, []time.Duration{h}},
		{10 * time.Minute, 20 * time.Minute, 45 * time.Minute, []time.Duration{10 * time.Minute, 15 * time.Minute, 20 * time.Minute, 30 * time.Minute, 45 * time.Minute}},
	}
	for _, tt := range tests {
		if got := DeriveChoices(tt.lo, tt.def, tt.hi); !slices.Equal(got, tt.want) {
			t.Errorf("DeriveChoices(%v, %v, %v) = %v, want %v", tt.lo, tt.def, tt.hi, got, tt.want)
		}
	}
}

func TestDurationRulesAllows(t *testing.T) {
	r := DurationRules{Min: time.Hour, Max: 4 * time.Hour}
	for d, want := range map[time.Duration]bool{30 * time.Minute: false, time.Hour: true, 4 * time.Hour: true, 5 * time.Hour: false} {
		if got := r.Allows(d); got != want {
			t.Errorf("Allows(%v) = %v, want %v", d, got, want)
		}
	}
}
