package metrics

import (
	"context"
	"time"

	"github.com/latchhq/latch/workflow"
)

// Operations of a connector, as the op label names them.
const (
	OpGrant  = "grant"
	OpRevoke = "revoke"
	OpList   = "list"
)

// Provisioner returns p timed: each Grant and Revoke is observed in
// latch_connector_call_duration_seconds under the connector's name, and
// each failure counted in latch_connector_errors_total as permanent or
// transient (workflow.IsPermanent). Errors and results pass through
// unchanged. If p is also a workflow.Lister, so is the result, and its List
// calls are timed too; if not, the result is not a Lister either.
func (m *Metrics) Provisioner(name string, p workflow.Provisioner) workflow.Provisioner {
	t := timedProvisioner{m: m, name: name, p: p}
	if l, ok := p.(workflow.Lister); ok {
		return timedLister{timedProvisioner: t, l: l}
	}
	return t
}

// timedProvisioner times a connector that cannot list.
type timedProvisioner struct {
	m    *Metrics
	name string
	p    workflow.Provisioner
}

func (t timedProvisioner) Grant(ctx context.Context, a workflow.Access) (workflow.Granted, error) {
	start := time.Now()
	g, err := t.p.Grant(ctx, a)
	t.m.observeCall(t.name, OpGrant, time.Since(start), err)
	return g, err
}

func (t timedProvisioner) Revoke(ctx context.Context, a workflow.Access) error {
	start := time.Now()
	err := t.p.Revoke(ctx, a)
	t.m.observeCall(t.name, OpRevoke, time.Since(start), err)
	return err
}

// timedLister times a connector that can list.
type timedLister struct {
	timedProvisioner
	l workflow.Lister
}

func (t timedLister) List(ctx context.Context, entitlements []string) ([]workflow.Holding, error) {
	start := time.Now()
	h, err := t.l.List(ctx, entitlements)
	t.m.observeCall(t.name, OpList, time.Since(start), err)
	return h, err
}

// observeCall records one connector call.
func (m *Metrics) observeCall(connector, op string, d time.Duration, err error) {
	m.connCalls.WithLabelValues(connector, op).Observe(d.Seconds())
	if err == nil {
		return
	}
	kind := "transient"
	if workflow.IsPermanent(err) {
		kind = "permanent"
	}
	m.connErrors.WithLabelValues(connector, op, kind).Inc()
}
