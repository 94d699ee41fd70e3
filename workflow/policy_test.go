package workflow

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestParseApprover(t *testing.T) {
	tests := []struct {
		text    string
		want    Approver
		wantErr bool
	}{
		{"manager", Approver{Kind: ApproverManager}, false},
		{"owners", Approver{Kind: ApproverOwners}, false},
		{"user:U0123", Approver{Kind: ApproverUser, Ref: "U0123"}, false},
		{"user:alice@example.com", Approver{Kind: ApproverUser, Ref: "alice@example.com"}, false},
		{"group:dba", Approver{Kind: ApproverGroup, Ref: "dba"}, false},
		{" usergroup: oncall ", Approver{Kind: ApproverUserGroup, Ref: "oncall"}, false},
		{"manager:U01", Approver{}, true},
		{"user:", Approver{}, true},
		{"group", Approver{}, true},
		{"boss", Approver{}, true},
		{"", Approver{}, true},
	}
	for _, tt := range tests {
		got, err := ParseApprover(tt.text)
		if tt.wantErr {
			if !errors.Is(err, ErrApproverSyntax) {
				t.Errorf("ParseApprover(%q) error = %v, want ErrApproverSyntax", tt.text, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseApprover(%q) = %+v, %v; want %+v", tt.text, got, err, tt.want)
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
