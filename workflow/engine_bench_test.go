package workflow_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// The engine benchmarks run over the real bbolt store in a temporary
// directory, so that every commit is durable (fsync) as in production, and
// on the real clock, since they measure wall-clock time.

// timedTarget is a target that does nothing but note when the engine
// reached it: the time Grant was entered for each request, and how many
// times Revoke was entered.
type timedTarget struct {
	mu      sync.Mutex
	entered map[string]time.Time     // request id → when Grant was first entered
	reached map[string]chan struct{} // request id → closed when Grant is entered

	revokes     atomic.Int64
	revokesWant int64         // when revokes reaches it, lastRevoke is set and allRevoked closed
	lastRevoke  time.Time     // written once, before allRevoked is closed
	allRevoked  chan struct{} // nil unless revokesWant is set
}

func newTimedTarget() *timedTarget {
	return &timedTarget{entered: map[string]time.Time{}, reached: map[string]chan struct{}{}}
}

// expect prepares the signal that Grant was entered for a request.
func (f *timedTarget) expect(requestID string) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan struct{})
	f.reached[requestID] = ch
	return ch
}

func (f *timedTarget) Grant(_ context.Context, a workflow.Access) (workflow.Granted, error) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.entered[a.RequestID]; !ok {
		f.entered[a.RequestID] = now
		if ch, ok := f.reached[a.RequestID]; ok {
			close(ch)
		}
	}
	return workflow.Granted{Facts: map[string]string{"role": a.Entitlement}}, nil
}

func (f *timedTarget) Revoke(_ context.Context, a workflow.Access) error {
	now := time.Now()
	if n := f.revokes.Add(1); n == f.revokesWant && f.allRevoked != nil {
		f.lastRevoke = now
		close(f.allRevoked)
	}
	return nil
}

func (f *timedTarget) enteredAt(requestID string) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.entered[requestID]
}

// benchCatalogue holds the one item the benchmarks request: read-only
// access to a database, through the connector "pg", under policy.
func benchCatalogue(tb testing.TB, policy string) *workflow.Catalogue {
	tb.Helper()
	cat, err := workflow.NewCatalogue([]workflow.Item{{
		ID: "db-ro", Name: "Database read-only", Owners: []string{"UOWNER"}, Kind: workflow.KindEntitlement, Policy: policy,
		Targets: []workflow.Target{{Connector: "pg", Entitlement: "readonly"}},
	}})
	if err != nil {
		tb.Fatal(err)
	}
	return cat
}

var benchRules = workflow.DurationRules{Default: time.Hour, Min: 15 * time.Minute, Max: 8 * time.Hour}

// reportLatencies reports the p50, p99 and max of lat in milliseconds.
func reportLatencies(b *testing.B, lat []time.Duration) {
	b.Helper()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
	b.ReportMetric(at(1), "max-ms")
}

// BenchmarkApprove measures a final approval: from the call to
// Engine.Approve until the connector's Grant is entered. In between, the
// engine commits the vote, the stage's approval and the request's approval
// (one durable commit), and its provisioning worker commits the
// grant.provisioning intent (a second durable commit) before it calls the
// connector.
//
// Each request is submitted and approved by its first stage before the
// timer starts, so the timed approval is the one its last stage needs.
// Each approver waits until the connector is reached before approving the
// next request, as a person clicking one button after another would; with
// approvers=32, thirty-two of them do so at once and their commits share
// the store's group commits. Without idle, the provisioning worker of one
// request is still committing grant.active and request.active while the
// next approval runs, as under a steady stream of clicks; with idle, the
// approver also waits until the engine has nothing left to do, which
// measures the path alone. approvals/s counts final approvals that reached
// the connector per second of the run.
func BenchmarkApprove(b *testing.B) {
	for _, bc := range []struct {
		approvers int
		idle      bool
	}{{1, true}, {1, false}, {32, false}} {
		name := fmt.Sprintf("approvers=%d", bc.approvers)
		if bc.idle {
			name += "/idle"
		}
		b.Run(name, func(b *testing.B) { benchmarkApprove(b, bc.approvers, bc.idle) })
	}
}

func benchmarkApprove(b *testing.B, deciders int, idle bool) {
	dir, err := workflow.NewStaticDirectory([]workflow.User{
		{SlackID: "UALICE", Email: "alice@example.com", Manager: "UDANA", Groups: []string{"eng"}},
		{SlackID: "UDANA", Email: "dana@example.com", Groups: []string{"eng"}},
		{SlackID: "UOWNER", Email: "owner@example.com", Groups: []string{"dba"}},
	}, []workflow.Group{{Name: "eng"}, {Name: "dba"}})
	if err != nil {
		b.Fatal(err)
	}
	policy := &workflow.Policy{Name: "admin", Duration: benchRules, WarnBefore: 10 * time.Minute,
		Reminders: workflow.Reminders{PendingTimeout: 24 * time.Hour},
		Approval: workflow.Approval{Mode: workflow.Sequential, Stages: []workflow.Stage{
			{Name: "manager", Required: 1, Approvers: approvers(b, "manager")},
			{Name: "owners", Required: 1, Approvers: approvers(b, "owners")},
		}}}
	s, err := store.Open(filepath.Join(b.TempDir(), "latch.db"), store.Options{Projections: []store.Projection{store.Requests{}}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	target := newTimedTarget()
	eng, err := workflow.NewEngine(workflow.Config{
		Store: s, Catalogue: benchCatalogue(b, policy.Name), Policies: map[string]*workflow.Policy{policy.Name: policy},
		Directory: dir, Notifier: workflow.NopNotifier{}, Clock: workflow.RealClock{},
		Connectors: map[string]workflow.Provisioner{"pg": target},
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := eng.Start(); err != nil {
		b.Fatal(err)
	}
	defer eng.Close()

	// The pending requests, waiting for their owner; made by 32 goroutines
	// so that their commits are grouped.
	ctx := context.Background()
	ids := make([]string, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < b.N; i = int(next.Add(1) - 1) {
				r, err := eng.Submit(ctx, workflow.Submission{Item: "db-ro", Requester: "UALICE", Duration: 2 * time.Hour, Justification: "INC-4211 slow queries"})
				if err == nil {
					r, err = eng.Approve(ctx, r.ID, "UDANA")
				}
				if err != nil {
					b.Error(err)
					return
				}
				if r.State != workflow.RequestPending || r.Stage != 1 {
					b.Errorf("request %s is %s at stage %d, want pending at stage 1", r.ID, r.State, r.Stage)
					return
				}
				ids[i] = r.ID
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	reached := make([]<-chan struct{}, b.N)
	for i, id := range ids {
		reached[i] = target.expect(id)
	}
	eng.Wait()

	started := make([]time.Time, b.N)
	next.Store(0)
	b.ResetTimer()
	t0 := time.Now()
	for range deciders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < b.N; i = int(next.Add(1) - 1) {
				started[i] = time.Now()
				r, err := eng.Approve(ctx, ids[i], "UOWNER")
				if err != nil {
					b.Error(err)
					return
				}
				if r.State != workflow.RequestProvisioning {
					b.Errorf("request %s is %s after its last approval, want provisioning", r.ID, r.State)
					return
				}
				<-reached[i]
				if idle {
					eng.Wait()
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	b.StopTimer()
	if b.Failed() {
		return
	}
	lat := make([]time.Duration, b.N)
	for i, id := range ids {
		lat[i] = target.enteredAt(id).Sub(started[i])
	}
	reportLatencies(b, lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "approvals/s")
	eng.Wait()
}

// The store BenchmarkRecovery reopens: recoveryRequests active requests,
// each with one grant and five events (submitted, approved,
// grant.provisioning, grant.active, request.active), and as many filler
// events of a kind that belongs to no request, recoveryEvents in all.
// Request i is for person i/recoveryItems and item i%recoveryItems, so each
// of recoveryUsers people holds one grant of each item and no two grants
// overlap (an overlapping grant would rightly be ended without a revoke).
// The grants of item 0, one per person, expired an hour or more before the
// store was built; the others expire an hour or more after it.
const (
	recoveryEvents   = 1_000_000
	recoveryRequests = 100_000
	recoveryItems    = 10
	recoveryUsers    = recoveryRequests / recoveryItems
	recoveryOverdue  = recoveryRequests / recoveryItems
	recoveryBatch    = 10_000 // events per Append while building
)

var recoveryStore struct {
	once  sync.Once
	dir   string // removed by TestMain
	path  string
	took  time.Duration
	bytes int64
	err   error
}

// TestMain removes the store BenchmarkRecovery builds.
func TestMain(m *testing.M) {
	code := m.Run()
	if recoveryStore.dir != "" {
		os.RemoveAll(recoveryStore.dir)
	}
	os.Exit(code)
}

func recoveryUser(n int) string { return fmt.Sprintf("U%07d", n) }

// recoveryCatalogue holds the items of the recovery store: one database
// role each, through the connector "pg".
func recoveryCatalogue(tb testing.TB, policy string) *workflow.Catalogue {
	tb.Helper()
	items := make([]workflow.Item, recoveryItems)
	for k := range items {
		items[k] = workflow.Item{ID: fmt.Sprintf("db-%d", k), Name: fmt.Sprintf("Database %d", k), Owners: []string{"UOWNER"},
			Kind: workflow.KindEntitlement, Policy: policy, Targets: []workflow.Target{recoveryTarget(k)}}
	}
	cat, err := workflow.NewCatalogue(items)
	if err != nil {
		tb.Fatal(err)
	}
	return cat
}

func recoveryTarget(item int) workflow.Target {
	return workflow.Target{Connector: "pg", Entitlement: fmt.Sprintf("role-%d", item)}
}

// recoveryDirectory knows every beneficiary of the recovery store.
func recoveryDirectory(tb testing.TB) *workflow.StaticDirectory {
	tb.Helper()
	users := make([]workflow.User, recoveryUsers)
	for i := range users {
		users[i] = workflow.User{SlackID: recoveryUser(i), Email: fmt.Sprintf("user%07d@example.com", i), Groups: []string{"eng"}}
	}
	users = append(users, workflow.User{SlackID: "UOWNER", Email: "owner@example.com", Groups: []string{"dba"}})
	dir, err := workflow.NewStaticDirectory(users, []workflow.Group{{Name: "eng"}, {Name: "dba"}})
	if err != nil {
		tb.Fatal(err)
	}
	return dir
}

// recoveryPolicy is the policy of the recovery store's requests, whose
// holders are warned ten minutes before their access ends. (The requests
// were approved by an auto_approve condition, which the restart does not
// evaluate again.)
func recoveryPolicy(tb testing.TB) *workflow.Policy {
	tb.Helper()
	return &workflow.Policy{Name: "readonly", Duration: benchRules, WarnBefore: 10 * time.Minute,
		Approval: workflow.Approval{Stages: []workflow.Stage{{Name: "owners", Required: 1, Approvers: approvers(tb, "owners")}}}}
}

// buildRecoveryStore writes the recovery store once per test binary and
// returns its path. The store is closed; each run works on a copy.
func buildRecoveryStore(b *testing.B) string {
	b.Helper()
	rs := &recoveryStore
	rs.once.Do(func() {
		start := time.Now()
		if rs.dir, rs.err = os.MkdirTemp("", "latch-recovery-"); rs.err != nil {
			return
		}
		rs.path = filepath.Join(rs.dir, "latch.db")
		rs.err = writeRecoveryStore(rs.path, start)
		if rs.err == nil {
			var fi os.FileInfo
			if fi, rs.err = os.Stat(rs.path); rs.err == nil {
				rs.bytes = fi.Size()
			}
		}
		rs.took = time.Since(start)
	})
	if rs.err != nil {
		b.Fatal(rs.err)
	}
	return rs.path
}

func writeRecoveryStore(path string, now time.Time) (err error) {
	s, err := store.Open(path, store.Options{Projections: []store.Projection{store.Requests{}}})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := s.Close(); err == nil {
			err = cerr
		}
	}()
	must := func(kind, actor, requestID, grantID string, payload any) workflow.Event {
		ev, err := workflow.NewEvent(kind, actor, requestID, grantID, payload)
		if err != nil {
			panic(err)
		}
		return ev
	}
	ctx := context.Background()
	batch := make([]workflow.Event, 0, recoveryBatch)
	add := func(events ...workflow.Event) error {
		batch = append(batch, events...)
		if len(batch) < recoveryBatch {
			return nil
		}
		_, err := s.Append(ctx, batch...)
		batch = batch[:0]
		return err
	}
	const perRequest = 5
	filler := (recoveryEvents - perRequest*recoveryRequests) / recoveryRequests
	for i := range recoveryRequests {
		id, grant := uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()
		user, item := recoveryUser(i/recoveryItems), i%recoveryItems
		target := recoveryTarget(item)
		// Overdue expiries spread over the hour before the build, the others
		// over the day after the first hour from it.
		expires := now.Add(time.Hour + time.Duration(i)*(23*time.Hour/recoveryRequests))
		if item == 0 {
			expires = now.Add(-time.Hour - time.Duration(i)*(time.Hour/recoveryRequests))
		}
		if err := add(
			must(workflow.KindSubmitted, user, id, "", workflow.Submitted{
				Item: fmt.Sprintf("db-%d", item), Policy: "readonly", Requester: user, Beneficiary: user, Duration: 4 * time.Hour,
				Justification: fmt.Sprintf("on call for INC-%d", 4000+i), Mode: workflow.Sequential,
				Stages:  []workflow.StageState{{Name: "owners", Required: 1, Approvers: []string{"UOWNER"}}},
				Targets: []workflow.Target{target},
			}),
			must(workflow.KindApproved, workflow.ActorLatch, id, "", workflow.Approved{
				Grants: []workflow.GrantTarget{{ID: grant, Target: target}}, Condition: `"oncall" in requester.groups`,
			}),
			must(workflow.KindGrantProvisioning, workflow.ActorLatch, id, grant, workflow.Note{}),
			must(workflow.KindGrantActive, workflow.ActorLatch, id, grant, workflow.Provisioned{Facts: map[string]string{"role": target.Entitlement}}),
			must(workflow.KindActivated, workflow.ActorLatch, id, "", workflow.Activated{ExpiresAt: expires}),
		); err != nil {
			return err
		}
		for j := range filler {
			if err := add(must("connector.checked", workflow.ActorLatch, "", "", map[string]any{
				"connector": "pg", "ok": true, "latency_ms": (i + j) % 17,
			})); err != nil {
				return err
			}
		}
	}
	if len(batch) > 0 {
		_, err = s.Append(ctx, batch...)
	}
	return err
}

// copyFile copies the file src to dst and syncs it.
func copyFile(dst, src string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err = io.Copy(out, in); err != nil {
		return err
	}
	// Flush the copy now: a restart finds its file on disk, not waiting in
	// the page cache for the first fsync to write all of it.
	return out.Sync()
}

// endingStore counts the request.ending events the engine commits, and
// notes the time of the commit that brings them to want.
type endingStore struct {
	*store.Store
	n    atomic.Int64
	want int64
	last time.Time     // written once, before done is closed
	done chan struct{} // closed when n reaches want
}

func (s *endingStore) Append(ctx context.Context, events ...workflow.Event) ([]workflow.Event, error) {
	out, err := s.Store.Append(ctx, events...)
	if err != nil {
		return out, err
	}
	for i := range out {
		if out[i].Kind == workflow.KindEnding && s.n.Add(1) == s.want {
			s.last = time.Now()
			close(s.done)
		}
	}
	return out, err
}

// BenchmarkRecovery measures a restart over a big log: open the store
// holding recoveryEvents events and recoveryRequests active grants, make
// and start the engine (which rebuilds the wheel from the open requests),
// and wait until every overdue grant has been dispatched.
//
// An overdue grant counts as dispatched when its expiry deadline has fired
// and the engine has committed the request.ending event that begins taking
// it back: from that commit on the revoke is the engine's recorded intent,
// resumed after a crash, and the request is no longer active. ns/op and
// total-ms are the time from Open until the last of these commits; open-ms
// is Open alone, start-ms NewEngine and Start (loading the open requests
// and scheduling their deadlines), dispatch-ms the rest. revoked-ms, from
// Open until the connector's Revoke has been entered for every overdue
// grant, is measured outside the timer. Each run works on a fresh copy of
// the store, made with the timer stopped, so the file is in the page cache.
func BenchmarkRecovery(b *testing.B) {
	pristine := buildRecoveryStore(b)
	b.Logf("store: %d events, %d active grants (%d overdue), %d MB, built in %v",
		recoveryEvents, recoveryRequests, recoveryOverdue, recoveryStore.bytes>>20, recoveryStore.took.Round(time.Millisecond))
	dir := recoveryDirectory(b)
	policy := recoveryPolicy(b)
	cat := recoveryCatalogue(b, policy.Name)
	path := filepath.Join(b.TempDir(), "latch.db")

	var sum recoveryTimes
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if err := copyFile(path, pristine); err != nil {
			b.Fatal(err)
		}
		runtime.GC() // the build's garbage is not the restart's
		b.StartTimer()
		var t recoveryTimes
		var err error
		// The label lets a CPU profile tell the restart from the build.
		pprof.Do(context.Background(), pprof.Labels("phase", "recovery"), func(context.Context) {
			t, err = recoverOnce(b, path, workflow.Config{
				Catalogue: cat, Policies: map[string]*workflow.Policy{policy.Name: policy},
				Directory: dir, Notifier: workflow.NopNotifier{}, Clock: workflow.RealClock{},
			})
		})
		if err != nil {
			b.Fatal(err)
		}
		sum.open += t.open
		sum.start += t.start
		sum.dispatch += t.dispatch
		sum.revoked += t.revoked
		os.Remove(path)
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(b.N) }
	b.ReportMetric(ms(sum.open), "open-ms")
	b.ReportMetric(ms(sum.start), "start-ms")
	b.ReportMetric(ms(sum.dispatch), "dispatch-ms")
	b.ReportMetric(ms(sum.open+sum.start+sum.dispatch), "total-ms")
	b.ReportMetric(ms(sum.revoked), "revoked-ms")
}

// recoveryTimes are the phases of a restart; revoked is from the start of
// Open.
type recoveryTimes struct{ open, start, dispatch, revoked time.Duration }

// recoverOnce opens the store at path and starts an engine of cfg on it,
// waits until every overdue grant is dispatched, stops the timer (the
// caller starts it again), waits until every one is revoked, and closes the
// engine and the store.
func recoverOnce(b *testing.B, path string, cfg workflow.Config) (t recoveryTimes, err error) {
	target := newTimedTarget()
	target.revokesWant, target.allRevoked = recoveryOverdue, make(chan struct{})
	cfg.Connectors = map[string]workflow.Provisioner{"pg": target}

	t0 := time.Now()
	s, err := store.Open(path, store.Options{Projections: []store.Projection{store.Requests{}}})
	if err != nil {
		return t, err
	}
	defer func() {
		if cerr := s.Close(); err == nil && !errors.Is(cerr, store.ErrClosed) {
			err = cerr
		}
	}()
	t1 := time.Now()
	counted := &endingStore{Store: s, want: recoveryOverdue, done: make(chan struct{})}
	cfg.Store = counted
	eng, err := workflow.NewEngine(cfg)
	if err != nil {
		return t, err
	}
	if err := eng.Start(); err != nil {
		return t, err
	}
	defer eng.Close()
	t2 := time.Now()
	select {
	case <-counted.done:
	case <-time.After(2 * time.Minute):
		return t, fmt.Errorf("%d of %d overdue grants dispatched after 2 minutes", counted.n.Load(), recoveryOverdue)
	}
	b.StopTimer()
	select {
	case <-target.allRevoked:
	case <-time.After(2 * time.Minute):
		return t, fmt.Errorf("%d of %d overdue grants revoked after 2 minutes", target.revokes.Load(), recoveryOverdue)
	}
	eng.Wait()
	if n := counted.n.Load(); n != recoveryOverdue {
		return t, fmt.Errorf("%d requests ended, want the %d overdue ones", n, recoveryOverdue)
	}
	return recoveryTimes{open: t1.Sub(t0), start: t2.Sub(t1), dispatch: counted.last.Sub(t2), revoked: target.lastRevoke.Sub(t0)}, nil
}
