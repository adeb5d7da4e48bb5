package httpapi

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/ciauth"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/plan/planfile"
	"github.com/stepgate/stepgate/internal/requestid"
	"github.com/stepgate/stepgate/internal/store"
)

// API serves the machine side of stepgate.
type API struct {
	svc      *gate.Service
	hub      *gate.Hub
	st       apiStore
	log      *slog.Logger
	maxPlan  int64
	metrics  *metrics
	registry *prometheus.Registry
	ci       *ciauth.Verifier // nil: API tokens only
	people   *peopleSide      // nil: no people API (server.oidc unset)
	ready    readiness
	ops      *opsMetrics
	// metricsToken, when set, is the bearer token /metrics requires.
	metricsToken string
}

// Observer records the checks' changes of state in the metrics; the gate
// tells it (gate.Service.SetNotifier, chained with the webhooks).
func (a *API) Observer() interface {
	Notify(ctx context.Context, event string, c *api.Check)
} {
	return a.ops
}

// SetMetricsToken makes /metrics require Authorization: Bearer token.
func (a *API) SetMetricsToken(token string) { a.metricsToken = token }

// metricsAuth refuses a scrape without the metrics token, when one is set.
func (a *API) metricsAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.metricsToken != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(a.metricsToken)) != 1 {
				a.log.WarnContext(r.Context(), "metrics scrape refused", "remote", r.RemoteAddr, "reason", "no or wrong bearer token")
				w.Header().Set("WWW-Authenticate", `Bearer realm="stepgate-metrics"`)
				writeJSON(w, http.StatusUnauthorized, api.Error{Error: api.ErrorBody{Code: api.CodeUnauthorized, Message: "the metrics token is required (Authorization: Bearer ...)"}})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// apiStore is what the API needs of the store itself (everything else goes
// through the gate): readiness, the pending counts of the metrics, and the
// people API's account lookup and the store gate.SyncGroups runs its
// transaction in.
type apiStore interface {
	Ping(ctx context.Context) error
	PendingStats(ctx context.Context, now time.Time) (pending, overdue int, err error)
	FindUserByLink(ctx context.Context, link string) (*store.User, error)
	InTx(ctx context.Context, fn func(tx store.Tx) error) error
}

// New returns the API. maxPlan caps the body of POST /v1/checks.
func New(svc *gate.Service, hub *gate.Hub, st apiStore, log *slog.Logger, maxPlan int64) *API {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	log = requestid.Logger(log)
	if hub != nil {
		reg.MustRegister(waitingGauge(hub))
	}
	if svc != nil {
		reg.MustRegister(overdueReviewsGauge(svc))
	}
	return &API{svc: svc, hub: hub, st: st, log: log, maxPlan: maxPlan, metrics: newMetrics(reg), ops: newOpsMetrics(reg, st), registry: reg}
}

// Routes lists every route of the API.
func (a *API) Routes() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern string, limit int64, h handlerFunc) {
		mux.Handle(pattern, a.instrument(pattern, a.handle(limit, h)))
	}
	// The plan JSON and, in a multipart body, the saved plan: each part is
	// capped on its own as it is read.
	route("POST /v1/checks", a.maxPlan+planfile.DefaultMaxFileBytes+smallBody, a.createCheck)
	route("GET /v1/checks/{id}", smallBody, a.getCheck)
	route("GET /v1/checks/{id}/wait", smallBody, a.waitCheck)
	route("POST /v1/checks/{id}/outcome", smallBody, a.reportOutcome)
	route("POST /v1/grants/consume", smallBody, a.consume)
	route("POST "+api.PathRelease, smallBody, a.release)
	route("GET "+api.PathPeopleMe, smallBody, a.forPeople(a.peopleMe))
	route("GET "+api.PathPeopleChecks, smallBody, a.forPeople(a.peopleChecks))
	route("GET "+api.PathPeopleChecks+"/{id}", smallBody, a.forPeople(a.peopleCheck))
	route("POST "+api.PathPeopleChecks+"/{id}/approve", smallBody, a.forPeople(a.peopleApprove))
	route("POST "+api.PathPeopleChecks+"/{id}/reject", smallBody, a.forPeople(a.peopleReject))
	route("GET "+api.PathProtectedResource, smallBody, a.forPeople(a.protectedResource))
	route("GET /.well-known/openid-configuration", smallBody, a.discovery)
	route("GET /.well-known/jwks.json", smallBody, a.jwks)
	route("GET /healthz", smallBody, a.healthz)
	route("GET /readyz", smallBody, a.readyz)
	mux.Handle("GET /metrics", a.metricsAuth(promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{Timeout: 10 * time.Second})))
	return requestid.Middleware(recoverer(a.log, securityHeaders(mux)))
}

// smallBody caps every body but a plan's.
const smallBody = 64 << 10

// Registry is where the API's metrics live, for others to add theirs.
func (a *API) Registry() *prometheus.Registry { return a.registry }
