package ldap_test

import (
	"slices"
	"testing"
	"time"
)

// BenchmarkGrantRevoke times one Grant and the Revoke that undoes it
// against slapd on loopback, over a kept connection, and reports the
// round trip's median and 99th percentile.
func BenchmarkGrantRevoke(b *testing.B) {
	s := slapd(b)
	group := s.newGroup(b, scratchDN, groupOfNames)
	c := newConnector(b, "ldap://"+s.addr, "member")
	a := access(jane, group)
	var took []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := c.Grant(b.Context(), a); err != nil {
			b.Fatalf("Grant: %v", err)
		}
		if err := c.Revoke(b.Context(), a); err != nil {
			b.Fatalf("Revoke: %v", err)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	at := func(p float64) float64 {
		i := min(int(float64(len(took))*p), len(took)-1)
		return float64(took[i]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}
