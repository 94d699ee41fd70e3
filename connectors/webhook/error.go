package webhook

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrInvalidConfig is wrapped by every error New returns.
var ErrInvalidConfig = errors.New("invalid webhook connector configuration")

// Error is the failure of one call of the receiver. Grant and Revoke
// return it, marked with workflow.Permanent when retrying cannot fix it;
// callers find it with errors.As.
type Error struct {
	Connector string // the connector's name
	Action    string // "grant" or "revoke"
	Status    int    // the response's status code, or 0 if there was none
	Body      string // the tail of the response's body: at most 2 KiB, valid UTF-8, trimmed
	TimedOut  bool   // the call was abandoned because it ran out of time

	// Err is the underlying cause, if any: why the request could not be
	// sent or the response read, context.DeadlineExceeded or
	// context.Canceled, or why a successful response was refused.
	Err error

	timeout time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "webhook connector %q: %s: ", e.Connector, e.Action)
	switch {
	case e.TimedOut:
		fmt.Fprintf(&b, "no response within %s", e.timeout)
	case e.Status != 0 && e.Err != nil:
		fmt.Fprintf(&b, "status %d: %v", e.Status, e.Err)
	case e.Status != 0:
		fmt.Fprintf(&b, "status %d", e.Status)
	case errors.Is(e.Err, context.Canceled) || errors.Is(e.Err, context.DeadlineExceeded):
		fmt.Fprintf(&b, "abandoned: %v", e.Err)
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString("failed")
	}
	if e.Body != "" {
		b.WriteString(": ")
		b.WriteString(e.Body)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }
