package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/latchhq/latch/connectors/postgres"
)

// direct makes the connector reach the server without the proxy.
func direct(srv *server) func(*postgres.Config) {
	return func(c *postgres.Config) { c.Port = srv.Port }
}

// BenchmarkGrantRevoke times one Grant and Revoke round trip against the
// server on loopback.
func BenchmarkGrantRevoke(b *testing.B) {
	for _, mode := range []postgres.Mode{postgres.ModeRole, postgres.ModeEphemeral} {
		b.Run("mode="+string(mode), func(b *testing.B) {
			e := newEnv(b, mode, direct(testServer(b)))
			ctx := b.Context()
			durations := make([]time.Duration, 0, b.N)
			for i := range b.N {
				a := e.access(jane, fmt.Sprint("bench-", i))
				start := time.Now()
				if _, err := e.conn.Grant(ctx, a); err != nil {
					b.Fatalf("Grant: %v", err)
				}
				if err := e.conn.Revoke(ctx, a); err != nil {
					b.Fatalf("Revoke: %v", err)
				}
				durations = append(durations, time.Since(start))
			}
			reportPercentiles(b, durations)
		})
	}
}

// BenchmarkRevokeTerminatesSession times, for an ephemeral grant with a
// session running a query, from the call of Revoke to the moment the
// session's client sees its query fail.
func BenchmarkRevokeTerminatesSession(b *testing.B) {
	srv := testServer(b)
	e := newEnv(b, postgres.ModeEphemeral, direct(srv))
	durations := make([]time.Duration, 0, b.N)
	b.StopTimer()
	for i := range b.N {
		durations = append(durations, revokeSession(b, srv, e, fmt.Sprint("bench-session-", i)))
	}
	reportPercentiles(b, durations)
}

// revokeSession grants jane ephemeral access under grant, opens a session
// running a long query, and returns how long after the call of Revoke the
// query failed. The benchmark's timer runs during the revoke only.
func revokeSession(b *testing.B, srv *server, e *env, grant string) time.Duration {
	b.Helper()
	ctx := b.Context()
	a := e.access(jane, grant)
	g, err := e.conn.Grant(ctx, a)
	if err != nil {
		b.Fatalf("Grant: %v", err)
	}
	user, password := credentials(b, g)
	conn, err := srv.connect(ctx, user, password, database)
	if err != nil {
		b.Fatalf("log in as %s: %v", user, err)
	}
	queryCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var (
		queryErr error
		ended    time.Time
	)
	go func() {
		defer close(done)
		_, queryErr = conn.Exec(queryCtx, "SELECT pg_sleep(60)")
		ended = time.Now()
	}()
	defer func() {
		cancel()
		<-done
		conn.Close(context.Background())
	}()
	srv.waitActive(b, user, 1)

	b.StartTimer()
	start := time.Now()
	if err := e.conn.Revoke(ctx, a); err != nil {
		b.Fatalf("Revoke: %v", err)
	}
	<-done
	b.StopTimer()
	if queryErr == nil {
		b.Fatal("the session's query completed")
	}
	return ended.Sub(start)
}

// reportPercentiles reports the 50th and 99th percentiles of durations in
// milliseconds.
func reportPercentiles(b *testing.B, durations []time.Duration) {
	b.Helper()
	if len(durations) == 0 {
		return
	}
	slices.Sort(durations)
	at := func(p float64) float64 {
		i := min(int(float64(len(durations))*p), len(durations)-1)
		return float64(durations[i].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}
