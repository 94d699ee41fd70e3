package exec

import "time"

// TimeoutOf returns how long c lets the command run.
func TimeoutOf(c *Connector) time.Duration { return c.timeout }

// Limits on what is kept of the command's output.
const (
	MaxStdout = maxStdout
	MaxStderr = maxStderr
)
