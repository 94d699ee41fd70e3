package ldap

import "time"

// TimeoutOf returns how long one call of c may take.
func TimeoutOf(c *Connector) time.Duration { return c.timeout }

// AttributeOf returns the group attribute c manages.
func AttributeOf(c *Connector) string { return c.attr }

// CacheTTLOf returns how long d keeps a result.
func CacheTTLOf(d *Directory) time.Duration { return d.ttl }
