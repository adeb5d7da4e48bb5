package httpapi

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stepgate/stepgate/internal/api"
)

// Operational metrics: what docs/operations.md#metrics explains and
// deploy/grafana charts.

type opsMetrics struct {
	byWorkspace *prometheus.CounterVec
	unavailable prometheus.Counter
	events      *prometheus.CounterVec
	decision    *prometheus.HistogramVec
}

func newOpsMetrics(reg prometheus.Registerer, st pendingStatter) *opsMetrics {
	m := &opsMetrics{
		byWorkspace: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stepgate_checks_workspace_total", Help: "Checks created, by workspace and the policy's decision.",
		}, []string{"workspace", "decision"}),
		unavailable: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stepgate_store_unavailable_total", Help: "Requests refused (503) because the database could not record anything.",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stepgate_check_events_total", Help: "Checks that became pending, approved, rejected or expired, in this process.",
		}, []string{"event"}),
		decision: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stepgate_check_decision_seconds", Help: "Time from a check's creation to people's decision (or its expiry), by outcome.",
			Buckets: []float64{15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400},
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.byWorkspace, m.unavailable, m.events, m.decision)
	if st != nil {
		reg.MustRegister(&pendingCollector{st: st})
	}
	return m
}

// Notify records a check's change of state: the gate calls it (through
// the notifier chain) when a check becomes pending, approved, rejected or
// expired.
func (m *opsMetrics) Notify(_ context.Context, event string, c *api.Check) {
	m.events.WithLabelValues(event).Inc()
	if event == "check.pending" || c.CreatedAt.IsZero() {
		return
	}
	outcome := event[len("check."):]
	m.decision.WithLabelValues(outcome).Observe(time.Since(c.CreatedAt).Seconds())
}

var (
	pendingDesc = prometheus.NewDesc("stepgate_checks_pending", "Checks waiting for people, in the database.", nil, nil)
	overdueDesc = prometheus.NewDesc("stepgate_checks_overdue", "Pending checks past their expiry, not yet expired (the expiry loop is behind).", nil, nil)
	storeUpDesc = prometheus.NewDesc("stepgate_store_up", "1 when the database answered the metrics' query, 0 otherwise.", nil, nil)
)

// pendingCollector reads the pending counts from the database at each
// scrape (bounded at 2 s).
type pendingCollector struct{ st pendingStatter }

// pendingStatter counts the pending checks (store.Store has it).
type pendingStatter interface {
	PendingStats(ctx context.Context, now time.Time) (pending, overdue int, err error)
}

func (c *pendingCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pendingDesc
	ch <- overdueDesc
	ch <- storeUpDesc
}

func (c *pendingCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	pending, overdue, err := c.st.PendingStats(ctx, time.Now())
	if err != nil {
		ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(pending))
	ch <- prometheus.MustNewConstMetric(overdueDesc, prometheus.GaugeValue, float64(overdue))
}
