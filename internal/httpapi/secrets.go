package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/store"
)

// secretParams reads the secret parameters of POST /v1/checks: NAME, or
// ENV=NAME to have it in $ENV. The gate validates both.
func secretParams(vs []string) []store.CheckSecret {
	var out []store.CheckSecret
	for _, v := range vs {
		env, name, ok := strings.Cut(v, "=")
		if !ok {
			env, name = "", v
		}
		out = append(out, store.CheckSecret{Name: name, Env: env})
	}
	return out
}

// release exchanges a grant for the secrets its check names. The answer
// holds the values: it is never logged, and never cached.
func (a *API) release(w http.ResponseWriter, r *http.Request) error {
	caller, err := a.caller(r)
	if err != nil {
		return err
	}
	var req api.ReleaseRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	out, err := a.svc.Release(r.Context(), caller, strings.TrimSpace(req.Grant))
	if err != nil {
		if errors.Is(err, gate.ErrConflict) || errors.Is(err, gate.ErrInvalidGrant) || errors.Is(err, gate.ErrForbidden) {
			a.metrics.refused.Inc()
		}
		return err
	}
	a.metrics.consumed.Inc()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
	for i := range out.Secrets {
		clear(out.Secrets[i].Value) // written out; keep no copy around
	}
	return nil
}
