package oidc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
)

// ErrExpired: a bearer ID token has expired (it is also ErrToken).
var ErrExpired = fmt.Errorf("%w: expired", ErrToken)

// Bearer verifies the provider's ID tokens that people present to the API
// as bearer tokens (Authorization: Bearer <ID token>): from the web client
// (the RP's client id) or from the command line's public client. Each
// audience has its own go-oidc verifier, so that a token issued to any
// other client of the provider is refused.
type Bearer struct {
	rp        *RP
	clientIDs []string
	verifiers []*gooidc.IDTokenVerifier
}

// Bearer returns the verifier of bearer ID tokens whose aud is the RP's
// client id or one of extraClientIDs (the CLI's native client; empty ones
// are ignored).
func (rp *RP) Bearer(extraClientIDs ...string) *Bearer {
	b := &Bearer{rp: rp}
	for _, id := range append([]string{rp.cfg.ClientID}, extraClientIDs...) {
		if id == "" || slices.Contains(b.clientIDs, id) {
			continue
		}
		b.clientIDs = append(b.clientIDs, id)
		b.verifiers = append(b.verifiers, rp.provider.Verifier(&gooidc.Config{ClientID: id, Now: rp.now}))
	}
	return b
}

// Verify checks a bearer ID token: signature (the provider's keys), iss,
// aud (one of the accepted clients; with an azp, it must be one of them
// too), exp. Its nonce is not checked: the flow that obtained it belongs
// to the client that presents it. The errors are ErrToken (ErrExpired for
// an expired token), with the cause for the log.
func (b *Bearer) Verify(ctx context.Context, raw string) (*Identity, error) {
	var errs []error
	var idt *gooidc.IDToken
	for _, v := range b.verifiers {
		t, err := v.Verify(ctx, raw)
		if err == nil {
			idt = t
			break
		}
		var te *gooidc.TokenExpiredError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("%w at %s", ErrExpired, te.Expiry.UTC().Format(time.RFC3339))
		}
		errs = append(errs, err)
	}
	if idt == nil {
		return nil, fmt.Errorf("%w: %w", ErrToken, errors.Join(errs...))
	}
	id, err := b.rp.identity(idt, raw)
	if err != nil {
		return nil, err
	}
	if id.AZP != "" && !slices.Contains(b.clientIDs, id.AZP) {
		return nil, fmt.Errorf("%w: issued to another client (azp %q)", ErrToken, id.AZP)
	}
	return id, nil
}

// Issuer is the provider's issuer URL.
func (rp *RP) Issuer() string { return rp.cfg.Issuer }

// Scopes are the scopes a sign-in asks for, openid first.
func (rp *RP) Scopes() []string { return slices.Clone(rp.oauth.Scopes) }

// ACRValues are the acr values that satisfy level, space-separated, the
// preferred first: what BeginStepUp sends as acr_values ("" when none is
// configured for the level or above).
func (rp *RP) ACRValues(level int) string { return rp.acrValues(level) }

// Fresh reports why a bearer identity does not meet a step-up for level
// within maxAge at the RP's time now: ErrStale when auth_time is missing,
// too old or in the future, ErrLevel when acr/amr do not reach the level;
// nil when it does.
func (rp *RP) Fresh(id *Identity, level int, maxAge time.Duration) error {
	now := rp.now()
	switch {
	case id.AuthTime.IsZero():
		return fmt.Errorf("%w: the ID token has no auth_time", ErrStale)
	case id.AuthTime.After(now.Add(time.Minute)):
		return fmt.Errorf("%w: auth_time %s is in the future", ErrStale, id.AuthTime.Format(time.RFC3339))
	case maxAge > 0 && now.Sub(id.AuthTime) > maxAge:
		return fmt.Errorf("%w: authenticated at %s, more than %s ago", ErrStale, id.AuthTime.Format(time.RFC3339), maxAge)
	case id.Level < level:
		return fmt.Errorf("%w: acr %q amr [%s] reach level %d, level %d is needed", ErrLevel, id.ACR, strings.Join(id.AMR, " "), id.Level, level)
	}
	return nil
}
