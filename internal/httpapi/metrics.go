package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	checks   *prometheus.CounterVec
	consumed prometheus.Counter
	refused  prometheus.Counter
}

// waitingGauge reports the requests waiting on a check (long polls).
func waitingGauge(hub interface{ Waiting() int }) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "stepgate_waiting_requests", Help: "Requests waiting on a pending check (long polls) in this process.",
	}, func() float64 { return float64(hub.Waiting()) })
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stepgate_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stepgate_http_request_duration_seconds", Help: "Time to answer HTTP requests, by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 30, 60},
		}, []string{"route"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stepgate_checks_created_total", Help: "Checks created, by the policy's decision.",
		}, []string{"decision"}),
		consumed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stepgate_grants_consumed_total", Help: "Grants used.",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stepgate_grants_refused_total", Help: "Uses of a grant that were refused (invalid, replayed, forbidden).",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.checks, m.consumed, m.refused)
	return m
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (a *API) instrument(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		a.metrics.requests.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
		a.metrics.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}
