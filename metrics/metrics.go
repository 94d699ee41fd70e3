// Package metrics exposes what latch does as Prometheus metrics, and says
// whether it is alive and ready to serve.
//
// Everything registers on a registry the caller owns (New); nothing uses
// Prometheus's default registry. Most request metrics are read from the
// audit log by Follow rather than reported by the engine, so the numbers
// are exactly what the log says happened. Connector calls are timed by
// wrapping each connector with Provisioner, Slack Web API calls are counted
// by a RoundTripper in the Slack client's HTTP client, and the bot reports
// how long it took to ack each envelope through ObserveAck.
package metrics

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/latchhq/latch/store"
)

// Outcomes counted by latch_requests_total, beyond the workflow's own
// outcomes of an ended request (expired, released, revoked, rolled_back).
const (
	OutcomeApproved   = "approved"
	OutcomeRejected   = "rejected"
	OutcomeCancelled  = "cancelled"
	OutcomeTimedOut   = "timed_out"
	OutcomeFailed     = "failed"
	OutcomeBreakGlass = "breakglass"
)

// Metrics holds latch's collectors. Its methods are safe for concurrent use.
type Metrics struct {
	submitted   prometheus.Counter
	requests    *prometheus.CounterVec
	decision    *prometheus.HistogramVec
	activation  prometheus.Histogram
	active      prometheus.Gauge
	lateness    prometheus.Histogram
	revokeFails prometheus.Counter
	storeEvents prometheus.Gauge

	connCalls  *prometheus.HistogramVec
	connErrors *prometheus.CounterVec

	slackCalls       *prometheus.CounterVec
	slackErrors      *prometheus.CounterVec
	slackRateLimited *prometheus.CounterVec
	ack              *prometheus.HistogramVec

	sinkLag *prometheus.GaugeVec

	reg prometheus.Registerer
}

// New returns latch's metrics, registered on reg. It panics if reg already
// holds metrics of the same names, as a second New on one registry would.
func New(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		submitted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "latch_requests_submitted_total",
			Help: "Access requests submitted, break-glass requests included.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_requests_total",
			Help: "Access requests by what happened to them: decided (approved, rejected, cancelled, timed_out), " +
				"failed to provision (failed), ended (expired, released, revoked, rolled_back) or granted by breaking the glass (breakglass). " +
				"A request counts once under each of these it reaches, so the outcomes do not add up to the requests submitted.",
		}, []string{"outcome"}),
		decision: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "latch_request_decision_seconds",
			Help: "Time from a request's submission to its approval or rejection, by decision (approved, rejected) " +
				"and by who decided (approvers, or policy for auto_approve, auto_reject and break-glass).",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400},
		}, []string{"decision", "by"}),
		activation: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "latch_request_activation_seconds",
			Help:    "Time from a request's approval to all of its grants being active (connector calls and their retries).",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900},
		}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "latch_active_grants",
			Help: "Requests whose access is active now (a bundle counts once).",
		}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "latch_revocation_lateness_seconds",
			Help:    "For grants that ended by expiry, the time from the expiry to the connector confirming the revoke.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
		}),
		revokeFails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "latch_revoke_failures_total",
			Help: "Failed attempts to revoke a grant (grant.revoke_failed events); each is retried.",
		}),
		storeEvents: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "latch_store_events",
			Help: "Events in the audit log, which is also the sequence number of its head.",
		}),
		connCalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "latch_connector_call_duration_seconds",
			Help:    "Duration of connector calls, successful or not, by connector and operation (grant, revoke, list).",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"connector", "op"}),
		connErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_connector_errors_total",
			Help: "Connector calls that failed, by connector, operation and kind (permanent: retrying cannot help; transient: retried).",
		}, []string{"connector", "op", "kind"}),
		slackCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_slack_api_calls_total",
			Help: "Slack Web API calls by method and result: ok, error (Slack answered ok:false), rate_limited (HTTP 429), " +
				"http_error (another HTTP status) or transport_error (no answer).",
		}, []string{"method", "result"}),
		slackErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_slack_api_errors_total",
			Help: "Slack Web API calls that failed, by method and error: Slack's error code for ok:false answers, " +
				"http_<status> for an HTTP error, transport for no answer.",
		}, []string{"method", "error"}),
		slackRateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_slack_api_rate_limited_total",
			Help: "Slack Web API calls refused for rate limiting (HTTP 429, or ok:false with error ratelimited), by method.",
		}, []string{"method"}),
		ack: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "latch_slack_envelope_ack_seconds",
			Help:    "Time from receiving a Socket Mode envelope to acking it, by envelope type; Slack redelivers after 3 seconds.",
			Buckets: []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5},
		}, []string{"type"}),
		sinkLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "latch_audit_sink_lag_events",
			Help: "Events in the audit log that an audit sink has not delivered yet, by sink.",
		}, []string{"sink"}),
	}
	reg.MustRegister(m.submitted, m.requests, m.decision, m.activation, m.active, m.lateness, m.revokeFails,
		m.storeEvents, m.connCalls, m.connErrors, m.slackCalls, m.slackErrors, m.slackRateLimited, m.ack, m.sinkLag)
	m.reg = reg
	return m
}

// WatchStore adds latch_store_writable, 1 while s takes writes and 0 once
// it has stopped (a full disk, a read-only file system) until latch is
// restarted: the figure to alert on.
func (m *Metrics) WatchStore(s *store.Store) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "latch_store_writable",
		Help: "1 while the store takes writes; 0 once a write failed (a full disk, a read-only file system), until latch is restarted.",
	}, func() float64 {
		if s.Err() != nil {
			return 0
		}
		return 1
	}))
}

// Handler serves the metrics of reg in the Prometheus exposition format,
// for /metrics.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, ErrorHandling: promhttp.ContinueOnError})
}

// ObserveAck records how long the bot took to ack a Socket Mode envelope of
// a type (slash_commands, interactive, events_api).
func (m *Metrics) ObserveAck(envelopeType string, d time.Duration) {
	m.ack.WithLabelValues(labelValue(envelopeType)).Observe(d.Seconds())
}

// SetAuditSinkLag records how many events of the log the named audit sink
// has yet to deliver.
func (m *Metrics) SetAuditSinkLag(sink string, events uint64) {
	m.sinkLag.WithLabelValues(labelValue(sink)).Set(float64(events))
}

// maxLabel bounds the length of a label value taken from outside.
const maxLabel = 64

// labelValue returns s as a label value if it is a short name made of
// letters, digits, '.', '_' and '-', and "other" if not, so that a label
// never takes an unbounded set of values or arbitrary text.
func labelValue(s string) string {
	if s == "" || len(s) > maxLabel {
		return "other"
	}
	if strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}) >= 0 {
		return "other"
	}
	return s
}
