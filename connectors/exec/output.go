package exec

import (
	"strings"
	"unicode/utf8"
)

const (
	maxStdout = 16 << 10 // what is kept of a grant's standard output
	maxStderr = 2 << 10  // what is kept of the end of standard error

	factPrefix = "latch-fact "
)

// headBuffer keeps the first max bytes written to it and discards the rest,
// so that a command writing more never blocks.
type headBuffer struct {
	max int
	buf []byte
}

func (h *headBuffer) Write(p []byte) (int, error) {
	if room := h.max - len(h.buf); room > 0 {
		h.buf = append(h.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// text returns what was kept, cut back to whole UTF-8 characters if the
// limit fell inside one.
func (h *headBuffer) text() string {
	b := h.buf
	if len(b) == h.max {
		b = trimPartialRune(b, false)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte // the last max bytes written, or a few more
	cut bool   // bytes before buf were dropped
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max {
		t.buf = t.buf[:copy(t.buf, t.buf[len(t.buf)-t.max:])]
		t.cut = true
	}
	return len(p), nil
}

// text returns what was kept, as valid UTF-8 with surrounding white space
// trimmed; a character cut in two at the start is dropped.
func (t *tailBuffer) text() string {
	b, cut := t.buf, t.cut
	if len(b) > t.max {
		b, cut = b[len(b)-t.max:], true
	}
	if cut {
		b = trimPartialRune(b, true)
	}
	return strings.TrimSpace(strings.ToValidUTF8(string(b), "\uFFFD"))
}

// trimPartialRune drops the bytes of a UTF-8 character that a cut split:
// at the start of b (leading continuation bytes) or at its end.
func trimPartialRune(b []byte, atStart bool) []byte {
	if atStart {
		for i := 0; i < len(b) && i < utf8.UTFMax; i++ {
			if utf8.RuneStart(b[i]) {
				return b[i:]
			}
		}
		return b
	}
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			return b
		}
	}
	return b
}

// splitOutput separates a grant's standard output into the message for the
// beneficiary and the facts for the audit log (see the package doc).
func splitOutput(out string) (message string, facts map[string]string) {
	var kept []string
	for line := range strings.Lines(out) {
		fact, ok := strings.CutPrefix(line, factPrefix)
		if !ok {
			kept = append(kept, line)
			continue
		}
		key, value, _ := strings.Cut(fact, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if key == "" {
			continue
		}
		if facts == nil {
			facts = make(map[string]string)
		}
		facts[key] = value
	}
	return strings.TrimSpace(strings.Join(kept, "")), facts
}
