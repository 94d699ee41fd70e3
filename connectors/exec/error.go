package exec

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"
)

// ErrInvalidConfig is wrapped by every error New returns.
var ErrInvalidConfig = errors.New("invalid exec connector configuration")

// ErrInvalidInput marks an access that cannot be handed to the command, such
// as two inputs whose names map to the same variable, or a value holding a
// NUL byte. Such an error is permanent and the command is not run.
var ErrInvalidInput = errors.New("access cannot be passed to the command")

// ExitPermanent is the exit status (EX_DATAERR from sysexits.h) by which the
// command reports a failure that retrying cannot fix.
const ExitPermanent = 65

// Error is the failure of one run of the command. Grant and Revoke return
// it, marked with workflow.Permanent when the command exited with
// ExitPermanent; callers find it with errors.As.
type Error struct {
	Connector string         // the connector's name
	Action    string         // "grant" or "revoke"
	ExitCode  int            // the exit status, or -1 if the command was killed or did not start
	Signal    syscall.Signal // the signal that killed the command, or 0
	TimedOut  bool           // the command was killed because it ran out of time
	Stderr    string         // the tail of its standard error: at most 2 KiB, valid UTF-8, trimmed

	// Err is the underlying cause: an *os/exec.ExitError, the reason the
	// command could not start, or context.DeadlineExceeded or
	// context.Canceled when it was killed.
	Err error

	timeout time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "exec connector %q: %s: ", e.Connector, e.Action)
	switch {
	case e.TimedOut:
		fmt.Fprintf(&b, "timed out after %s and was killed", e.timeout)
	case e.Signal != 0 && (errors.Is(e.Err, context.Canceled) || errors.Is(e.Err, context.DeadlineExceeded)):
		fmt.Fprintf(&b, "stopped (%v) and was killed", e.Err)
	case e.Signal != 0:
		fmt.Fprintf(&b, "killed by signal %d (%v)", int(e.Signal), e.Signal)
	case e.ExitCode >= 0:
		fmt.Fprintf(&b, "exit status %d", e.ExitCode)
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString("failed")
	}
	if e.Stderr != "" {
		b.WriteString(": ")
		b.WriteString(e.Stderr)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }
