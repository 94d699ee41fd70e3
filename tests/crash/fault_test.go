package crash_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/latchhq/latch/connectors/postgres"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// revokeFailures records the engine's revoke_failed alerts; the other
// notices are not this test's concern.
type revokeFailures struct {
	workflow.NopNotifier
	mu     sync.Mutex
	alerts []string // grant ids
}

func (n *revokeFailures) RevokeFailed(_ context.Context, _ workflow.Request, g workflow.Grant) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.alerts = append(n.alerts, g.ID)
}

func (n *revokeFailures) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.alerts)
}

// TestPostgresDownDuringRevocation stops PostgreSQL while a grant expires:
// the revoke is retried with back-off, turns revoke_failed and is
// announced after the limit, and once PostgreSQL is back the role is
// dropped. The engine runs on a fake clock; PostgreSQL is real.
func TestPostgresDownDuringRevocation(t *testing.T) {
	pg := startPostgres(t)
	conn, err := postgres.New(postgres.Config{Name: "pg", Host: "127.0.0.1", Port: pg.Port, Database: pgDatabase,
		User: pgLatchUser, Password: pgLatchPass, SSLMode: "disable", Mode: postgres.ModeEphemeral, ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st, err := store.Open(filepath.Join(t.TempDir(), "latch.db"), store.Options{Projections: []store.Projection{store.Requests{}}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dir, err := workflow.NewStaticDirectory([]workflow.User{{SlackID: "UJANE", Email: "jane@example.com"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	always, err := workflow.CompileCondition("true")
	if err != nil {
		t.Fatal(err)
	}
	cat, err := workflow.NewCatalogue([]workflow.Item{{ID: "db", Name: "Database", Kind: workflow.KindEntitlement, Policy: "auto",
		Targets: []workflow.Target{{Connector: "pg", Entitlement: pgRole}}}})
	if err != nil {
		t.Fatal(err)
	}
	clock := workflow.NewFakeClock(time.Now().UTC().Truncate(time.Second))
	alerts := &revokeFailures{}
	eng, err := workflow.NewEngine(workflow.Config{Store: st, Catalogue: cat, Directory: dir, Clock: clock, Notifier: alerts,
		Policies: map[string]*workflow.Policy{"auto": {Name: "auto", AutoApprove: always,
			Duration: workflow.DurationRules{Default: time.Hour, Min: time.Minute, Max: time.Hour}}},
		Connectors: map[string]workflow.Provisioner{"pg": conn}})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(); err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	settle := func(d time.Duration) {
		clock.Advance(d)
		eng.Advance()
		eng.Wait()
	}
	ctx := context.Background()
	r, err := eng.Submit(ctx, workflow.Submission{Item: "db", Requester: "UJANE", Justification: "fault test"})
	if err != nil {
		t.Fatal(err)
	}
	settle(0)
	if roles, err := pg.latchRoles(ctx); err != nil || len(roles) != 1 {
		t.Fatalf("after the grant: roles %v, %v; want one", roles, err)
	}

	pg.Stop()
	settle(time.Hour) // expired, with PostgreSQL down
	for range 40 {    // the back-off grows to 5 minutes; six failures turn the grant revoke_failed
		settle(time.Minute)
	}
	got, ok, err := st.Request(r.ID)
	if err != nil || !ok {
		t.Fatal(err)
	}
	if got.State == workflow.RequestEnded || got.Grants[0].State != workflow.GrantRevokeFailed {
		t.Fatalf("with PostgreSQL down: request %s, grant %s; want revoke_failed", got.State, got.Grants[0].State)
	}
	if alerts.count() != 1 {
		t.Errorf("%d revoke_failed alerts, want 1", alerts.count())
	}

	if err := pg.Launch(); err != nil { // back
		t.Fatal(err)
	}
	for range 4 {
		settle(5 * time.Minute)
	}
	if got, _, _ = st.Request(r.ID); got.State != workflow.RequestEnded || got.Grants[0].State != workflow.GrantRevoked {
		t.Fatalf("with PostgreSQL back: request %s, grant %s; want ended and revoked", got.State, got.Grants[0].State)
	}
	if roles, err := pg.latchRoles(ctx); err != nil || len(roles) != 0 {
		t.Errorf("after the revoke: roles %v, %v; want none", roles, err)
	}
}
