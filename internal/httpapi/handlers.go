package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/gate"
)

func (a *API) createCheck(w http.ResponseWriter, r *http.Request) error {
	caller, err := a.caller(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	req := &gate.CreateRequest{
		Kind:           q.Get(api.ParamKind),
		Workspace:      q.Get(api.ParamWorkspace),
		Environment:    q.Get(api.ParamEnvironment),
		PlanFileSHA256: strings.ToLower(q.Get(api.ParamPlanFileHash)),
		Pipeline:       map[string]string{},
		Plan:           r.Body,
	}
	if err := multipartPlan(r, req); err != nil {
		return err
	}
	if req.Kind == "" {
		req.Kind = "terraform.apply"
	}
	for k, v := range q {
		if name, ok := strings.CutPrefix(k, api.ParamPipelinePrefix); ok && len(v) > 0 {
			req.Pipeline[name] = v[0]
		}
	}
	if len(req.Pipeline) == 0 {
		req.Pipeline = nil // what the request says: kept as unverified claims
	}
	req.Secrets = secretParams(q[api.ParamSecret])
	if req.BreakGlass, err = breakGlassParams(q); err != nil {
		a.svc.AuditRefusal(r.Context(), gate.Refusal{Action: gate.ActionBreakGlass, Actor: caller.Name, Subject: "workspace:" + req.Workspace,
			Method: "request", Reason: err.Error(), Status: http.StatusBadRequest})
		return err
	}
	v, created, err := a.svc.CreateCheck(r.Context(), caller, req)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		a.metrics.checks.WithLabelValues(string(v.Assessment.Decision)).Inc()
		a.ops.byWorkspace.WithLabelValues(v.Workspace, string(v.Assessment.Decision)).Inc()
	}
	writeJSON(w, status, v)
	return nil
}

// multipartPlan reads a multipart/form-data body as its parts: the plan
// JSON, then the saved plan, each streamed (docs/api.md). Any other body
// is the plan JSON itself.
func multipartPlan(r *http.Request, req *gate.CreateRequest) error {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return nil
	}
	if params["boundary"] == "" {
		return fmt.Errorf("%w: multipart/form-data without a boundary", gate.ErrBadRequest)
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	part, err := nextPart(mr, api.PartPlan)
	if err != nil {
		return err
	}
	if part == nil {
		return fmt.Errorf("%w: the multipart body has no %q part", gate.ErrBadRequest, api.PartPlan)
	}
	req.Plan = part
	req.SavedPlan = func() (io.Reader, error) {
		// NextPart skips what is left of the plan part.
		saved, err := nextPart(mr, api.PartPlanFile)
		if saved == nil || err != nil {
			return nil, err
		}
		return saved, nil
	}
	return nil
}

// nextPart returns the next part, which must be named name; nil at the end
// of the body.
func nextPart(mr *multipart.Reader, name string) (*multipart.Part, error) {
	part, err := mr.NextPart()
	switch {
	case errors.Is(err, io.EOF):
		return nil, nil
	case err != nil:
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: multipart body: %w", gate.ErrBadRequest, err)
	case part.FormName() != name:
		return nil, fmt.Errorf("%w: multipart part %q where %q was expected (the parts are %q then %q)", gate.ErrBadRequest, part.FormName(), name, api.PartPlan, api.PartPlanFile)
	}
	return part, nil
}

func (a *API) getCheck(w http.ResponseWriter, r *http.Request) error {
	caller, err := a.caller(r)
	if err != nil {
		return err
	}
	v, err := a.svc.GetCheck(r.Context(), caller, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (a *API) waitCheck(w http.ResponseWriter, r *http.Request) error {
	caller, err := a.caller(r)
	if err != nil {
		return err
	}
	timeout := 30 * time.Second
	if t := r.URL.Query().Get(api.ParamTimeout); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d < 0 {
			return fmt.Errorf("%w: timeout %q is not a duration such as 30s", gate.ErrBadRequest, t)
		}
		timeout = d
	}
	v, err := a.svc.Wait(r.Context(), a.hub, caller, r.PathValue("id"), timeout)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (a *API) consume(w http.ResponseWriter, r *http.Request) error {
	caller, err := a.caller(r)
	if err != nil {
		return err
	}
	var req api.ConsumeRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	out, err := a.svc.Consume(r.Context(), caller, strings.TrimSpace(req.Grant))
	if err != nil {
		if errors.Is(err, gate.ErrConflict) || errors.Is(err, gate.ErrInvalidGrant) || errors.Is(err, gate.ErrForbidden) {
			a.metrics.refused.Inc()
		}
		return err
	}
	a.metrics.consumed.Inc()
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) reportOutcome(w http.ResponseWriter, r *http.Request) error {
	caller, err := a.caller(r)
	if err != nil {
		return err
	}
	var req api.OutcomeRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := a.svc.ReportOutcome(r.Context(), caller, r.PathValue("id"), &req); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// discovery is the OpenID Provider metadata of stepgate's issuer: enough for
// a relying party (a cloud's workload identity federation) to find the keys
// that verify grants.
func (a *API) discovery(w http.ResponseWriter, r *http.Request) error {
	iss := a.svc.Issuer()
	// The algorithms are those of the published keys (EdDSA, RS256, or both
	// during a rotation from one to the other), so that a relying party
	// checking alg against this list accepts every grant still valid.
	keys, err := a.svc.Keys(r.Context())
	if err != nil {
		return err
	}
	algs, seen := []string{}, map[string]bool{}
	for _, k := range keys {
		if k.Algorithm != "" && !seen[k.Algorithm] {
			seen[k.Algorithm] = true
			algs = append(algs, k.Algorithm)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"jwks_uri":                              iss + api.PathJWKS,
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": algs,
		"claims_supported": []string{"iss", "sub", "aud", "iat", "nbf", "exp", "jti", "plan_sha256", "plan_file_sha256",
			"workspace", "environment", "kind", "pipeline", "requester", "approvals", "decision", "rules", "aal", "amr"},
	})
	return nil
}

func (a *API) jwks(w http.ResponseWriter, r *http.Request) error {
	keys, err := a.svc.Keys(r.Context())
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: keys})
	return nil
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readyz answers 200 only when a check could be recorded now: the store's
// Ping is a write probe. Concurrent calls share one probe.
func (a *API) readyz(w http.ResponseWriter, r *http.Request) error {
	if err := a.ready.probe(r.Context(), a.st.Ping); err != nil {
		return fmt.Errorf("%w: %w", errUnavailable, err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

// readiness runs one probe at a time; callers arriving meanwhile share
// its result, so that a flood of /readyz does not queue writes.
type readiness struct {
	mu      sync.Mutex
	running chan struct{} // closed when the probe in flight ends
	err     error
}

// probeTimeout bounds a readiness probe: /readyz turns red at most this
// long after writes start hanging.
const probeTimeout = 2 * time.Second

func (rd *readiness) probe(ctx context.Context, ping func(context.Context) error) error {
	rd.mu.Lock()
	done := rd.running
	if done == nil {
		done = make(chan struct{})
		rd.running = done
		rd.mu.Unlock()
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeTimeout)
		err := ping(pctx)
		cancel()
		rd.mu.Lock()
		rd.err, rd.running = err, nil
		rd.mu.Unlock()
		close(done)
		return err
	}
	rd.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return rd.err
}
