package workflow

import (
	"errors"
	"fmt"
	"testing"
)

func TestPermanent(t *testing.T) {
	base := errors.New("role does not exist")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", base, false},
		{"marked", Permanent(base), true},
		{"marked and wrapped", fmt.Errorf("grant readonly: %w", Permanent(base)), true},
	}
	for _, tt := range tests {
		if got := IsPermanent(tt.err); got != tt.want {
			t.Errorf("%s: IsPermanent = %v, want %v", tt.name, got, tt.want)
		}
	}
	if Permanent(nil) != nil {
		t.Errorf("Permanent(nil) is not nil")
	}
	if err := Permanent(base); !errors.Is(err, base) || err.Error() != base.Error() {
		t.Errorf("Permanent hides the error it marks: %v", err)
	}
}
