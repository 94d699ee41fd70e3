package workflow

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses a duration as people and the configuration write them: Go
// syntax with an optional leading number of days, such as "45m", "6h",
// "7d" or "1d12h".
func ParseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("invalid duration %q; write a number and a unit (s, m, h, d), such as 90s, 15m, 6h, 7d or 1d12h", s)
	days, rest, hasDays := strings.Cut(strings.TrimSpace(s), "d")
	if !hasDays {
		d, err := time.ParseDuration(days)
		if err != nil {
			return 0, bad
		}
		return d, nil
	}
	n, err := strconv.Atoi(days)
	if err != nil || n < 0 || n > 36500 {
		return 0, bad
	}
	d := time.Duration(n) * 24 * time.Hour
	if rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil || r < 0 {
			return 0, bad
		}
		d += r
	}
	return d, nil
}

// FormatDuration writes a duration the way people and the configuration
// write them: 90s, 15m, 14h, 1d12h (sub-second durations as Go does).
func FormatDuration(d time.Duration) string {
	if d < 0 {
		return "-" + FormatDuration(-d)
	}
	if d == 0 || d%time.Second != 0 {
		return d.String()
	}
	var b strings.Builder
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.unit; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.unit
		}
	}
	return b.String()
}
