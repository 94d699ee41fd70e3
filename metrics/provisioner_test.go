package metrics

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchhq/latch/workflow"
)

// scripted is a connector whose calls return what it is told.
type scripted struct {
	grant  workflow.Granted
	err    error
	called int
}

func (s *scripted) Grant(context.Context, workflow.Access) (workflow.Granted, error) {
	s.called++
	return s.grant, s.err
}

func (s *scripted) Revoke(context.Context, workflow.Access) error {
	s.called++
	return s.err
}

// listing is a connector that can also list.
type listing struct {
	scripted
	holdings []workflow.Holding
}

func (l *listing) List(context.Context, []string) ([]workflow.Holding, error) {
	l.called++
	return l.holdings, l.err
}

func TestProvisionerKeepsLister(t *testing.T) {
	m := New(prometheus.NewRegistry())
	if _, ok := m.Provisioner("exec", &scripted{}).(workflow.Lister); ok {
		t.Error("a connector that cannot list became a Lister")
	}
	inner := &listing{holdings: []workflow.Holding{{Entitlement: "readonly", Account: "alice"}}}
	l, ok := m.Provisioner("pg", inner).(workflow.Lister)
	if !ok {
		t.Fatal("a connector that can list is no longer a Lister")
	}
	got, err := l.List(context.Background(), []string{"readonly"})
	if err != nil || len(got) != 1 || got[0].Account != "alice" || inner.called != 1 {
		t.Errorf("List: got %v, %v after %d calls; want alice's holding from one call", got, err, inner.called)
	}
}

func TestProvisionerTimesCalls(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()
	ctx := context.Background()
	refused := errors.New("no such role")
	down := errors.New("connection refused")

	tests := []struct {
		name string
		err  error
		op   string
	}{
		{"grant works", nil, OpGrant},
		{"grant fails for good", workflow.Permanent(refused), OpGrant},
		{"revoke works", nil, OpRevoke},
		{"revoke fails for now", down, OpRevoke},
		{"revoke fails for now again", down, OpRevoke},
		{"list fails", down, OpList},
	}
	for _, tt := range tests {
		inner := &listing{scripted: scripted{grant: workflow.Granted{Message: "secret for alice"}, err: tt.err}}
		p := m.Provisioner("pg", inner)
		var err error
		switch tt.op {
		case OpGrant:
			var g workflow.Granted
			g, err = p.Grant(ctx, workflow.Access{GrantID: "g1"})
			if g.Message != "secret for alice" {
				t.Errorf("%s: got message %q, want the connector's", tt.name, g.Message)
			}
		case OpRevoke:
			err = p.Revoke(ctx, workflow.Access{GrantID: "g1"})
		case OpList:
			_, err = p.(workflow.Lister).List(ctx, nil)
		}
		if !errors.Is(err, tt.err) || workflow.IsPermanent(err) != workflow.IsPermanent(tt.err) {
			t.Errorf("%s: got error %v, want %v unchanged", tt.name, err, tt.err)
		}
	}

	s := scrapeMetrics(t, srv.URL)
	calls := []struct {
		op   string
		want uint64
	}{{OpGrant, 2}, {OpRevoke, 3}, {OpList, 1}}
	for _, c := range calls {
		if n, _ := s.histogram("latch_connector_call_duration_seconds", "connector", "pg", "op", c.op); n != c.want {
			t.Errorf("%s calls: got %d, want %d", c.op, n, c.want)
		}
	}
	errs := []struct {
		op, kind string
		want     float64
	}{
		{OpGrant, "permanent", 1},
		{OpGrant, "transient", 0},
		{OpRevoke, "transient", 2},
		{OpRevoke, "permanent", 0},
		{OpList, "transient", 1},
	}
	for _, e := range errs {
		if got := s.value("latch_connector_errors_total", "connector", "pg", "op", e.op, "kind", e.kind); got != e.want {
			t.Errorf("%s %s errors: got %v, want %v", e.op, e.kind, got, e.want)
		}
	}
}
