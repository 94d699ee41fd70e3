package config

import (
	"testing"
)

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
