package gate

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/grant"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/secret"
	"github.com/stepgate/stepgate/internal/store"
)

// A check may name secrets kept in stepgate (package secret): a secret.read
// (stepgate secrets get, stepgate exec), or an apply that also reads them
// (stepgate check --secret). The policy sees them as operation.secrets; the
// grant names them; and once the check is allowed or approved, its grant
// is exchanged once, by the token that asked, for their values (Release).

// SecretOpener opens a sealed version of a secret (secret.Service).
type SecretOpener interface {
	Open(v *store.SecretVersion) ([]byte, error)
}

// SetSecrets lets the service release secrets, opened by o.
func (s *Service) SetSecrets(o SecretOpener) { s.secrets = o }

// envName is a portable environment variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// validSecrets reports what is wrong with the secrets of a request.
func validSecrets(secrets []store.CheckSecret) error {
	if len(secrets) > secret.MaxPerCheck {
		return fmt.Errorf("%d secrets named, at most %d", len(secrets), secret.MaxPerCheck)
	}
	var errs []error
	envs := map[string]bool{}
	for _, sec := range secrets {
		if err := secret.ValidRef(sec.Name); err != nil {
			errs = append(errs, err)
		}
		if sec.Env == "" {
			continue
		}
		if secret.External(sec.Name) {
			errs = append(errs, fmt.Errorf("secret %s is kept elsewhere: stepgate releases nothing of it into $%s; name it without ENV=", sec.Name, sec.Env))
			continue
		}
		switch {
		case !envName.MatchString(sec.Env):
			errs = append(errs, fmt.Errorf("environment variable %q of secret %s: want letters, digits and _, not starting with a digit", clipped(sec.Env), sec.Name))
		case strings.HasPrefix(strings.ToUpper(sec.Env), "STEPGATE_"):
			errs = append(errs, fmt.Errorf("environment variable %s of secret %s: names starting with STEPGATE_ are stepgate's own", sec.Env, sec.Name))
		case envs[sec.Env]:
			errs = append(errs, fmt.Errorf("environment variable %s is given two secrets", sec.Env))
		}
		envs[sec.Env] = true
	}
	return errors.Join(errs...)
}

func clipped(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// secretNames are the names of secrets, each once, in order.
func secretNames(secrets []store.CheckSecret) []string {
	var out []string
	for _, sec := range secrets {
		if !slices.Contains(out, sec.Name) {
			out = append(out, sec.Name)
		}
	}
	return out
}

// keptNames are the names of the secrets kept in stepgate, each once.
func keptNames(secrets []store.CheckSecret) []string {
	var out []string
	for _, n := range secretNames(secrets) {
		if !secret.External(n) {
			out = append(out, n)
		}
	}
	return out
}

// secretRefs looks the secrets of a request up for the policy input: each
// must be live and kept for the request's workspace. A refusal is audited.
func (s *Service) secretRefs(ctx context.Context, caller *Caller, r *CreateRequest) ([]policy.SecretRef, error) {
	if len(r.Secrets) == 0 {
		return nil, nil
	}
	versions, err := secret.Resolve(ctx, s.st, r.Workspace, keptNames(r.Secrets))
	if errors.Is(err, secret.ErrNotFound) || errors.Is(err, secret.ErrInvalid) {
		err = fmt.Errorf("%w: %w", ErrBadRequest, err)
		s.refuseSecrets(ctx, caller, "", r, err)
		return nil, audited{err}
	}
	if err != nil {
		return nil, err
	}
	var refs []policy.SecretRef
	for _, name := range secretNames(r.Secrets) {
		ref := policy.SecretRef{Name: name, External: secret.External(name)}
		if i := slices.IndexFunc(versions, func(v *store.SecretVersion) bool { return v.Name == name }); i >= 0 {
			ref.Workspace = versions[i].Workspace
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

// refuseSecrets audits a refused check that names secrets.
func (s *Service) refuseSecrets(ctx context.Context, caller *Caller, checkID string, r *CreateRequest, reason error) {
	s.auditSecretRefusal(ctx, caller.Name, checkID, map[string]any{
		"action": "create_check", "kind": r.Kind, "workspace": r.Workspace,
		"secrets": secretNames(r.Secrets), "reason": truncate(reason.Error(), maxRefusalReason),
	})
}

func (s *Service) auditSecretRefusal(ctx context.Context, actor, checkID string, data map[string]any) {
	err := s.st.InTx(ctx, func(tx store.Tx) error {
		return tx.AppendAudit(ctx, s.event(s.now().UTC(), audit.SecretRefused, actor, checkID, data))
	})
	if err != nil {
		s.log.ErrorContext(ctx, "auditing a refused secret release failed", "check", checkID, "err", err)
	}
}

// ErrNoSecrets: the grant's check names no secret to release.
var ErrNoSecrets = errors.New("the grant releases no secrets")

// Release exchanges a grant for the values of the secrets its check names,
// once: it uses the grant up as Consume does, under the check's row lock,
// in the same transaction as it reads and opens the newest version of each
// secret and audits which versions it released, to whom, under which
// grant. Only the token that asked for the check may release it. Nothing is
// used up when a secret was removed since, or does not open; every refusal
// is audited.
func (s *Service) Release(ctx context.Context, caller *Caller, token string) (*api.ReleaseResponse, error) {
	if s.secrets == nil {
		return nil, errors.New("releasing secrets: this server has no secret store")
	}
	now := s.now().UTC()
	ks, err := s.Keys(ctx)
	if err != nil {
		return nil, err
	}
	refuse := func(checkID string, err error) error {
		s.auditSecretRefusal(ctx, caller.Name, checkID, map[string]any{"action": "release", "reason": truncate(err.Error(), maxRefusalReason)})
		return audited{err}
	}
	claims, err := grant.Verify(ctx, token, ks, grant.Expect{Issuer: s.cfg.PublicURL, Audience: s.cfg.Audience, Now: now, Leeway: 30 * time.Second})
	if err != nil {
		return nil, refuse("", fmt.Errorf("%w: %w", ErrInvalidGrant, err))
	}
	if !caller.MayUse(claims.Workspace) {
		return nil, refuse(claims.Check(), fmt.Errorf("%w: token %q may not use grants of workspace %q", ErrForbidden, caller.Name, claims.Workspace))
	}
	var out *api.ReleaseResponse
	var values [][]byte
	defer func() {
		for _, v := range values {
			clear(v)
		}
	}()
	err = s.st.InTx(ctx, func(tx store.Tx) error {
		c, err := lockGrantCheck(ctx, tx, claims, func(c *store.Check) error {
			if c.TokenID != caller.TokenID {
				return fmt.Errorf("%w: only the pipeline that asked for check %s may release its secrets", ErrForbidden, c.ID)
			}
			return nil
		})
		if err != nil {
			return err
		}
		all, err := tx.GetCheckSecrets(ctx, c.ID)
		if err != nil {
			return err
		}
		var named []store.CheckSecret
		for _, sec := range all {
			if !secret.External(sec.Name) {
				named = append(named, sec)
			}
		}
		if len(named) == 0 {
			return fmt.Errorf("%w: %w kept in stepgate (check %s); use it with stepgate apply, or present it to the store that keeps them", ErrBadRequest, ErrNoSecrets, c.ID)
		}
		versions, err := secret.Resolve(ctx, tx, c.Workspace, secretNames(named))
		if errors.Is(err, secret.ErrNotFound) {
			return fmt.Errorf("%w: %w; the grant was not used", ErrConflict, err)
		}
		if err != nil {
			return err
		}
		byName := map[string]*store.SecretVersion{}
		released := []map[string]any{}
		for _, v := range versions {
			val, err := s.secrets.Open(v)
			if err != nil {
				return fmt.Errorf("%w; the grant was not used", err)
			}
			values = append(values, val)
			byName[v.Name] = v
			released = append(released, map[string]any{"name": v.Name, "version": v.Version, "key_id": v.KeyID})
		}
		out = &api.ReleaseResponse{CheckID: c.ID, GrantID: c.GrantID, ConsumedAt: now}
		for _, sec := range named {
			i := slices.IndexFunc(versions, func(v *store.SecretVersion) bool { return v.Name == sec.Name })
			v := byName[sec.Name]
			out.Secrets = append(out.Secrets, api.ReleasedSecret{Name: sec.Name, Env: sec.Env, Version: v.Version, Value: values[i]})
		}
		c.State, c.ConsumedAt, c.UpdatedAt = store.StateConsumed, now, now
		if err := tx.UpdateCheck(ctx, c); err != nil {
			return err
		}
		return appendAll(ctx, tx, []*audit.Event{
			s.event(now, audit.GrantConsumed, caller.Name, c.ID, map[string]any{"grant_id": c.GrantID}),
			s.event(now, audit.SecretReleased, caller.Name, c.ID, map[string]any{
				"grant_id": c.GrantID, "token": caller.TokenID, "secrets": released,
			}),
		})
	})
	if err != nil {
		out = nil
		switch {
		case errors.Is(err, ErrConflict), errors.Is(err, ErrInvalidGrant), errors.Is(err, ErrForbidden), errors.Is(err, ErrBadRequest):
			return nil, refuse(claims.Check(), err)
		case errors.Is(err, secret.ErrSealed):
			s.log.ErrorContext(ctx, "a secret did not open", "check", claims.Check(), "err", err)
			return nil, refuse(claims.Check(), fmt.Errorf("releasing secrets of check %s: %w", claims.Check(), err))
		}
		return nil, err
	}
	// The response now holds the values; the deferred clear must not wipe
	// them before the caller has written them out.
	values = nil
	s.wake(ctx, claims.Check())
	s.log.InfoContext(ctx, "secrets released", "check", out.CheckID, "grant", out.GrantID, "count", len(out.Secrets))
	return out, nil
}

// AWS session tag keys a grant carries (server.grant_aws_session_tags).
const (
	TagKind        = "stepgate-kind"
	TagWorkspace   = "stepgate-workspace"
	TagEnvironment = "stepgate-environment"
	TagCheck       = "stepgate-check"
	TagAAL         = "stepgate-aal"
	// TagSecrets is the names of the secrets the grant releases, separated
	// by single spaces ("billing/db" for one): a trust policy requiring
	// StringEquals aws:RequestTag/stepgate-secrets "billing/db" accepts only
	// grants for exactly that secret.
	TagSecrets = "stepgate-secrets"
)

// awsTags are the session tags of a grant: every one transitive, so that a
// role chained from the first keeps them.
func awsTags(c *store.Check, cl *grant.Claims) *grant.AWSSessionTags {
	t := &grant.AWSSessionTags{PrincipalTags: map[string][]string{
		TagKind:      {c.Kind},
		TagWorkspace: {c.Workspace},
		TagCheck:     {c.ID},
		TagAAL:       {fmt.Sprint(cl.AAL)},
	}}
	if c.Environment != "" {
		t.PrincipalTags[TagEnvironment] = []string{c.Environment}
	}
	if len(cl.Secrets) > 0 {
		t.PrincipalTags[TagSecrets] = []string{strings.Join(cl.Secrets, " ")}
	}
	for k := range t.PrincipalTags {
		t.TransitiveTagKeys = append(t.TransitiveTagKeys, k)
	}
	slices.Sort(t.TransitiveTagKeys)
	return t
}
