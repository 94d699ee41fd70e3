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

func TestClosest(t *testing.T) {
	keys := []string{"approval", "auto_approve", "auto_reject", "description", "duration", "visible", "visible_to"}
	tests := []struct {
		word, want string
	}{
		{"aproval", "approval"},
		{"visble_to", "visible_to"},
		{"Duration", "duration"},
		{"duration", ""},
		{"owners", ""},
		{"x", ""},
	}
	for _, tt := range tests {
		if got := closest(tt.word, keys); got != tt.want {
			t.Errorf("closest(%q) = %q, want %q", tt.word, got, tt.want)
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

func TestFmtDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{90 * time.Second, "1m30s"},
		{15 * time.Minute, "15m"},
		{14 * time.Hour, "14h"},
		{36 * time.Hour, "1d12h"},
		{7 * 24 * time.Hour, "7d"},
		{-time.Hour, "-1h"},
		{1500 * time.Millisecond, "1.5s"},
	}
	for _, tt := range tests {
		if got := fmtDuration(tt.in); got != tt.want {
			t.Errorf("fmtDuration(%v) = %q, want %q", tt.in, got, tt.want)
		}
		if d, err := ParseDuration(fmtDuration(tt.in)); tt.in >= 0 && (err != nil || d != tt.in) {
			t.Errorf("ParseDuration(fmtDuration(%v)) = %v, %v; want it back", tt.in, d, err)
		}
	}
}

func TestPlural(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want string
	}{{0, "0 approvals"}, {1, "1 approval"}, {2, "2 approvals"}} {
		if got := plural(tt.n, "approval"); got != tt.want {
			t.Errorf("plural(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
