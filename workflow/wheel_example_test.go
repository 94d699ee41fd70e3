package workflow_test

import (
	"fmt"
	"time"

	"github.com/latchhq/latch/workflow"
)

func ExampleWheel() {
	start := time.Date(2025, 1, 6, 9, 0, 0, 0, time.UTC)
	w := workflow.NewWheel(start, workflow.DefaultTick)

	grant := [16]byte{0x01, 0x93} // a grant's UUID
	expiry := workflow.Deadline{Kind: workflow.DeadlineExpiry, ID: grant}
	warn := workflow.Deadline{Kind: workflow.DeadlineWarn, ID: grant}
	w.Schedule(warn, start.Add(50*time.Minute))
	w.Schedule(expiry, start.Add(time.Hour))

	// The grant is extended by an hour: scheduling the same deadline again
	// replaces the earlier time.
	w.Schedule(expiry, start.Add(2*time.Hour))

	w.Advance(start.Add(3*time.Hour), func(d workflow.Deadline, due time.Time) {
		fmt.Println(d.Kind, due.Format(time.Kitchen))
	})
	// Output:
	// warn 9:50AM
	// expiry 11:00AM
}
