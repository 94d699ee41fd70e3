package webhook_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/latchhq/latch/connectors/webhook"
)

// BenchmarkGrantRevoke times a grant and a revoke against a receiver on
// loopback over TLS that verifies every signature.
func BenchmarkGrantRevoke(b *testing.B) {
	r := newReceiver(b)
	conn := connector(b, r.srv, webhook.Config{})
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		a := access(jane, "readers")
		a.GrantID = fmt.Sprintf("grant-%d", i)
		start := time.Now()
		if _, err := conn.Grant(b.Context(), a); err != nil {
			b.Fatal(err)
		}
		if err := conn.Revoke(b.Context(), a); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(ds)
	at := func(q float64) float64 { return float64(ds[int(q*float64(len(ds)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}
