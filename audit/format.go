package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// Format says how a sink writes each event.
type Format string

// The formats of a sink.
const (
	// FormatLatch writes events as `latch audit export` does.
	FormatLatch Format = "latch"
	// FormatOCSF writes each event as an OCSF event; see the package
	// documentation for the mapping.
	FormatOCSF Format = "ocsf"
)

// ErrFormat is returned for a format that is neither FormatLatch nor
// FormatOCSF.
var ErrFormat = errors.New("unknown audit format")

// Requests finds the request an event belongs to, which the OCSF format
// reads the beneficiary and the targets from. *store.Store is one.
type Requests interface {
	Request(id string) (workflow.Request, bool, error)
}

// encoder turns batches of events into JSON lines.
type encoder struct {
	format   Format
	requests Requests // may be nil
}

func newEncoder(f Format, r Requests) (encoder, error) {
	switch f {
	case "":
		f = FormatLatch
	case FormatLatch, FormatOCSF:
	default:
		return encoder{}, fmt.Errorf("%w %q (use %s or %s)", ErrFormat, string(f), FormatLatch, FormatOCSF)
	}
	return encoder{format: f, requests: r}, nil
}

// lines returns events as JSON lines, one per event, each ended by a line
// feed.
func (c encoder) lines(events []workflow.Event) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i := range events {
		e := &events[i]
		var v any
		if c.format == FormatOCSF {
			o, err := toOCSF(e, c.requests)
			if err != nil {
				return nil, fmt.Errorf("event %d: %w", e.Seq, err)
			}
			v = o
		} else {
			v = store.NewExportedEvent(e)
		}
		if err := enc.Encode(v); err != nil {
			return nil, fmt.Errorf("event %d: %w", e.Seq, err)
		}
	}
	return buf.Bytes(), nil
}
