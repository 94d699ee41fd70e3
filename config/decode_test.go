package config

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"90s", 90 * time.Second, false},
		{"15m", 15 * time.Minute, false},
		{"6h", 6 * time.Hour, false},
		{"7d", 7 * 24 * time.Hour, false},
		{"1d12h", 36 * time.Hour, false},
		{" 2d ", 48 * time.Hour, false},
		{"0s", 0, false},
		{"8x", 0, true},
		{"d", 0, true},
		{"1.5d", 0, true},
		{"-1d", 0, true},
		{"1d-1h", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestSuggestion(t *testing.T) {
	keys := []string{"approval", "auto_approve", "auto_reject", "description", "duration", "visible", "visible_to"}
	tests := []struct {
		word, want string
	}{
		{"aproval", `did you mean "approval"?`},
		{"visble_to", `did you mean "visible_to"?`},
		{"Duration", `did you mean "duration"?`},
		{"owners", ""},
		{"x", ""},
	}
	for _, tt := range tests {
		if got := suggestion(tt.word, keys); got != tt.want {
			t.Errorf("suggestion(%q) = %q, want %q", tt.word, got, tt.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"abc", "", 3},
		{"polcy", "policy", 1},
		{"kitten", "sitting", 3},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestKeyPath(t *testing.T) {
	tests := map[string]string{
		"catalogue.items[3].policy":                  "catalogue.items[3].policy",
		"policies[prod].approval.stages[0].required": "policies.prod.approval.stages[0].required",
		"catalogue.items[0].labels[env]":             "catalogue.items[0].labels.env",
		"":                                           "",
	}
	for in, want := range tests {
		if got := keyPath(in); got != want {
			t.Errorf("keyPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParentPath(t *testing.T) {
	tests := map[string]string{
		"a.b[2].c": "a.b[2]",
		"a.b[2]":   "a.b",
		"a":        "",
	}
	for in, want := range tests {
		if got := parentPath(in); got != want {
			t.Errorf("parentPath(%q) = %q, want %q", in, got, want)
		}
	}
}
