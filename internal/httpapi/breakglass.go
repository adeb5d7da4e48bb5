package httpapi

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/gate"
)

// breakGlassParams reads break_glass=true and break_glass_reason; the gate
// judges the reason (and audits its refusal).
func breakGlassParams(q url.Values) (*gate.BreakGlassRequest, error) {
	on, reason := q.Get(api.ParamBreakGlass), q.Get(api.ParamBreakGlassReason)
	switch on {
	case "", "false":
		if q.Has(api.ParamBreakGlassReason) {
			return nil, fmt.Errorf("%w: %s is sent with %s=true only", gate.ErrBadRequest, api.ParamBreakGlassReason, api.ParamBreakGlass)
		}
		return nil, nil
	case "true":
		return &gate.BreakGlassRequest{Reason: reason}, nil
	}
	return nil, fmt.Errorf("%w: %s is true or false, not %q", gate.ErrBadRequest, api.ParamBreakGlass, on)
}

// overdueReviewer counts the break-glass uses whose review is late
// (gate.Service has it).
type overdueReviewer interface {
	OverdueReviews(ctx context.Context) (int, error)
}

var overdueReviewsDesc = prometheus.NewDesc("stepgate_break_glass_reviews_overdue",
	"Uses of break-glass whose review by another person is past break_glass.review_within.", nil, nil)

// overdueReviewsCollector reads the overdue reviews from the database at
// each scrape (bounded at 2 s); nothing when the database does not answer
// (stepgate_store_up says so).
type overdueReviewsCollector struct{ svc overdueReviewer }

func overdueReviewsGauge(svc overdueReviewer) prometheus.Collector {
	return &overdueReviewsCollector{svc: svc}
}

func (c *overdueReviewsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- overdueReviewsDesc }

func (c *overdueReviewsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := c.svc.OverdueReviews(ctx)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(overdueReviewsDesc, prometheus.GaugeValue, float64(n))
}
