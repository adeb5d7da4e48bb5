package httpapi

import (
	"fmt"
	"net/http"

	"github.com/stepgate/stepgate/internal/ciauth"
	"github.com/stepgate/stepgate/internal/gate"
)

// SetCIVerifier makes the API accept the OIDC tokens of CI systems that v
// trusts, beside API tokens. nil turns them off. Call it before serving.
func (a *API) SetCIVerifier(v *ciauth.Verifier) { a.ci = v }

// ciCaller verifies a CI token. Why it is refused is logged (by handle,
// with the error); the client only hears that it is unauthorized.
func (a *API) ciCaller(r *http.Request, tok string) (*gate.Caller, error) {
	id, err := a.ci.Verify(r.Context(), tok)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", gate.ErrUnauthorized, err)
	}
	return &gate.Caller{
		TokenID:    "oidc:" + id.RunKey(),
		Name:       id.Name,
		Workspaces: id.Workspaces,
		Subject:    id.Subject,
		Claims:     id.Claims,
		Pipeline:   id.Pipeline(),
	}, nil
}
