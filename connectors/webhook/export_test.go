package webhook

import "time"

// SetNow makes c sign its requests with the times now returns.
func SetNow(c *Connector, now func() time.Time) { c.now = now }
