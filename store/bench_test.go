package store

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchhq/latch/workflow"
)

// benchEvent is a typical event: a submitted request with a short payload.
func benchEvent(i int) workflow.Event {
	return workflow.Event{
		Kind:      "request.submitted",
		Actor:     "U07ALICE01",
		RequestID: fmt.Sprintf("0193a5c2-7d4e-7f00-8000-%012d", i),
		Payload:   []byte(`{"item":"prod-db-readonly","duration":"4h","justification":"investigating INC-4211: slow queries on orders"}`),
	}
}

// reportLatencies reports the p50, p99 and max of lat in microseconds.
func reportLatencies(b *testing.B, lat []time.Duration) {
	b.Helper()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(pct(1), "max-µs")
}

// BenchmarkAppendSerial appends one event at a time from one goroutine,
// each Append durable before the next starts.
func BenchmarkAppendSerial(b *testing.B) {
	s, _ := openTemp(b, Options{})
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := s.Append(ctx, benchEvent(i)); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	reportLatencies(b, lat)
}

// BenchmarkAppendConcurrent appends one event per call from 64 goroutines;
// the writer commits what is queued in one transaction.
func BenchmarkAppendConcurrent(b *testing.B) {
	const writers = 64
	s, _ := openTemp(b, Options{})
	ctx := context.Background()
	var wg sync.WaitGroup
	lats := make([][]time.Duration, writers)
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < writers; w++ {
		n := b.N / writers
		if w < b.N%writers {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, n)
			for i := 0; i < n; i++ {
				t0 := time.Now()
				if _, err := s.Append(ctx, benchEvent(i)); err != nil {
					b.Error(err)
					return
				}
				lat = append(lat, time.Since(t0))
			}
			lats[w] = lat
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	reportLatencies(b, slices.Concat(lats...))
}

var (
	bigOnce sync.Once
	bigDir  string
	bigPath string
	bigErr  error
)

// millionEvents is the size of the log that Verify and Export read.
const millionEvents = 1_000_000

// bigStore returns the path of a closed store holding a million events,
// built once per test binary.
func bigStore(b *testing.B) string {
	b.Helper()
	bigOnce.Do(func() {
		bigDir, bigErr = os.MkdirTemp("", "latch-bench-")
		if bigErr != nil {
			return
		}
		bigPath = filepath.Join(bigDir, "latch.db")
		var s *Store
		if s, bigErr = Open(bigPath, Options{}); bigErr != nil {
			return
		}
		defer s.Close()
		batch := make([]workflow.Event, 0, 5000)
		for i := 0; i < millionEvents; i++ {
			batch = append(batch, benchEvent(i))
			if len(batch) == cap(batch) {
				if _, bigErr = s.Append(context.Background(), batch...); bigErr != nil {
					return
				}
				batch = batch[:0]
			}
		}
	})
	if bigErr != nil {
		b.Fatal(bigErr)
	}
	return bigPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bigDir != "" {
		os.RemoveAll(bigDir)
	}
	os.Exit(code)
}

// BenchmarkVerify recomputes the chain of a million events.
func BenchmarkVerify(b *testing.B) {
	s, err := Open(bigStore(b), Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := s.Verify(context.Background())
		if err != nil || r.Count != millionEvents {
			b.Fatalf("Verify = %+v, %v", r, err)
		}
	}
	b.ReportMetric(float64(millionEvents)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// countingWriter discards what it is given and counts it.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

var _ io.Writer = (*countingWriter)(nil)

// peakHeap samples the live heap until stop is closed and returns the
// highest value seen.
func peakHeap(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-stop:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// BenchmarkExport exports the first 100,000 and then all 1,000,000 events
// as JSONL; the peak heap should be the same for both.
func BenchmarkExport(b *testing.B) {
	path := bigStore(b)
	for _, n := range []uint64{100_000, millionEvents} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			s, err := Open(path, Options{ReadOnly: true})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			runtime.GC()
			stop := make(chan struct{})
			peak := peakHeap(stop)
			w := &countingWriter{}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.Export(context.Background(), w, Filter{To: n}, FormatJSONL); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			close(stop)
			b.SetBytes(w.n / int64(b.N))
			b.ReportMetric(float64(<-peak)/(1<<20), "peak-heap-MB")
		})
	}
}
